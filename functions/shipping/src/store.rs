//! The shipments table. One item per order's shipment (`SHIPMENT#<orderId>` /
//! `SHIPMENT`), indexed by status in `gsi1` (`STATUS#<status>#<n>` /
//! `<updatedAt>#<orderId>`) so that an admin's work list (`GET /shipments?status=pending`)
//! is one Query per index partition, merged most recently changed first. Every write puts
//! the whole item with its index keys derived from the shipment as it is now, so the index
//! follows each status change in the same write.
//!
//! The status partition is written in [`STATUS_SHARDS`] pieces (n from a hash of the
//! order id): one status's partition takes at most 1,000 writes a second, and at the
//! capacity plan's rates every paid order writes `pending` (BENCHMARKS.md, #11). Piece 0 is
//! spelt `STATUS#<status>`, as every item was before, so items written then are read as
//! piece 0 without a backfill, and move to their own piece at their next change.
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
/// How many pieces each status's index partition is written in. Only ever raise it: a
/// listing reads pieces 0..STATUS_SHARDS, so an item written to a piece past a lowered
/// count would drop out of every list until its next change.
pub const STATUS_SHARDS: u32 = 8;
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

fn status_partition(status: ShipmentStatus, piece: u32) -> String {
    match piece {
        0 => format!("STATUS#{status}"),
        piece => format!("STATUS#{status}#{piece}"),
    }
}

/// The index piece an order's shipment is listed in: FNV-1a of the order id, a hash that
/// never changes between builds (the standard library's may), modulo [`STATUS_SHARDS`].
fn status_piece(order_id: &str) -> u32 {
    let hash = order_id.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash % STATUS_SHARDS
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
            gsi1pk: listed
                .then(|| status_partition(shipment.status, status_piece(&shipment.order_id))),
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

    /// One page of the shipments in `status`, most recently changed first: every piece of
    /// the status's partition asked at once for a page's worth after the cursor, merged by
    /// sort key, cut to the page. The sort key (`<updatedAt>#<orderId>`) is unique, so
    /// the last item shown is a position in every piece at once, and the cursor is that
    /// item's key, as DynamoDB would have given it.
    pub async fn list_by_status(
        &self,
        status: ShipmentStatus,
        page: PageRequest,
    ) -> Result<(Vec<Shipment>, Option<Key>), TableError> {
        let after = page
            .after
            .as_ref()
            .and_then(|cursor| match cursor.get("gsi1sk") {
                Some(AttributeValue::S(sort)) => Some(sort.clone()),
                _ => None,
            });
        let pieces = (0..STATUS_SHARDS).map(|piece| {
            let after = after.clone();
            let partition = status_partition(status, piece);
            let page = PageRequest {
                limit: page.limit,
                after: None,
            };
            self.table
                .query_page::<ShipmentItem>(page, Self::CURSOR_ATTRIBUTES, move |query| {
                    let query = query
                        .index_name(BY_STATUS_INDEX)
                        .expression_attribute_values(":status", AttributeValue::S(partition))
                        .scan_index_forward(false);
                    match after {
                        Some(sort) => query
                            .key_condition_expression("gsi1pk = :status AND gsi1sk < :after")
                            .expression_attribute_values(":after", AttributeValue::S(sort)),
                        None => query.key_condition_expression("gsi1pk = :status"),
                    }
                })
        });
        let mut more = false;
        let mut found: Vec<ShipmentItem> = Vec::new();
        for result in futures::future::join_all(pieces).await {
            let (items, next) = result?;
            more |= next.is_some();
            found.extend(items);
        }
        found.sort_by(|a, b| b.gsi1sk.cmp(&a.gsi1sk));
        let limit = usize::try_from(page.limit).unwrap_or(0);
        more |= found.len() > limit;
        found.truncate(limit);
        let next = match found.last() {
            Some(last) if more => Some(Self::cursor_of(last)),
            _ => None,
        };
        let shipments = found.into_iter().map(|stored| stored.shipment).collect();
        Ok((shipments, next))
    }

    /// The key attributes a cursor of [`Self::list_by_status`] holds.
    pub const CURSOR_ATTRIBUTES: &'static [&'static str] = &["pk", "sk", "gsi1pk", "gsi1sk"];

    fn cursor_of(item: &ShipmentItem) -> Key {
        [
            ("pk", Some(&item.pk)),
            ("sk", Some(&item.sk)),
            ("gsi1pk", item.gsi1pk.as_ref()),
            ("gsi1sk", item.gsi1sk.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), AttributeValue::S(value?.clone()))))
        .collect()
    }

    /// A cursor resumes the listing of one status only: a position among another status's
    /// shipments means nothing here.
    pub fn cursor_belongs_to(status: ShipmentStatus, cursor: &Key) -> bool {
        matches!(cursor.get("gsi1pk"), Some(AttributeValue::S(value))
            if (0..STATUS_SHARDS).any(|piece| *value == status_partition(status, piece)))
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
