//! The inventory consumer: what inventory does with the events of its queue. The
//! harness ([`shop_platform::consumer::SqsConsumer`]) has parsed the message and commits
//! what a handler adds to the transaction together with the event's processed marker.
//!
//! Every handler decides from the state it reads, never from the order events arrive in:
//! an order's reservation record is written once, with `attribute_not_exists`, and only
//! moves on conditionally on the version read. So when two events about one order race,
//! one commit fails its condition, the harness runs the handler again, and the re-read
//! state decides. The same goes for stock: a reservation's stock updates are guarded by
//! `available >= :quantity`, and if another order took the units between the read and
//! the commit, the retry reads the stock again and fails the order instead.
//!
//! A decided order also stages the fact it announces (StockReserved or
//! ReservationsFailed: [`crate::metrics`]); the harness counts it only once the
//! transaction commits, so neither a redelivery nor an attempt that lost a race counts.

use chrono::Utc;
use shop_events::catalog::{ProductCreated, ProductDeleted};
use shop_events::ordering::{OrderCancelled, OrderSubmitted};
use shop_events::shipping::ShipmentDispatched;
use shop_events::{DomainEvent, Envelope};
use shop_platform::consumer::{ConsumeError, EventHandler, IncomingEvent};
use shop_platform::transaction::Transaction;

use crate::domain::{Change, Decision, Reservation, ReservationStatus, StockMove, requested_lines};
use crate::metrics::Counted;
use crate::store::{InventoryStore, StoreError};

pub struct Handler {
    pub store: InventoryStore,
}

impl EventHandler for Handler {
    async fn handle(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        match event.detail_type.as_str() {
            ProductCreated::DETAIL_TYPE => self.product_created(event, transaction),
            ProductDeleted::DETAIL_TYPE => self.product_deleted(event, transaction).await,
            OrderSubmitted::DETAIL_TYPE => self.order_submitted(event, transaction).await,
            OrderCancelled::DETAIL_TYPE => self.order_cancelled(event, transaction).await,
            ShipmentDispatched::DETAIL_TYPE => self.shipment_dispatched(event, transaction).await,
            _ => Err(event.not_consumed_by("inventory")),
        }
    }
}

impl From<StoreError> for ConsumeError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Table(error) => error.into(),
            refused => ConsumeError::Transient(refused.to_string()),
        }
    }
}

impl Handler {
    /// The product has a stock item afterwards; an existing one (stocked early by an
    /// admin, or deleted already) is left as it is.
    fn product_created(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let ProductCreated(product) = event.data()?;
        transaction.write(self.store.register_product(&product.product_id)?);
        Ok(())
    }

    /// The product can never be reserved again, in any of its shards; what is reserved
    /// stays releasable and shippable. If an admin adds shards between the read and the
    /// commit, the commit fails and the harness runs this again on the new layout.
    async fn product_deleted(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let deleted: ProductDeleted = event.data()?;
        let stock = self.store.stock(&deleted.product_id).await?;
        for write in self
            .store
            .discontinue_product(&deleted.product_id, stock.as_ref())?
        {
            transaction.write(write);
        }
        Ok(())
    }

    /// Reserves every line or none, once per order.
    async fn order_submitted(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let submitted: OrderSubmitted = event.data()?;
        let order_id = submitted.order_id.as_str();
        let lines = requested_lines(&submitted.lines)
            .map_err(|error| ConsumeError::Malformed(format!("order {order_id}: {error}")))?;
        if let Some(decided) = self.store.reservation(order_id).await? {
            tracing::info!(order_id, status = ?decided.status, "order already decided; nothing to reserve");
            return Ok(());
        }
        let stocks = self
            .store
            .stocks(lines.iter().map(|line| line.product_id.as_str()))
            .await?;
        // A random start per attempt: concurrent orders for a sharded product spread over
        // its shards, and an attempt that lost a race tries elsewhere.
        let start = fastrand::u32(..);
        match Reservation::decide(order_id, lines, |id| stocks.get(id), start, Utc::now()) {
            Decision::Reserve(change) => {
                tracing::info!(order_id, "reserving every line");
                self.record_first(&change, transaction)?;
                transaction.count(change.event.counted());
                transaction.publish(&Envelope::new(change.event, event.correlation_id()))?;
            }
            Decision::Fail(change) => {
                tracing::info!(order_id, short = ?change.event.short_product_ids, "reserving nothing: products are short");
                self.record_first(&change, transaction)?;
                transaction.count(change.event.counted());
                transaction.publish(&Envelope::new(change.event, event.correlation_id()))?;
            }
        }
        Ok(())
    }

    /// Releases a held reservation once. A cancellation that overtook its submission is
    /// recorded, so the submission reserves nothing when it arrives.
    async fn order_cancelled(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let cancelled: OrderCancelled = event.data()?;
        let order_id = cancelled.order_id.as_str();
        let Some(reservation) = self.store.reservation(order_id).await? else {
            let record = Reservation::cancelled_before_reservation(order_id, Utc::now());
            transaction.write(self.store.create_reservation(&record)?);
            tracing::info!(
                order_id,
                "cancelled before its submission was seen; nothing will be reserved"
            );
            return Ok(());
        };
        match reservation.release(Utc::now()) {
            Ok(change) => {
                self.record_next(&change, reservation.version, transaction)?;
                transaction.publish(&Envelope::new(change.event, event.correlation_id()))?;
                tracing::info!(order_id, "releasing the reserved units");
            }
            Err(not_reserved) => {
                tracing::info!(order_id, status = ?not_reserved.status, "nothing held; nothing to release");
            }
        }
        Ok(())
    }

    /// Turns a held reservation into shipped units, once.
    async fn shipment_dispatched(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let dispatched: ShipmentDispatched = event.data()?;
        let order_id = dispatched.order_id.as_str();
        let Some(reservation) = self.store.reservation(order_id).await? else {
            tracing::warn!(
                order_id,
                "dispatch of an order inventory never reserved; stock unchanged"
            );
            return Ok(());
        };
        match reservation.ship(Utc::now()) {
            Ok(change) => {
                // What leaves is what was reserved; a shipment listing otherwise is a
                // contract breach worth seeing, but not a reason to break the invariant.
                if !reservation.holds_exactly(&dispatched.lines) {
                    tracing::warn!(order_id, reserved = ?reservation.lines, dispatched = ?dispatched.lines, "dispatched lines differ from the reservation; shipping the reservation");
                }
                self.record_next(&change, reservation.version, transaction)?;
                tracing::info!(order_id, "shipping the reserved units");
            }
            Err(not_reserved) if not_reserved.status == ReservationStatus::Shipped => {
                tracing::info!(order_id, "already shipped");
            }
            Err(not_reserved) => {
                tracing::warn!(order_id, status = ?not_reserved.status, "dispatch of an order whose stock is not held; stock unchanged");
            }
        }
        Ok(())
    }

    fn write_moves(
        &self,
        moves: &[StockMove],
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        for change in moves {
            transaction.write(self.store.move_stock(change)?);
        }
        Ok(())
    }

    fn record_first<E>(
        &self,
        change: &Change<E>,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        self.write_moves(&change.moves, transaction)?;
        transaction.write(self.store.create_reservation(&change.reservation)?);
        Ok(())
    }

    fn record_next<E>(
        &self,
        change: &Change<E>,
        read_version: u64,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        self.write_moves(&change.moves, transaction)?;
        transaction.write(
            self.store
                .update_reservation(&change.reservation, read_version)?,
        );
        Ok(())
    }
}
