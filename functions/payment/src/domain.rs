//! Payments and their life. No I/O and no AWS type here: the consumer and the reconciler
//! read an order's payment, ask this module what to do, talk to the provider, and persist
//! what these methods return.
//!
//! One payment per order, for ever, and the money it stands for is settled from this
//! record alone (DESIGN §3 and §5), never by one look at the provider:
//!
//! ```text
//!  (none) ──start_charge──▶ charging ──charged──▶ succeeded ──(cancelled) refunded──▶ refunded
//!    │                         │  ──declined / unavailable──▶ failed ──(uncertain) refunded──▶ refunded
//!    │                         │                                └──(uncertain, none found) settled──▶ failed
//!    │                         └──(cancelled, charge found) refunded──▶ refunded
//!    └──voided (cancelled before any charge was asked for)──▶ voided
//! ```
//!
//! - A charge is asked for only once `charging` is stored: from then on a charge may exist
//!   at the provider, and this record says so whatever happens to the process that asked.
//!   `voided`, the tombstone of an order cancelled before that, is therefore proof that
//!   nothing was ever charged.
//! - A payment is *settled* when what the provider holds is known and is what the order
//!   is owed: charged while the order stands, nothing once it is cancelled or failed.
//!   Until then it carries `next_check_at`, and the reconciler asks the provider again
//!   and again ([`Payment::next_check`], [`Payment::after_lookup`]), with growing pauses
//!   ([`SettlePolicy`]), until it is. A charge whose request went unanswered is
//!   uncertain until the provider itself shows it, or shows none once no request can
//!   still be completing there (the settle window).
//! - Every change is a guarded method returning the new record and the event it raises,
//!   or [`NotAllowed`]; the store writes it conditionally on the version read.

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

/// How settling waits: how long after a charge request a charge may still appear at the
/// provider, and how the pauses between looks grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlePolicy {
    /// How long after a charge attempt began a charge may still appear at the provider:
    /// one attempt (the consumer records every retry before it sends it) plus the longest
    /// the provider may take over a request it received. "No charge found" proves
    /// nothing before it has passed.
    pub window: Duration,
    /// The pause after the first look that settled nothing; doubled after each.
    pub first_pause: Duration,
    /// The longest pause between two looks.
    pub max_pause: Duration,
}

impl Default for SettlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(30),
            first_pause: Duration::from_secs(15),
            max_pause: Duration::from_secs(300),
        }
    }
}

impl SettlePolicy {
    /// The pause after `checks` looks that settled nothing.
    pub fn pause(&self, checks: u32) -> Duration {
        let doublings = checks.saturating_sub(1).min(16);
        self.first_pause
            .saturating_mul(1 << doublings)
            .min(self.max_pause)
    }
}

/// Where an order's payment stands. Stored in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// A charge was asked for and its outcome is not recorded yet: the request may be on
    /// its way, in flight at the provider, or done with its answer lost.
    Charging,
    /// The order's total was charged.
    Succeeded,
    /// The charge failed: declined, or the provider could not be brought to answer (see
    /// `charge_uncertain`).
    Failed,
    /// What was charged went back to the customer. Final.
    Refunded,
    /// The order was cancelled before any charge was asked for: nothing was, or will be,
    /// charged. Final.
    Voided,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Charging => "charging",
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
    /// A failed charge whose request went unanswered: a charge may exist at the provider
    /// that this record does not show, until the provider says otherwise.
    #[serde(default)]
    pub charge_uncertain: bool,
    /// The order was cancelled: whatever was charged is owed back.
    #[serde(default)]
    pub cancelled: bool,
    /// When the latest charge attempt began; a charge may appear at the provider until the
    /// settle window has passed after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_started_at: Option<String>,
    /// When the provider is to be asked again; present exactly while unsettled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_at: Option<String>,
    /// Since when the payment has been unsettled, for the alarm on the oldest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsettled_since: Option<String>,
    /// How many looks at the provider settled nothing, for the pause before the next.
    #[serde(default)]
    pub checks: u32,
    pub created_at: String,
    pub updated_at: String,
    /// Starts at 1 and grows with every change; writes are conditional on it.
    pub version: u64,
    /// Epoch seconds after which DynamoDB's TTL may delete the item; only tombstones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// An event payment announces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    Succeeded(PaymentSucceeded),
    Failed(PaymentFailed),
    Refunded(PaymentRefunded),
}

/// A payment's new state and the event it raises, if any: both commit together or not at
/// all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub payment: Payment,
    pub event: Option<PaymentEvent>,
}

/// The status changes a payment knows, by the name of the method that makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    RetryCharge,
    RecordOutcome,
    Cancel,
    Refund,
    Settle,
}

impl Transition {
    fn name(self) -> &'static str {
        match self {
            Transition::RetryCharge => "charge again",
            Transition::RecordOutcome => "record a charge's outcome for",
            Transition::Cancel => "cancel",
            Transition::Refund => "refund",
            Transition::Settle => "settle",
        }
    }
}

