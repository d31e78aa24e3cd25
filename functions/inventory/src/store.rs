//! The inventory table. Two kinds of items besides the outbox and the consumer's
//! processed-event markers:
//!
//! - `STOCK#<productId>` / `STOCK`: a product's counters (`available`, `reserved`,
//!   `shipped`), `deleted` and `version`.
//! - `RESERVATION#<orderId>` / `RESERVATION`: what inventory decided for an order.
//!
//! Every read is by key; the table has no index. Counters are never written from a value
//! read earlier: each change is an update expression whose condition is the guard
//! (`available >= :quantity`), so concurrent orders can never take the same unit, and a
//! failed guard cancels the whole transaction it is part of. Reservations are written
//! conditionally on the version read, or on not existing yet.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnValue, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};

use crate::domain::{Reservation, Stock, StockMove};

type Item = HashMap<String, AttributeValue>;

/// BatchGetItem's limit on keys per request.
const MAX_KEYS_PER_BATCH: usize = 100;
/// How often keys DynamoDB left unprocessed (throttling) are asked for again.
const UNPROCESSED_RETRIES: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the product was deleted from the catalog")]
    Discontinued,
    #[error("dynamodb: {0}")]
    Dynamo(String),
    #[error("stored item is not what inventory wrote: {0}")]
    Corrupt(String),
}

fn dynamo_error<E: std::error::Error + 'static>(error: E) -> StoreError {
    StoreError::Dynamo(DisplayErrorContext(error).to_string())
}

fn corrupt(error: serde_dynamo::Error) -> StoreError {
    StoreError::Corrupt(error.to_string())
}

const STOCK_SORT_KEY: &str = "STOCK";
const RESERVATION_SORT_KEY: &str = "RESERVATION";

fn stock_partition(product_id: &str) -> String {
    format!("STOCK#{product_id}")
}

fn reservation_partition(order_id: &str) -> String {
    format!("RESERVATION#{order_id}")
}

fn key(partition: String, sort: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(partition)),
        ("sk".to_owned(), AttributeValue::S(sort.to_owned())),
    ])
}

fn stock_key(product_id: &str) -> Item {
    key(stock_partition(product_id), STOCK_SORT_KEY)
}

fn reservation_key(order_id: &str) -> Item {
    key(reservation_partition(order_id), RESERVATION_SORT_KEY)
}

#[derive(Serialize, Deserialize)]
struct ReservationItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    reservation: Reservation,
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

// The three ways a stock item comes to exist, each one update expression so that it is
// atomic against the reservations updating the same item. `if_not_exists` gives a new item
// its initial values and leaves an existing item's alone.

/// ProductCreated: the item exists afterwards; an existing one is left exactly as it is.
const REGISTER: &str = "SET productId = if_not_exists(productId, :productId), \
    available = if_not_exists(available, :zero), \
    reserved = if_not_exists(reserved, :zero), \
    shipped = if_not_exists(shipped, :zero), \
    deleted = if_not_exists(deleted, :false), \
    version = if_not_exists(version, :one)";

/// ProductDeleted: marked deleted, a tombstone if it never existed. Counters untouched:
/// reserved units stay releasable and shippable.
const DISCONTINUE: &str = "SET deleted = :true, \
    productId = if_not_exists(productId, :productId), \
    available = if_not_exists(available, :zero), \
    reserved = if_not_exists(reserved, :zero), \
    shipped = if_not_exists(shipped, :zero), \
    version = if_not_exists(version, :zero) + :one";

/// An admin's PUT: `available` replaced, everything else kept (or started at zero).
const RESTOCK: &str = "SET available = :available, \
    productId = if_not_exists(productId, :productId), \
    reserved = if_not_exists(reserved, :zero), \
    shipped = if_not_exists(shipped, :zero), \
    deleted = if_not_exists(deleted, :false), \
    version = if_not_exists(version, :zero) + :one";

/// A deleted product is never restocked; an item that does not exist yet may be created.
const RESTOCKABLE: &str = "attribute_not_exists(pk) OR deleted = :false";

#[derive(Clone)]
pub struct InventoryStore {
    client: Client,
    table: String,
}

