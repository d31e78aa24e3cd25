use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{DomainEvent, new_event_id, timestamp};

/// What every event carries besides its data. `event_id` is fixed when the event is
/// recorded in the outbox, so it survives publish retries (EventBridge's own `id` does
/// not) and is what consumers deduplicate on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    /// A ULID, unique per event; what consumers deduplicate on.
    pub event_id: String,
    /// RFC 3339, UTC, milliseconds.
    pub occurred_at: String,
    /// Follows one request through every event it causes.
    pub correlation_id: String,
    /// The version of `data`'s schema; a breaking change to an event raises it.
    pub schema_version: u32,
}

impl EventMetadata {
    /// Whether the metadata can be trusted: an id a consumer can deduplicate on (a ULID,
    /// as [`new_event_id`] mints them: an empty or made-up one would make unrelated events
    /// share a marker), a correlation id of sane length and an RFC 3339 instant.
    pub fn check(&self) -> Result<(), String> {
        if !crate::is_ulid(&self.event_id) {
            return Err(format!("eventId {:?} is not a ULID", self.event_id));
        }
        if !(1..=crate::limits::MAX_CORRELATION_ID_BYTES).contains(&self.correlation_id.len()) {
            return Err(format!(
                "correlationId must be 1 to {} bytes",
                crate::limits::MAX_CORRELATION_ID_BYTES
            ));
        }
        if DateTime::parse_from_rfc3339(&self.occurred_at).is_err() {
            return Err(format!(
                "occurredAt {:?} is not an RFC 3339 instant",
                self.occurred_at
            ));
        }
        Ok(())
    }
}

/// The EventBridge `detail` of every shop event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub metadata: EventMetadata,
    pub data: T,
}

impl<T: DomainEvent> Envelope<T> {
    /// Wraps `data` as a new event, with a fresh id, now.
    pub fn new(data: T, correlation_id: impl Into<String>) -> Self {
        Self::at(data, correlation_id, Utc::now())
    }

    pub fn at(data: T, correlation_id: impl Into<String>, occurred_at: DateTime<Utc>) -> Self {
        Self {
            metadata: EventMetadata {
                event_id: new_event_id(),
                occurred_at: timestamp(occurred_at),
                correlation_id: correlation_id.into(),
                schema_version: T::SCHEMA_VERSION,
            },
            data,
        }
    }

    pub fn detail_type(&self) -> &'static str {
        T::DETAIL_TYPE
    }

    pub fn source(&self) -> &'static str {
        T::SOURCE
    }
}
