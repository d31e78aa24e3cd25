//! Published by catalog (`shop.catalog`). `version` is the product's version after the
//! change, so a consumer can ignore an event older than what it already applied.

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{self, rules};
use crate::{Money, events_of};

/// A product as catalog announces it on creation and on every replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ProductSnapshot {
    #[garde(length(chars, equal = 26), custom(rules::product_id))]
    pub product_id: String,
    #[garde(length(chars, min = 1, max = limits::MAX_NAME_CHARS), custom(rules::not_blank), custom(rules::line))]
    pub name: String,
    #[garde(length(chars, max = limits::MAX_DESCRIPTION_CHARS), custom(rules::lines))]
    pub description: String,
    #[garde(length(chars, min = 1, max = limits::MAX_CATEGORY_CHARS), custom(rules::not_blank), custom(rules::line))]
    pub category: String,
    #[garde(dive, custom(rules::price))]
    pub price: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(inner(length(max = limits::MAX_URL_BYTES)))]
    pub image_url: Option<String>,
    #[garde(range(min = 1))]
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(transparent)]
pub struct ProductCreated(#[garde(dive)] pub ProductSnapshot);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(transparent)]
pub struct ProductUpdated(#[garde(dive)] pub ProductSnapshot);

/// The product left the catalog: basket drops it from baskets, inventory stops selling it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct ProductDeleted {
    #[garde(length(chars, equal = 26), custom(rules::product_id))]
    pub product_id: String,
    /// The version the deletion made; higher than every earlier event's.
    #[garde(range(min = 1))]
    pub version: u64,
}

events_of!("shop.catalog": ProductCreated, ProductUpdated, ProductDeleted);
