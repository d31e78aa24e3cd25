//! Published by ordering (`shop.ordering`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Address, Money, OrderLine, events_of};

/// The order exists, `submitted`; inventory reserves its lines, basket drops them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderSubmitted {
    pub order_id: String,
    pub user_id: String,
    pub lines: Vec<OrderLine>,
    pub total: Money,
}

/// Stock is held for the order; payment charges `total` with `payment_token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderStockConfirmed {
    pub order_id: String,
    pub user_id: String,
    pub total: Money,
    pub payment_token: String,
}

/// The order is paid; shipping prepares a shipment to `shipping_address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPaid {
    pub order_id: String,
    pub user_id: String,
    pub lines: Vec<OrderLine>,
    pub total: Money,
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

/// The order is cancelled: inventory releases, payment refunds, shipping drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelled {
    pub order_id: String,
    pub user_id: String,
    pub reason: CancellationReason,
}

/// The order's parcel left the warehouse (it followed ShipmentDispatched); nothing is owed
/// back on a cancellation any more, which the order now refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderShipped {
    pub order_id: String,
    pub user_id: String,
}

/// The order reached the customer: its last status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderDelivered {
    pub order_id: String,
    pub user_id: String,
}

events_of!(
    "shop.ordering": OrderSubmitted,
    OrderStockConfirmed,
    OrderPaid,
    OrderCancelled,
    OrderShipped,
    OrderDelivered,
);
