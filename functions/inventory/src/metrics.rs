//! What inventory counts (CloudWatch, see `shop_platform::metrics`): the facts its events
//! announce, each counted once the reservation that raises the event is recorded. Alarms
//! and dashboards are built on these names.

use shop_events::inventory::{StockReservationFailed, StockReserved};
use shop_platform::metrics::Count;

/// Every line of an order was reserved.
pub const STOCK_RESERVED: &str = "StockReserved";
/// An order could not be reserved: some product was short.
pub const RESERVATIONS_FAILED: &str = "ReservationsFailed";

/// The counted fact an event of inventory's announces.
pub trait Counted {
    fn counted(&self) -> Count;
}

impl Counted for StockReserved {
    fn counted(&self) -> Count {
        Count::of(STOCK_RESERVED)
    }
}

impl Counted for StockReservationFailed {
    fn counted(&self) -> Count {
        Count::of(RESERVATIONS_FAILED)
    }
}
