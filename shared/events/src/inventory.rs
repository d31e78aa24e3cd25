//! Published by inventory (`shop.inventory`).

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{self, rules};
use crate::{LineQuantity, events_of};

/// Every line of the order is reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct StockReserved {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(min = 1, max = limits::MAX_LINES), dive)]
    pub lines: Vec<LineQuantity>,
}

/// Nothing was reserved: these products had too little available (or are unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct StockReservationFailed {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(max = limits::MAX_LINES), inner(length(chars, equal = 26), custom(rules::product_id)))]
    pub short_product_ids: Vec<String>,
}

/// The order's reservation went back to available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct StockReleased {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(max = limits::MAX_LINES), dive)]
    pub lines: Vec<LineQuantity>,
}

events_of!("shop.inventory": StockReserved, StockReservationFailed, StockReleased);
