//! Shipping's reactions to the order's life (DESIGN §3, steps 7 and 8): OrderPaid prepares
//! a shipment, OrderCancellationRequested is answered (the shipment cancelled, or the
//! cancellation refused because the parcel left), OrderCancelled drops a pending one. The harness
//! (`shop_platform::consumer::SqsConsumer`) has already parsed the message and commits
//! what a handler stages here together with the processed-event marker, so a redelivered
//! event is a no-op before it reaches this code.
//!
//! Every decision is taken from the shipment as stored, never from the order in which
//! events arrive. The first write for an order (a shipment, or a tombstone when the
//! cancellation came first) is conditional on none existing, and every later one on the
//! version read; when two events about one order race, one commit fails, the harness runs
//! the handler again, and the re-read state decides.

use chrono::{DateTime, Utc};
use shop_events::ordering::{OrderCancellationRequested, OrderCancelled, OrderPaid};
use shop_events::shipping::ShipmentCancelled;
use shop_events::{DomainEvent, Envelope};
use shop_platform::consumer::{ConsumeError, EventHandler, IncomingEvent};
use shop_platform::transaction::Transaction;

use crate::domain::{CancellationAnswer, Shipment, is_order_id};
use crate::store::ShipmentStore;

/// The name the harness gives this consumer's processed-event markers.
pub const CONSUMER_NAME: &str = "shipping";

pub struct Handler {
    pub store: ShipmentStore,
}

impl EventHandler for Handler {
    async fn handle(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let now = Utc::now();
        match event.detail_type.as_str() {
            OrderPaid::DETAIL_TYPE => self.order_paid(event.data()?, now, transaction).await,
            OrderCancellationRequested::DETAIL_TYPE => {
                self.cancellation_requested(event.data()?, event, now, transaction)
                    .await
            }
            OrderCancelled::DETAIL_TYPE => {
                self.order_cancelled(event.data()?, now, transaction).await
            }
            _ => Err(event.not_consumed_by(CONSUMER_NAME)),
        }
    }
}

impl Handler {
    /// Step 7: a pending shipment, once per order, unless the order's cancellation got
    /// here first.
    async fn order_paid(
        &self,
        paid: OrderPaid,
        now: DateTime<Utc>,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let shipment =
            Shipment::prepare(paid, now).map_err(|e| ConsumeError::Malformed(e.to_string()))?;
        let order_id = shipment.order_id.as_str();
        match self.store.get(order_id).await? {
            Some(existing) if existing.is_tombstone() => {
                tracing::info!(
                    order_id,
                    "the order was cancelled before its payment got here; nothing to prepare"
                );
                return Ok(());
            }
            Some(existing) => {
                tracing::info!(order_id, status = %existing.status, "the order already has a shipment; nothing to prepare");
                return Ok(());
            }
            None => {}
        }
        self.store.stage_create(transaction, &shipment)?;
        tracing::info!(
            order_id,
            lines = shipment.lines.len(),
            "shipment prepared; waiting for dispatch"
        );
        Ok(())
    }

    /// Step 8, from `paid` on: shipping has the last word. A shipment that has not left
    /// is cancelled (a tombstone stands for one not prepared yet), and the answer is
    /// ShipmentCancelled; one that has left stays, and the answer is
    /// ShipmentCancellationRefused. Written conditionally on the version read, so an
    /// admin's dispatch at the same moment either wins (and this reads it again and
    /// refuses) or loses (and is answered 409).
    async fn cancellation_requested(
        &self,
        requested: OrderCancellationRequested,
        event: &IncomingEvent,
        now: DateTime<Utc>,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let order_id = requested.order_id.as_str();
        let correlation_id = event.correlation_id();
        let Some(mut shipment) = self.store.get(order_id).await? else {
            let tombstone = Shipment::tombstone(order_id, &requested.user_id, now);
            self.store.stage_create(transaction, &tombstone)?;
            transaction.publish(&Envelope::at(
                ShipmentCancelled {
                    order_id: order_id.to_owned(),
                },
                correlation_id,
                now,
            ))?;
            tracing::info!(
                order_id,
                "cancellation asked before the shipment was prepared; it never will be"
            );
            return Ok(());
        };
        let read_version = shipment.version;
        match shipment.answer_cancellation(now) {
            CancellationAnswer::Cancelled { event, changed } => {
                if changed {
                    self.store
                        .stage_change(transaction, &shipment, read_version)?;
                }
                transaction.publish(&Envelope::at(event, correlation_id, now))?;
                tracing::info!(
                    order_id,
                    changed,
                    "shipment cancelled at the customer's request"
                );
            }
            CancellationAnswer::Refused(event) => {
                transaction.publish(&Envelope::at(event, correlation_id, now))?;
                tracing::info!(order_id, status = %shipment.status, "cancellation refused: the parcel has left");
            }
        }
        Ok(())
    }

    /// Step 8: a pending shipment is dropped. A cancellation ahead of the order's payment
    /// leaves a tombstone, so that the OrderPaid arriving after it prepares nothing.
    async fn order_cancelled(
        &self,
        cancelled: OrderCancelled,
        now: DateTime<Utc>,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let order_id = cancelled.order_id.as_str();
        if !is_order_id(order_id) {
            return Err(ConsumeError::Malformed(format!(
                "{order_id:?} is not an order id"
            )));
        }
        let Some(mut shipment) = self.store.get(order_id).await? else {
            let tombstone = Shipment::tombstone(order_id, &cancelled.user_id, now);
            self.store.stage_create(transaction, &tombstone)?;
            tracing::info!(
                order_id,
                reason = ?cancelled.reason,
                "cancelled before any shipment; a late OrderPaid will prepare none"
            );
            return Ok(());
        };
        let read_version = shipment.version;
        match shipment.cancel(now) {
            Ok(()) => {
                self.store
                    .stage_change(transaction, &shipment, read_version)?;
                tracing::info!(order_id, reason = ?cancelled.reason, "pending shipment cancelled");
            }
            // A paid order is cancelled only once shipping cancelled its shipment (above),
            // so no cancellation can find a parcel that left: this is a broken contract,
            // worth an error, and the shipment's record of what left stands.
            Err(refused) if refused.status.has_left() => {
                tracing::error!(order_id, status = %refused.status, reason = ?cancelled.reason, "OrderCancelled for an order whose parcel left; shipment unchanged");
            }
            Err(refused) => {
                tracing::info!(order_id, status = %refused.status, "shipment already cancelled; nothing to do");
            }
        }
        Ok(())
    }
}
