//! The basket table. Every read is by key, so it has no index:
//!
//! | pk | sk | holds |
//! |---|---|---|
//! | `PRODUCT#<productId>` | `PROJECTION` | what catalog last announced of a product; a tombstone once deleted |
//! | `BASKET#<userId>` | `BASKET` | a user's basket; `expiresAt` restarts with every write (TTL); a line a checkout took carries `pendingOrderId` until its order exists |
//! | `CHECKOUT#<userId>#<idempotencyKey>` | `CHECKOUT` | a checkout, found again by a retried request |
//! | `ORDER#<orderId>` | `CHECKOUT` | the same checkout, found again by OrderSubmitted |
//! | `OUTBOX#<eventId>` | `EVENT` | CheckoutRequested on its way to the bus |
//! | `PROCESSED#basket#<eventId>` | `PROCESSED` | the consumer's marker of an event it applied |
//!
//! Writes are conditional: a basket on the version read (a checkout's too), a projection on
//! being newer than what is stored, a checkout on not existing yet.

use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use shop_events::basket::CheckoutRequested;
use shop_events::{Envelope, Money};
use shop_platform::store::{Condition, Read, Table, TableError, decode, key};
use shop_platform::transaction::{CommitError, Transaction};

use crate::domain::{Basket, Catalog, Checkout, IdempotencyKey, Listing, ProjectedProduct};

const PROJECTION_SORT_KEY: &str = "PROJECTION";
const BASKET_SORT_KEY: &str = "BASKET";
const CHECKOUT_SORT_KEY: &str = "CHECKOUT";

/// The table's errors, and the one refusal only a checkout has. Flat rather than wrapping
/// [`TableError`], so that callers match `StoreError::Conflict` whichever write raised it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the item changed since it was read")]
    Conflict,
    #[error("this idempotency key has already checked out")]
    AlreadyCheckedOut,
    #[error("dynamodb: {0}")]
    Dynamo(String),
    #[error("stored item does not read back: {0}")]
    Corrupt(String),
}

impl From<TableError> for StoreError {
    fn from(error: TableError) -> Self {
        match error {
            TableError::Conflict => StoreError::Conflict,
            TableError::Dynamo(cause) => StoreError::Dynamo(cause),
            TableError::Corrupt(cause) => StoreError::Corrupt(cause),
        }
    }
}

fn product_key(product_id: &str) -> String {
    format!("PRODUCT#{product_id}")
}

fn basket_key(user_id: &str) -> String {
    format!("BASKET#{user_id}")
}

fn checkout_key(user_id: &str, key: &IdempotencyKey) -> String {
    format!("CHECKOUT#{user_id}#{}", key.as_str())
}

fn order_key(order_id: &str) -> String {
    format!("ORDER#{order_id}")
}

/// A projected product as stored. A tombstone has no name or price: a deletion can
/// arrive before anything else about the product.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectionItem {
    pk: String,
    sk: String,
    product_id: String,
    version: u64,
    deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit_price: Option<Money>,
}

impl ProjectionItem {
    fn new(product: &ProjectedProduct) -> Self {
        let (deleted, name, unit_price) = match &product.listing {
            Listing::OnSale { name, unit_price } => {
                (false, Some(name.clone()), Some(unit_price.clone()))
            }
            Listing::Deleted => (true, None, None),
        };
        Self {
            pk: product_key(&product.product_id),
            sk: PROJECTION_SORT_KEY.to_owned(),
            product_id: product.product_id.clone(),
            version: product.version,
            deleted,
            name,
            unit_price,
        }
    }

    fn into_product(self) -> Result<ProjectedProduct, StoreError> {
        let listing = match (self.deleted, self.name, self.unit_price) {
            (true, _, _) => Listing::Deleted,
            (false, Some(name), Some(unit_price)) => Listing::OnSale { name, unit_price },
            (false, _, _) => {
                return Err(StoreError::Corrupt(format!(
                    "product {} is on sale without a name or price",
                    self.product_id
                )));
            }
        };
        Ok(ProjectedProduct {
            product_id: self.product_id,
            version: self.version,
            listing,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct BasketItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    basket: Basket,
}

/// A checkout as stored, under either of its two keys.
#[derive(Serialize, Deserialize)]
struct CheckoutItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    checkout: Checkout,
}

#[derive(Clone)]
pub struct BasketStore {
    table: Table,
}

impl BasketStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// One projected product, as last written (a strongly consistent read: the consumer
    /// decides from it whether an event is newer).
    pub async fn product(&self, product_id: &str) -> Result<Option<ProjectedProduct>, StoreError> {
        let stored: Option<ProjectionItem> = self
            .table
            .get(
                key(product_key(product_id), PROJECTION_SORT_KEY),
                Read::Latest,
            )
            .await?;
        stored.map(ProjectionItem::into_product).transpose()
    }

    /// The projected products among `product_ids` (unknown ones are simply absent).
    /// [`Read::Latest`] for a read a basket write or a checkout follows: an eventually
    /// consistent read may miss a product projected a moment ago, and what it misses
    /// must not be decided on. [`Read::Eventual`] only to show a basket.
    pub async fn catalog<'a>(
        &self,
        product_ids: impl IntoIterator<Item = &'a str>,
        read: Read,
    ) -> Result<Catalog, StoreError> {
        let keys = product_ids
            .into_iter()
            .map(|id| key(product_key(id), PROJECTION_SORT_KEY))
            .collect();
        self.table
            .batch_get(keys, read)
            .await?
            .into_iter()
            .map(|item| decode::<ProjectionItem>(item)?.into_product())
            .collect()
    }

