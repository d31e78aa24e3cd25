//! The inventory table. Two kinds of items besides the outbox and the consumer's
//! processed-event markers:
//!
//! - A product's stock shards: shard 0 at `STOCK#<productId>` / `STOCK`, shard *k* at
//!   `STOCK#<productId>#<k>` / `STOCK` (a partition each, so a best-seller's orders spread
//!   over as many partitions). Each holds its counters (`available`, `reserved`,
//!   `shipped`), `deleted` and `version`; shard 0 also holds the layout: `shardCount`, how many
//!   shard items exist, and `activeShards`, how many a restock fills; shard *k* its
//!   `shardNumber`. A product never
//!   sharded has shard 0 alone and no layout attributes, exactly as before sharding.
//! - `RESERVATION#<orderId>` / `RESERVATION`: what inventory decided for an order, with
//!   the shards its units came from.
//!
//! Every read is by key; the table has no index. Counters are never written from a value
//! read earlier: each move is an update expression whose condition is the guard
//! (`available >= :quantity`), so concurrent orders can never take the same unit, and a
//! failed guard cancels the whole transaction it is part of. Reservations are written
//! conditionally on the version read, or on not existing yet. A write that spans every
//! shard (a restock, a deletion) is one transaction conditioned on shard 0's layout as
//! read, so it can never miss a shard another writer added meanwhile.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use shop_platform::store::{Condition, Item, Read, Table, TableError, decode, dynamo_error, key};
use shop_platform::transaction::{CommitError, Transaction};

use crate::domain::{Reservation, Shard, Stock, StockMove};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A deleted product is never restocked: its stock can only run down.
    #[error("the product was deleted from the catalog")]
    Discontinued,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// How often a restock reads the layout and tries again when a concurrent writer changed
/// it, or a concurrent order's transaction held a shard, before it gives up.
const RESTOCK_ATTEMPTS: u32 = 5;

const STOCK_SORT_KEY: &str = "STOCK";
const RESERVATION_SORT_KEY: &str = "RESERVATION";

fn stock_partition(product_id: &str, shard: u32) -> String {
    match shard {
        0 => format!("STOCK#{product_id}"),
        shard => format!("STOCK#{product_id}#{shard}"),
    }
}

fn reservation_partition(order_id: &str) -> String {
    format!("RESERVATION#{order_id}")
}

fn stock_key(product_id: &str, shard: u32) -> Item {
    key(stock_partition(product_id, shard), STOCK_SORT_KEY)
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

/// A stock shard as stored. Only the update expressions below write these, never this
/// type; it exists to read them back.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShardItem {
    product_id: String,
    #[serde(default, rename = "shardNumber")]
    shard: u32,
    available: u64,
    reserved: u64,
    shipped: u64,
    deleted: bool,
    version: u64,
    /// On shard 0 of a sharded product only.
    shard_count: Option<u32>,
    active_shards: Option<u32>,
}

impl ShardItem {
    fn counters(&self) -> Shard {
        Shard {
            available: self.available,
            reserved: self.reserved,
            shipped: self.shipped,
            version: self.version,
        }
    }

    /// The stock as far as shard 0 tells it: its own counters, room for the others.
    fn head_of_stock(&self) -> Stock {
        let shards = self.shard_count.unwrap_or(1).max(1);
        let mut all = vec![Shard::default(); shards as usize];
        all[0] = self.counters();
        Stock {
            product_id: self.product_id.clone(),
            shards: all,
            active_shards: self.active_shards.unwrap_or(1).clamp(1, shards),
            deleted: self.deleted,
        }
    }
}

