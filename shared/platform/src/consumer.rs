//! The SQS consumer harness. A capability's queue receives bus events (EventBridge's
//! envelope around ours); the harness parses each message leniently, hands it to the
//! capability's handler by detail-type, and commits the handler's writes together with
//! a "processed" marker for the event id, in one transaction. A replayed event finds
//! its marker and changes nothing. Failed messages are reported one by one
//! (`ReportBatchItemFailures`), so one bad message never fails its batch; after the
//! queue's maxReceiveCount it lands in the DLQ, never lost.
//!
//! Before any side effect, a message must earn trust: an event id a marker can be keyed
//! on (a ULID: an empty one would make unrelated events share one marker), a schema
//! version this consumer reads, and data inside the contract's bounds
//! ([`shop_events::DomainEvent::check`]). Anything else is refused with its reason logged
//! and, after its receives, kept in the DLQ; and an event whose marker exists already is
//! recognised before the handler runs, so a replay never reaches a provider.
//!
//! Time is the invocation's: the harness stops starting work when the deadline is near
//! and reports what did not finish as failed (the queue brings it back), instead of
//! letting Lambda time out the whole batch. Losing a race on a conditional write is not
//! a failure: it is retried, with growing and jittered pauses, for as long as the
//! invocation has time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::Utc;
use serde_json::Value;
use shop_events::{DomainEvent, Envelope, EventMetadata};
use tracing::Instrument;

use crate::metrics::{Count, Metrics};
use crate::store::TableError;
use crate::transaction::{CommitError, Transaction};

/// How long a processed marker is kept: longer than SQS can hold a message (14 days),
/// so no redelivery can outlive its marker.
const MARKER_RETENTION_SECONDS: i64 = 15 * 24 * 3600;
/// What the harness keeps of the invocation's time to report the batch: a message still
/// running this close to the deadline is abandoned and reported failed.
const REPORTING_MARGIN: Duration = Duration::from_millis(500);
/// A retry after a conflict is not started with less time than this left: one read and
/// one transaction, with room to spare.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(300);
/// The pause before the first retry after a conflict; each later one may be twice as
/// long, up to [`MAX_CONFLICT_PAUSE`], drawn at random below that ceiling ("full
/// jitter"), so writers that collided do not collide again in step.
const FIRST_CONFLICT_PAUSE: Duration = Duration::from_millis(10);
const MAX_CONFLICT_PAUSE: Duration = Duration::from_millis(500);
/// The metric counting every attempt a consumer lost to a concurrent writer and made
/// again: on AWS, the sign of a hot item (many orders for one product's stock), to alarm
/// on or to size shards by. Timing decides it, so it is an operational figure, not a fact.
pub const CONFLICTS_RETRIED: &str = "ConflictsRetried";
/// The time a batch gets when the caller names no deadline (tests, tools).
const DEFAULT_BUDGET: Duration = Duration::from_secs(30);

/// An event taken off the queue.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub detail_type: String,
    pub source: String,
    pub metadata: EventMetadata,
    data: Value,
}

impl IncomingEvent {
    /// Parses an SQS message body: an EventBridge event whose detail is our envelope, with
    /// metadata that can be trusted ([`EventMetadata::check`]).
    pub fn parse(body: &str) -> Result<Self, ConsumeError> {
        let event: EventBridgeEvent<Envelope<Value>> = serde_json::from_str(body)
            .map_err(|e| ConsumeError::Malformed(format!("not a shop event: {e}")))?;
        event
            .detail
            .metadata
            .check()
            .map_err(|why| ConsumeError::Malformed(format!("untrustworthy metadata: {why}")))?;
        Ok(Self {
            detail_type: event.detail_type,
            source: event.source,
            metadata: event.detail.metadata,
            data: event.detail.data,
        })
    }

    /// The event's data as `T`, checking that the detail-type and the source are `T`'s (an
    /// event that claims another capability's name is not trusted), that its schema version
    /// is the one `T` reads (a new major version is a new contract: never read by guesswork)
    /// and that it keeps the contract's bounds.
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
        if self.metadata.schema_version != T::SCHEMA_VERSION {
            return Err(ConsumeError::Malformed(format!(
                "{} of schema version {}; this consumer reads version {}",
                T::DETAIL_TYPE,
                self.metadata.schema_version,
                T::SCHEMA_VERSION
            )));
        }
        let data: T = serde_json::from_value(self.data.clone()).map_err(|e| {
            ConsumeError::Malformed(format!(
                "{} data does not match its schema: {e}",
                self.detail_type
            ))
        })?;
        data.check().map_err(|why| {
            ConsumeError::Malformed(format!("{} breaks its contract: {why}", T::DETAIL_TYPE))
        })?;
        Ok(data)
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

