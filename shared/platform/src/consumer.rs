//! The SQS consumer harness. A capability's queue receives bus events (EventBridge's
//! envelope around ours); the harness parses each message leniently, hands it to the
//! capability's handler by detail-type, and commits the handler's writes together with
//! a "processed" marker for the event id, in one transaction. A replayed event finds
//! its marker and changes nothing. Failed messages are reported one by one
//! (`ReportBatchItemFailures`), so one bad message never fails its batch; after the
//! queue's maxReceiveCount it lands in the DLQ, never lost.

use std::collections::HashMap;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::Utc;
use serde_json::Value;
use shop_events::{DomainEvent, Envelope, EventMetadata};
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::store::TableError;
use crate::transaction::{CommitError, Transaction};

/// How long a processed marker is kept: longer than SQS can hold a message (14 days),
/// so no redelivery can outlive its marker.
const MARKER_RETENTION_SECONDS: i64 = 15 * 24 * 3600;
/// Optimistic-concurrency conflicts are retried at once this many times before the
/// message is handed back to the queue.
const CONFLICT_RETRIES: u32 = 5;

/// An event taken off the queue.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub detail_type: String,
    pub source: String,
    pub metadata: EventMetadata,
    data: Value,
}

impl IncomingEvent {
    /// Parses an SQS message body: an EventBridge event whose detail is our envelope.
    pub fn parse(body: &str) -> Result<Self, ConsumeError> {
        let event: EventBridgeEvent<Envelope<Value>> = serde_json::from_str(body)
            .map_err(|e| ConsumeError::Malformed(format!("not a shop event: {e}")))?;
        Ok(Self {
            detail_type: event.detail_type,
            source: event.source,
            metadata: event.detail.metadata,
            data: event.detail.data,
        })
    }

    /// The event's data as `T`, checking that the detail-type and the source are `T`'s: an
    /// event that claims another capability's name is not trusted.
    pub fn data<T: DomainEvent>(&self) -> Result<T, ConsumeError> {
        if self.source != T::SOURCE {
            return Err(ConsumeError::Malformed(format!(
                "{} comes from {}, not {}",
                T::DETAIL_TYPE,
                T::SOURCE,
                self.source
            )));
        }
        if self.detail_type != T::DETAIL_TYPE {
            return Err(ConsumeError::Malformed(format!(
                "expected {}, got {}",
                T::DETAIL_TYPE,
                self.detail_type
            )));
        }
        serde_json::from_value(self.data.clone()).map_err(|e| {
            ConsumeError::Malformed(format!(
                "{} data does not match its schema: {e}",
                self.detail_type
            ))
        })
    }

    pub fn correlation_id(&self) -> &str {
        &self.metadata.correlation_id
    }

