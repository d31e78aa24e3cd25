//! Published by basket (`shop.basket`).

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{self, rules};
use crate::{Address, Money, OrderLine, events_of};

/// A basket was frozen into a checkout; ordering turns it into an order with this id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutRequested {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(chars, min = 1, max = limits::MAX_ID_CHARS), custom(rules::not_blank))]
    pub user_id: String,
    #[garde(length(min = 1, max = limits::MAX_LINES), dive)]
    pub lines: Vec<OrderLine>,
    #[garde(dive)]
    pub total: Money,
    #[garde(dive)]
    pub shipping_address: Address,
    /// An opaque token from the payment provider, never card data.
    #[garde(length(chars, min = 1, max = limits::MAX_PAYMENT_TOKEN_CHARS), custom(rules::not_blank), custom(rules::line))]
    pub payment_token: String,
}

/// The token is the customer's means of payment: never in a log through `{:?}`.
impl std::fmt::Debug for CheckoutRequested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckoutRequested")
            .field("order_id", &self.order_id)
            .field("user_id", &self.user_id)
            .field("lines", &self.lines)
            .field("total", &self.total)
            .field("shipping_address", &self.shipping_address)
            .field("payment_token", &"<redacted>")
            .finish()
    }
}

events_of!("shop.basket": CheckoutRequested, carries_secret);
