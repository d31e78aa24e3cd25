//! The basket table. Every read is by key, so it has no index:
//!
//! | pk | sk | holds |
//! |---|---|---|
//! | `PRODUCT#<productId>` | `PROJECTION` | what catalog last announced of a product; a tombstone once deleted |
//! | `BASKET#<userId>` | `BASKET` | a user's basket; `expiresAt` restarts with every write (TTL) |
//! | `CHECKOUT#<userId>#<idempotencyKey>` | `CHECKOUT` | a checkout, found again by a retried request |
//! | `ORDER#<orderId>` | `CHECKOUT` | the same checkout, found again by OrderSubmitted |
//! | `OUTBOX#<eventId>` | `EVENT` | CheckoutRequested on its way to the bus |
//! | `PROCESSED#basket#<eventId>` | `PROCESSED` | the consumer's marker of an event it applied |
//!
//! Writes are conditional: a basket on the version read, a projection on being newer than
//! what is stored, a checkout on not existing yet.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shop_events::basket::CheckoutRequested;
use shop_events::{Envelope, Money};
use shop_platform::transaction::{CommitError, Transaction};

use crate::domain::{Basket, Catalog, Checkout, IdempotencyKey, Listing, ProjectedProduct};

type Item = HashMap<String, AttributeValue>;

const PROJECTION_SORT_KEY: &str = "PROJECTION";
const BASKET_SORT_KEY: &str = "BASKET";
const CHECKOUT_SORT_KEY: &str = "CHECKOUT";
/// BatchGetItem may leave keys unprocessed under throttling; they are asked for again
/// this many times, with a growing pause, before the read fails.
const BATCH_GET_ATTEMPTS: u32 = 5;

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

impl From<CommitError> for StoreError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::ConditionFailed { .. } | CommitError::TransactionConflict => {
                StoreError::Conflict
            }
            other => StoreError::Dynamo(other.to_string()),
        }
    }
}

fn dynamo_error<E: std::error::Error + 'static>(error: E) -> StoreError {
    StoreError::Dynamo(DisplayErrorContext(error).to_string())
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

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
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
    client: Client,
    table: String,
}

