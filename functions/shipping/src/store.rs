//! The shipments table. One item per order's shipment (`SHIPMENT#<orderId>` /
//! `SHIPMENT`), indexed by status in `gsi1` (`STATUS#<status>` / `<updatedAt>#<orderId>`)
//! so that an admin's work list (`GET /shipments?status=pending`) is one Query, most
//! recently changed first. Every write puts the whole item with its index keys derived from
//! the shipment as it is now, so the index follows each status change in the same write.
//!
//! A tombstone (an order cancelled before shipping heard it was paid) has no index keys:
//! most of them stand for orders that were never paid at all (out of stock, declined), and
//! they would bury the cancelled shipments an admin is looking for. It is still found by
//! key, which is all a late OrderPaid needs.
//!
//! Writes are conditional: a shipment is created only if none exists for the order, and
//! changed only at the version it was read at, so an admin's dispatch and a customer's
//! cancellation never both win. The outbox and the consumer's processed-event markers
//! share the table, because a change, its event and its marker commit in one transaction.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use serde::{Deserialize, Serialize};
use shop_events::{DomainEvent, Envelope};
use shop_platform::pagination::{Key, PageRequest};
use shop_platform::store::{Condition, Item, Read, Table, TableError, key};
use shop_platform::transaction::Transaction;

use crate::domain::{Shipment, ShipmentStatus};

const BY_STATUS_INDEX: &str = "gsi1";
const SHIPMENT_SORT_KEY: &str = "SHIPMENT";

/// A shipment as stored: the shipment plus its keys.
#[derive(Serialize, Deserialize)]
struct ShipmentItem {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    #[serde(flatten)]
    shipment: Shipment,
}

fn shipment_partition(order_id: &str) -> String {
    format!("SHIPMENT#{order_id}")
}

fn status_partition(status: ShipmentStatus) -> String {
    format!("STATUS#{status}")
}

fn key_of(order_id: &str) -> Item {
    key(shipment_partition(order_id), SHIPMENT_SORT_KEY)
}

impl ShipmentItem {
    fn new(shipment: Shipment) -> Self {
        let listed = !shipment.is_tombstone();
        Self {
            pk: shipment_partition(&shipment.order_id),
            sk: SHIPMENT_SORT_KEY.to_owned(),
            gsi1pk: listed.then(|| status_partition(shipment.status)),
            // updatedAt is fixed-width RFC 3339 in UTC, so it sorts as it reads; the order
            // id breaks ties between shipments changed in the same millisecond.
            gsi1sk: listed.then(|| format!("{}#{}", shipment.updated_at, shipment.order_id)),
            shipment,
        }
    }
}

#[derive(Clone)]
pub struct ShipmentStore {
    table: Table,
}

impl ShipmentStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// The order's shipment (or tombstone) as last written. Strongly consistent: every
    /// caller decides a conditional write from it.
    pub async fn get(&self, order_id: &str) -> Result<Option<Shipment>, TableError> {
        let stored: Option<ShipmentItem> = self.table.get(key_of(order_id), Read::Latest).await?;
        Ok(stored.map(|stored| stored.shipment))
    }

    /// Adds the first write of the order's shipment (or tombstone) to `transaction`; it
    /// only happens if the order has none yet: whoever wrote first keeps it.
    pub fn stage_create(
        &self,
        transaction: &mut Transaction,
        shipment: &Shipment,
    ) -> Result<(), TableError> {
        transaction.write(self.put(shipment, Condition::Absent)?);
        Ok(())
    }

    /// Adds a status change that raises no event to `transaction`, on condition that the
    /// stored shipment is still at `read_version`.
    pub fn stage_change(
        &self,
        transaction: &mut Transaction,
        shipment: &Shipment,
        read_version: u64,
    ) -> Result<(), TableError> {
        transaction.write(self.put(shipment, Condition::AtVersion(read_version))?);
        Ok(())
    }

    /// A status change and the event it raised, in a transaction of their own, on
    /// condition that the stored shipment is still at `read_version`; for the API.
    pub async fn change<T: DomainEvent>(
        &self,
        shipment: &Shipment,
        read_version: u64,
        event: &Envelope<T>,
    ) -> Result<(), TableError> {
        let put = self.put(shipment, Condition::AtVersion(read_version))?;
        self.table.commit_with_event(put, event).await
    }

    /// One page of the shipments in `status`, most recently changed first.
    pub async fn list_by_status(
        &self,
        status: ShipmentStatus,
        page: PageRequest,
    ) -> Result<(Vec<Shipment>, Option<Key>), TableError> {
        let (items, last_key) = self
            .table
            .query_page::<ShipmentItem>(page, Self::CURSOR_ATTRIBUTES, |query| {
                query
                    .index_name(BY_STATUS_INDEX)
                    .key_condition_expression("gsi1pk = :status")
                    .expression_attribute_values(
                        ":status",
                        AttributeValue::S(status_partition(status)),
                    )
                    .scan_index_forward(false)
            })
            .await?;
        let shipments = items.into_iter().map(|stored| stored.shipment).collect();
        Ok((shipments, last_key))
    }

    /// The key attributes a cursor of [`Self::list_by_status`] holds.
    pub const CURSOR_ATTRIBUTES: &'static [&'static str] = &["pk", "sk", "gsi1pk", "gsi1sk"];

    /// A cursor resumes the listing of one status only: in another status's partition its
    /// position means nothing, and DynamoDB would reject the query.
    pub fn cursor_belongs_to(status: ShipmentStatus, cursor: &Key) -> bool {
        matches!(cursor.get("gsi1pk"), Some(AttributeValue::S(value)) if *value == status_partition(status))
    }

    fn put(
        &self,
        shipment: &Shipment,
        condition: Condition,
    ) -> Result<TransactWriteItem, TableError> {
        self.table
            .put(&ShipmentItem::new(shipment.clone()), condition)
    }
}
