//! Published by shipping (`shop.shipping`).

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{self, rules};
use crate::{LineQuantity, events_of};

/// The parcel left; inventory turns the reservation into shipped stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentDispatched {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(min = 1, max = limits::MAX_LINES), dive)]
    pub lines: Vec<LineQuantity>,
}

/// The parcel arrived; ordering marks the order delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentDelivered {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
}

/// Shipping's answer to OrderCancellationRequested when the parcel had not left: the
/// shipment (or the tombstone standing for one not prepared yet) is cancelled and can no
/// longer be dispatched. Ordering then cancels the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentCancelled {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
}

/// Shipping's answer to OrderCancellationRequested when the parcel had left already: the
/// order goes on to `shipped`, the refused request kept in its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentCancellationRefused {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
}

events_of!(
    "shop.shipping": ShipmentDispatched,
    ShipmentDelivered,
    ShipmentCancelled,
    ShipmentCancellationRefused,
);