    /// The user's stored basket, if they have one (strongly consistent: a write
    /// conditional on its version follows).
    pub async fn basket(&self, user_id: &str) -> Result<Option<Basket>, StoreError> {
        let stored: Option<BasketItem> = self
            .table
            .get(key(basket_key(user_id), BASKET_SORT_KEY), Read::Latest)
            .await?;
        Ok(stored.map(|stored| stored.basket))
    }

    /// Stores a changed basket if it is still at `read_version`; else [`StoreError::Conflict`].
    pub async fn save_basket(&self, basket: &Basket, read_version: u64) -> Result<(), StoreError> {
        Ok(self
            .table
            .put_now(
                &basket_item(basket),
                Condition::unchanged_since(read_version),
            )
            .await?)
    }

    /// Adds to `transaction` the write of a changed basket, conditional on `read_version`.
    pub fn stage_basket(
        &self,
        transaction: &mut Transaction,
        basket: &Basket,
        read_version: u64,
    ) -> Result<(), StoreError> {
        let condition = Condition::unchanged_since(read_version);
        transaction.write(self.table.put(&basket_item(basket), condition)?);
        Ok(())
    }

    /// Adds to `transaction` the write of a projected product. The condition repeats the
    /// caller's "is it newer" decision, so a concurrent newer write makes this
    /// transaction fail (and the harness retry, decide again and skip) instead of
    /// overwriting it.
    pub fn stage_projection(
        &self,
        transaction: &mut Transaction,
        product: &ProjectedProduct,
    ) -> Result<(), StoreError> {
        let condition = Condition::AbsentOrOlderThan(product.version);
        transaction.write(self.table.put(&ProjectionItem::new(product), condition)?);
        Ok(())
    }

    /// The checkout a user made with an idempotency key.
    pub async fn checkout_by_key(
        &self,
        user_id: &str,
        key: &IdempotencyKey,
    ) -> Result<Option<Checkout>, StoreError> {
        self.checkout(checkout_key(user_id, key)).await
    }

    /// The checkout that became order `order_id`.
    pub async fn checkout_by_order(&self, order_id: &str) -> Result<Option<Checkout>, StoreError> {
        self.checkout(order_key(order_id)).await
    }

    /// Records a checkout under its idempotency key and its order id, with its
    /// CheckoutRequested and the basket that marks the lines it took, all or nothing.
    /// [`StoreError::AlreadyCheckedOut`] when the key was used first by another request:
    /// nothing is written, and that checkout stands. [`StoreError::Conflict`] when the
    /// basket is no longer at `read_version`: nothing is written, and the checkout is to
    /// be made again from what the basket holds now.
    pub async fn record_checkout(
        &self,
        checkout: &Checkout,
        key: &IdempotencyKey,
        event: &Envelope<CheckoutRequested>,
        basket: &Basket,
        read_version: u64,
    ) -> Result<(), StoreError> {
        let under = |pk| CheckoutItem {
            pk,
            sk: CHECKOUT_SORT_KEY.to_owned(),
            checkout: checkout.clone(),
        };
        let mut transaction = self.table.transaction();
        let by_key = transaction.write(self.table.put(
            &under(checkout_key(&checkout.user_id, key)),
            Condition::Absent,
        )?);
        transaction.write(
            self.table
                .put(&under(order_key(&checkout.order_id)), Condition::Absent)?,
        );
        self.stage_basket(&mut transaction, basket, read_version)?;
        transaction.publish(event).map_err(TableError::from)?;
        match transaction.commit(self.table.client()).await {
            Err(CommitError::ConditionFailed { failed }) if failed.contains(&by_key) => {
                Err(StoreError::AlreadyCheckedOut)
            }
            other => Ok(other.map_err(TableError::from)?),
        }
    }

    async fn checkout(&self, pk: String) -> Result<Option<Checkout>, StoreError> {
        let stored: Option<CheckoutItem> = self
            .table
            .get(key(pk, CHECKOUT_SORT_KEY), Read::Latest)
            .await?;
        Ok(stored.map(|stored| stored.checkout))
    }
}

fn basket_item(basket: &Basket) -> BasketItem {
    BasketItem {
        pk: basket_key(&basket.user_id),
        sk: BASKET_SORT_KEY.to_owned(),
        basket: basket.clone(),
    }
}
