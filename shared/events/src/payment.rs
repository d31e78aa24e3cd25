//! Published by payment (`shop.payment`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Money, events_of};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSucceeded {
    pub order_id: String,
    pub amount: Money,
    pub provider_reference: String,
}

/// Why a charge did not go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentFailureReason {
    Declined,
    ProviderUnavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    pub order_id: String,
    pub amount: Money,
    pub reason: PaymentFailureReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefunded {
    pub order_id: String,
    pub amount: Money,
    pub provider_reference: String,
}

events_of!("shop.payment": PaymentSucceeded, PaymentFailed, PaymentRefunded);
