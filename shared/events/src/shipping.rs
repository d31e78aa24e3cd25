//! Published by shipping (`shop.shipping`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{LineQuantity, events_of};

/// The parcel left; inventory turns the reservation into shipped stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentDispatched {
    pub order_id: String,
    pub lines: Vec<LineQuantity>,
}

/// The parcel arrived; ordering marks the order delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentDelivered {
    pub order_id: String,
}

events_of!("shop.shipping": ShipmentDispatched, ShipmentDelivered);
