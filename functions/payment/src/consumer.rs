//! Payment's reactions to the order's life (DESIGN §3, steps 5 and 8): OrderStockConfirmed
//! charges the order, OrderCancelled gives the money back. The harness
//! (`shop_platform::consumer::SqsConsumer`) has parsed and checked the message, skipped it
//! if its event was applied already, and commits what a handler stages here together with
//! the event's processed marker.
//!
//! A charge is asked for only once the payment says `charging` (written on its own, before
//! the request): a crash, a lost answer or a cancellation landing meanwhile then finds a
//! record saying a charge may exist, and the money is settled from it ([`crate::settle`])
//! rather than from whatever one process happened to see. The charge's key is the order
//! id, so every attempt to charge an order (retries, redeliveries, duplicates running at
//! once) is the same charge at the provider.
//!
//! A cancellation marks the payment cancelled and takes one look at once: a captured
//! charge is refunded, an uncertain one looked up. What that look cannot settle (the
//! provider down, a charge that may still appear) stays on the payment's record for the
//! reconciler, and the message is done: a refund never waits in a queue that gives up.

use chrono::Utc;
use shop_events::DomainEvent;
use shop_events::ordering::{OrderCancelled, OrderStockConfirmed};
use shop_platform::consumer::{ConsumeError, EventHandler, IncomingEvent};
use shop_platform::transaction::Transaction;

use crate::domain::{
    OnCancelled, OnStockConfirmed, Payment, Recorded, SettlePolicy, charge_idempotency_key,
};
use crate::provider::{PaymentProvider, ProviderError, RetryPolicy};
use crate::settle::{Look, Settler, stage};
use crate::store::PaymentStore;

/// The name the harness gives this consumer's processed-event markers.
pub const CONSUMER_NAME: &str = "payment";

pub struct Handler<P> {
    pub settler: Settler<P>,
}

impl<P: PaymentProvider> Handler<P> {
    pub fn new(store: PaymentStore, provider: P, policy: SettlePolicy) -> Self {
        Self {
            settler: Settler {
                store,
                provider,
                retry: RetryPolicy::default(),
                policy,
            },
        }
    }

    fn store(&self) -> &PaymentStore {
        &self.settler.store
    }
}

impl<P: PaymentProvider> EventHandler for Handler<P> {
    async fn handle(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        match event.detail_type.as_str() {
            OrderStockConfirmed::DETAIL_TYPE => {
                self.stock_confirmed(event.data()?, event, transaction)
                    .await
            }
            OrderCancelled::DETAIL_TYPE => {
                self.order_cancelled(event.data()?, event, transaction)
                    .await
            }
            _ => Err(event.not_consumed_by(CONSUMER_NAME)),
        }
    }
}

impl<P: PaymentProvider> Handler<P> {
    /// Step 5: charge the order's total, once, and record the outcome.
    async fn stock_confirmed(
        &self,
        confirmed: OrderStockConfirmed,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let order_id = confirmed.order_id.as_str();
        let existing = self.store().get(order_id).await?;
        let policy = &self.settler.policy;
        let intent = match (OnStockConfirmed::decide(existing.as_ref()), existing) {
            (OnStockConfirmed::Charge, _) => {
                let intent =
                    Payment::start_charge(order_id, confirmed.total.clone(), Utc::now(), policy);
                // A cancellation's tombstone or a duplicate's record that lands first makes
                // this a conflict: the harness runs the handler again on what is stored.
                self.store().create_now(&intent).await?;
                intent
            }
            (OnStockConfirmed::ChargeAgain, Some(lost)) => {
                tracing::info!(
                    order_id,
                    "a charge was asked for and its outcome never recorded; asking again under the same key"
                );
                let intent = lost
                    .retry_charge(Utc::now(), policy)
                    .map_err(|refused| ConsumeError::Transient(refused.to_string()))?;
                self.store().change_now(&intent, lost.version).await?;
                intent
            }
            (OnStockConfirmed::Settle, Some(cancelled)) => {
                tracing::info!(
                    order_id,
                    "the order was cancelled while its charge was asked for; charging nothing more"
                );
                return self
                    .look(&cancelled, cancelled.version, event, transaction)
                    .await;
            }
            (_, existing) => {
                tracing::info!(order_id, status = ?existing.map(|p| p.status), "the charge's outcome is recorded already; nothing to do");
                return Ok(());
            }
        };
        let (recorded, read_version) = self.charge(intent, &confirmed).await?;
        stage(
            self.store(),
            recorded,
            read_version,
            event.correlation_id(),
            transaction,
        )?;
        Ok(())
    }

