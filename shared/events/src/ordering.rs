//! Published by ordering (`shop.ordering`).

use garde::Validate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::limits::{self, rules};
use crate::{Address, Money, OrderLine, events_of};

/// The order exists, `submitted`; inventory reserves its lines, basket drops them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct OrderSubmitted {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(chars, min = 1, max = limits::MAX_ID_CHARS), custom(rules::not_blank))]
    pub user_id: String,
    #[garde(length(min = 1, max = limits::MAX_LINES), dive)]
    pub lines: Vec<OrderLine>,
    #[garde(dive)]
    pub total: Money,
}

/// Stock is held for the order; payment charges `total` with `payment_token`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct OrderStockConfirmed {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(chars, min = 1, max = limits::MAX_ID_CHARS), custom(rules::not_blank))]
    pub user_id: String,
    #[garde(dive)]
    pub total: Money,
    #[garde(length(chars, min = 1, max = limits::MAX_PAYMENT_TOKEN_CHARS), custom(rules::not_blank), custom(rules::line))]
    pub payment_token: String,
}

/// The token is the customer's means of payment: it never reaches a log, a dead-letter
/// queue's listing or `shop-local tail` through `{:?}`.
impl std::fmt::Debug for OrderStockConfirmed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderStockConfirmed")
            .field("order_id", &self.order_id)
            .field("user_id", &self.user_id)
            .field("total", &self.total)
            .field("payment_token", &"<redacted>")
            .finish()
    }
}

/// The order is paid; shipping prepares a shipment to `shipping_address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct OrderPaid {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(chars, min = 1, max = limits::MAX_ID_CHARS), custom(rules::not_blank))]
    pub user_id: String,
    #[garde(length(min = 1, max = limits::MAX_LINES), dive)]
    pub lines: Vec<OrderLine>,
    #[garde(dive)]
    pub total: Money,
    #[garde(dive)]
    pub shipping_address: Address,
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    OutOfStock,
    PaymentFailed,
    ProviderUnavailable,
    CustomerRequest,
}

/// The customer asked to cancel a paid order, now `cancelling`. Only shipping knows
/// whether the parcel has left: it answers ShipmentCancelled (the order is then cancelled)
/// or ShipmentCancellationRefused (it ships).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancellationRequested {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(chars, min = 1, max = limits::MAX_ID_CHARS), custom(rules::not_blank))]
    pub user_id: String,
}

/// The order is cancelled: inventory releases, payment refunds, shipping drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(chars, min = 1, max = limits::MAX_ID_CHARS), custom(rules::not_blank))]
    pub user_id: String,
    #[garde(skip)]
    pub reason: CancellationReason,
}

/// The order's parcel left the warehouse (it followed ShipmentDispatched, or shipping's
/// refusal of a cancellation); nothing is owed back any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct OrderShipped {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(chars, min = 1, max = limits::MAX_ID_CHARS), custom(rules::not_blank))]
    pub user_id: String,
}

/// The order reached the customer: its last status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Validate)]
#[serde(rename_all = "camelCase")]
pub struct OrderDelivered {
    #[garde(length(chars, equal = 26), custom(rules::order_id))]
    pub order_id: String,
    #[garde(length(chars, min = 1, max = limits::MAX_ID_CHARS), custom(rules::not_blank))]
    pub user_id: String,
}

events_of!("shop.ordering": OrderStockConfirmed, carries_secret);
events_of!(
    "shop.ordering": OrderSubmitted,
    OrderPaid,
    OrderCancellationRequested,
    OrderCancelled,
    OrderShipped,
    OrderDelivered,
);
