//! Payment's reactions to the order's life (DESIGN §3, steps 5 and 8): OrderStockConfirmed
//! charges the order, OrderCancelled gives the money back. The harness
//! (`shop_platform::consumer::SqsConsumer`) has parsed the message and commits what a
//! handler stages here together with the event's processed marker, so a redelivered
//! event is a no-op before it reaches this code.
//!
//! The provider is called before the transaction commits, so a crash (or a lost race)
//! between the two leaves a charge nobody recorded. Idempotency keys make that safe: the
//! charge's key is the order id, so the event's redelivery asks for the same charge and
//! the provider answers the one it made; the refund's key is one per order too. And every
//! decision is taken from the payment as stored, never from the order events arrive in:
//! when a charge and a cancellation race, one commit fails its condition, the harness runs
//! that handler again, and the re-read payment (a tombstone, say) decides what happens to
//! the charge just made (it is found and refunded).
//!
//! Every event recorded here also stages the fact it announces (PaymentsSucceeded,
//! PaymentsDeclined, PaymentsFailed by reason, PaymentsRefunded: [`crate::metrics`]); the
//! harness counts it only once the transaction commits, so a redelivery counts nothing.

use std::time::Duration;

use chrono::Utc;
use shop_events::ordering::{OrderCancelled, OrderStockConfirmed};
use shop_events::{DomainEvent, Envelope, Money, is_ulid};
use shop_platform::consumer::{ConsumeError, EventHandler, IncomingEvent};
use shop_platform::transaction::Transaction;

use crate::domain::{
    OnCancelled, OnStockConfirmed, Payment, Recorded, StrayCharge, charge_idempotency_key,
    refund_idempotency_key,
};
use crate::metrics::Counted;
use crate::provider::{PaymentProvider, ProviderError, RetryPolicy};
use crate::store::PaymentStore;

/// The name the harness gives this consumer's processed-event markers.
pub const CONSUMER_NAME: &str = "payment";

/// How long after an uncertain failure a charge may still turn up at the provider: it
/// finishes a request it started even when payment stopped waiting. The last attempt left
/// at least one attempt timeout (2 s) before the failure was recorded, and the sandbox
/// holds a request at most 5 s (its longest test-mode delay): 10 s leaves a margin. A
/// provider that may keep a request longer needs a longer window.
pub const DEFAULT_SETTLE_WINDOW: Duration = Duration::from_secs(10);

/// The longest a reconciliation waits in the handler for the settle window to pass. The
/// harness handles a batch's messages at once, so the waits of orders that failed together
/// overlap; a longer one goes back to the queue, for its visibility timeout.
pub const MAX_SETTLE_WAIT: Duration = Duration::from_secs(10);

pub struct Handler<P> {
    pub store: PaymentStore,
    pub provider: P,
    /// The policy every provider call runs under.
    pub retry: RetryPolicy,
    /// See [`DEFAULT_SETTLE_WINDOW`].
    pub settle_window: Duration,
}