impl BasketStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// One projected product, as last written (a strongly consistent read: the consumer
    /// decides from it whether an event is newer).
    pub async fn product(&self, product_id: &str) -> Result<Option<ProjectedProduct>, StoreError> {
        let item = self
            .get(key(product_key(product_id), PROJECTION_SORT_KEY))
            .await?;
        item.map(|item| decode::<ProjectionItem>(item)?.into_product())
            .transpose()
    }

    /// The projected products among `product_ids` (unknown ones are simply absent).
    /// Eventually consistent: the projection itself trails the catalog anyway.
    pub async fn catalog<'a>(
        &self,
        product_ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Catalog, StoreError> {
        // BatchGetItem rejects a request that names one key twice.
        let unique: BTreeSet<&str> = product_ids.into_iter().collect();
        if unique.is_empty() {
            return Ok(Catalog::default());
        }
        let keys: Vec<Item> = unique
            .into_iter()
            .map(|id| key(product_key(id), PROJECTION_SORT_KEY))
            .collect();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .build()
                .map_err(dynamo_error)?,
        );
        let mut products = Vec::new();
        for attempt in 0..BATCH_GET_ATTEMPTS {
            let Some(request) = pending.take() else {
                break;
            };
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(dynamo_error)?;
            for item in output
                .responses
                .and_then(|mut tables| tables.remove(&self.table))
                .unwrap_or_default()
            {
                products.push(decode::<ProjectionItem>(item)?.into_product()?);
            }
            pending = output
                .unprocessed_keys
                .and_then(|mut tables| tables.remove(&self.table))
                .filter(|rest| !rest.keys.is_empty());
        }
        match pending {
            None => Ok(products.into_iter().collect()),
            Some(rest) => Err(StoreError::Dynamo(format!(
                "{} product(s) still unread after {BATCH_GET_ATTEMPTS} attempts",
                rest.keys.len()
            ))),
        }
    }

    /// The user's stored basket, if they have one (strongly consistent: a write
    /// conditional on its version follows).
    pub async fn basket(&self, user_id: &str) -> Result<Option<Basket>, StoreError> {
        let item = self.get(key(basket_key(user_id), BASKET_SORT_KEY)).await?;
        item.map(|item| decode::<BasketItem>(item).map(|stored| stored.basket))
            .transpose()
    }

    /// Stores a changed basket if it is still at `read_version`; else [`StoreError::Conflict`].
    pub async fn save_basket(&self, basket: &Basket, read_version: u64) -> Result<(), StoreError> {
        let (condition, values) = version_condition(read_version);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(&basket_item(basket))?))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(error) => Err(dynamo_error(error)),
        }
    }

    /// Adds to `transaction` the write of a changed basket, conditional on `read_version`.
    pub fn stage_basket(
        &self,
        transaction: &mut Transaction,
        basket: &Basket,
        read_version: u64,
    ) -> Result<(), StoreError> {
        let (condition, values) = version_condition(read_version);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(encode(&basket_item(basket))?))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .build()
            .map_err(dynamo_error)?;
        transaction.write(TransactWriteItem::builder().put(put).build());
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
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(encode(&ProjectionItem::new(product))?))
            .condition_expression("attribute_not_exists(pk) OR version < :version")
            .expression_attribute_values(":version", AttributeValue::N(product.version.to_string()))
            .build()
            .map_err(dynamo_error)?;
        transaction.write(TransactWriteItem::builder().put(put).build());
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
    /// CheckoutRequested, all or nothing. [`StoreError::AlreadyCheckedOut`] when the key
    /// was used first by another request: nothing is written, and that checkout stands.
    pub async fn record_checkout(
        &self,
        checkout: &Checkout,
        key: &IdempotencyKey,
        event: &Envelope<CheckoutRequested>,
    ) -> Result<(), StoreError> {
        let mut transaction = Transaction::new(&self.table);
        let by_key = transaction.write(self.put_new(&CheckoutItem {
            pk: checkout_key(&checkout.user_id, key),
            sk: CHECKOUT_SORT_KEY.to_owned(),
            checkout: checkout.clone(),
        })?);
        transaction.write(self.put_new(&CheckoutItem {
            pk: order_key(&checkout.order_id),
            sk: CHECKOUT_SORT_KEY.to_owned(),
            checkout: checkout.clone(),
        })?);
        transaction.publish(event)?;
        match transaction.commit(&self.client).await {
            Err(CommitError::ConditionFailed { failed }) if failed.contains(&by_key) => {
                Err(StoreError::AlreadyCheckedOut)
            }
            other => Ok(other?),
        }
    }

    /// Whether the table answers; for the health route.
    pub async fn is_reachable(&self) -> bool {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .is_ok()
    }

    async fn checkout(&self, pk: String) -> Result<Option<Checkout>, StoreError> {
        let item = self.get(key(pk, CHECKOUT_SORT_KEY)).await?;
        item.map(|item| decode::<CheckoutItem>(item).map(|stored| stored.checkout))
            .transpose()
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        Ok(output.item)
    }

    fn put_new<T: Serialize>(&self, item: &T) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(encode(item)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(dynamo_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

fn basket_item(basket: &Basket) -> BasketItem {
    BasketItem {
        pk: basket_key(&basket.user_id),
        sk: BASKET_SORT_KEY.to_owned(),
        basket: basket.clone(),
    }
}

/// The condition of a basket write: the basket is still as read (version 0 means there
/// was none).
fn version_condition(read_version: u64) -> (&'static str, Option<Item>) {
    if read_version == 0 {
        ("attribute_not_exists(pk)", None)
    } else {
        (
            "version = :read",
            Some(HashMap::from([(
                ":read".to_owned(),
                AttributeValue::N(read_version.to_string()),
            )])),
        )
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}
