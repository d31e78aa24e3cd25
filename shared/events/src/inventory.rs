//! Published by inventory (`shop.inventory`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{LineQuantity, events_of};

/// Every line of the order is reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockReserved {
    pub order_id: String,
    pub lines: Vec<LineQuantity>,
}

/// Nothing was reserved: these products had too little available (or are unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockReservationFailed {
    pub order_id: String,
    pub short_product_ids: Vec<String>,
}

/// The order's reservation went back to available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StockReleased {
    pub order_id: String,
    pub lines: Vec<LineQuantity>,
}

events_of!("shop.inventory": StockReserved, StockReservationFailed, StockReleased);
