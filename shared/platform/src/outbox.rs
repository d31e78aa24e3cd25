//! The transactional outbox (DESIGN §5). An event is an item in the capability's own
//! table, written in the same transaction as the state change; the table's stream carries
//! it to the relay, which publishes it. Outbox items expire by TTL once published events
//! can no longer be needed for a replay.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shop_events::{DomainEvent, Envelope};

/// Partition-key prefix of outbox items; the relay's stream filter matches on it.
pub const OUTBOX_PREFIX: &str = "OUTBOX#";
/// How long an outbox item stays: past the stream's 24 hours and the relay failure
/// queue's 14 days, so an event that failed to publish can still be replayed from it.
const RETENTION_SECONDS: i64 = 15 * 24 * 3600;

/// An event waiting in the outbox, as stored (and as the stream shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEvent {
    pub pk: String,
    pub sk: String,
    pub event_id: String,
    pub source: String,
    pub detail_type: String,
    /// The EventBridge `detail`, already serialised: the relay sends it byte for byte.
    pub detail: String,
    pub correlation_id: String,
    pub occurred_at: String,
    pub expires_at: i64,
    /// The event holds a secret ([`DomainEvent::CARRIES_SECRET`]): the relay deletes the
    /// item once the bus has accepted it, and the TTL is only the backstop.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub carries_secret: bool,
}

impl OutboxEvent {
    pub fn from_envelope<T: DomainEvent>(event: &Envelope<T>) -> Result<Self, serde_json::Error> {
        let id = &event.metadata.event_id;
        Ok(Self {
            pk: format!("{OUTBOX_PREFIX}{id}"),
            sk: "EVENT".to_owned(),
            event_id: id.clone(),
            source: T::SOURCE.to_owned(),
            detail_type: T::DETAIL_TYPE.to_owned(),
            detail: serde_json::to_string(event)?,
            correlation_id: event.metadata.correlation_id.clone(),
            occurred_at: event.metadata.occurred_at.clone(),
            expires_at: Utc::now().timestamp() + RETENTION_SECONDS,
            carries_secret: T::CARRIES_SECRET,
        })
    }

    /// The item as DynamoDB stores it.
    pub fn item(&self) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(self.pk.clone())),
            ("sk".to_owned(), AttributeValue::S(self.sk.clone())),
            (
                "eventId".to_owned(),
                AttributeValue::S(self.event_id.clone()),
            ),
            ("source".to_owned(), AttributeValue::S(self.source.clone())),
            (
                "detailType".to_owned(),
                AttributeValue::S(self.detail_type.clone()),
            ),
            ("detail".to_owned(), AttributeValue::S(self.detail.clone())),
            (
                "correlationId".to_owned(),
                AttributeValue::S(self.correlation_id.clone()),
            ),
            (
                "occurredAt".to_owned(),
                AttributeValue::S(self.occurred_at.clone()),
            ),
            (
                "expiresAt".to_owned(),
                AttributeValue::N(self.expires_at.to_string()),
            ),
        ]);
        if self.carries_secret {
            item.insert("carriesSecret".to_owned(), AttributeValue::Bool(true));
        }
        item
    }

    /// The transaction entry that records the event. The condition makes recording the
    /// same event twice fail instead of overwriting it.
    pub fn put(&self, table: &str) -> TransactWriteItem {
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(self.item()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table, item and condition are set");
        TransactWriteItem::builder().put(put).build()
    }
}
