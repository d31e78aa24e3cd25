//! Published by catalog (`shop.catalog`). `version` is the product's version after the
//! change, so a consumer can ignore an event older than what it already applied.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Money, events_of};

/// A product as catalog announces it on creation and on every replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductSnapshot {
    pub product_id: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ProductCreated(pub ProductSnapshot);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ProductUpdated(pub ProductSnapshot);

/// The product left the catalog: basket drops it from baskets, inventory stops selling it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductDeleted {
    pub product_id: String,
    /// The version the deletion made; higher than every earlier event's.
    pub version: u64,
}

events_of!("shop.catalog": ProductCreated, ProductUpdated, ProductDeleted);
