//! The basket's event consumer. The harness (shop_platform::consumer) deduplicates on the
//! event id and commits what a handler adds to the transaction together with its marker;
//! on top of that every handler decides from the state it reads, not from the order
//! events arrive in, so a late or repeated event changes nothing:
//!
//! - ProductCreated / ProductUpdated / ProductDeleted replace the projected product only
//!   when their version is newer than the stored one.
//! - OrderSubmitted removes from the user's basket the lines its checkout took (marked as
//!   pending for its order), and only those: lines set since, and lines another checkout
//!   took, stay; and once removed there is nothing left to remove.

use chrono::Utc;
use shop_events::catalog::{ProductCreated, ProductDeleted, ProductUpdated};
use shop_events::ordering::OrderSubmitted;
use shop_events::{DomainEvent, is_ulid};
use shop_platform::consumer::{ConsumeError, EventHandler, IncomingEvent};
use shop_platform::transaction::Transaction;

use crate::domain::ProjectedProduct;
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
                let ProductCreated(snapshot) = event.data()?;
                let product = ProjectedProduct::on_sale(snapshot).map_err(malformed)?;
                self.project(product, transaction).await
            }
            ProductUpdated::DETAIL_TYPE => {
                let ProductUpdated(snapshot) = event.data()?;
                let product = ProjectedProduct::on_sale(snapshot).map_err(malformed)?;
                self.project(product, transaction).await
            }
            ProductDeleted::DETAIL_TYPE => {
                let deleted: ProductDeleted = event.data()?;
                self.project(ProjectedProduct::deleted(&deleted), transaction)
                    .await
            }
            OrderSubmitted::DETAIL_TYPE => self.order_submitted(event.data()?, transaction).await,
            _ => Err(event.not_consumed_by("basket")),
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
        let current = self.store.product(&product.product_id).await?;
        if !product.supersedes(current.as_ref()) {
            tracing::info!(
                product_id = %product.product_id,
                version = product.version,
                projected_version = current.map(|c| c.version),
                "not newer than the projection; nothing to change"
            );
            return Ok(());
        }
        self.store.stage_projection(transaction, &product)?;
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
        let Some(checkout) = self.store.checkout_by_order(&order.order_id).await? else {
            tracing::info!(order_id = %order.order_id, "no checkout made this order; nothing to remove");
            return Ok(());
        };
        if checkout.user_id != order.user_id {
            return Err(ConsumeError::Malformed(format!(
                "order {} belongs to another user than its checkout",
                order.order_id
            )));
        }
        let Some(basket) = self.store.basket(&checkout.user_id).await? else {
            return Ok(());
        };
        let now = Utc::now();
        let basket = basket.as_of(now);
        match basket.remove_checked_out(&checkout, now) {
            Some(changed) => {
                self.store
                    .stage_basket(transaction, &changed, basket.version)?;
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

fn malformed(error: impl std::fmt::Display) -> ConsumeError {
    ConsumeError::Malformed(error.to_string())
}

/// As the harness treats the table's own errors: a conflict is retried at once, anything
/// else by the queue later.
impl From<StoreError> for ConsumeError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => ConsumeError::Conflict,
            other => ConsumeError::Transient(other.to_string()),
        }
    }
}
