//! Notifications' reaction to the order's life: each order event becomes one
//! `orderStatus` message, pushed to the owner's open connections and to the admins'
//! connections that follow every order. A connection that answers 410 Gone is removed in
//! the transaction that records the event as processed.
//!
//! A push is delivered at least once: when one recipient's push fails for another reason
//! (throttled, say), the event fails and comes back, and the recipients that had it get it
//! again. A client keys what it shows on the order and `at`, so a repeat changes nothing
//! it shows; a lost update would.

use shop_events::DomainEvent;
use shop_events::ordering::{
    OrderCancellationRequested, OrderCancelled, OrderDelivered, OrderPaid, OrderShipped,
    OrderStockConfirmed, OrderSubmitted,
};
use shop_platform::consumer::{ConsumeError, EventHandler, IncomingEvent};
use shop_platform::transaction::Transaction;

use crate::domain::{OrderEvent, recipients};
use crate::push::{Push, PushError};
use crate::store::ConnectionStore;

/// The name the harness gives this consumer's processed-event markers.
pub const CONSUMER_NAME: &str = "notifications";

pub struct Handler<P> {
    pub store: ConnectionStore,
    pub push: P,
}

impl<P: Push> EventHandler for Handler<P> {
    async fn handle(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let order_event = match event.detail_type.as_str() {
            OrderSubmitted::DETAIL_TYPE => OrderEvent::Submitted(event.data()?),
            OrderStockConfirmed::DETAIL_TYPE => OrderEvent::StockConfirmed(event.data()?),
            OrderPaid::DETAIL_TYPE => OrderEvent::Paid(event.data()?),
            OrderCancellationRequested::DETAIL_TYPE => {
                OrderEvent::CancellationRequested(event.data()?)
            }
            OrderCancelled::DETAIL_TYPE => OrderEvent::Cancelled(event.data()?),
            OrderShipped::DETAIL_TYPE => OrderEvent::Shipped(event.data()?),
            OrderDelivered::DETAIL_TYPE => OrderEvent::Delivered(event.data()?),
            _ => return Err(event.not_consumed_by(CONSUMER_NAME)),
        };
        let update = order_event.update(&event.metadata.occurred_at);
        let message = serde_json::to_string(&update)
            .map_err(|e| ConsumeError::Malformed(format!("cannot write the message: {e}")))?;
        let (owners, watchers) = tokio::try_join!(
            self.store.connections_of(&update.owner),
            self.store.watchers()
        )?;
        let targets = recipients(&update, &owners, &watchers);
        let outcomes = futures::future::join_all(targets.iter().map(|connection| {
            let message = message.as_str();
            async move {
                (
                    *connection,
                    self.push.send(&connection.connection_id, message).await,
                )
            }
        }))
        .await;
        let mut failures = Vec::new();
        for (connection, outcome) in outcomes {
            match outcome {
                Ok(()) => {}
                Err(PushError::Gone) => {
                    tracing::info!(connection_id = %connection.connection_id, "the connection is gone; removing it");
                    self.store.stage_close(transaction, connection)?;
                }
                Err(PushError::Failed(why)) => failures.push(why),
            }
        }
        if let Some(first) = failures.first() {
            return Err(ConsumeError::Transient(format!(
                "{} of {} pushes failed, first: {first}",
                failures.len(),
                targets.len()
            )));
        }
        tracing::info!(
            order_id = %update.order_id,
            status = update.status.as_str(),
            pushed = targets.len(),
            "order update pushed"
        );
        Ok(())
    }
}
