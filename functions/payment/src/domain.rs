//! Payments and their life. No I/O and no AWS type here: the consumer reads an order's
//! payment, asks this module what to do, talks to the provider, and persists what these
//! methods return.
//!
//! One payment per order, for ever. It is created by the first event that decides
//! anything about the order — a charge's outcome, or a cancellation that came first — and
//! only moves on through the guarded methods below, each returning the event it raises or
//! [`NotAllowed`]. That is what keeps DESIGN §3's invariant, "an order is charged (net of
//! refunds) exactly when it is paid, shipped or delivered", under duplicates, reordering
//! and crashes:
//!
//! ```text
//!  (none) ──charged──▶ succeeded ──refund──▶ refunded
//!    │  ──declined / provider_unavailable──▶ failed ──refund_stray_charge (if uncertain)──▶ refunded
//!    │                                         └──settle_uncertainty (no charge found)──▶ failed
//!    └──voided──▶ voided ──refund_stray_charge (a charge turned up)──▶ refunded
//! ```
//!
//! `voided` is the tombstone of an order cancelled before any charge was recorded: an
//! OrderStockConfirmed that arrives later must charge nothing, and if a charge was made
//! anyway (the cancellation overtook a charge in flight) it is found and refunded.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shop_events::payment::{
    PaymentFailed, PaymentFailureReason, PaymentRefunded, PaymentSucceeded,
};
use shop_events::{Money, timestamp};

/// How long the tombstone of an order cancelled before its charge is kept: far longer
/// than SQS keeps a message (14 days), so no late OrderStockConfirmed can outlive it.
pub const VOID_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where an order's payment stands. Stored and answered in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The order's total was charged.
    Succeeded,
    /// Nothing was charged: declined, or the provider could not be reached. Final, but
    /// see `charge_uncertain`.
    Failed,
    /// What was charged went back to the customer. Final.
    Refunded,
    /// The order was cancelled before any charge was recorded. Final, unless a charge in
    /// flight turns up and is refunded.
    Voided,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Voided => "voided",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An order's payment, as payment stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub order_id: String,
    pub status: PaymentStatus,
    /// What was (to be) charged. Absent only from a voided tombstone: a cancellation does
    /// not say what the order cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    /// The provider's charge id, once there is a charge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_reference: Option<String>,
    /// The provider's refund id, once the charge was refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reference: Option<String>,
    /// Why a failed payment failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<PaymentFailureReason>,
    /// The provider stopped answering while a charge request may have been on its way: a
    /// charge may exist that nobody recorded. A cancellation reconciles it.
    #[serde(default)]
    pub charge_uncertain: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Starts at 1 and grows with every change; writes are conditional on it.
    pub version: u64,
    /// Epoch seconds after which DynamoDB's TTL may delete the item; only tombstones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// A new payment record and the event it raises; both commit together or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded<E> {
    pub payment: Payment,
    pub event: E,
}

/// The status changes a payment knows, by the name of the method that makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Refund,
    RefundStrayCharge,
    SettleUncertainty,
}

impl Transition {
    fn name(self) -> &'static str {
        match self {
            Transition::Refund => "refund",
            Transition::RefundStrayCharge => "refund a stray charge of",
            Transition::SettleUncertainty => "settle the uncertain charge of",
        }
    }
}

/// A change the payment's state does not allow. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a payment that is {status}{}", .transition.name(), if *.charge_uncertain { " (charge uncertain)" } else { "" })]
pub struct NotAllowed {
    pub transition: Transition,
    pub status: PaymentStatus,
    pub charge_uncertain: bool,
}

/// A charge found at the provider that no succeeded payment accounts for, and its refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayCharge {
    pub charge_id: String,
    pub amount: Money,
    pub refund_id: String,
}

/// What an OrderStockConfirmed calls for, given the order's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStockConfirmed {
    /// Nothing is decided yet: charge the order.
    Charge,
    /// The order was cancelled first: charge nothing, but refund whatever charge an
    /// earlier attempt may have made.
    RefundStrayCharge,
    /// The charge's outcome is recorded already; a late or repeated event.
    Nothing,
}

