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

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use shop_platform::store::{Condition, Item, Read, Table, TableError, decode, dynamo_error, key};

use crate::domain::{Reservation, Stock, StockMove};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A deleted product is never restocked: its stock can only run down.
    #[error("the product was deleted from the catalog")]
    Discontinued,
    #[error(transparent)]
    Table(#[from] TableError),
}

const STOCK_SORT_KEY: &str = "STOCK";
const RESERVATION_SORT_KEY: &str = "RESERVATION";

fn stock_partition(product_id: &str) -> String {
    format!("STOCK#{product_id}")
}

fn reservation_partition(order_id: &str) -> String {
    format!("RESERVATION#{order_id}")
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

// A stock item is only ever written by the update expressions below, never from a
// `Stock`, so it reads back straight into a `Stock`, its keys ignored.
//
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
    table: Table,
}

impl InventoryStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// A product's stock, as of now (strongly consistent).
    pub async fn stock(&self, product_id: &str) -> Result<Option<Stock>, StoreError> {
        Ok(self.table.get(stock_key(product_id), Read::Latest).await?)
    }

    /// The stock of several products, as of now (strongly consistent), by product id;
    /// products never stocked are absent.
    pub async fn stocks<'a>(
        &self,
        product_ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, Stock>, StoreError> {
        let keys = product_ids.into_iter().map(stock_key).collect();
        let mut found = HashMap::new();
        for item in self.table.batch_get(keys, Read::Latest).await? {
            let stock: Stock = decode(item)?;
            found.insert(stock.product_id.clone(), stock);
        }
        Ok(found)
    }

    /// Sets how many units are free to sell, creating the product's stock if needed, and
    /// answers the stock as written. [`StoreError::Discontinued`] for a deleted product.
    pub async fn set_available(
        &self,
        product_id: &str,
        available: u64,
    ) -> Result<Stock, StoreError> {
        let result = self
            .table
            .client()
            .update_item()
            .table_name(self.table.name())
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
            Ok(output) => Ok(decode(output.attributes.unwrap_or_default())?),
            Err(SdkError::ServiceError(service))
                if matches!(
                    service.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Err(StoreError::Discontinued)
            }
            Err(other) => Err(dynamo_error(other).into()),
        }
    }

    /// An order's reservation, as of now (strongly consistent).
    pub async fn reservation(&self, order_id: &str) -> Result<Option<Reservation>, StoreError> {
        let stored: Option<ReservationItem> = self
            .table
            .get(reservation_key(order_id), Read::Latest)
            .await?;
        Ok(stored.map(|stored| stored.reservation))
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
            .table_name(self.table.name())
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
            .table_name(self.table.name())
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
        self.put_reservation(reservation, Condition::Absent)
    }

    /// The write that records a reservation's transition; it fails if the reservation
    /// changed since `read_version` was read.
    pub fn update_reservation(
        &self,
        reservation: &Reservation,
        read_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        self.put_reservation(reservation, Condition::AtVersion(read_version))
    }

    fn put_reservation(
        &self,
        reservation: &Reservation,
        condition: Condition,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = ReservationItem {
            pk: reservation_partition(&reservation.order_id),
            sk: RESERVATION_SORT_KEY.to_owned(),
            reservation: reservation.clone(),
        };
        Ok(self.table.put(&item, condition)?)
    }
}
