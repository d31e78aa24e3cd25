//! The orders table. One item per order (`ORDER#<orderId>` / `ORDER`), indexed by owner in
//! `gsi1` (`USER#<userId>` / `<createdAt>#<orderId>`) so that a customer's orders are one
//! Query, newest first. The outbox and the consumer's processed-event markers share the
//! table, because a change, its event and its marker commit in one transaction.
//!
//! Writes are conditional: an order is created only if it does not exist, and changed
//! only at the version it was read at, so a consumer and a customer's cancel never both
//! win. The payment token is stored with the order (payment needs it once the stock is
//! confirmed) and is never part of an answer: see `api::OrderView`.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use shop_events::ordering::OrderSubmitted;
use shop_events::{DomainEvent, Envelope};
use shop_platform::pagination::{Key, PageRequest};
use shop_platform::transaction::{CommitError, Transaction};

use crate::domain::Order;

const BY_USER_INDEX: &str = "gsi1";
const ORDER_SORT_KEY: &str = "ORDER";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the order changed since it was read")]
    Conflict,
    #[error("dynamodb: {0}")]
    Dynamo(String),
    #[error("stored item is not an order: {0}")]
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

fn key_of(id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(order_key(id))),
        (
            "sk".to_owned(),
            AttributeValue::S(ORDER_SORT_KEY.to_owned()),
        ),
    ])
}

#[derive(Clone)]
pub struct OrderStore {
    client: Client,
    table: String,
}

impl OrderStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The order as last written. Strongly consistent: a consumer that just missed the
    /// order's creation would otherwise give its event back to the queue for nothing.
    pub async fn get(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error)?;
        output.item.map(from_item).transpose()
    }

    /// Adds the creation of `order` and its OrderSubmitted to `transaction`. The write
    /// only happens if no order has this id: whoever created it first keeps it.
    pub fn stage_create(
        &self,
        transaction: &mut Transaction,
        order: &Order,
        event: &Envelope<OrderSubmitted>,
    ) -> Result<(), StoreError> {
        transaction.write(self.put(order, "attribute_not_exists(pk)", None)?);
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
    ) -> Result<(), StoreError> {
        transaction.write(self.put(order, "version = :read", Some(read_version))?);
        transaction.publish(event)?;
        Ok(())
    }

    /// [`Self::stage_change`] in a transaction of its own, for the API.
    pub async fn change<T: DomainEvent>(
        &self,
        order: &Order,
        read_version: u64,
        event: &Envelope<T>,
    ) -> Result<(), StoreError> {
        let mut transaction = Transaction::new(&self.table);
        self.stage_change(&mut transaction, order, read_version, event)?;
        Ok(transaction.commit(&self.client).await?)
    }

    /// One page of a user's orders, newest first.
    pub async fn list_for_user(
        &self,
        user_id: &str,
        page: PageRequest,
    ) -> Result<(Vec<Order>, Option<Key>), StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_USER_INDEX)
            .key_condition_expression("gsi1pk = :user")
            .expression_attribute_values(":user", AttributeValue::S(user_partition(user_id)))
            .scan_index_forward(false)
            .limit(page.limit)
            .set_exclusive_start_key(page.after)
            .send()
            .await
            .map_err(dynamo_error)?;
        let orders = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        Ok((orders, output.last_evaluated_key))
    }

    /// The key attributes a cursor of [`Self::list_for_user`] holds.
    pub const CURSOR_ATTRIBUTES: &'static [&'static str] = &["pk", "sk", "gsi1pk", "gsi1sk"];

    /// A cursor resumes one user's listing only: another user's cursor would make
    /// DynamoDB reject the query, and must not look like a way in.
    pub fn cursor_belongs_to(user_id: &str, cursor: &Key) -> bool {
        matches!(cursor.get("gsi1pk"), Some(AttributeValue::S(value)) if *value == user_partition(user_id))
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

    fn put(
        &self,
        order: &Order,
        condition: &str,
        read_version: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = serde_dynamo::to_item(OrderItem::new(order.clone()))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(read_version.map(|version| {
                HashMap::from([(":read".to_owned(), AttributeValue::N(version.to_string()))])
            }))
            .build()
            .map_err(dynamo_error)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

fn from_item(item: HashMap<String, AttributeValue>) -> Result<Order, StoreError> {
    serde_dynamo::from_item::<_, OrderItem>(item)
        .map(|stored| stored.order)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}