/// A change the payment's state does not allow. Nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} a payment that is {status}{}{}", .transition.name(), if *.charge_uncertain { " (charge uncertain)" } else { "" }, if *.cancelled { " (order cancelled)" } else { "" })]
pub struct NotAllowed {
    pub transition: Transition,
    pub status: PaymentStatus,
    pub charge_uncertain: bool,
    pub cancelled: bool,
}

/// The order's charge as the provider shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeSeen {
    pub id: String,
    pub amount: Money,
    /// The refund's id, if the charge was refunded.
    pub refund_id: Option<String>,
}

/// What an OrderStockConfirmed calls for, given the order's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnStockConfirmed {
    /// Nothing is decided yet: record `charging`, then charge.
    Charge,
    /// A charge was asked for and its outcome never recorded (the process that asked
    /// died, or is still at it): ask again, under the same key, which the provider
    /// answers with the first request's charge.
    ChargeAgain,
    /// The order was cancelled while its charge was asked for: charge nothing more, and
    /// settle what the provider holds.
    Settle,
    /// The charge's outcome is recorded already, or the order was cancelled first.
    Nothing,
}

/// What an OrderCancelled calls for, given the order's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCancelled {
    /// No charge was ever asked for: leave a tombstone so that none ever is.
    Void,
    /// Record the cancellation; what was (or may have been) charged is owed back, which
    /// settling gives.
    Cancel,
    /// Nothing was charged, or it was refunded already.
    Nothing,
}

/// What settling a payment calls for next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// What the provider holds is known and is what the order is owed.
    Settled,
    /// Give back this charge (a cancelled order's).
    Refund { charge_id: String, amount: Money },
    /// Ask the provider for the order's charge.
    Lookup,
}

/// What the provider's answer to a lookup comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLookup {
    /// Record this.
    Record(Box<Recorded>),
    /// A charge is there that the order is not owed: give it back.
    Refund { charge_id: String, amount: Money },
    /// No charge yet, but one may still appear until then: look again.
    LookAgainAt(DateTime<Utc>),
}

/// The idempotency key of an order's charge at the provider: the order id, so every
/// attempt to charge one order — retries, redeliveries, a crash and its replay — is the
/// same charge there.
pub fn charge_idempotency_key(order_id: &str) -> String {
    order_id.to_owned()
}

/// The idempotency key of the refund of an order's charge. An order has at most one
/// charge, so one refund key per order makes every path that refunds it the same refund.
pub fn refund_idempotency_key(order_id: &str) -> String {
    format!("refund-{order_id}")
}

impl OnStockConfirmed {
    pub fn decide(payment: Option<&Payment>) -> Self {
        let Some(payment) = payment else {
            return OnStockConfirmed::Charge;
        };
        match (payment.status, payment.cancelled) {
            (PaymentStatus::Charging, false) => OnStockConfirmed::ChargeAgain,
            (PaymentStatus::Charging, true) => OnStockConfirmed::Settle,
            _ => OnStockConfirmed::Nothing,
        }
    }
}

impl OnCancelled {
    pub fn decide(payment: Option<&Payment>) -> Self {
        let Some(payment) = payment else {
            return OnCancelled::Void;
        };
        if payment.cancelled {
            return OnCancelled::Nothing;
        }
        match payment.status {
            PaymentStatus::Charging | PaymentStatus::Succeeded => OnCancelled::Cancel,
            PaymentStatus::Failed if payment.charge_uncertain => OnCancelled::Cancel,
            PaymentStatus::Failed | PaymentStatus::Refunded | PaymentStatus::Voided => {
                OnCancelled::Nothing
            }
        }
    }
}

