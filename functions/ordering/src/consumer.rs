//! Ordering's reactions to the events of the order's life (DESIGN §3, steps 2, 4, 6, 7
//! and 8: shipping's answer to a cancellation it was asked for). The harness (`shop_platform::consumer::SqsConsumer`) has already parsed the
//! message and will commit what a handler stages here together with the processed-event
//! marker, so a redelivered event is a no-op before it reaches this code.
//!
//! A handler also stages the facts its change makes true (OrdersPlaced, OrdersPaid,
//! OrdersCancelled by reason: [`crate::metrics`]); the harness counts them only once the
//! transaction commits, so a redelivery counts nothing.
//!
//! Every decision is taken from the order's current state, never from the order in which
//! events arrive: an event whose transition the order's status no longer (or never) allows
//! (late, republished with a new id, or after the customer cancelled) changes nothing and
//! is acknowledged. An event that came too early (about an order that does not exist yet,
//! or ShipmentDelivered ahead of ShipmentDispatched) is given back to the queue, which
//! redelivers it after the event it follows has had its turn.

use chrono::{DateTime, Utc};
use shop_events::basket::CheckoutRequested;
use shop_events::inventory::{StockReservationFailed, StockReserved};
use shop_events::payment::{PaymentFailed, PaymentSucceeded};
use shop_events::shipping::{
    ShipmentCancellationRefused, ShipmentCancelled, ShipmentDelivered, ShipmentDispatched,
};
use shop_events::{DomainEvent, Envelope};
use shop_platform::consumer::{ConsumeError, EventHandler, IncomingEvent};
use shop_platform::transaction::Transaction;

use crate::domain::{NotAllowed, Order, is_order_id};
use crate::metrics::Counted;
use crate::store::OrderStore;

/// The name the harness gives this consumer's processed-event markers.
pub const CONSUMER_NAME: &str = "ordering";

pub struct Handler {
    pub store: OrderStore,
}

impl EventHandler for Handler {
    async fn handle(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let now = Utc::now();
        match event.detail_type.as_str() {
            CheckoutRequested::DETAIL_TYPE => {
                self.checkout_requested(event.data()?, event, now, transaction)
                    .await
            }
            StockReserved::DETAIL_TYPE => {
                let reserved: StockReserved = event.data()?;
                self.transition(&reserved.order_id, event, now, transaction, |order| {
                    order.confirm_stock(now)
                })
                .await
            }
            StockReservationFailed::DETAIL_TYPE => {
                let failed: StockReservationFailed = event.data()?;
                self.transition(&failed.order_id, event, now, transaction, |order| {
                    order.reject_for_stock(now)
                })
                .await
            }
            PaymentSucceeded::DETAIL_TYPE => {
                let paid: PaymentSucceeded = event.data()?;
                self.transition(&paid.order_id, event, now, transaction, |order| {
                    order.mark_paid(now)
                })
                .await
            }
            PaymentFailed::DETAIL_TYPE => {
                let failed: PaymentFailed = event.data()?;
                self.transition(&failed.order_id, event, now, transaction, |order| {
                    order.fail_payment(failed.reason, now)
                })
                .await
            }
            ShipmentDispatched::DETAIL_TYPE => {
                let dispatched: ShipmentDispatched = event.data()?;
                self.transition(&dispatched.order_id, event, now, transaction, |order| {
                    order.mark_shipped(now)
                })
                .await
            }
            ShipmentCancelled::DETAIL_TYPE => {
                let cancelled: ShipmentCancelled = event.data()?;
                self.transition(&cancelled.order_id, event, now, transaction, |order| {
                    order.confirm_cancellation(now)
                })
                .await
            }
            ShipmentCancellationRefused::DETAIL_TYPE => {
                let refused: ShipmentCancellationRefused = event.data()?;
                self.transition(&refused.order_id, event, now, transaction, |order| {
                    order.refuse_cancellation(now)
                })
                .await
            }
            ShipmentDelivered::DETAIL_TYPE => {
                let delivered: ShipmentDelivered = event.data()?;
                self.transition(&delivered.order_id, event, now, transaction, |order| {
                    order.mark_delivered(now)
                })
                .await
            }
            _ => Err(event.not_consumed_by(CONSUMER_NAME)),
        }
    }
}

impl Handler {
    /// Step 2: the checkout becomes an order, once, however often the event arrives.
    async fn checkout_requested(
        &self,
        checkout: CheckoutRequested,
        event: &IncomingEvent,
        now: DateTime<Utc>,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let (order, submitted) =
            Order::submit(checkout, now).map_err(|e| ConsumeError::Malformed(e.to_string()))?;
        let order_id = order.id.as_str();
        if self.store.get(order_id).await?.is_some() {
            tracing::info!(order_id, "the order already exists; nothing to do");
            return Ok(());
        }
        let placed = submitted.counted();
        let outgoing = Envelope::at(submitted, event.correlation_id(), now);
        // Conditional on the order not existing: should another delivery create it between
        // our read and this commit, the harness retries and the read above sees it.
        self.store.stage_create(transaction, &order, &outgoing)?;
        transaction.count_all(placed);
        tracing::info!(order_id, user_id = %order.user_id, event_id = %outgoing.metadata.event_id, "order submitted");
        Ok(())
    }

    /// Step 4 and every later step: one guarded transition of an existing order.
    async fn transition<T: DomainEvent + Counted>(
        &self,
        order_id: &str,
        event: &IncomingEvent,
        now: DateTime<Utc>,
        transaction: &mut Transaction,
        change: impl FnOnce(&mut Order) -> Result<T, NotAllowed>,
    ) -> Result<(), ConsumeError> {
        if !is_order_id(order_id) {
            return Err(ConsumeError::Malformed(format!(
                "{order_id:?} is not an order id"
            )));
        }
        let Some(mut order) = self.store.get(order_id).await? else {
            return Err(ConsumeError::Transient(format!(
                "order {order_id} does not exist (yet); {} will be redelivered",
                event.detail_type
            )));
        };
        let read_version = order.version;
        match change(&mut order) {
            Ok(raised) => {
                let fact = raised.counted();
                let outgoing = Envelope::at(raised, event.correlation_id(), now);
                self.store
                    .stage_change(transaction, &order, read_version, &outgoing)?;
                transaction.count_all(fact);
                tracing::info!(order_id, status = %order.status, event_id = %outgoing.metadata.event_id, "order moved on");
            }
            Err(refused) if refused.is_premature() => {
                return Err(ConsumeError::Transient(format!(
                    "{} came ahead of the event it follows ({refused}); it will be redelivered",
                    event.detail_type
                )));
            }
            Err(refused) => {
                tracing::info!(order_id, reason = %refused, "event does not apply to the order as it is; ignored");
            }
        }
        Ok(())
    }
}
