//! Settling a payment's money with the provider: one look, as the domain directs it
//! ([`Payment::next_check`], [`Payment::after_lookup`]). The consumer takes one at once
//! when a cancellation meets money that may be owed back; the reconciler takes one for
//! every payment that is due, on every run, until none is left unsettled.
//!
//! A look never fails its caller because the provider did: what it could not settle is
//! written back with the time of the next look ([`Payment::look_again`]), so the work is
//! carried by the payment's record, not by a message that would run out of receives.

use chrono::Utc;
use shop_events::{Envelope, Money};
use shop_platform::store::TableError;
use shop_platform::transaction::Transaction;

use crate::domain::{
    AfterLookup, ChargeSeen, Check, Payment, PaymentEvent, Recorded, SettlePolicy,
    charge_idempotency_key, refund_idempotency_key,
};
use crate::metrics::Counted;
use crate::provider::{PaymentProvider, ProviderError, RetryPolicy};
use crate::store::PaymentStore;

/// The settle policy a function runs under: the window from `CHARGE_SETTLE_SECONDS` (its
/// template derives it from the consumer's timeout and the provider's longest request),
/// the pauses as [`SettlePolicy::default`] has them. `retry` is the policy its charges go
/// out under.
pub fn policy_from_env(retry: &RetryPolicy) -> Result<SettlePolicy, String> {
    settle_policy(
        std::env::var("CHARGE_SETTLE_SECONDS").ok().as_deref(),
        retry,
    )
}