impl<P: PaymentProvider> Handler<P> {
    pub fn new(store: PaymentStore, provider: P) -> Self {
        Self {
            store,
            provider,
            retry: RetryPolicy::default(),
            settle_window: DEFAULT_SETTLE_WINDOW,
        }
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

fn order_id(order_id: &str) -> Result<&str, ConsumeError> {
    if is_ulid(order_id) {
        Ok(order_id)
    } else {
        Err(ConsumeError::Malformed(format!(
            "{order_id:?} is not an order id"
        )))
    }
}

/// The provider could not finish a refund or a lookup: the queue brings the event back
/// later, when it may.
fn provider_later(order_id: &str, error: ProviderError) -> ConsumeError {
    ConsumeError::Transient(format!("order {order_id}: {error}"))
}

impl<P: PaymentProvider> Handler<P> {
    /// Step 5: charge the order's total, once, and record the outcome.
    async fn stock_confirmed(
        &self,
        confirmed: OrderStockConfirmed,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let order_id = order_id(&confirmed.order_id)?;
        if confirmed.total.amount <= 0 {
            return Err(ConsumeError::Malformed(format!(
                "order {order_id} has nothing to charge: {:?}",
                confirmed.total
            )));
        }
        let existing = self.store.get(order_id).await?;
        match (OnStockConfirmed::decide(existing.as_ref()), existing) {
            (OnStockConfirmed::Charge, _) => self.charge(&confirmed, event, transaction).await,
            (OnStockConfirmed::RefundStrayCharge, Some(voided)) => {
                tracing::info!(
                    order_id,
                    "the order was cancelled before its charge; refunding any charge an earlier attempt made"
                );
                self.refund_stray_charge(&voided, event, transaction).await
            }
            (_, existing) => {
                tracing::info!(order_id, status = ?existing.map(|p| p.status), "the charge's outcome is recorded already; nothing to do");
                Ok(())
            }
        }
    }

    async fn charge(
        &self,
        confirmed: &OrderStockConfirmed,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let order_id = confirmed.order_id.as_str();
        let key = charge_idempotency_key(order_id);
        let total = &confirmed.total;
        let outcome = self
            .retry
            .run("charge", || {
                self.provider.charge(&key, total, &confirmed.payment_token)
            })
            .await;
        let now = Utc::now();
        match outcome {
            Ok(charge) => {
                if charge.amount != *total {
                    tracing::warn!(order_id, charged = ?charge.amount, total = ?total, "the provider charged another amount than the order's total");
                }
                tracing::info!(order_id, charge_id = %charge.id, "charged");
                let recorded = Payment::charged(order_id, total.clone(), &charge.id, now);
                self.record_first(recorded, event, transaction)
            }
            Err(ProviderError::Declined) => {
                tracing::info!(order_id, "the card was declined");
                let recorded = Payment::declined(order_id, total.clone(), now);
                self.record_first(recorded, event, transaction)
            }
            Err(ProviderError::Unavailable { uncertain, detail }) => {
                tracing::warn!(order_id, charge_uncertain = uncertain, error = %detail, "the provider stayed unavailable; the payment fails");
                let recorded =
                    Payment::provider_unavailable(order_id, total.clone(), uncertain, now);
                self.record_first(recorded, event, transaction)
            }
            Err(ProviderError::Rejected { status, detail }) => {
                // Nothing was charged and asking again will not change the answer; the
                // order must still reach an end of its own (DESIGN §3), so it fails, and
                // the log says loudly that the provider's configuration needs a look.
                tracing::error!(order_id, status, error = %detail, "the provider rejected the charge request; the payment fails");
                let recorded = Payment::provider_unavailable(order_id, total.clone(), false, now);
                self.record_first(recorded, event, transaction)
            }
        }
    }

    /// Step 8: give a captured payment back; remember a cancellation that came first.
    async fn order_cancelled(
        &self,
        cancelled: OrderCancelled,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let order_id = order_id(&cancelled.order_id)?;
        let existing = self.store.get(order_id).await?;
        match (OnCancelled::decide(existing.as_ref()), existing) {
            (OnCancelled::Void, _) => {
                // Conditional on no payment existing: if a charge is recorded meanwhile,
                // the harness runs this again and the refund branch takes over.
                self.store
                    .stage_first(transaction, &Payment::voided(order_id, Utc::now()))?;
                tracing::info!(
                    order_id,
                    "cancelled before any charge was recorded; a later charge request will charge nothing"
                );
                Ok(())
            }
            (OnCancelled::Refund { charge_id, amount }, Some(payment)) => {
                let refund_id = self.refund(order_id, &charge_id, &amount).await?;
                let recorded = payment
                    .refund(&refund_id, Utc::now())
                    .map_err(|refused| ConsumeError::Transient(refused.to_string()))?;
                tracing::info!(order_id, refund_id, "refunded");
                self.record_next(recorded, payment.version, event, transaction)
            }
            (OnCancelled::Reconcile, Some(payment)) => {
                tracing::info!(
                    order_id,
                    "the failed charge may have happened; asking the provider"
                );
                self.reconcile(&payment, event, transaction).await
            }
            (_, payment) => {
                tracing::info!(order_id, status = ?payment.map(|p| p.status), "nothing charged to give back");
                Ok(())
            }
        }
    }

    /// An uncertain failure: refund the charge if the provider made one after all, else
    /// settle that it did not — once no charge can still be on its way.
    async fn reconcile(
        &self,
        payment: &Payment,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let order_id = payment.order_id.as_str();
        if let Some(stray) = self.find_and_refund(order_id).await? {
            return self.record_stray_refund(payment, &stray, event, transaction);
        }
        if let Some(left) = payment.charge_may_appear_within(Utc::now(), self.settle_window) {
            if left > MAX_SETTLE_WAIT {
                return Err(ConsumeError::Transient(format!(
                    "order {order_id}: no charge found yet, but one may still be completing at the provider for {left:?}; reconciling later"
                )));
            }
            tracing::info!(
                order_id,
                wait_ms = left.as_millis() as u64,
                "no charge found yet; waiting until none can still appear"
            );
            tokio::time::sleep(left).await;
            if let Some(stray) = self.find_and_refund(order_id).await? {
                return self.record_stray_refund(payment, &stray, event, transaction);
            }
        }
        let settled = payment
            .settle_uncertainty(Utc::now())
            .map_err(|refused| ConsumeError::Transient(refused.to_string()))?;
        tracing::info!(
            order_id,
            "the provider made no charge; the failure is certain"
        );
        self.store
            .stage_next(transaction, &settled, payment.version)?;
        Ok(())
    }

    /// A tombstoned order: a charge an earlier attempt made is refunded; none, nothing.
    async fn refund_stray_charge(
        &self,
        voided: &Payment,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        match self.find_and_refund(&voided.order_id).await? {
            Some(stray) => self.record_stray_refund(voided, &stray, event, transaction),
            None => {
                tracing::info!(order_id = %voided.order_id, "no charge was made; nothing to refund");
                Ok(())
            }
        }
    }

    fn record_stray_refund(
        &self,
        payment: &Payment,
        stray: &StrayCharge,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let recorded = payment
            .refund_stray_charge(stray, Utc::now())
            .map_err(|refused| ConsumeError::Transient(refused.to_string()))?;
        tracing::info!(order_id = %payment.order_id, charge_id = %stray.charge_id, refund_id = %stray.refund_id, "refunded a charge no payment accounted for");
        self.record_next(recorded, payment.version, event, transaction)
    }

    /// The order's charge at the provider, refunded, if there is one.
    async fn find_and_refund(&self, order_id: &str) -> Result<Option<StrayCharge>, ConsumeError> {
        let key = charge_idempotency_key(order_id);
        let found = self
            .retry
            .run("find charge", || self.provider.find_charge(&key))
            .await
            .map_err(|error| provider_later(order_id, error))?;
        let Some(charge) = found else {
            return Ok(None);
        };
        let refund_id = match (charge.refunded, charge.refund_id) {
            // Refunded already: an earlier attempt refunded it and crashed before
            // recording, or someone refunded it at the provider.
            (true, Some(refund_id)) => refund_id,
            _ => self.refund(order_id, &charge.id, &charge.amount).await?,
        };
        Ok(Some(StrayCharge {
            charge_id: charge.id,
            amount: charge.amount,
            refund_id,
        }))
    }

    /// Refunds the order's charge under its one refund key; the refund's id.
    async fn refund(
        &self,
        order_id: &str,
        charge_id: &str,
        amount: &Money,
    ) -> Result<String, ConsumeError> {
        let key = refund_idempotency_key(order_id);
        let refunded = self
            .retry
            .run("refund", || self.provider.refund(&key, charge_id, amount))
            .await;
        match refunded {
            Ok(refund) => Ok(refund.id),
            // Refunded under another key (at the provider's dashboard, say): the money is
            // back all the same, and the charge names the refund.
            Err(ProviderError::Rejected { status: 409, .. }) => {
                let charge_key = charge_idempotency_key(order_id);
                let charge = self
                    .retry
                    .run("find charge", || self.provider.find_charge(&charge_key))
                    .await
                    .map_err(|error| provider_later(order_id, error))?;
                match charge {
                    Some(charge) if charge.id == charge_id && charge.refunded => {
                        charge.refund_id.ok_or_else(|| {
                            ConsumeError::Transient(format!(
                                "order {order_id}: charge {charge_id} is refunded without a refund id"
                            ))
                        })
                    }
                    _ => Err(ConsumeError::Transient(format!(
                        "order {order_id}: the provider refuses to refund {charge_id} as refunded already, yet does not show it refunded"
                    ))),
                }
            }
            Err(error) => Err(provider_later(order_id, error)),
        }
    }

    fn record_first<E: DomainEvent + Counted>(
        &self,
        recorded: Recorded<E>,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        // Conditional on the order having no payment: should a cancellation's tombstone
        // land first, the harness runs the handler again and the tombstone branch refunds
        // the charge just made.
        self.store.stage_first(transaction, &recorded.payment)?;
        transaction.count(recorded.event.counted());
        transaction.publish(&Envelope::new(recorded.event, event.correlation_id()))?;
        Ok(())
    }

    fn record_next<E: DomainEvent + Counted>(
        &self,
        recorded: Recorded<E>,
        read_version: u64,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        self.store
            .stage_next(transaction, &recorded.payment, read_version)?;
        transaction.count(recorded.event.counted());
        transaction.publish(&Envelope::new(recorded.event, event.correlation_id()))?;
        Ok(())
    }
}
