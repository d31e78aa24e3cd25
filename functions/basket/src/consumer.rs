//! The basket's event consumer. The harness (shop_platform::consumer) deduplicates on the
//! event id and commits what a handler adds to the transaction together with its marker;
//! on top of that every handler decides from the state it reads, not from the order
//! events arrive in, so a late or repeated event changes nothing:
//!
//! - ProductCreated / ProductUpdated / ProductDeleted replace the projected product only
//!   when their version is newer than the stored one.
//! - OrderSubmitted removes from the user's basket the lines its checkout took, and only
//!   those: lines set since stay, and once removed there is nothing left to remove.

use chrono::Utc;
use shop_events::DomainEvent;
use shop_events::catalog::{ProductCreated, ProductDeleted, ProductUpdated};
use shop_events::ordering::OrderSubmitted;
use shop_platform::consumer::{ConsumeError, EventHandler, IncomingEvent};
use shop_platform::transaction::Transaction;

use crate::domain::{ProjectedProduct, is_ulid};
use crate::store::{BasketStore, StoreError};

pub struct Handler {
    pub store: BasketStore,
}

impl EventHandler for Handler {
    async fn handle(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        match event.detail_type.as_str() {
            ProductCreated::DETAIL_TYPE => {
                let ProductCreated(snapshot) = data(event)?;
                let product = ProjectedProduct::on_sale(snapshot).map_err(malformed)?;
                self.project(product, transaction).await
            }
            ProductUpdated::DETAIL_TYPE => {
                let ProductUpdated(snapshot) = data(event)?;
                let product = ProjectedProduct::on_sale(snapshot).map_err(malformed)?;
                self.project(product, transaction).await
            }
            ProductDeleted::DETAIL_TYPE => {
                let deleted: ProductDeleted = data(event)?;
                self.project(ProjectedProduct::deleted(&deleted), transaction)
                    .await
            }
            OrderSubmitted::DETAIL_TYPE => self.order_submitted(data(event)?, transaction).await,
            other => Err(ConsumeError::Malformed(format!(
                "basket does not consume {other}"
            ))),
        }
    }
}

impl Handler {
    async fn project(
        &self,
        product: ProjectedProduct,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        if !is_ulid(&product.product_id) {
            return Err(ConsumeError::Malformed(format!(
                "{:?} is not a product id",
                product.product_id
            )));
        }
        // Decided by reading, not by letting the write's condition fail: a failed
        // condition would cancel the transaction and with it the processed marker.
        let current = self
            .store
            .product(&product.product_id)
            .await
            .map_err(failed)?;
        if !product.supersedes(current.as_ref()) {
            tracing::info!(
                product_id = %product.product_id,
                version = product.version,
                projected_version = current.map(|c| c.version),
                "not newer than the projection; nothing to change"
            );
            return Ok(());
        }
        self.store
            .stage_projection(transaction, &product)
            .map_err(failed)?;
        tracing::info!(product_id = %product.product_id, version = product.version, "projection updated");
        Ok(())
    }

    async fn order_submitted(
        &self,
        order: OrderSubmitted,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        // Orders of other origins have no checkout here; an id that is not ours cannot
        // name one either.
        if !is_ulid(&order.order_id) {
            return Ok(());
        }
        let Some(checkout) = self
            .store
            .checkout_by_order(&order.order_id)
            .await
            .map_err(failed)?
        else {
            tracing::info!(order_id = %order.order_id, "no checkout made this order; nothing to remove");
            return Ok(());
        };
        if checkout.user_id != order.user_id {
            return Err(ConsumeError::Malformed(format!(
                "order {} belongs to another user than its checkout",
                order.order_id
            )));
        }
        let Some(basket) = self.store.basket(&checkout.user_id).await.map_err(failed)? else {
            return Ok(());
        };
        let now = Utc::now();
        let basket = basket.as_of(now);
        match basket.remove_checked_out(&checkout, now) {
            Some(changed) => {
                self.store
                    .stage_basket(transaction, &changed, basket.version)
                    .map_err(failed)?;
                tracing::info!(
                    order_id = %order.order_id,
                    removed = basket.lines.len() - changed.lines.len(),
                    "checked-out lines removed from the basket"
                );
            }
            None => {
                tracing::info!(order_id = %order.order_id, "no checked-out line left in the basket")
            }
        }
        Ok(())
    }
}

/// The event's data, if it comes from the capability that owns its type.
fn data<T: DomainEvent>(event: &IncomingEvent) -> Result<T, ConsumeError> {
    if event.source != T::SOURCE {
        return Err(ConsumeError::Malformed(format!(
            "{} must come from {}, not {}",
            T::DETAIL_TYPE,
            T::SOURCE,
            event.source
        )));
    }
    event.data()
}

fn malformed(error: impl std::fmt::Display) -> ConsumeError {
    ConsumeError::Malformed(error.to_string())
}

fn failed(error: StoreError) -> ConsumeError {
    match error {
        StoreError::Conflict => ConsumeError::Conflict,
        other => ConsumeError::Transient(other.to_string()),
    }
}