/// [`policy_from_env`] of the variable's value. A window shorter than one charge attempt
/// is refused: a look while a charge is still in flight would find no charge yet, take
/// that for none, and fail the payment for certain while the money is being taken.
fn settle_policy(seconds: Option<&str>, retry: &RetryPolicy) -> Result<SettlePolicy, String> {
    let mut policy = SettlePolicy::default();
    if let Some(raw) = seconds {
        let seconds: u64 = raw
            .trim()
            .parse()
            .map_err(|_| format!("CHARGE_SETTLE_SECONDS {raw:?} is not a number of seconds"))?;
        policy.window = std::time::Duration::from_secs(seconds);
    }
    if policy.window < retry.attempt_timeout {
        return Err(format!(
            "CHARGE_SETTLE_SECONDS is {} s, shorter than one charge attempt ({} s): a charge \
             still in flight could appear after the payment was failed as never charged",
            policy.window.as_secs(),
            retry.attempt_timeout.as_secs_f64()
        ));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_shorter_than_one_charge_attempt_is_refused() {
        let retry = RetryPolicy::default();
        assert_eq!(
            settle_policy(Some("30"), &retry).map(|p| p.window),
            Ok(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            settle_policy(None, &retry).map(|p| p.window),
            Ok(SettlePolicy::default().window)
        );
        assert!(
            settle_policy(Some("2"), &retry).is_ok(),
            "exactly one attempt"
        );
        let refused = settle_policy(Some("1"), &retry).unwrap_err();
        assert!(
            refused.contains("shorter than one charge attempt"),
            "{refused}"
        );
        assert!(settle_policy(Some("0"), &retry).is_err());
        assert!(settle_policy(Some("soon"), &retry).is_err());
    }
}

/// What one look came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// Nothing was owed or uncertain; nothing was written.
    AlreadySettled,
    /// The payment is settled now (refunded, paid after all, or a failure made certain).
    Settled,
    /// Not settled yet: the next look is due at the instant the record now holds.
    Later,
}

/// The provider and the policies a look runs under.
pub struct Settler<P> {
    pub store: PaymentStore,
    pub provider: P,
    /// The policy every provider call runs under.
    pub retry: RetryPolicy,
    pub policy: SettlePolicy,
}

impl<P: PaymentProvider> Settler<P> {
    /// Takes one look at `payment` (as it is in memory; stored at `read_version`) and
    /// stages what it comes to in `transaction`: the change, its event and the fact it
    /// counts, conditional on the stored version.
    pub async fn look(
        &self,
        payment: &Payment,
        read_version: u64,
        correlation_id: &str,
        transaction: &mut Transaction,
    ) -> Result<Look, TableError> {
        let order_id = payment.order_id.as_str();
        let now = Utc::now();
        let next = match payment.next_check() {
            Check::Settled => {
                if payment.version != read_version {
                    // A change made in memory (a cancellation) that settles nothing.
                    self.store.stage_next(transaction, payment, read_version)?;
                }
                return Ok(Look::AlreadySettled);
            }
            Check::Refund { charge_id, amount } => {
                let charge = ChargeSeen {
                    id: charge_id,
                    amount,
                    refund_id: None,
                };
                self.refund_and_record(payment, &charge, now).await
            }
            Check::Lookup => match self.find_charge(order_id).await {
                Err(error) => Err(error),
                Ok(found) => match payment.after_lookup(found.as_ref(), now, &self.policy) {
                    Ok(AfterLookup::Record(recorded)) => Ok(Some(*recorded)),
                    Ok(AfterLookup::Refund { charge_id, amount }) => {
                        let charge = ChargeSeen {
                            id: charge_id,
                            amount,
                            refund_id: None,
                        };
                        self.refund_and_record(payment, &charge, now).await
                    }
                    Ok(AfterLookup::LookAgainAt(until)) => {
                        tracing::info!(order_id, %until, "no charge found yet; one may still appear");
                        let later = payment.look_again(now, Some(until), &self.policy);
                        Ok(later.ok().map(|payment| Recorded {
                            payment,
                            event: None,
                        }))
                    }
                    Err(refused) => {
                        tracing::error!(order_id, error = %refused, "the payment refuses what the provider shows");
                        Ok(None)
                    }
                },
            },
        };
        let recorded = match next {
            Ok(Some(recorded)) => recorded,
            // Nothing the provider showed can be recorded; a change made in memory (a
            // cancellation) still is.
            Ok(None) if payment.version != read_version => Recorded {
                payment: payment.clone(),
                event: None,
            },
            Ok(None) => return Ok(Look::AlreadySettled),
            Err(error) => {
                tracing::warn!(order_id, error = %error, "the provider could not settle the payment now; looking again later");
                match payment.look_again(now, None, &self.policy) {
                    Ok(later) => Recorded {
                        payment: later,
                        event: None,
                    },
                    Err(_) => return Ok(Look::AlreadySettled),
                }
            }
        };
        let look = if recorded.payment.is_settled() {
            Look::Settled
        } else {
            Look::Later
        };
        stage(
            &self.store,
            recorded,
            read_version,
            correlation_id,
            transaction,
        )?;
        Ok(look)
    }

    /// The order's charge at the provider, as the domain reads it.
    async fn find_charge(&self, order_id: &str) -> Result<Option<ChargeSeen>, ProviderError> {
        let key = charge_idempotency_key(order_id);
        let found = self
            .retry
            .run("find charge", || self.provider.find_charge(&key))
            .await?;
        Ok(found.map(|charge| ChargeSeen {
            id: charge.id,
            amount: charge.amount,
            refund_id: charge.refund_id.filter(|_| charge.refunded),
        }))
    }

    /// Refunds `charge` and records the refund.
    async fn refund_and_record(
        &self,
        payment: &Payment,
        charge: &ChargeSeen,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<Recorded>, ProviderError> {
        let refund_id = self
            .refund(&payment.order_id, &charge.id, &charge.amount)
            .await?;
        match payment.refunded(charge, &refund_id, now) {
            Ok(recorded) => {
                tracing::info!(order_id = %payment.order_id, charge_id = %charge.id, refund_id, "refunded");
                Ok(Some(recorded))
            }
            Err(refused) => {
                tracing::error!(order_id = %payment.order_id, error = %refused, "refunded a charge the payment does not owe back");
                Ok(None)
            }
        }
    }

    /// Refunds the order's charge under its one refund key; the refund's id.
    async fn refund(
        &self,
        order_id: &str,
        charge_id: &str,
        amount: &Money,
    ) -> Result<String, ProviderError> {
        let key = refund_idempotency_key(order_id);
        match self
            .retry
            .run("refund", || self.provider.refund(&key, charge_id, amount))
            .await
        {
            Ok(refund) => Ok(refund.id),
            // Refunded under another key (at the provider's dashboard, say): the money is
            // back all the same, and the charge names the refund.
            Err(ProviderError::Rejected { status: 409, .. }) => {
                match self.find_charge(order_id).await? {
                    Some(ChargeSeen {
                        id,
                        refund_id: Some(refund_id),
                        ..
                    }) if id == charge_id => Ok(refund_id),
                    _ => Err(ProviderError::Rejected {
                        status: 409,
                        detail: format!(
                            "the provider refuses to refund {charge_id} as refunded already, yet does not show it refunded"
                        ),
                    }),
                }
            }
            Err(error) => Err(error),
        }
    }
}

/// Stages `recorded` in `transaction` at `read_version`: the payment, its event (with
/// `correlation_id`) and the fact the event announces.
pub fn stage(
    store: &PaymentStore,
    recorded: Recorded,
    read_version: u64,
    correlation_id: &str,
    transaction: &mut Transaction,
) -> Result<(), TableError> {
    if read_version == 0 {
        store.stage_first(transaction, &recorded.payment)?;
    } else {
        store.stage_next(transaction, &recorded.payment, read_version)?;
    }
    match recorded.event {
        None => {}
        Some(PaymentEvent::Succeeded(event)) => publish(event, correlation_id, transaction)?,
        Some(PaymentEvent::Failed(event)) => publish(event, correlation_id, transaction)?,
        Some(PaymentEvent::Refunded(event)) => publish(event, correlation_id, transaction)?,
    }
    Ok(())
}

fn publish<E: shop_events::DomainEvent + Counted>(
    event: E,
    correlation_id: &str,
    transaction: &mut Transaction,
) -> Result<(), TableError> {
    transaction.count(event.counted());
    transaction.publish(&Envelope::new(event, correlation_id))?;
    Ok(())
}
