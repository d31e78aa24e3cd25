//! Value types that several events carry.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An amount in minor units (cents) and its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

impl Money {
    pub fn usd(amount: i64) -> Self {
        Self {
            amount,
            currency: "USD".to_owned(),
        }
    }
}

/// One line of a checkout or an order, priced when the basket was checked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub product_id: String,
    pub name: String,
    pub unit_price: Money,
    pub quantity: u32,
}

/// How many units of one product an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineQuantity {
    pub product_id: String,
    pub quantity: u32,
}

/// A shipping address; `country` is ISO 3166-1 alpha-2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}
