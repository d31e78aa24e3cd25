//! What ordering counts (CloudWatch, see `shop_platform::metrics`): the facts its events
//! announce, each counted once the change that raises the event has committed. Alarms and
//! dashboards are built on these names.

use shop_events::ordering::{
    OrderCancellationRequested, OrderCancelled, OrderDelivered, OrderPaid, OrderShipped,
    OrderStockConfirmed, OrderSubmitted,
};
use shop_platform::metrics::Count;

/// An order was created from a checkout.
pub const ORDERS_PLACED: &str = "OrdersPlaced";
/// An order was cancelled, by `Reason` (its cancellation reason as the events spell it).
pub const ORDERS_CANCELLED: &str = "OrdersCancelled";
/// An order was paid.
pub const ORDERS_PAID: &str = "OrdersPaid";

/// The counted fact an event of ordering's announces, if it announces one.
pub trait Counted {
    fn counted(&self) -> Option<Count>;
}

impl Counted for OrderSubmitted {
    fn counted(&self) -> Option<Count> {
        Some(Count::of(ORDERS_PLACED))
    }
}

impl Counted for OrderCancelled {
    fn counted(&self) -> Option<Count> {
        Some(Count::of(ORDERS_CANCELLED).because(self.reason))
    }
}

impl Counted for OrderPaid {
    fn counted(&self) -> Option<Count> {
        Some(Count::of(ORDERS_PAID))
    }
}

/// Steps on the way, not outcomes anyone alarms on.
macro_rules! not_counted {
    ($($event:ty),*) => {$(
        impl Counted for $event {
            fn counted(&self) -> Option<Count> {
                None
            }
        }
    )*};
}

not_counted!(
    OrderStockConfirmed,
    OrderCancellationRequested,
    OrderShipped,
    OrderDelivered
);
