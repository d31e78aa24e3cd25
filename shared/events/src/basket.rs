//! Published by basket (`shop.basket`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Address, Money, OrderLine, events_of};

/// A basket was frozen into a checkout; ordering turns it into an order with this id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutRequested {
    pub order_id: String,
    pub user_id: String,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub shipping_address: Address,
    /// An opaque token from the payment provider, never card data.
    pub payment_token: String,
}

events_of!("shop.basket": CheckoutRequested);