/// What an OrderCancelled calls for, given the order's payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnCancelled {
    /// No payment yet: leave a tombstone so a later OrderStockConfirmed charges nothing.
    Void,
    /// Give the captured charge back.
    Refund { charge_id: String, amount: Money },
    /// The charge failed without the provider saying whether it happened: look for it
    /// and refund it if it exists.
    Reconcile,
    /// Nothing was charged, or it was refunded already.
    Nothing,
}

/// The idempotency key of an order's charge at the provider: the order id, so every
/// attempt to charge one order — retries, redeliveries, a crash and its replay — is the
/// same charge there.
pub fn charge_idempotency_key(order_id: &str) -> String {
    order_id.to_owned()
}

/// The idempotency key of the refund of an order's charge. An order has at most one
/// charge, so one refund key per order makes every path that refunds it (a cancellation,
/// a reconciliation, a charge that lost the race with its cancellation) the same refund.
pub fn refund_idempotency_key(order_id: &str) -> String {
    format!("refund-{order_id}")
}

impl OnStockConfirmed {
    pub fn decide(payment: Option<&Payment>) -> Self {
        match payment.map(|p| p.status) {
            None => OnStockConfirmed::Charge,
            Some(PaymentStatus::Voided) => OnStockConfirmed::RefundStrayCharge,
            Some(PaymentStatus::Succeeded | PaymentStatus::Failed | PaymentStatus::Refunded) => {
                OnStockConfirmed::Nothing
            }
        }
    }
}

impl OnCancelled {
    pub fn decide(payment: Option<&Payment>) -> Self {
        let Some(payment) = payment else {
            return OnCancelled::Void;
        };
        match payment.status {
            PaymentStatus::Succeeded => match (&payment.provider_reference, &payment.amount) {
                (Some(charge_id), Some(amount)) => OnCancelled::Refund {
                    charge_id: charge_id.clone(),
                    amount: amount.clone(),
                },
                // A succeeded payment always has both; without them the provider must say.
                _ => OnCancelled::Reconcile,
            },
            PaymentStatus::Failed if payment.charge_uncertain => OnCancelled::Reconcile,
            PaymentStatus::Failed | PaymentStatus::Refunded | PaymentStatus::Voided => {
                OnCancelled::Nothing
            }
        }
    }
}

impl Payment {
    fn first(
        order_id: &str,
        status: PaymentStatus,
        amount: Option<Money>,
        now: DateTime<Utc>,
    ) -> Self {
        let at = timestamp(now);
        Self {
            order_id: order_id.to_owned(),
            status,
            amount,
            provider_reference: None,
            refund_reference: None,
            reason: None,
            charge_uncertain: false,
            created_at: at.clone(),
            updated_at: at,
            version: 1,
            expires_at: None,
        }
    }

    /// The provider charged `amount` as `charge_id`.
    pub fn charged(
        order_id: &str,
        amount: Money,
        charge_id: &str,
        now: DateTime<Utc>,
    ) -> Recorded<PaymentSucceeded> {
        let payment = Payment {
            provider_reference: Some(charge_id.to_owned()),
            ..Self::first(
                order_id,
                PaymentStatus::Succeeded,
                Some(amount.clone()),
                now,
            )
        };
        Recorded {
            event: PaymentSucceeded {
                order_id: order_id.to_owned(),
                amount,
                provider_reference: charge_id.to_owned(),
            },
            payment,
        }
    }

    /// The provider declined the card: nothing was charged.
    pub fn declined(order_id: &str, amount: Money, now: DateTime<Utc>) -> Recorded<PaymentFailed> {
        Self::failed(order_id, amount, PaymentFailureReason::Declined, false, now)
    }

    /// The provider could not be brought to answer. `charge_uncertain` when some attempt
    /// may have reached it: then a charge may exist, and a cancellation must look for it.
    pub fn provider_unavailable(
        order_id: &str,
        amount: Money,
        charge_uncertain: bool,
        now: DateTime<Utc>,
    ) -> Recorded<PaymentFailed> {
        Self::failed(
            order_id,
            amount,
            PaymentFailureReason::ProviderUnavailable,
            charge_uncertain,
            now,
        )
    }

    fn failed(
        order_id: &str,
        amount: Money,
        reason: PaymentFailureReason,
        charge_uncertain: bool,
        now: DateTime<Utc>,
    ) -> Recorded<PaymentFailed> {
        let payment = Payment {
            reason: Some(reason),
            charge_uncertain,
            ..Self::first(order_id, PaymentStatus::Failed, Some(amount.clone()), now)
        };
        Recorded {
            event: PaymentFailed {
                order_id: order_id.to_owned(),
                amount,
                reason,
            },
            payment,
        }
    }