fn number_value(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

// The ways a stock shard comes to exist or changes outside orders, each one update
// expression so that it is atomic against the reservations updating the same item.
// `if_not_exists` gives a new item its initial values and leaves an existing item's alone.

/// ProductCreated: shard 0 exists afterwards; an existing one is left exactly as it is.
const REGISTER: &str = "SET productId = if_not_exists(productId, :productId), \
    available = if_not_exists(available, :zero), \
    reserved = if_not_exists(reserved, :zero), \
    shipped = if_not_exists(shipped, :zero), \
    deleted = if_not_exists(deleted, :false), \
    version = if_not_exists(version, :one)";

/// ProductDeleted, on every shard: marked deleted, a tombstone if it never existed.
/// Counters untouched: reserved units stay releasable and shippable.
const DISCONTINUE: &str = "SET deleted = :true, \
    productId = if_not_exists(productId, :productId), \
    available = if_not_exists(available, :zero), \
    reserved = if_not_exists(reserved, :zero), \
    shipped = if_not_exists(shipped, :zero), \
    version = if_not_exists(version, :zero) + :one";

/// An admin's PUT, on every shard: `available` replaced, everything else kept (or
/// started at zero).
const RESTOCK: &str = "SET available = :available, \
    productId = if_not_exists(productId, :productId), \
    reserved = if_not_exists(reserved, :zero), \
    shipped = if_not_exists(shipped, :zero), \
    deleted = if_not_exists(deleted, :false), \
    version = if_not_exists(version, :zero) + :one";

/// What a restock adds on shard 0: the layout it leaves.
const RESTOCK_LAYOUT: &str = ", shardCount = :shardCount, activeShards = :activeShards";

/// What a restock or a deletion adds on any other shard: its number, for whoever reads
/// the table.
const SHARD_NUMBER: &str = ", shardNumber = :shardNumber";

/// Shard 0 still has the layout a write spanning every shard read (`:readShards`): no
/// writer added a shard meanwhile. A product never sharded has no `shardCount` attribute.
fn layout_unchanged(read_shards: usize) -> &'static str {
    if read_shards <= 1 {
        "(attribute_not_exists(shardCount) OR shardCount = :readShards)"
    } else {
        "shardCount = :readShards"
    }
}