/// An instant stored by this module, read back; `None` for what cannot be read.
fn instant(stored: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(stored?)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

fn later(now: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX)
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
            cancelled: false,
            charge_started_at: None,
            next_check_at: None,
            unsettled_since: None,
            checks: 0,
            created_at: at.clone(),
            updated_at: at,
            version: 1,
            expires_at: None,
        }
    }

    /// What is stored before the order's first charge request: from here on a charge may
    /// exist, so the payment is unsettled, first due for a look once the window has passed
    /// (by then the request has an answer or none is coming).
    pub fn start_charge(
        order_id: &str,
        amount: Money,
        now: DateTime<Utc>,
        policy: &SettlePolicy,
    ) -> Payment {
        Payment {
            charge_started_at: Some(timestamp(now)),
            next_check_at: Some(timestamp(later(now, policy.window))),
            unsettled_since: Some(timestamp(now)),
            ..Self::first(order_id, PaymentStatus::Charging, Some(amount), now)
        }
    }

    /// The tombstone of an order cancelled before any charge was asked for. Nobody needs
    /// to hear of it: nothing was charged.
    pub fn voided(order_id: &str, now: DateTime<Utc>) -> Payment {
        let retention = i64::try_from(VOID_RETENTION.as_secs()).unwrap_or(i64::MAX);
        Payment {
            cancelled: true,
            expires_at: Some(now.timestamp().saturating_add(retention)),
            ..Self::first(order_id, PaymentStatus::Voided, None, now)
        }
    }

    /// Whether what the provider holds is known and is what the order is owed.
    pub fn is_settled(&self) -> bool {
        match self.status {
            PaymentStatus::Charging => false,
            PaymentStatus::Succeeded => !self.cancelled,
            PaymentStatus::Failed => !self.charge_uncertain,
            PaymentStatus::Refunded | PaymentStatus::Voided => true,
        }
    }

    fn not_allowed(&self, transition: Transition) -> NotAllowed {
        NotAllowed {
            transition,
            status: self.status,
            charge_uncertain: self.charge_uncertain,
            cancelled: self.cancelled,
        }
    }

    /// The next version of the record, with its schedule kept true: settled, it has none;
    /// unsettled, it keeps its time for the next look (or gets `now`), and the instant it
    /// became unsettled.
    fn changed(&self, now: DateTime<Utc>, change: impl FnOnce(&mut Payment)) -> Payment {
        let mut next = Payment {
            updated_at: timestamp(now),
            version: self.version + 1,
            ..self.clone()
        };
        change(&mut next);
        if next.is_settled() {
            next.next_check_at = None;
            next.unsettled_since = None;
            next.checks = 0;
        } else {
            next.next_check_at.get_or_insert_with(|| timestamp(now));
            next.unsettled_since.get_or_insert_with(|| timestamp(now));
        }
        next
    }

    /// A charge request is about to be sent again for a charge whose outcome was never
    /// recorded: a charge may appear until the window has passed after this attempt.
    pub fn retry_charge(
        &self,
        now: DateTime<Utc>,
        policy: &SettlePolicy,
    ) -> Result<Payment, NotAllowed> {
        if self.status != PaymentStatus::Charging || self.cancelled {
            return Err(self.not_allowed(Transition::RetryCharge));
        }
        Ok(self.changed(now, |next| {
            next.charge_started_at = Some(timestamp(now));
            next.next_check_at = Some(timestamp(later(now, policy.window)));
        }))
    }

    fn amount_or_zero(&self) -> Money {
        self.amount.clone().unwrap_or_else(|| Money::usd(0))
    }

    /// The provider charged the order as `charge_id`. Announced while the order stands;
    /// for a cancelled order the charge is owed back, which settling refunds.
    pub fn charged(&self, charge_id: &str, now: DateTime<Utc>) -> Result<Recorded, NotAllowed> {
        if self.status != PaymentStatus::Charging {
            return Err(self.not_allowed(Transition::RecordOutcome));
        }
        let payment = self.changed(now, |next| {
            next.status = PaymentStatus::Succeeded;
            next.provider_reference = Some(charge_id.to_owned());
            next.charge_uncertain = false;
            if next.cancelled {
                // Owed back at once: the next look is now.
                next.next_check_at = Some(timestamp(now));
            }
        });
        let event = (!self.cancelled).then(|| {
            PaymentEvent::Succeeded(PaymentSucceeded {
                order_id: self.order_id.clone(),
                amount: self.amount_or_zero(),
                provider_reference: charge_id.to_owned(),
            })
        });
        Ok(Recorded { payment, event })
    }

    /// The provider declined the card: nothing was charged. Announced while the order
    /// stands.
    pub fn declined(&self, now: DateTime<Utc>) -> Result<Recorded, NotAllowed> {
        self.failed(PaymentFailureReason::Declined, false, now, None)
    }

    /// The provider could not be brought to answer. `charge_uncertain` when some attempt
    /// may have reached it: a charge may exist, and settling looks for it once the window
    /// has passed.
    pub fn provider_unavailable(
        &self,
        charge_uncertain: bool,
        now: DateTime<Utc>,
        policy: &SettlePolicy,
    ) -> Result<Recorded, NotAllowed> {
        let first_look = self
            .charge_started_at
            .as_deref()
            .and_then(|started| instant(Some(started)))
            .map(|started| later(started, policy.window));
        self.failed(
            PaymentFailureReason::ProviderUnavailable,
            charge_uncertain,
            now,
            first_look,
        )
    }

    fn failed(
        &self,
        reason: PaymentFailureReason,
        charge_uncertain: bool,
        now: DateTime<Utc>,
        first_look: Option<DateTime<Utc>>,
    ) -> Result<Recorded, NotAllowed> {
        if self.status != PaymentStatus::Charging {
            return Err(self.not_allowed(Transition::RecordOutcome));
        }
        let payment = self.changed(now, |next| {
            next.status = PaymentStatus::Failed;
            next.reason = Some(reason);
            next.charge_uncertain = charge_uncertain;
            next.next_check_at = first_look.map(timestamp);
        });
        // A cancelled order has ended already; nobody waits for its payment's failure.
        let event = (!self.cancelled).then(|| {
            PaymentEvent::Failed(PaymentFailed {
                order_id: self.order_id.clone(),
                amount: self.amount_or_zero(),
                reason,
            })
        });
        Ok(Recorded { payment, event })
    }

    /// The order was cancelled: whatever was (or may have been) charged is owed back, due
    /// for settling at once, or once the window has passed for a charge still in flight.
    pub fn cancel(&self, now: DateTime<Utc>) -> Result<Payment, NotAllowed> {
        if OnCancelled::decide(Some(self)) != OnCancelled::Cancel {
            return Err(self.not_allowed(Transition::Cancel));
        }
        Ok(self.changed(now, |next| {
            next.cancelled = true;
            if next.status == PaymentStatus::Succeeded {
                next.next_check_at = Some(timestamp(now));
            }
        }))
    }

    /// What settling calls for now.
    pub fn next_check(&self) -> Check {
        match (self.status, &self.provider_reference, &self.amount) {
            (PaymentStatus::Succeeded, Some(charge_id), Some(amount)) if self.cancelled => {
                Check::Refund {
                    charge_id: charge_id.clone(),
                    amount: amount.clone(),
                }
            }
            // A succeeded payment always has both; without them the provider must say.
            (PaymentStatus::Succeeded, _, _) if self.cancelled => Check::Lookup,
            _ if self.is_settled() => Check::Settled,
            _ => Check::Lookup,
        }
    }

    /// Until when a charge may still appear at the provider for a request this payment
    /// sent; `None` once none can. An unreadable instant proves nothing has passed.
    pub fn charge_may_appear_until(
        &self,
        now: DateTime<Utc>,
        policy: &SettlePolicy,
    ) -> Option<DateTime<Utc>> {
        if self.is_settled() || self.status == PaymentStatus::Succeeded {
            return None;
        }
        let started = instant(self.charge_started_at.as_deref()).unwrap_or(now);
        let until = later(started, policy.window);
        (now < until).then_some(until)
    }

    /// What the provider's answer to "the order's charge?" comes to.
    pub fn after_lookup(
        &self,
        found: Option<&ChargeSeen>,
        now: DateTime<Utc>,
        policy: &SettlePolicy,
    ) -> Result<AfterLookup, NotAllowed> {
        if self.next_check() != Check::Lookup {
            return Err(self.not_allowed(Transition::Settle));
        }
        match found {
            Some(charge) => match &charge.refund_id {
                Some(refund_id) => Ok(AfterLookup::Record(Box::new(
                    self.refunded(charge, refund_id, now)?,
                ))),
                None if self.status == PaymentStatus::Charging && !self.cancelled => {
                    // The charge went through after all: the order is paid.
                    Ok(AfterLookup::Record(Box::new(
                        self.charged(&charge.id, now)?,
                    )))
                }
                None => Ok(AfterLookup::Refund {
                    charge_id: charge.id.clone(),
                    amount: charge.amount.clone(),
                }),
            },
            None => {
                if let Some(until) = self.charge_may_appear_until(now, policy) {
                    return Ok(AfterLookup::LookAgainAt(until));
                }
                match self.status {
                    // No charge, and none can come: the failure is certain.
                    PaymentStatus::Charging => Ok(AfterLookup::Record(Box::new(
                        self.provider_unavailable(false, now, policy)?,
                    ))),
                    _ => Ok(AfterLookup::Record(Box::new(Recorded {
                        payment: self.changed(now, |next| next.charge_uncertain = false),
                        event: None,
                    }))),
                }
            }
        }
    }

    /// `charge` was refunded as `refund_id`: the money is back. Allowed wherever a charge
    /// is owed back (a cancelled order's, a failed payment's that turned up), never from a
    /// payment the order still stands on.
    pub fn refunded(
        &self,
        charge: &ChargeSeen,
        refund_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Recorded, NotAllowed> {
        let owed_back = match self.status {
            PaymentStatus::Succeeded | PaymentStatus::Charging => self.cancelled,
            PaymentStatus::Failed => self.charge_uncertain,
            PaymentStatus::Refunded | PaymentStatus::Voided => false,
        };
        if !owed_back {
            return Err(self.not_allowed(Transition::Refund));
        }
        let payment = self.changed(now, |next| {
            next.status = PaymentStatus::Refunded;
            next.amount = Some(charge.amount.clone());
            next.provider_reference = Some(charge.id.clone());
            next.refund_reference = Some(refund_id.to_owned());
            next.charge_uncertain = false;
        });
        Ok(Recorded {
            payment,
            event: Some(PaymentEvent::Refunded(PaymentRefunded {
                order_id: self.order_id.clone(),
                amount: charge.amount.clone(),
                provider_reference: refund_id.to_owned(),
            })),
        })
    }

    /// A look that settled nothing (the provider did not answer, or a charge may still
    /// appear): the next one is after a pause that grows with each such look, and never
    /// before `not_before`.
    pub fn look_again(
        &self,
        now: DateTime<Utc>,
        not_before: Option<DateTime<Utc>>,
        policy: &SettlePolicy,
    ) -> Result<Payment, NotAllowed> {
        if self.is_settled() {
            return Err(self.not_allowed(Transition::Settle));
        }
        let checks = self.checks.saturating_add(1);
        let next = later(now, policy.pause(checks)).max(not_before.unwrap_or(now));
        Ok(self.changed(now, |payment| {
            payment.checks = checks;
            payment.next_check_at = Some(timestamp(next));
        }))
    }

    /// How long the payment has been unsettled at `now`.
    pub fn unsettled_for(&self, now: DateTime<Utc>) -> Option<Duration> {
        let since = instant(self.unsettled_since.as_deref())?;
        now.signed_duration_since(since).to_std().ok()
    }

    /// What `GET /payments/{orderId}` answers; a tombstone is no payment to show.
    pub fn view(&self) -> Option<PaymentView> {
        let status = match self.status {
            PaymentStatus::Charging => ViewStatus::Pending,
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
            settling: (!self.is_settled()).then(|| Settling {
                next_check_at: self.next_check_at.clone().unwrap_or_default(),
                since: self.unsettled_since.clone().unwrap_or_default(),
                checks: self.checks,
            }),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        })
    }
}