impl InventoryStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A product's stock, as of now (strongly consistent).
    pub async fn stock(&self, product_id: &str) -> Result<Option<Stock>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(stock_key(product_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        output.item.map(stock_from_item).transpose()
    }

    /// The stock of several products, as of now (strongly consistent), by product id;
    /// products never stocked are absent.
    pub async fn stocks<'a>(
        &self,
        product_ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, Stock>, StoreError> {
        let keys: Vec<Item> = product_ids.into_iter().map(stock_key).collect();
        let mut found = HashMap::new();
        for chunk in keys.chunks(MAX_KEYS_PER_BATCH) {
            for item in self.batch_get(chunk.to_vec()).await? {
                let stock = stock_from_item(item)?;
                found.insert(stock.product_id.clone(), stock);
            }
        }
        Ok(found)
    }

    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut pending = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(dynamo_error)?;
        let mut items = Vec::new();
        for attempt in 0..=UNPROCESSED_RETRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            let mut output = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(dynamo_error)?;
            if let Some(mut responses) = output.responses.take() {
                items.extend(responses.remove(&self.table).unwrap_or_default());
            }
            match output
                .unprocessed_keys
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
            {
                Some(rest) if !rest.keys().is_empty() => pending = rest,
                _ => return Ok(items),
            }
        }
        Err(StoreError::Dynamo(format!(
            "keys still unprocessed after {UNPROCESSED_RETRIES} retries"
        )))
    }

    /// Sets how many units are free to sell, creating the product's stock if needed, and
    /// answers the stock as written. [`StoreError::Discontinued`] for a deleted product.
    pub async fn set_available(
        &self,
        product_id: &str,
        available: u64,
    ) -> Result<Stock, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(stock_key(product_id)))
            .update_expression(RESTOCK)
            .condition_expression(RESTOCKABLE)
            .expression_attribute_values(":available", number(available))
            .expression_attribute_values(":productId", AttributeValue::S(product_id.to_owned()))
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => stock_from_item(output.attributes.unwrap_or_default()),
            Err(SdkError::ServiceError(service))
                if matches!(
                    service.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Err(StoreError::Discontinued)
            }
            Err(other) => Err(dynamo_error(other)),
        }
    }

    /// An order's reservation, as of now (strongly consistent).
    pub async fn reservation(&self, order_id: &str) -> Result<Option<Reservation>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(reservation_key(order_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        output
            .item
            .map(|item| {
                serde_dynamo::from_item::<_, ReservationItem>(item)
                    .map(|stored| stored.reservation)
                    .map_err(corrupt)
            })
            .transpose()
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

    /// The write that makes sure a product created in the catalog has a stock item.
    pub fn register_product(&self, product_id: &str) -> Result<TransactWriteItem, StoreError> {
        self.upsert(product_id, REGISTER)
    }

    /// The write that marks a product deleted from the catalog.
    pub fn discontinue_product(&self, product_id: &str) -> Result<TransactWriteItem, StoreError> {
        self.upsert(product_id, DISCONTINUE)
    }

    fn upsert(&self, product_id: &str, expression: &str) -> Result<TransactWriteItem, StoreError> {
        let mut values = HashMap::from([
            (
                ":productId".to_owned(),
                AttributeValue::S(product_id.to_owned()),
            ),
            (":zero".to_owned(), number(0)),
            (":one".to_owned(), number(1)),
            (":false".to_owned(), AttributeValue::Bool(false)),
            (":true".to_owned(), AttributeValue::Bool(true)),
        ]);
        // DynamoDB rejects values an expression does not use.
        values.retain(|name, _| expression.contains(name.as_str()));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(stock_key(product_id)))
            .update_expression(expression)
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(dynamo_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The write that moves a reservation's units of one product, guarded by the same
    /// rule as [`Stock::apply`]: the source counter holds enough, and for a reservation
    /// the product is not deleted. A missing item fails the guard too.
    pub fn move_stock(&self, change: &StockMove) -> Result<TransactWriteItem, StoreError> {
        let movement = change.movement;
        let mut condition = "#source >= :quantity".to_owned();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(stock_key(&change.product_id)))
            .update_expression(
                "SET #source = #source - :quantity, #target = #target + :quantity, version = version + :one",
            )
            .expression_attribute_names("#source", movement.source().field())
            .expression_attribute_names("#target", movement.target().field())
            .expression_attribute_values(":quantity", number(change.quantity))
            .expression_attribute_values(":one", number(1));
        if movement.requires_listed_product() {
            condition.push_str(" AND deleted = :false");
            update = update.expression_attribute_values(":false", AttributeValue::Bool(false));
        }
        let update = update
            .condition_expression(condition)
            .build()
            .map_err(dynamo_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The write that records an order's first reservation; it fails if the order was
    /// decided meanwhile.
    pub fn create_reservation(
        &self,
        reservation: &Reservation,
    ) -> Result<TransactWriteItem, StoreError> {
        self.put_reservation(reservation, "attribute_not_exists(pk)", None)
    }

    /// The write that records a reservation's transition; it fails if the reservation
    /// changed since `read_version` was read.
    pub fn update_reservation(
        &self,
        reservation: &Reservation,
        read_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        self.put_reservation(reservation, "version = :read", Some(read_version))
    }

    fn put_reservation(
        &self,
        reservation: &Reservation,
        condition: &str,
        read_version: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = serde_dynamo::to_item(ReservationItem {
            pk: reservation_partition(&reservation.order_id),
            sk: RESERVATION_SORT_KEY.to_owned(),
            reservation: reservation.clone(),
        })
        .map_err(corrupt)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(
                read_version.map(|version| HashMap::from([(":read".to_owned(), number(version))])),
            )
            .build()
            .map_err(dynamo_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// Stock items are only ever written by update expressions, never from a [`Stock`]; the
/// keys are ignored when one is read back.
fn stock_from_item(item: Item) -> Result<Stock, StoreError> {
    serde_dynamo::from_item(item).map_err(corrupt)
}