    /// Asks the provider for the charge `intent` stands for, and what its answer means,
    /// with the intent as stored by then (and the version it is stored at). Before every
    /// retry the record is moved on to say when the latest request went out: the settle
    /// window then only has to cover one attempt, not the whole invocation, and a
    /// reconciler that settled the payment meanwhile (or a cancellation) stops the retries
    /// at once, through the version.
    async fn charge(
        &self,
        intent: Payment,
        confirmed: &OrderStockConfirmed,
    ) -> Result<(Recorded, u64), ConsumeError> {
        let order_id = intent.order_id.clone();
        let key = charge_idempotency_key(&order_id);
        let total = &confirmed.total;
        let policy = &self.settler.policy;
        let latest = std::sync::Mutex::new(intent);
        let current = || match latest.lock() {
            Ok(intent) => intent.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let outcome = self
            .settler
            .retry
            .run_guarded(
                "charge",
                || {
                    self.settler
                        .provider
                        .charge(&key, total, &confirmed.payment_token)
                },
                |_| async {
                    let before = current();
                    let next = before
                        .retry_charge(Utc::now(), policy)
                        .map_err(|refused| ConsumeError::Transient(refused.to_string()))?;
                    self.store().change_now(&next, before.version).await?;
                    match latest.lock() {
                        Ok(mut intent) => *intent = next,
                        Err(poisoned) => *poisoned.into_inner() = next,
                    }
                    Ok::<(), ConsumeError>(())
                },
            )
            .await?;
        let intent = current();
        let order_id = order_id.as_str();
        let now = Utc::now();
        let recorded = match outcome {
            Ok(charge) => {
                if charge.amount != *total {
                    tracing::warn!(order_id, charged = ?charge.amount, total = ?total, "the provider charged another amount than the order's total");
                }
                tracing::info!(order_id, charge_id = %charge.id, "charged");
                intent.charged(&charge.id, now)
            }
            Err(ProviderError::Declined) => {
                tracing::info!(order_id, "the card was declined");
                intent.declined(now)
            }
            Err(ProviderError::Unavailable { uncertain, detail }) => {
                tracing::warn!(order_id, charge_uncertain = uncertain, error = %detail, "the provider stayed unavailable; the payment fails");
                intent.provider_unavailable(uncertain, now, policy)
            }
            Err(ProviderError::Rejected { status, detail }) => {
                // Nothing was charged and asking again will not change the answer; the
                // order must still reach an end of its own (DESIGN §3), so it fails, and
                // the log says loudly that the provider's configuration needs a look.
                tracing::error!(order_id, status, error = %detail, "the provider rejected the charge request; the payment fails");
                intent.provider_unavailable(false, now, policy)
            }
        };
        recorded
            .map(|recorded| (recorded, intent.version))
            .map_err(|refused| ConsumeError::Transient(refused.to_string()))
    }

    /// Step 8: remember the cancellation, and give back what is owed as far as one look at
    /// the provider can; the reconciler finishes what it cannot.
    async fn order_cancelled(
        &self,
        cancelled: OrderCancelled,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let order_id = cancelled.order_id.as_str();
        let existing = self.store().get(order_id).await?;
        match (OnCancelled::decide(existing.as_ref()), existing) {
            (OnCancelled::Void, _) => {
                // Conditional on no payment existing: if a charge is asked for meanwhile,
                // the harness runs this again and the cancellation branch takes over.
                self.store()
                    .stage_first(transaction, &Payment::voided(order_id, Utc::now()))?;
                tracing::info!(
                    order_id,
                    "cancelled before any charge was asked for; none ever will be"
                );
                Ok(())
            }
            (OnCancelled::Cancel, Some(payment)) => {
                let marked = payment
                    .cancel(Utc::now())
                    .map_err(|refused| ConsumeError::Transient(refused.to_string()))?;
                tracing::info!(order_id, status = %payment.status, "cancelled; settling what the provider holds");
                self.look(&marked, payment.version, event, transaction)
                    .await
            }
            (_, payment) => {
                tracing::info!(order_id, status = ?payment.map(|p| p.status), "nothing charged to give back");
                Ok(())
            }
        }
    }

    async fn look(
        &self,
        payment: &Payment,
        read_version: u64,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let look = self
            .settler
            .look(payment, read_version, event.correlation_id(), transaction)
            .await?;
        if look == Look::Later {
            tracing::info!(order_id = %payment.order_id, "not settled yet; the reconciler will look again");
        }
        Ok(())
    }
}