/// A deleted product is never restocked; a product not stocked yet may be.
const RESTOCKABLE: &str = "(attribute_not_exists(pk) OR deleted = :false)";

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
        Ok(self.stocks([product_id]).await?.remove(product_id))
    }

    /// The stock of several products, as of now (strongly consistent), by product id;
    /// products never stocked are absent. One BatchGetItem of every shard 0, and one more
    /// for the other shards of sharded products.
    pub async fn stocks<'a>(
        &self,
        product_ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, Stock>, StoreError> {
        let heads = product_ids
            .into_iter()
            .map(|product_id| stock_key(product_id, 0))
            .collect();
        let mut found = HashMap::new();
        for item in self.table.batch_get(heads, Read::Latest).await? {
            let head: ShardItem = decode(item)?;
            found.insert(head.product_id.clone(), head.head_of_stock());
        }
        let others: Vec<Item> = found
            .values()
            .flat_map(|stock| {
                (1..stock.shards.len() as u32).map(|shard| stock_key(&stock.product_id, shard))
            })
            .collect();
        if !others.is_empty() {
            for item in self.table.batch_get(others, Read::Latest).await? {
                let shard: ShardItem = decode(item)?;
                // A shard's restock wrote it in the same transaction as the layout that
                // counts it, so it is there; a missing one reads as empty, and an order's
                // guarded move on it fails.
                if let Some(slot) = found
                    .get_mut(&shard.product_id)
                    .and_then(|stock| stock.shards.get_mut(shard.shard as usize))
                {
                    *slot = shard.counters();
                }
            }
        }
        Ok(found)
    }

    /// Sets how many units are free to sell, spread over `shards` shards (as many as now
    /// when `None`), creating the product's stock if needed, and answers the stock as
    /// written. [`StoreError::Discontinued`] for a deleted product.
    pub async fn set_available(
        &self,
        product_id: &str,
        available: u64,
        shards: Option<u32>,
    ) -> Result<Stock, StoreError> {
        for attempt in 0..RESTOCK_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(
                    fastrand::u64(5..=25) * u64::from(attempt),
                ))
                .await;
            }
            let read = self.stock(product_id).await?;
            if read.as_ref().is_some_and(|stock| stock.deleted) {
                return Err(StoreError::Discontinued);
            }
            let before = read.unwrap_or_else(|| Stock::new(product_id));
            let after = before.restocked(available, shards.unwrap_or(before.active_shards));
            let mut transaction = Transaction::new(self.table.name());
            for (number, shard) in after.shards.iter().enumerate() {
                transaction.write(self.restock_shard(&before, &after, number as u32, shard)?);
            }
            match transaction.commit(self.table.client()).await {
                Ok(()) => {
                    // Orders may have moved units since the read; what is stored now is
                    // the truth to answer.
                    return self
                        .stock(product_id)
                        .await?
                        .ok_or_else(|| TableError::Corrupt("stock vanished".into()).into());
                }
                Err(CommitError::ConditionFailed { .. } | CommitError::TransactionConflict) => {
                    continue;
                }
                Err(other) => return Err(TableError::from(other).into()),
            }
        }
        Err(TableError::Conflict.into())
    }

    fn restock_shard(
        &self,
        before: &Stock,
        after: &Stock,
        number: u32,
        shard: &Shard,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut expression = RESTOCK.to_owned();
        let mut values = vec![
            (":available", number_value(shard.available)),
            (":productId", AttributeValue::S(after.product_id.clone())),
            (":zero", number_value(0)),
            (":one", number_value(1)),
            (":false", AttributeValue::Bool(false)),
        ];
        let mut condition = None;
        if number == 0 {
            expression.push_str(RESTOCK_LAYOUT);
            values.push((":shardCount", number_value(after.shards.len() as u64)));
            values.push((
                ":activeShards",
                number_value(u64::from(after.active_shards)),
            ));
            values.push((":readShards", number_value(before.shards.len() as u64)));
            condition = Some(format!(
                "{RESTOCKABLE} AND {}",
                layout_unchanged(before.shards.len())
            ));
        } else {
            expression.push_str(SHARD_NUMBER);
            values.push((":shardNumber", number_value(u64::from(number))));
        }
        self.update(&after.product_id, number, &expression, values, condition)
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
        let values = vec![
            (":productId", AttributeValue::S(product_id.to_owned())),
            (":zero", number_value(0)),
            (":one", number_value(1)),
            (":false", AttributeValue::Bool(false)),
        ];
        self.update(product_id, 0, REGISTER, values, None)
    }

    /// The writes that mark a product deleted from the catalog, one per shard of the
    /// stock read (`None`: never stocked, so a tombstone in shard 0). They fail if an
    /// admin added shards since the read.
    pub fn discontinue_product(
        &self,
        product_id: &str,
        read: Option<&Stock>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let read_shards = read.map_or(1, |stock| stock.shards.len());
        (0..read_shards as u32)
            .map(|number| {
                let mut expression = DISCONTINUE.to_owned();
                let mut values = vec![
                    (":productId", AttributeValue::S(product_id.to_owned())),
                    (":zero", number_value(0)),
                    (":one", number_value(1)),
                    (":true", AttributeValue::Bool(true)),
                ];
                let mut condition = None;
                if number == 0 {
                    values.push((":readShards", number_value(read_shards as u64)));
                    condition = Some(layout_unchanged(read_shards).to_owned());
                } else {
                    expression.push_str(SHARD_NUMBER);
                    values.push((":shardNumber", number_value(u64::from(number))));
                }
                self.update(product_id, number, &expression, values, condition)
            })
            .collect()
    }

    fn update(
        &self,
        product_id: &str,
        shard: u32,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
        condition: Option<String>,
    ) -> Result<TransactWriteItem, StoreError> {
        let values = values
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        let update = Update::builder()
            .table_name(self.table.name())
            .set_key(Some(stock_key(product_id, shard)))
            .update_expression(expression)
            .set_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(dynamo_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The write that moves a reservation's units of one product in one shard, guarded by the same
    /// rule as [`Stock::apply`]: the source counter holds enough, and for a reservation
    /// the product is not deleted. A missing item fails the guard too.
    pub fn move_stock(&self, change: &StockMove) -> Result<TransactWriteItem, StoreError> {
        let movement = change.movement;
        let mut condition = "#source >= :quantity".to_owned();
        let mut update = Update::builder()
            .table_name(self.table.name())
            .set_key(Some(stock_key(&change.product_id, change.shard)))
            .update_expression(
                "SET #source = #source - :quantity, #target = #target + :quantity, version = version + :one",
            )
            .expression_attribute_names("#source", movement.source().field())
            .expression_attribute_names("#target", movement.target().field())
            .expression_attribute_values(":quantity", number_value(change.quantity))
            .expression_attribute_values(":one", number_value(1));
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
