//! Published by payment (`shop.payment`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Money, events_of};

/// The order's total was captured; ordering marks it paid. `provider_reference` is the
/// processor's charge id, which a refund names.
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

/// Nothing was captured; ordering cancels the order with this reason, which releases
/// its stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    pub order_id: String,
    pub amount: Money,
    pub reason: PaymentFailureReason,
}

/// A captured charge was given back after the order was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefunded {
    pub order_id: String,
    pub amount: Money,
    pub provider_reference: String,
}

events_of!("shop.payment": PaymentSucceeded, PaymentFailed, PaymentRefunded);
