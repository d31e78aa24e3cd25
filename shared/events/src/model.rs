//! Value types that several events carry, with the bounds the HTTP API holds them to
//! (`crate::limits`): a consumer refuses an event whose values the API would have refused.

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{self, rules};

/// An amount in minor units (cents) and its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    #[garde(range(min = 1, max = limits::MAX_TOTAL))]
    pub amount: i64,
    #[garde(length(chars, equal = 3), custom(rules::currency))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    #[garde(length(chars, equal = 26), custom(rules::product_id))]
    pub product_id: String,
    #[garde(length(chars, min = 1, max = limits::MAX_NAME_CHARS), custom(rules::not_blank), custom(rules::line))]
    pub name: String,
    #[garde(dive, custom(rules::price))]
    pub unit_price: Money,
    #[garde(range(min = 1, max = limits::MAX_QUANTITY))]
    pub quantity: u32,
}

/// How many units of one product an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct LineQuantity {
    #[garde(length(chars, equal = 26), custom(rules::product_id))]
    pub product_id: String,
    #[garde(range(min = 1, max = limits::MAX_QUANTITY))]
    pub quantity: u32,
}

/// A shipping address; `country` is ISO 3166-1 alpha-2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[garde(length(chars, min = 1, max = limits::MAX_ADDRESS_NAME_CHARS), custom(rules::not_blank), custom(rules::line))]
    pub name: String,
    #[garde(length(chars, min = 1, max = limits::MAX_ADDRESS_LINE_CHARS), custom(rules::not_blank), custom(rules::line))]
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(inner(length(chars, max = limits::MAX_ADDRESS_LINE_CHARS), custom(rules::line)))]
    pub line2: Option<String>,
    #[garde(length(chars, min = 1, max = limits::MAX_CITY_CHARS), custom(rules::not_blank), custom(rules::line))]
    pub city: String,
    #[garde(length(chars, min = 1, max = limits::MAX_POSTAL_CODE_CHARS), custom(rules::not_blank), custom(rules::line))]
    pub postal_code: String,
    #[garde(length(chars, equal = 2), custom(rules::country))]
    pub country: String,
}
