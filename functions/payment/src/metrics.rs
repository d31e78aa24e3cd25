//! What payment counts (CloudWatch, see `shop_platform::metrics`): the facts its events
//! announce, each counted once the payment that raises the event is recorded. Alarms and
//! dashboards are built on these names.

use shop_events::payment::{
    PaymentFailed, PaymentFailureReason, PaymentRefunded, PaymentSucceeded,
};
use shop_platform::metrics::Count;

/// An order's total was charged.
pub const PAYMENTS_SUCCEEDED: &str = "PaymentsSucceeded";
/// The provider declined the card.
pub const PAYMENTS_DECLINED: &str = "PaymentsDeclined";
/// A charge failed for another reason than a decline, by `Reason` (`provider_unavailable`).
pub const PAYMENTS_FAILED: &str = "PaymentsFailed";
/// A charge was given back (a cancelled order's, or one no payment accounted for).
pub const PAYMENTS_REFUNDED: &str = "PaymentsRefunded";

/// The counted fact an event of payment's announces.
pub trait Counted {
    fn counted(&self) -> Count;
}

impl Counted for PaymentSucceeded {
    fn counted(&self) -> Count {
        Count::of(PAYMENTS_SUCCEEDED)
    }
}

impl Counted for PaymentFailed {
    fn counted(&self) -> Count {
        match self.reason {
            // A customer's card, not the shop's trouble: its own metric, alarmed on apart.
            PaymentFailureReason::Declined => Count::of(PAYMENTS_DECLINED),
            reason => Count::of(PAYMENTS_FAILED).because(reason),
        }
    }
}

impl Counted for PaymentRefunded {
    fn counted(&self) -> Count {
        Count::of(PAYMENTS_REFUNDED)
    }
}