    /// The refusal of an event whose detail-type `consumer` has no handler for; its queue's
    /// rules should never have let it in.
    pub fn not_consumed_by(&self, consumer: &str) -> ConsumeError {
        ConsumeError::Malformed(format!("{consumer} does not consume {}", self.detail_type))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The message can never be processed as it is (garbage, wrong schema, unknown
    /// detail-type): it is logged and goes to the DLQ after its retries.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// Worth retrying later (a dependency failed).
    #[error("transient failure: {0}")]
    Transient(String),
    /// Another writer changed the state between read and write; retried at once.
    #[error("conflicting concurrent update")]
    Conflict,
}

impl From<CommitError> for ConsumeError {
    fn from(error: CommitError) -> Self {
        TableError::from(error).into()
    }
}

/// A table's conflict is retried at once, like the harness's own; anything else the
/// queue retries later.
impl From<TableError> for ConsumeError {
    fn from(error: TableError) -> Self {
        match error {
            TableError::Conflict => ConsumeError::Conflict,
            other => ConsumeError::Transient(other.to_string()),
        }
    }
}

/// A capability's reaction to the events it consumes. It reads what it needs and adds
/// its writes (and the events it raises, and the business facts to count) to
/// `transaction`; the harness commits, and counts the facts once the commit succeeded.
pub trait EventHandler: Sync {
    fn handle(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> impl Future<Output = Result<(), ConsumeError>> + Send;
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Duplicate,
    Failed(String),
}

pub struct SqsConsumer<H> {
    client: Client,
    table: String,
    /// Names the markers, so two consumers sharing a table keep separate books.
    consumer_name: String,
    handler: H,
    metrics: Metrics,
}

impl<H: EventHandler> SqsConsumer<H> {
    pub fn new(
        client: Client,
        table: impl Into<String>,
        consumer_name: impl Into<String>,
        handler: H,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            consumer_name: consumer_name.into(),
            handler,
            metrics: Metrics::global(),
        }
    }

    /// The harness counting the handler's facts into `metrics` instead of the process's
    /// recorder (a test's own, say).
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self { metrics, ..self }
    }

    /// Handles one SQS batch and reports the messages that failed.
    pub async fn handle_batch(&self, batch: SqsEvent) -> SqsBatchResponse {
        // The messages of a batch are handled at once: a standard queue promises no order
        // anyway, and two deliveries touching the same item already meet through the
        // conditional writes and their retries (two pollers can hold them concurrently).
        // One slow message (a provider timing out) then costs the batch its own time,
        // not the sum of everyone's, which is what the functions' timeouts are sized on.
        let outcomes =
            futures::future::join_all(batch.records.iter().map(|m| self.handle_message(m))).await;
        let mut response = SqsBatchResponse::default();
        for (message, outcome) in batch.records.iter().zip(outcomes) {
            if let Outcome::Failed(_) = outcome {
                match &message.message_id {
                    Some(id) => response.add_failure(id.clone()),
                    None => {
                        // Lambda treats an identifier it does not know as a failure of the
                        // whole batch: better every message again than this one lost.
                        tracing::error!("failed message has no id; the whole batch comes back");
                        response.add_failure(String::new());
                    }
                }
            }
        }
        response
    }

    pub async fn handle_message(&self, message: &SqsMessage) -> Outcome {
        let message_id = message.message_id.as_deref().unwrap_or("");
        let event = match IncomingEvent::parse(message.body.as_deref().unwrap_or("")) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(message_id, error = %error, "rejecting message");
                return Outcome::Failed(error.to_string());
            }
        };
        let span = tracing::info_span!(
            "event",
            correlation_id = %event.metadata.correlation_id,
            event_id = %event.metadata.event_id,
            detail_type = %event.detail_type,
        );
        let outcome = self.apply(&event).instrument(span.clone()).await;
        span.in_scope(|| match &outcome {
            Outcome::Applied => tracing::info!(message_id, "event applied"),
            Outcome::Duplicate => tracing::info!(message_id, "event already processed; skipped"),
            Outcome::Failed(reason) => tracing::error!(
                message_id,
                reason,
                "event failed; the queue will redeliver it"
            ),
        });
        outcome
    }

    async fn apply(&self, event: &IncomingEvent) -> Outcome {
        for attempt in 0..=CONFLICT_RETRIES {
            if attempt > 0 {
                // Spread the retries of writers that collided, so they do not collide again.
                tokio::time::sleep(std::time::Duration::from_millis(
                    fastrand::u64(5..=25) * u64::from(attempt),
                ))
                .await;
            }
            let mut transaction = Transaction::new(&self.table);
            let marker = transaction.write(self.marker(event));
            match self.handler.handle(event, &mut transaction).await {
                Ok(()) => {}
                Err(ConsumeError::Conflict) => continue,
                Err(other) => return Outcome::Failed(other.to_string()),
            }
            // Counted only once the facts are committed: a duplicate (its marker's
            // condition fails), a conflict or a failure counts nothing, and a retry stages
            // its facts afresh.
            let facts = transaction.counts().to_vec();
            match transaction.commit(&self.client).await {
                Ok(()) => {
                    self.metrics.count_all(&facts);
                    return Outcome::Applied;
                }
                Err(CommitError::ConditionFailed { failed }) if failed.contains(&marker) => {
                    return Outcome::Duplicate;
                }
                Err(CommitError::ConditionFailed { .. } | CommitError::TransactionConflict) => {
                    continue;
                }
                Err(other) => return Outcome::Failed(other.to_string()),
            }
        }
        Outcome::Failed(format!(
            "still conflicting after {CONFLICT_RETRIES} retries"
        ))
    }

    /// The marker that makes a replay a no-op: its condition fails if the event was
    /// already applied, which cancels the whole transaction.
    fn marker(&self, event: &IncomingEvent) -> TransactWriteItem {
        let item = HashMap::from([
            (
                "pk".to_owned(),
                AttributeValue::S(format!(
                    "PROCESSED#{}#{}",
                    self.consumer_name, event.metadata.event_id
                )),
            ),
            ("sk".to_owned(), AttributeValue::S("PROCESSED".to_owned())),
            (
                "detailType".to_owned(),
                AttributeValue::S(event.detail_type.clone()),
            ),
            (
                "processedAt".to_owned(),
                AttributeValue::S(Utc::now().to_rfc3339()),
            ),
            (
                "expiresAt".to_owned(),
                AttributeValue::N((Utc::now().timestamp() + MARKER_RETENTION_SECONDS).to_string()),
            ),
        ]);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .expect("table, item and condition are set");
        TransactWriteItem::builder().put(put).build()
    }
}
