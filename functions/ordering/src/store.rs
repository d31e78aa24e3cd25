//! The orders table. One item per order (`ORDER#<orderId>` / `ORDER`), indexed by owner in
//! `gsi1` (`USER#<userId>` / `<createdAt>#<orderId>`) so that a customer's orders are one
//! Query, newest first. The outbox and the consumer's processed-event markers share the
//! table, because a change, its event and its marker commit in one transaction.
//!
//! Writes are conditional: an order is created only if it does not exist, and changed
//! only at the version it was read at, so a consumer and a customer's cancel never both
//! win. The payment token is stored with the order (payment needs it once the stock is
//! confirmed) and is never part of an answer: see `api::OrderView`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use serde::{Deserialize, Serialize};
use shop_events::ordering::OrderSubmitted;
use shop_events::{DomainEvent, Envelope};
use shop_platform::pagination::{Key, PageRequest};
use shop_platform::store::{Condition, Item, Read, Table, TableError, key};
use shop_platform::transaction::Transaction;

use crate::domain::Order;

const BY_USER_INDEX: &str = "gsi1";
const ORDER_SORT_KEY: &str = "ORDER";

/// An order as stored: the order plus its keys.
#[derive(Serialize, Deserialize)]
struct OrderItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(flatten)]
    order: Order,
}

fn order_key(id: &str) -> String {
    format!("ORDER#{id}")
}

fn user_partition(user_id: &str) -> String {
    format!("USER#{user_id}")
}

impl OrderItem {
    fn new(order: Order) -> Self {
        // createdAt is fixed-width RFC 3339 in UTC, so it sorts as it reads; the id breaks
        // ties between orders of the same millisecond.
        Self {
            pk: order_key(&order.id),
            sk: ORDER_SORT_KEY.to_owned(),
            gsi1pk: user_partition(&order.user_id),
            gsi1sk: format!("{}#{}", order.created_at, order.id),
            order,
        }
    }
}

fn key_of(id: &str) -> Item {
    key(order_key(id), ORDER_SORT_KEY)
}

#[derive(Clone)]
pub struct OrderStore {
    table: Table,
}

impl OrderStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The order as last written. Strongly consistent: a consumer that just missed the
    /// order's creation would otherwise give its event back to the queue for nothing.
    pub async fn get(&self, id: &str) -> Result<Option<Order>, TableError> {
        let stored: Option<OrderItem> = self.table.get(key_of(id), Read::Latest).await?;
        Ok(stored.map(|stored| stored.order))
    }

    /// Adds the creation of `order` and its OrderSubmitted to `transaction`. The write
    /// only happens if no order has this id: whoever created it first keeps it.
    pub fn stage_create(
        &self,
        transaction: &mut Transaction,
        order: &Order,
        event: &Envelope<OrderSubmitted>,
    ) -> Result<(), TableError> {
        transaction.write(self.put(order, Condition::Absent)?);
        transaction.publish(event)?;
        Ok(())
    }

    /// Adds a status change of `order` and the event it raised to `transaction`, on
    /// condition that the stored order is still at `read_version`.
    pub fn stage_change<T: DomainEvent>(
        &self,
        transaction: &mut Transaction,
        order: &Order,
        read_version: u64,
        event: &Envelope<T>,
    ) -> Result<(), TableError> {
        transaction.write(self.put(order, Condition::AtVersion(read_version))?);
        transaction.publish(event)?;
        Ok(())
    }

    /// [`Self::stage_change`] in a transaction of its own, for the API.
    pub async fn change<T: DomainEvent>(
        &self,
        order: &Order,
        read_version: u64,
        event: &Envelope<T>,
    ) -> Result<(), TableError> {
        let put = self.put(order, Condition::AtVersion(read_version))?;
        self.table.commit_with_event(put, event).await
    }

    /// One page of a user's orders, newest first.
    pub async fn list_for_user(
        &self,
        user_id: &str,
        page: PageRequest,
    ) -> Result<(Vec<Order>, Option<Key>), TableError> {
        let (items, last_key) = self
            .table
            .query_page::<OrderItem>(page, Self::CURSOR_ATTRIBUTES, |query| {
                query
                    .index_name(BY_USER_INDEX)
                    .key_condition_expression("gsi1pk = :user")
                    .expression_attribute_values(
                        ":user",
                        AttributeValue::S(user_partition(user_id)),
                    )
                    .scan_index_forward(false)
            })
            .await?;
        let orders = items.into_iter().map(|stored| stored.order).collect();
        Ok((orders, last_key))
    }

    /// The key attributes a cursor of [`Self::list_for_user`] holds.
    pub const CURSOR_ATTRIBUTES: &'static [&'static str] = &["pk", "sk", "gsi1pk", "gsi1sk"];

    /// A cursor resumes one user's listing only: another user's cursor would make
    /// DynamoDB reject the query, and must not look like a way in.
    pub fn cursor_belongs_to(user_id: &str, cursor: &Key) -> bool {
        matches!(cursor.get("gsi1pk"), Some(AttributeValue::S(value)) if *value == user_partition(user_id))
    }

    fn put(&self, order: &Order, condition: Condition) -> Result<TransactWriteItem, TableError> {
        self.table.put(&OrderItem::new(order.clone()), condition)
    }
}