    /// The capability's handler this harness runs.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The harness counting the handler's facts into `metrics` instead of the process's
    /// recorder (a test's own, say).
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self { metrics, ..self }
    }

    /// Handles one SQS batch and reports the messages that failed, with
    /// [`DEFAULT_BUDGET`] for a deadline.
    pub async fn handle_batch(&self, batch: SqsEvent) -> SqsBatchResponse {
        self.handle_batch_until(batch, Instant::now() + DEFAULT_BUDGET)
            .await
    }

    /// Handles one SQS batch within the invocation's `deadline` and reports the messages
    /// that failed, those abandoned as the deadline came near included.
    pub async fn handle_batch_until(&self, batch: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        // The messages of a batch are handled at once: a standard queue promises no order
        // anyway, and two deliveries touching the same item already meet through the
        // conditional writes and their retries (two pollers can hold them concurrently).
        // One slow message (a provider timing out) then costs the batch its own time,
        // not the sum of everyone's, which is what the functions' timeouts are sized on.
        let cutoff = deadline.checked_sub(REPORTING_MARGIN).unwrap_or(deadline);
        let outcomes = futures::future::join_all(batch.records.iter().map(|message| async move {
            match tokio::time::timeout_at(cutoff.into(), self.handle_message_until(message, cutoff))
                .await
            {
                Ok(outcome) => outcome,
                Err(_) => {
                    // Dropping the work mid-way is safe: whatever it did at a provider is
                    // keyed by the event (idempotent), and whatever it wrote commits with
                    // its marker or not at all; the redelivery finds out which.
                    let message_id = message.message_id.as_deref().unwrap_or("");
                    tracing::warn!(
                        message_id,
                        "not finished before the invocation's deadline; the queue will redeliver it"
                    );
                    Outcome::Failed("the invocation's deadline came first".into())
                }
            }
        }))
        .await;
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

    /// Handles one message, with [`DEFAULT_BUDGET`] for a deadline.
    pub async fn handle_message(&self, message: &SqsMessage) -> Outcome {
        self.handle_message_until(message, Instant::now() + DEFAULT_BUDGET)
            .await
    }

    async fn handle_message_until(&self, message: &SqsMessage, cutoff: Instant) -> Outcome {
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
        let outcome = self.apply(&event, cutoff).instrument(span.clone()).await;
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

    async fn apply(&self, event: &IncomingEvent, cutoff: Instant) -> Outcome {
        // A replay is recognised before the handler runs, so nothing it would do outside
        // the transaction (a provider call) happens twice; the marker's condition on the
        // commit still catches the duplicate that raced past this read.
        match self.is_processed(event).await {
            Ok(true) => return Outcome::Duplicate,
            Ok(false) => {}
            Err(error) => return Outcome::Failed(error.to_string()),
        }
        let mut conflicts: u32 = 0;
        loop {
            if conflicts > 0 {
                let pause = conflict_pause(conflicts, fastrand::f64());
                if Instant::now() + pause + MIN_ATTEMPT_TIME > cutoff {
                    return Outcome::Failed(format!(
                        "still conflicting after {conflicts} attempts, and the invocation's time is up"
                    ));
                }
                tokio::time::sleep(pause).await;
            }
            let mut transaction = Transaction::new(&self.table);
            let marker = transaction.write(self.marker(event));
            match self.handler.handle(event, &mut transaction).await {
                Ok(()) => {}
                Err(ConsumeError::Conflict) => {
                    conflicts += 1;
                    self.metrics.count(&Count::of(CONFLICTS_RETRIED));
                    continue;
                }
                Err(other) => return Outcome::Failed(other.to_string()),
            }
            // Counted only once the facts are committed: a duplicate (its marker's
            // condition fails), a conflict or a failure counts nothing, and a retry stages
            // its facts afresh.
            let facts = transaction.counts().to_vec();
            match transaction.commit(&self.client).await {
                Ok(()) => {
                    self.metrics.count_all(&facts);
                    if conflicts > 0 {
                        tracing::info!(conflicts, "applied after losing races");
                    }
                    return Outcome::Applied;
                }
                Err(CommitError::ConditionFailed { failed }) if failed.contains(&marker) => {
                    return Outcome::Duplicate;
                }
                Err(CommitError::ConditionFailed { .. } | CommitError::TransactionConflict) => {
                    conflicts += 1;
                    self.metrics.count(&Count::of(CONFLICTS_RETRIED));
                }
                Err(other) => return Outcome::Failed(other.to_string()),
            }
        }
    }

    /// Whether the event's marker exists: it was applied already.
    async fn is_processed(&self, event: &IncomingEvent) -> Result<bool, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.marker_key(event)))
            .consistent_read(true)
            .projection_expression("pk")
            .send()
            .await
            .map_err(crate::store::dynamo_error)?;
        Ok(output.item.is_some())
    }

    fn marker_key(&self, event: &IncomingEvent) -> HashMap<String, AttributeValue> {
        crate::store::key(
            format!(
                "PROCESSED#{}#{}",
                self.consumer_name, event.metadata.event_id
            ),
            "PROCESSED",
        )
    }

    /// The marker that makes a replay a no-op: its condition fails if the event was
    /// already applied, which cancels the whole transaction.
    fn marker(&self, event: &IncomingEvent) -> TransactWriteItem {
        let mut item = self.marker_key(event);
        item.extend([
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

/// The pause before the retry that follows the `conflicts`-th conflict, for `unit` drawn
/// uniformly from [0, 1): exponential from [`FIRST_CONFLICT_PAUSE`], capped at
/// [`MAX_CONFLICT_PAUSE`], with full jitter.
fn conflict_pause(conflicts: u32, unit: f64) -> Duration {
    let doublings = conflicts.saturating_sub(1).min(16);
    let ceiling = FIRST_CONFLICT_PAUSE
        .saturating_mul(1 << doublings)
        .min(MAX_CONFLICT_PAUSE);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_pauses_grow_to_a_ceiling_and_are_drawn_below_it() {
        let ceilings: Vec<u128> = (1..=8)
            .map(|n| conflict_pause(n, 1.0).as_millis())
            .collect();
        assert_eq!(ceilings, [10, 20, 40, 80, 160, 320, 500, 500]);
        assert_eq!(conflict_pause(3, 0.0), Duration::ZERO);
        assert_eq!(conflict_pause(3, 0.5), Duration::from_millis(20));
        assert_eq!(
            conflict_pause(1_000, 1.0),
            MAX_CONFLICT_PAUSE,
            "no overflow"
        );
    }
}
