//! Published by payment (`shop.payment`).

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::rules;
use crate::{Money, events_of};

/// The processor's id of a charge or a refund, in characters.
const MAX_REFERENCE_CHARS: usize = 255;

/// The order's total was captured; ordering marks it paid. `provider_reference` is the
/// processor's charge id, which a refund names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSucceeded {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(dive)]
    pub amount: Money,
    #[garde(length(chars, min = 1, max = MAX_REFERENCE_CHARS))]
    pub provider_reference: String,
}

/// Why a charge did not go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentFailureReason {
    Declined,
    ProviderUnavailable,
}

/// Nothing was captured (or, if the processor's answer never came, whatever it took is
/// given back once it is known); ordering cancels the order with this reason, which
/// releases its stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailed {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(dive)]
    pub amount: Money,
    #[garde(skip)]
    pub reason: PaymentFailureReason,
}

/// A captured charge was given back after the order was cancelled (or failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefunded {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(dive)]
    pub amount: Money,
    #[garde(length(chars, min = 1, max = MAX_REFERENCE_CHARS))]
    pub provider_reference: String,
}

events_of!("shop.payment": PaymentSucceeded, PaymentFailed, PaymentRefunded);