    /// The tombstone of an order cancelled before any charge was recorded. Nobody needs
    /// to hear of it: nothing was charged.
    pub fn voided(order_id: &str, now: DateTime<Utc>) -> Payment {
        let retention = i64::try_from(VOID_RETENTION.as_secs()).unwrap_or(i64::MAX);
        Payment {
            expires_at: Some(now.timestamp().saturating_add(retention)),
            ..Self::first(order_id, PaymentStatus::Voided, None, now)
        }
    }

    fn not_allowed(&self, transition: Transition) -> NotAllowed {
        NotAllowed {
            transition,
            status: self.status,
            charge_uncertain: self.charge_uncertain,
        }
    }

    fn next(&self, now: DateTime<Utc>) -> Payment {
        Payment {
            updated_at: timestamp(now),
            version: self.version + 1,
            ..self.clone()
        }
    }

    /// The captured charge was refunded as `refund_id`; only a succeeded payment has one.
    pub fn refund(
        &self,
        refund_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Recorded<PaymentRefunded>, NotAllowed> {
        let (PaymentStatus::Succeeded, Some(amount)) = (self.status, &self.amount) else {
            return Err(self.not_allowed(Transition::Refund));
        };
        Ok(Recorded {
            event: PaymentRefunded {
                order_id: self.order_id.clone(),
                amount: amount.clone(),
                provider_reference: refund_id.to_owned(),
            },
            payment: Payment {
                status: PaymentStatus::Refunded,
                refund_reference: Some(refund_id.to_owned()),
                ..self.next(now)
            },
        })
    }

    /// A charge no succeeded payment accounts for turned up at the provider and was
    /// refunded: a cancellation overtook it (voided), or the provider went silent while
    /// making it (failed, uncertain). Either way the customer saw a charge and gets it
    /// back, so the payment says refunded and the refund is announced.
    pub fn refund_stray_charge(
        &self,
        stray: &StrayCharge,
        now: DateTime<Utc>,
    ) -> Result<Recorded<PaymentRefunded>, NotAllowed> {
        let allowed = match self.status {
            PaymentStatus::Voided => true,
            PaymentStatus::Failed => self.charge_uncertain,
            PaymentStatus::Succeeded | PaymentStatus::Refunded => false,
        };
        if !allowed {
            return Err(self.not_allowed(Transition::RefundStrayCharge));
        }
        Ok(Recorded {
            event: PaymentRefunded {
                order_id: self.order_id.clone(),
                amount: stray.amount.clone(),
                provider_reference: stray.refund_id.clone(),
            },
            payment: Payment {
                status: PaymentStatus::Refunded,
                amount: Some(stray.amount.clone()),
                provider_reference: Some(stray.charge_id.clone()),
                refund_reference: Some(stray.refund_id.clone()),
                charge_uncertain: false,
                // A refunded charge is a customer's money record: it stays.
                expires_at: None,
                ..self.next(now)
            },
        })
    }

    /// The provider has no charge for the order after all: the failure is certain now.
    pub fn settle_uncertainty(&self, now: DateTime<Utc>) -> Result<Payment, NotAllowed> {
        if self.status != PaymentStatus::Failed || !self.charge_uncertain {
            return Err(self.not_allowed(Transition::SettleUncertainty));
        }
        Ok(Payment {
            charge_uncertain: false,
            ..self.next(now)
        })
    }

    /// How long a charge request that went unanswered when this payment was recorded
    /// might still be completing at the provider, from `now`; `None` once none can. A
    /// provider finishes what it started even after its client gave up, so "no charge
    /// found" only proves there will be none once `settle_window` (longer than the
    /// provider may take over one request) has passed since the failure was recorded.
    pub fn charge_may_appear_within(
        &self,
        now: DateTime<Utc>,
        settle_window: Duration,
    ) -> Option<Duration> {
        if !self.charge_uncertain {
            return None;
        }
        // An unreadable instant, or a clock behind the record's, cannot prove any of the
        // window has passed.
        let elapsed = DateTime::parse_from_rfc3339(&self.updated_at)
            .ok()
            .and_then(|recorded| {
                now.signed_duration_since(recorded.with_timezone(&Utc))
                    .to_std()
                    .ok()
            })
            .unwrap_or(Duration::ZERO);
        settle_window
            .checked_sub(elapsed)
            .filter(|left| !left.is_zero())
    }

    /// What `GET /payments/{orderId}` answers; a tombstone is no payment to show.
    pub fn view(&self) -> Option<PaymentView> {
        let status = match self.status {
            PaymentStatus::Succeeded => ViewStatus::Succeeded,
            PaymentStatus::Failed => ViewStatus::Failed,
            PaymentStatus::Refunded => ViewStatus::Refunded,
            PaymentStatus::Voided => return None,
        };
        Some(PaymentView {
            order_id: self.order_id.clone(),
            status,
            amount: self.amount.clone()?,
            provider_reference: self.provider_reference.clone(),
            reason: self.reason,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        })
    }
}

/// The statuses the HTTP API shows (DESIGN §6); a voided tombstone is not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewStatus {
    Succeeded,
    Failed,
    Refunded,
}