/// The statuses the HTTP API shows (DESIGN §6, and `pending` while a charge's outcome is
/// not known); a voided tombstone is not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewStatus {
    Pending,
    Succeeded,
    Failed,
    Refunded,
}

/// A payment whose money is not settled yet, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settling {
    pub next_check_at: String,
    pub since: String,
    pub checks: u32,
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
    /// Present while what the provider holds is not yet what the order is owed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settling: Option<Settling>,
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

    fn policy() -> SettlePolicy {
        SettlePolicy {
            window: Duration::from_secs(30),
            first_pause: Duration::from_secs(10),
            max_pause: Duration::from_secs(60),
        }
    }

    fn charging() -> Payment {
        Payment::start_charge(ORDER, Money::usd(4200), at(1_000), &policy())
    }

    fn succeeded() -> Payment {
        charging().charged("ch_1", at(1_001)).unwrap().payment
    }

    fn declined() -> Payment {
        charging().declined(at(1_001)).unwrap().payment
    }

    fn uncertain() -> Payment {
        charging()
            .provider_unavailable(true, at(1_010), &policy())
            .unwrap()
            .payment
    }

    fn unavailable_for_sure() -> Payment {
        charging()
            .provider_unavailable(false, at(1_010), &policy())
            .unwrap()
            .payment
    }

    fn voided() -> Payment {
        Payment::voided(ORDER, at(1_000))
    }

    fn charge(id: &str) -> ChargeSeen {
        ChargeSeen {
            id: id.into(),
            amount: Money::usd(4200),
            refund_id: None,
        }
    }

    fn refunded() -> Payment {
        let owed = succeeded().cancel(at(2_000)).unwrap();
        owed.refunded(&charge("ch_1"), "re_1", at(2_001))
            .unwrap()
            .payment
    }

    fn every_state() -> Vec<Payment> {
        vec![
            charging(),
            charging().cancel(at(1_005)).unwrap(),
            succeeded(),
            succeeded().cancel(at(2_000)).unwrap(),
            declined(),
            uncertain(),
            uncertain().cancel(at(2_000)).unwrap(),
            unavailable_for_sure(),
            voided(),
            refunded(),
        ]
    }

    #[test]
    fn a_charge_is_recorded_as_charging_before_it_is_asked_for_and_due_after_the_window() {
        let payment = charging();
        assert_eq!(payment.status, PaymentStatus::Charging);
        assert!(!payment.is_settled());
        assert_eq!(payment.amount, Some(Money::usd(4200)));
        assert_eq!(
            payment.charge_started_at.as_deref(),
            Some("1970-01-01T00:16:40.000Z")
        );
        assert_eq!(
            payment.next_check_at.as_deref(),
            Some("1970-01-01T00:17:10.000Z")
        );
        assert_eq!(
            payment.unsettled_since.as_deref(),
            Some("1970-01-01T00:16:40.000Z")
        );
        assert_eq!((payment.version, payment.expires_at), (1, None));
    }

    #[test]
    fn a_charge_is_recorded_once_and_announced_while_the_order_stands() {
        let recorded = charging().charged("ch_1", at(1_001)).unwrap();
        let payment = &recorded.payment;
        assert_eq!(payment.status, PaymentStatus::Succeeded);
        assert_eq!(payment.provider_reference.as_deref(), Some("ch_1"));
        assert!(payment.is_settled());
        assert_eq!(
            (
                payment.next_check_at.as_deref(),
                payment.unsettled_since.as_deref()
            ),
            (None, None)
        );
        assert_eq!(payment.version, 2);
        assert_eq!(
            recorded.event,
            Some(PaymentEvent::Succeeded(PaymentSucceeded {
                order_id: ORDER.into(),
                amount: Money::usd(4200),
                provider_reference: "ch_1".into()
            }))
        );
        // Every outcome is recorded from charging only: a second is refused.
        for payment in every_state()
            .into_iter()
            .filter(|p| p.status != PaymentStatus::Charging)
        {
            assert!(payment.charged("ch_2", at(3_000)).is_err(), "{payment:?}");
            assert!(payment.declined(at(3_000)).is_err());
            assert!(
                payment
                    .provider_unavailable(true, at(3_000), &policy())
                    .is_err()
            );
        }
    }

    #[test]
    fn a_charge_that_lands_after_the_cancellation_is_owed_back_at_once_and_not_announced() {
        let cancelled = charging().cancel(at(1_005)).unwrap();
        assert!(cancelled.cancelled);
        let recorded = cancelled.charged("ch_1", at(1_006)).unwrap();
        assert_eq!(
            recorded.event, None,
            "the order is cancelled; nobody waits for it"
        );
        assert!(!recorded.payment.is_settled());
        assert_eq!(
            recorded.payment.next_check_at.as_deref(),
            Some("1970-01-01T00:16:46.000Z")
        );
        assert_eq!(
            recorded.payment.next_check(),
            Check::Refund {
                charge_id: "ch_1".into(),
                amount: Money::usd(4200)
            }
        );
    }

    #[test]
    fn a_decline_is_certain_and_an_unanswered_request_is_not() {
        let recorded = charging().declined(at(1_001)).unwrap();
        assert_eq!(
            recorded.payment.reason,
            Some(PaymentFailureReason::Declined)
        );
        assert!(recorded.payment.is_settled());
        assert!(
            matches!(recorded.event, Some(PaymentEvent::Failed(ref e)) if e.reason == PaymentFailureReason::Declined)
        );

        let sure = unavailable_for_sure();
        assert!(sure.is_settled() && !sure.charge_uncertain);

        let unsure = uncertain();
        assert!(!unsure.is_settled());
        assert_eq!(
            unsure.reason,
            Some(PaymentFailureReason::ProviderUnavailable)
        );
        assert_eq!(
            unsure.next_check_at.as_deref(),
            Some("1970-01-01T00:17:10.000Z"),
            "first looked at once no request can still be completing"
        );
        assert_eq!(
            unsure.unsettled_since.as_deref(),
            Some("1970-01-01T00:16:40.000Z")
        );
    }

    #[test]
    fn the_stock_confirmation_charges_only_an_undecided_order_and_asks_again_for_a_lost_outcome() {
        assert_eq!(OnStockConfirmed::decide(None), OnStockConfirmed::Charge);
        assert_eq!(
            OnStockConfirmed::decide(Some(&charging())),
            OnStockConfirmed::ChargeAgain
        );
        assert_eq!(
            OnStockConfirmed::decide(Some(&charging().cancel(at(1_005)).unwrap())),
            OnStockConfirmed::Settle
        );
        for payment in every_state()
            .into_iter()
            .filter(|p| p.status != PaymentStatus::Charging)
        {
            assert_eq!(
                OnStockConfirmed::decide(Some(&payment)),
                OnStockConfirmed::Nothing,
                "{payment:?}"
            );
        }
        let again = charging().retry_charge(at(1_020), &policy()).unwrap();
        assert_eq!(
            again.charge_started_at.as_deref(),
            Some("1970-01-01T00:17:00.000Z")
        );
        assert_eq!(
            again.next_check_at.as_deref(),
            Some("1970-01-01T00:17:30.000Z")
        );
        assert_eq!(again.version, 2);
        assert!(
            charging()
                .cancel(at(1_005))
                .unwrap()
                .retry_charge(at(1_020), &policy())
                .is_err()
        );
    }

    #[test]
    fn a_cancellation_voids_an_undecided_order_and_marks_money_owed_back_otherwise() {
        assert_eq!(OnCancelled::decide(None), OnCancelled::Void);
        let expectations = [
            (charging(), OnCancelled::Cancel),
            (succeeded(), OnCancelled::Cancel),
            (uncertain(), OnCancelled::Cancel),
            (declined(), OnCancelled::Nothing),
            (unavailable_for_sure(), OnCancelled::Nothing),
            (voided(), OnCancelled::Nothing),
            (refunded(), OnCancelled::Nothing),
            (succeeded().cancel(at(2_000)).unwrap(), OnCancelled::Nothing),
        ];
        for (payment, expected) in expectations {
            assert_eq!(OnCancelled::decide(Some(&payment)), expected, "{payment:?}");
            assert_eq!(
                payment.cancel(at(3_000)).is_ok(),
                expected == OnCancelled::Cancel
            );
        }
        let owed = succeeded().cancel(at(2_000)).unwrap();
        assert!(!owed.is_settled());
        assert_eq!(
            owed.next_check_at.as_deref(),
            Some("1970-01-01T00:33:20.000Z"),
            "due now"
        );
        let tombstone = voided();
        assert!(tombstone.cancelled && tombstone.is_settled());
        assert_eq!(tombstone.expires_at, Some(1_000 + 30 * 24 * 3600));
    }

    #[test]
    fn settling_refunds_what_is_owed_and_looks_up_what_is_uncertain() {
        assert_eq!(
            succeeded().cancel(at(2_000)).unwrap().next_check(),
            Check::Refund {
                charge_id: "ch_1".into(),
                amount: Money::usd(4200)
            }
        );
        for payment in [
            charging(),
            uncertain(),
            charging().cancel(at(1_005)).unwrap(),
        ] {
            assert_eq!(payment.next_check(), Check::Lookup, "{payment:?}");
        }
        for payment in [
            succeeded(),
            declined(),
            unavailable_for_sure(),
            voided(),
            refunded(),
        ] {
            assert_eq!(payment.next_check(), Check::Settled, "{payment:?}");
            assert!(payment.after_lookup(None, at(9_000), &policy()).is_err());
        }
    }

    #[test]
    fn a_charge_found_after_all_pays_a_standing_order_and_is_refunded_otherwise() {
        let found = charge("ch_7");
        match charging()
            .after_lookup(Some(&found), at(1_100), &policy())
            .unwrap()
        {
            AfterLookup::Record(recorded) => {
                assert_eq!(recorded.payment.status, PaymentStatus::Succeeded);
                assert!(matches!(recorded.event, Some(PaymentEvent::Succeeded(_))));
            }
            other => panic!("{other:?}"),
        }
        for owed in [uncertain(), charging().cancel(at(1_005)).unwrap()] {
            assert_eq!(
                owed.after_lookup(Some(&found), at(1_100), &policy())
                    .unwrap(),
                AfterLookup::Refund {
                    charge_id: "ch_7".into(),
                    amount: Money::usd(4200)
                }
            );
        }
        // Refunded already (an earlier attempt refunded, then died before recording it).
        let refunded_there = ChargeSeen {
            refund_id: Some("re_7".into()),
            ..found.clone()
        };
        match uncertain()
            .after_lookup(Some(&refunded_there), at(1_100), &policy())
            .unwrap()
        {
            AfterLookup::Record(recorded) => {
                assert_eq!(recorded.payment.status, PaymentStatus::Refunded);
                assert_eq!(recorded.payment.refund_reference.as_deref(), Some("re_7"));
                assert!(recorded.payment.is_settled());
                assert!(matches!(recorded.event, Some(PaymentEvent::Refunded(_))));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_charge_found_proves_nothing_until_the_window_has_passed() {
        let started = at(1_000);
        let window_end = started + chrono::Duration::seconds(30);
        for payment in [charging(), uncertain()] {
            assert_eq!(
                payment.after_lookup(None, at(1_029), &policy()).unwrap(),
                AfterLookup::LookAgainAt(window_end),
                "{:?}",
                payment.status
            );
        }
        // Past it, an unanswered charge is a certain failure, announced so the order ends.
        match charging().after_lookup(None, at(1_030), &policy()).unwrap() {
            AfterLookup::Record(recorded) => {
                assert_eq!(recorded.payment.status, PaymentStatus::Failed);
                assert!(!recorded.payment.charge_uncertain && recorded.payment.is_settled());
                assert!(
                    matches!(recorded.event, Some(PaymentEvent::Failed(ref e)) if e.reason == PaymentFailureReason::ProviderUnavailable)
                );
            }
            other => panic!("{other:?}"),
        }
        // An uncertain failure announced already: settled silently.
        match uncertain()
            .after_lookup(None, at(1_030), &policy())
            .unwrap()
        {
            AfterLookup::Record(recorded) => {
                assert!(recorded.payment.is_settled());
                assert_eq!(recorded.payment.status, PaymentStatus::Failed);
                assert_eq!(recorded.event, None);
            }
            other => panic!("{other:?}"),
        }
        // An unreadable start proves no time has passed.
        let garbled = Payment {
            charge_started_at: Some("yesterday".into()),
            ..uncertain()
        };
        assert!(matches!(
            garbled
                .after_lookup(None, at(1_000_000), &policy())
                .unwrap(),
            AfterLookup::LookAgainAt(_)
        ));
    }

    #[test]
    fn a_refund_is_allowed_only_of_money_owed_back() {
        let found = charge("ch_1");
        for owed in [
            succeeded().cancel(at(2_000)).unwrap(),
            uncertain(),
            charging().cancel(at(1_005)).unwrap(),
        ] {
            let recorded = owed.refunded(&found, "re_1", at(3_000)).unwrap();
            assert_eq!(recorded.payment.status, PaymentStatus::Refunded);
            assert!(recorded.payment.is_settled());
            assert_eq!(
                recorded.payment.expires_at, None,
                "a refund is a money record: kept"
            );
            assert_eq!(
                recorded.event,
                Some(PaymentEvent::Refunded(PaymentRefunded {
                    order_id: ORDER.into(),
                    amount: Money::usd(4200),
                    provider_reference: "re_1".into()
                }))
            );
        }
        for standing in [
            charging(),
            succeeded(),
            declined(),
            unavailable_for_sure(),
            voided(),
            refunded(),
        ] {
            assert_eq!(
                standing
                    .refunded(&found, "re_2", at(3_000))
                    .unwrap_err()
                    .transition,
                Transition::Refund,
                "{standing:?}"
            );
        }
    }

    #[test]
    fn looks_that_settle_nothing_back_off_up_to_a_ceiling() {
        let mut payment = uncertain();
        let mut pauses = Vec::new();
        let mut now = at(2_000);
        for _ in 0..6 {
            payment = payment.look_again(now, None, &policy()).unwrap();
            let next = instant(payment.next_check_at.as_deref()).unwrap();
            pauses.push(next.signed_duration_since(now).num_seconds());
            now = next;
        }
        assert_eq!(pauses, [10, 20, 40, 60, 60, 60]);
        assert_eq!(payment.checks, 6);
        assert_eq!(
            payment.unsettled_since.as_deref(),
            Some("1970-01-01T00:16:40.000Z"),
            "kept"
        );
        let waiting = uncertain()
            .look_again(at(1_011), Some(at(1_100)), &policy())
            .unwrap();
        assert_eq!(
            waiting.next_check_at.as_deref(),
            Some("1970-01-01T00:18:20.000Z"),
            "not before"
        );
        assert!(succeeded().look_again(at(2_000), None, &policy()).is_err());
        // Settling clears the schedule.
        let settled = match payment.after_lookup(None, now, &policy()).unwrap() {
            AfterLookup::Record(recorded) => recorded.payment,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (
                settled.next_check_at,
                settled.unsettled_since,
                settled.checks
            ),
            (None, None, 0)
        );
    }

    #[test]
    fn how_long_a_payment_has_been_unsettled() {
        assert_eq!(
            uncertain().unsettled_for(at(1_600)),
            Some(Duration::from_secs(600))
        );
        assert_eq!(succeeded().unsettled_for(at(1_600)), None);
    }

    #[test]
    fn idempotency_keys_are_one_per_order_and_operation() {
        assert_eq!(charge_idempotency_key(ORDER), ORDER);
        assert_eq!(refund_idempotency_key(ORDER), format!("refund-{ORDER}"));
    }

    #[test]
    fn the_view_shows_the_status_and_whether_money_is_being_settled() {
        let view = serde_json::to_value(succeeded().view().unwrap()).unwrap();
        assert_eq!(
            view,
            json!({"orderId": ORDER, "status": "succeeded", "amount": {"amount": 4200, "currency": "USD"},
                   "providerReference": "ch_1", "createdAt": "1970-01-01T00:16:40.000Z",
                   "updatedAt": "1970-01-01T00:16:41.000Z"})
        );
        let pending = serde_json::to_value(charging().view().unwrap()).unwrap();
        assert_eq!(pending["status"], "pending");
        assert_eq!(
            pending["settling"],
            json!({"nextCheckAt": "1970-01-01T00:17:10.000Z", "since": "1970-01-01T00:16:40.000Z", "checks": 0})
        );
        let failed = serde_json::to_value(uncertain().view().unwrap()).unwrap();
        assert_eq!(
            (failed["status"].clone(), failed["reason"].clone()),
            (json!("failed"), json!("provider_unavailable"))
        );
        assert!(failed.get("settling").is_some());
        assert_eq!(refunded().view().unwrap().status, ViewStatus::Refunded);
        assert_eq!(voided().view(), None);
    }

    #[test]
    fn every_state_reads_back_as_written() {
        for payment in every_state() {
            let text = serde_json::to_string(&payment).unwrap();
            assert_eq!(serde_json::from_str::<Payment>(&text).unwrap(), payment);
        }
        let stored = serde_json::to_value(uncertain()).unwrap();
        assert_eq!(stored["status"], "failed");
        assert_eq!(stored["chargeUncertain"], true);
        assert_eq!(stored["reason"], "provider_unavailable");
        assert_eq!(
            serde_json::to_value(charging()).unwrap()["status"],
            "charging"
        );
    }
}