/// A payment as the admin API answers it (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentView {
    pub order_id: String,
    pub status: ViewStatus,
    pub amount: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<PaymentFailureReason>,
    pub created_at: String,
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ORDER: &str = "01JDMB4W7K2Q9F3R5T8V1X6Z0N";

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn succeeded() -> Payment {
        Payment::charged(ORDER, Money::usd(4200), "ch_1", at(1_000)).payment
    }

    fn declined() -> Payment {
        Payment::declined(ORDER, Money::usd(4200), at(1_000)).payment
    }

    fn uncertain() -> Payment {
        Payment::provider_unavailable(ORDER, Money::usd(4200), true, at(1_000)).payment
    }

    fn unavailable_for_sure() -> Payment {
        Payment::provider_unavailable(ORDER, Money::usd(4200), false, at(1_000)).payment
    }

    fn voided() -> Payment {
        Payment::voided(ORDER, at(1_000))
    }

    fn refunded() -> Payment {
        succeeded().refund("re_1", at(2_000)).unwrap().payment
    }

    fn stray() -> StrayCharge {
        StrayCharge {
            charge_id: "ch_9".into(),
            amount: Money::usd(4200),
            refund_id: "re_9".into(),
        }
    }

    fn every_state() -> Vec<Payment> {
        vec![
            succeeded(),
            declined(),
            uncertain(),
            unavailable_for_sure(),
            voided(),
            refunded(),
        ]
    }

    #[test]
    fn a_charge_records_a_succeeded_payment_and_announces_it() {
        let recorded = Payment::charged(ORDER, Money::usd(4200), "ch_1", at(1_000));
        let payment = &recorded.payment;
        assert_eq!(payment.status, PaymentStatus::Succeeded);
        assert_eq!(payment.amount, Some(Money::usd(4200)));
        assert_eq!(payment.provider_reference.as_deref(), Some("ch_1"));
        assert_eq!((payment.version, payment.expires_at), (1, None));
        assert!(!payment.charge_uncertain);
        assert_eq!(payment.created_at, "1970-01-01T00:16:40.000Z");
        assert_eq!(
            recorded.event,
            PaymentSucceeded {
                order_id: ORDER.into(),
                amount: Money::usd(4200),
                provider_reference: "ch_1".into()
            }
        );
    }

    #[test]
    fn a_decline_and_an_unreachable_provider_record_failures_with_their_reason() {
        let declined = Payment::declined(ORDER, Money::usd(10), at(1_000));
        assert_eq!(declined.payment.status, PaymentStatus::Failed);
        assert_eq!(
            declined.payment.reason,
            Some(PaymentFailureReason::Declined)
        );
        assert!(!declined.payment.charge_uncertain);
        assert_eq!(declined.event.reason, PaymentFailureReason::Declined);
        assert_eq!(declined.event.amount, Money::usd(10));

        for uncertain in [true, false] {
            let failed = Payment::provider_unavailable(ORDER, Money::usd(10), uncertain, at(1_000));
            assert_eq!(failed.payment.status, PaymentStatus::Failed);
            assert_eq!(
                failed.payment.reason,
                Some(PaymentFailureReason::ProviderUnavailable)
            );
            assert_eq!(failed.payment.charge_uncertain, uncertain);
            assert_eq!(
                failed.event.reason,
                PaymentFailureReason::ProviderUnavailable
            );
            assert_eq!(failed.payment.provider_reference, None);
        }
    }

    #[test]
    fn a_tombstone_has_no_amount_and_expires_after_thirty_days() {
        let payment = voided();
        assert_eq!(payment.status, PaymentStatus::Voided);
        assert_eq!(payment.amount, None);
        assert_eq!(payment.expires_at, Some(1_000 + 30 * 24 * 3600));
        assert_eq!(payment.version, 1);
    }

    #[test]
    fn only_a_succeeded_payment_is_refunded_and_only_once() {
        let recorded = succeeded().refund("re_1", at(2_000)).unwrap();
        assert_eq!(recorded.payment.status, PaymentStatus::Refunded);
        assert_eq!(recorded.payment.refund_reference.as_deref(), Some("re_1"));
        assert_eq!(recorded.payment.provider_reference.as_deref(), Some("ch_1"));
        assert_eq!(recorded.payment.version, 2);
        assert_eq!(recorded.payment.created_at, succeeded().created_at);
        assert_eq!(recorded.payment.updated_at, "1970-01-01T00:33:20.000Z");
        assert_eq!(
            recorded.event,
            PaymentRefunded {
                order_id: ORDER.into(),
                amount: Money::usd(4200),
                provider_reference: "re_1".into()
            }
        );
        for payment in [declined(), uncertain(), voided(), refunded()] {
            assert_eq!(
                payment.refund("re_2", at(3_000)),
                Err(NotAllowed {
                    transition: Transition::Refund,
                    status: payment.status,
                    charge_uncertain: payment.charge_uncertain,
                })
            );
        }
    }

    #[test]
    fn a_stray_charge_is_refunded_from_a_tombstone_or_an_uncertain_failure_only() {
        for payment in [voided(), uncertain()] {
            let recorded = payment.refund_stray_charge(&stray(), at(2_000)).unwrap();
            assert_eq!(recorded.payment.status, PaymentStatus::Refunded);
            assert_eq!(recorded.payment.amount, Some(Money::usd(4200)));
            assert_eq!(recorded.payment.provider_reference.as_deref(), Some("ch_9"));
            assert_eq!(recorded.payment.refund_reference.as_deref(), Some("re_9"));
            assert!(!recorded.payment.charge_uncertain);
            assert_eq!(recorded.payment.expires_at, None, "no longer a tombstone");
            assert_eq!(recorded.payment.version, 2);
            assert_eq!(recorded.event.provider_reference, "re_9");
            assert_eq!(recorded.event.amount, Money::usd(4200));
        }
        // The failure's reason stays: it says why the order was cancelled.
        let reconciled = uncertain()
            .refund_stray_charge(&stray(), at(2_000))
            .unwrap();
        assert_eq!(
            reconciled.payment.reason,
            Some(PaymentFailureReason::ProviderUnavailable)
        );
        for payment in [succeeded(), declined(), unavailable_for_sure(), refunded()] {
            let refused = payment
                .refund_stray_charge(&stray(), at(2_000))
                .unwrap_err();
            assert_eq!(refused.transition, Transition::RefundStrayCharge);
            assert_eq!(refused.status, payment.status);
        }
    }

    #[test]
    fn an_uncertain_failure_is_settled_once_and_nothing_else_is() {
        let settled = uncertain().settle_uncertainty(at(2_000)).unwrap();
        assert_eq!(settled.status, PaymentStatus::Failed);
        assert!(!settled.charge_uncertain);
        assert_eq!(settled.version, 2);
        assert!(settled.settle_uncertainty(at(3_000)).is_err());
        for payment in [
            succeeded(),
            declined(),
            unavailable_for_sure(),
            voided(),
            refunded(),
        ] {
            assert_eq!(
                payment
                    .settle_uncertainty(at(2_000))
                    .unwrap_err()
                    .transition,
                Transition::SettleUncertainty
            );
        }
    }

    #[test]
    fn a_stock_confirmation_charges_only_an_undecided_order() {
        assert_eq!(OnStockConfirmed::decide(None), OnStockConfirmed::Charge);
        assert_eq!(
            OnStockConfirmed::decide(Some(&voided())),
            OnStockConfirmed::RefundStrayCharge
        );
        for payment in [succeeded(), declined(), uncertain(), refunded()] {
            assert_eq!(
                OnStockConfirmed::decide(Some(&payment)),
                OnStockConfirmed::Nothing,
                "{:?}",
                payment.status
            );
        }
    }

    #[test]
    fn a_cancellation_voids_refunds_reconciles_or_does_nothing() {
        assert_eq!(OnCancelled::decide(None), OnCancelled::Void);
        assert_eq!(
            OnCancelled::decide(Some(&succeeded())),
            OnCancelled::Refund {
                charge_id: "ch_1".into(),
                amount: Money::usd(4200)
            }
        );
        assert_eq!(
            OnCancelled::decide(Some(&uncertain())),
            OnCancelled::Reconcile
        );
        let settled = uncertain().settle_uncertainty(at(2_000)).unwrap();
        for payment in [
            declined(),
            unavailable_for_sure(),
            settled,
            voided(),
            refunded(),
        ] {
            assert_eq!(
                OnCancelled::decide(Some(&payment)),
                OnCancelled::Nothing,
                "{payment:?}"
            );
        }
    }

    #[test]
    fn every_state_is_covered_by_both_decisions() {
        for payment in every_state() {
            // Neither decision panics or charges twice: only an absent payment is charged.
            assert_ne!(
                OnStockConfirmed::decide(Some(&payment)),
                OnStockConfirmed::Charge
            );
            assert_ne!(OnCancelled::decide(Some(&payment)), OnCancelled::Void);
        }
    }

    #[test]
    fn a_charge_may_still_appear_only_within_the_window_after_an_uncertain_failure() {
        let window = Duration::from_secs(30);
        let payment = uncertain();
        let left = |seconds| payment.charge_may_appear_within(at(seconds), window);
        assert_eq!(left(1_000), Some(window));
        assert_eq!(left(1_029), Some(Duration::from_secs(1)));
        assert_eq!(left(1_030), None);
        assert_eq!(left(5_000), None);
        assert_eq!(
            left(999),
            Some(window),
            "a clock behind the record proves nothing"
        );
        assert_eq!(declined().charge_may_appear_within(at(1_000), window), None);
        assert_eq!(refunded().charge_may_appear_within(at(1_000), window), None);
        let garbled = Payment {
            updated_at: "yesterday".into(),
            ..uncertain()
        };
        assert_eq!(
            garbled.charge_may_appear_within(at(1_000_000), window),
            Some(window)
        );
    }

    #[test]
    fn idempotency_keys_are_one_per_order_and_operation() {
        assert_eq!(charge_idempotency_key(ORDER), ORDER);
        assert_eq!(refund_idempotency_key(ORDER), format!("refund-{ORDER}"));
    }

    #[test]
    fn the_view_shows_what_design_section_6_lists_and_hides_tombstones() {
        assert_eq!(
            serde_json::to_value(succeeded().view().unwrap()).unwrap(),
            json!({"orderId": ORDER, "status": "succeeded", "amount": {"amount": 4200, "currency": "USD"},
                   "providerReference": "ch_1", "createdAt": "1970-01-01T00:16:40.000Z",
                   "updatedAt": "1970-01-01T00:16:40.000Z"})
        );
        let failed = serde_json::to_value(declined().view().unwrap()).unwrap();
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["reason"], "declined");
        assert!(failed.get("providerReference").is_none());
        assert_eq!(refunded().view().unwrap().status, ViewStatus::Refunded);
        assert_eq!(voided().view(), None);
    }

    #[test]
    fn statuses_are_stored_in_snake_case_and_a_payment_reads_back_as_written() {
        let names: Vec<String> = [
            PaymentStatus::Succeeded,
            PaymentStatus::Failed,
            PaymentStatus::Refunded,
            PaymentStatus::Voided,
        ]
        .iter()
        .map(|s| serde_json::to_string(s).unwrap())
        .collect();
        assert_eq!(
            names,
            ["\"succeeded\"", "\"failed\"", "\"refunded\"", "\"voided\""]
        );
        for payment in every_state() {
            let text = serde_json::to_string(&payment).unwrap();
            assert_eq!(serde_json::from_str::<Payment>(&text).unwrap(), payment);
        }
        let stored = serde_json::to_value(uncertain()).unwrap();
        assert_eq!(stored["chargeUncertain"], true);
        assert_eq!(stored["reason"], "provider_unavailable");
    }
}
