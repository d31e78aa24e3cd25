//! The outbox relay: the Lambda on a capability's table stream that publishes outbox
//! items to the bus. No event is ever lost (DESIGN §5):
//!
//! - PutEvents takes at most 10 entries and 256 KB per call: events are sent in chunks
//!   that respect both, and an event that alone is larger can never be sent.
//! - It can fail per entry (`FailedEntryCount`) or whole: only what failed is sent again,
//!   with backoff. A transient failure (throttling, an internal error, a timeout) is
//!   retried, first here, then by Lambda re-reading the stream from the first record left
//!   unpublished (shard order is kept), for as long as the record is younger than
//!   [`RelayOptions::park_after`]. A permanent one (the bus refuses the entry as it is) is
//!   not retried at all.
//! - What cannot be published — refused for good, too large, still failing past its time,
//!   or an outbox record that does not even read back — is *parked*: kept whole in the
//!   capability's own table (`PARKED` / `<parkedAt>#<eventId>`) with its reason, counted
//!   (`EventsParked`, which an alarm watches), and replayed by a command ([`replay_parked`])
//!   once the cause is fixed. Only if parking itself fails does the record go back to
//!   Lambda, and after its retries the batch's position to the relay failure queue.
//!
//! Publishing is at least once; consumers deduplicate on the event id.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::metrics::{Count, Metrics};
use crate::outbox::{OUTBOX_PREFIX, OutboxEvent};

/// PutEvents' limit of entries per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;
/// PutEvents' limit on the total size of a call's entries.
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;
/// The count of parked events (the alarm's metric; each one's reason is on it).
pub const EVENTS_PARKED: &str = "EventsParked";
/// Where parked events are kept in a capability's table.
pub const PARKED_PARTITION: &str = "PARKED";

/// Why a publication failed, by what retrying can do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishError {
    /// Whether trying again may succeed (throttling, an internal error, a timeout).
    pub transient: bool,
    pub detail: String,
}

impl PublishError {
    /// A PutEvents result entry's error: only EventBridge's own trouble is worth a retry;
    /// anything else is about the entry as it is.
    pub fn entry(code: &str, message: &str) -> Self {
        Self {
            transient: matches!(
                code,
                "InternalFailure"
                    | "InternalException"
                    | "ThrottlingException"
                    | "ServiceUnavailable"
            ),
            detail: format!("{code}: {message}"),
        }
    }
}

/// Where events go. The real one is [`EventBridgePublisher`]; the trait exists so the
/// retry and parking rules can be tested exactly (which entries are sent on which attempt).
pub trait Publisher {
    /// Sends up to ten entries. `Ok` holds, per entry in order, `None` when accepted and
    /// the error when that entry failed; `Err` means the whole call failed.
    fn publish(
        &self,
        entries: &[&OutboxEvent],
    ) -> impl Future<Output = Result<Vec<Option<PublishError>>, PublishError>> + Send;
}

pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgePublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }
}

impl Publisher for EventBridgePublisher {
    async fn publish(
        &self,
        entries: &[&OutboxEvent],
    ) -> Result<Vec<Option<PublishError>>, PublishError> {
        let request_entries = entries
            .iter()
            .map(|event| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus_name)
                    .source(&event.source)
                    .detail_type(&event.detail_type)
                    .detail(&event.detail)
                    .build()
            })
            .collect();
        let output = self
            .client
            .put_events()
            .set_entries(Some(request_entries))
            .send()
            .await
            .map_err(call_error)?;
        let results = output.entries();
        if output.failed_entry_count() > 0 && results.len() != entries.len() {
            return Err(PublishError {
                transient: true,
                detail: format!(
                    "PutEvents answered {} results for {} entries",
                    results.len(),
                    entries.len()
                ),
            });
        }
        Ok((0..entries.len())
            .map(|i| {
                results.get(i).and_then(|result| {
                    result
                        .error_code()
                        .map(|code| PublishError::entry(code, result.error_message().unwrap_or("")))
                })
            })
            .collect())
    }
}

/// A whole call's failure. Nothing answered (a timeout, a dropped connection), a 5xx,
/// throttling, or a refusal of the role (which a deploy fixes) may pass; a request the
/// service refuses as it is will not.
fn call_error<E, R>(error: SdkError<E, R>) -> PublishError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let transient = match &error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("");
            !matches!(
                code,
                "ValidationException" | "InvalidArgument" | "MalformedDetail"
            )
        }
        _ => true,
    };
    PublishError {
        transient,
        detail: format!("{}", DisplayErrorContext(&error)),
    }
}

/// How hard to try before handing a record back to Lambda.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_millis(50),
        }
    }
}

/// An event the relay gave up publishing, kept whole for a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParkedEvent {
    pub pk: String,
    pub sk: String,
    /// Why it was parked: `refused`, `too_large`, `undeliverable` or `unreadable`.
    pub reason: String,
    /// The last error, in words.
    pub detail: String,
    pub parked_at: String,
    /// The event, when its outbox record could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<OutboxEvent>,
    /// The outbox record as the stream showed it (DynamoDB JSON), when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}

impl ParkedEvent {
    fn new(reason: &str, detail: String, id: &str, now: DateTime<Utc>) -> Self {
        let parked_at = shop_events::timestamp(now);
        Self {
            pk: PARKED_PARTITION.to_owned(),
            sk: format!("{parked_at}#{id}"),
            reason: reason.to_owned(),
            detail,
            parked_at,
            event: None,
            record: None,
        }
    }

    fn of_event(reason: &str, detail: String, event: &OutboxEvent, now: DateTime<Utc>) -> Self {
        Self {
            event: Some(event.clone()),
            ..Self::new(reason, detail, &event.event_id, now)
        }
    }
}

/// The relay's settings besides its retries.
#[derive(Debug, Clone, Copy)]
pub struct RelayOptions {
    /// A record whose events still fail transiently this long after it was written is
    /// parked rather than retried further: an hour rides out an incident (the iterator
    /// age alarm fires after five minutes), and stays far inside the stream's 24 hours.
    pub park_after: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            park_after: Duration::from_secs(3600),
        }
    }
}

pub struct Relay<P> {
    publisher: P,
    retry: RetryPolicy,
    options: RelayOptions,
    /// The client of the records' own tables (named by each stream's ARN), where parked
    /// events are written and published secrets deleted; without it, what would be
    /// parked goes back to Lambda instead, and secrets wait for their TTL.
    tables: Option<aws_sdk_dynamodb::Client>,
    metrics: Metrics,
}

/// One outbox event and the stream record it came from.
struct Pending {
    sequence_number: String,
    table: Option<String>,
    created: DateTime<Utc>,
    event: OutboxEvent,
}

/// What publishing one chunk came to, by position in the chunk.
#[derive(Default)]
struct ChunkOutcome {
    /// Refused for good.
    refused: Vec<(usize, String)>,
    /// Still failing transiently after the last attempt.
    failing: Vec<(usize, String)>,
    /// Accepted by the bus.
    published: Vec<usize>,
}

impl<P: Publisher> Relay<P> {
    pub fn new(publisher: P, retry: RetryPolicy) -> Self {
        Self {
            publisher,
            retry,
            options: RelayOptions::default(),
            tables: None,
            metrics: Metrics::global(),
        }
    }

    /// The relay parking what it cannot publish in each record's own table, and deleting
    /// from it the outbox items of published events that carry a secret.
    pub fn with_tables(self, client: aws_sdk_dynamodb::Client) -> Self {
        Self {
            tables: Some(client),
            ..self
        }
    }

    pub fn with_options(self, options: RelayOptions) -> Self {
        Self { options, ..self }
    }

    /// The relay counting parked events into `metrics` (a test's own).
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self { metrics, ..self }
    }

    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// Handles one stream batch. Records that are not outbox inserts are skipped; what
    /// cannot be published is parked; only what could not even be parked, or may still be
    /// published by a retry, is reported failed.
    pub async fn handle(&self, batch: StreamEvent) -> DynamoDbEventResponse {
        let now = Utc::now();
        let mut failed_records: Vec<String> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut to_park: Vec<(Option<String>, String, ParkedEvent)> = Vec::new();
        for record in batch.records {
            let table = table_of(&record);
            let sequence_number = record.change.sequence_number.clone();
            match outbox_event(&record) {
                Ok(None) => {}
                Ok(Some(event)) => match sequence_number {
                    Some(sequence_number) => pending.push(Pending {
                        sequence_number,
                        table,
                        created: record.change.approximate_creation_date_time,
                        event,
                    }),
                    None => {
                        tracing::error!(event_id = %event.event_id, "stream record without a sequence number; cannot report it")
                    }
                },
                Err(error) => {
                    tracing::error!(error = %error, record_id = %record.event_id, "unreadable outbox record; parking it");
                    let image = serde_json::to_string(&record.change.new_image)
                        .unwrap_or_else(|e| format!("<unprintable: {e}>"));
                    let mut parked =
                        ParkedEvent::new("unreadable", error.to_string(), &record.event_id, now);
                    parked.record = Some(image);
                    to_park.push((table, sequence_number.unwrap_or_default(), parked));
                }
            }
        }
        for chunk in chunks(&pending) {
            let chunk: Vec<&Pending> = chunk.iter().map(|&i| &pending[i]).collect();
            if let [alone] = chunk.as_slice()
                && entry_size(&alone.event) > MAX_BYTES_PER_CALL
            {
                let detail = format!(
                    "{} bytes, more than PutEvents takes ({MAX_BYTES_PER_CALL})",
                    entry_size(&alone.event)
                );
                tracing::error!(event_id = %alone.event.event_id, detail, "event too large to publish; parking it");
                to_park.push((
                    alone.table.clone(),
                    alone.sequence_number.clone(),
                    ParkedEvent::of_event("too_large", detail, &alone.event, now),
                ));
                continue;
            }
            let outcome = self.publish_chunk(&chunk).await;
            for &index in &outcome.published {
                let pending = chunk[index];
                if pending.event.carries_secret {
                    self.forget(pending.table.as_deref(), &pending.event).await;
                }
            }
            for (index, detail) in outcome.refused {
                let pending = chunk[index];
                tracing::error!(event_id = %pending.event.event_id, error = %detail, "event refused by the bus; parking it");
                to_park.push((
                    pending.table.clone(),
                    pending.sequence_number.clone(),
                    ParkedEvent::of_event("refused", detail, &pending.event, now),
                ));
            }
            for (index, detail) in outcome.failing {
                let pending = chunk[index];
                let age = now
                    .signed_duration_since(pending.created)
                    .to_std()
                    .unwrap_or(Duration::ZERO);
                if age >= self.options.park_after {
                    tracing::error!(event_id = %pending.event.event_id, age_s = age.as_secs(), error = %detail, "event still failing past its time; parking it");
                    to_park.push((
                        pending.table.clone(),
                        pending.sequence_number.clone(),
                        ParkedEvent::of_event("undeliverable", detail, &pending.event, now),
                    ));
                } else {
                    tracing::warn!(event_id = %pending.event.event_id, error = %detail, "event not published; its stream record goes back to Lambda");
                    failed_records.push(pending.sequence_number.clone());
                }
            }
        }
        for (table, sequence_number, parked) in to_park {
            match self.park(table.as_deref(), &parked).await {
                Ok(()) => self.metrics.count(&Count::of(EVENTS_PARKED)),
                Err(error) => {
                    tracing::error!(error = %error, sk = %parked.sk, "could not park an event; its stream record goes back to Lambda");
                    if !sequence_number.is_empty() {
                        failed_records.push(sequence_number);
                    }
                }
            }
        }
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = failed_records
            .into_iter()
            .map(|sequence_number| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence_number);
                failure
            })
            .collect();
        response
    }

    /// Publishes one chunk, retrying exactly the entries that failed transiently.
    async fn publish_chunk(&self, chunk: &[&Pending]) -> ChunkOutcome {
        let mut outcome = ChunkOutcome::default();
        let mut unsent: Vec<(usize, String)> =
            (0..chunk.len()).map(|i| (i, String::new())).collect();
        let mut backoff = self.retry.first_backoff;
        for attempt in 1..=self.retry.attempts {
            let entries: Vec<&OutboxEvent> = unsent.iter().map(|(i, _)| &chunk[*i].event).collect();
            match self.publisher.publish(&entries).await {
                Ok(results) => {
                    let mut still = Vec::new();
                    for ((i, _), result) in unsent.iter().zip(results) {
                        let event = &chunk[*i].event;
                        match result {
                            None => {
                                tracing::info!(event_id = %event.event_id, detail_type = %event.detail_type, correlation_id = %event.correlation_id, "event published");
                                outcome.published.push(*i);
                            }
                            Some(error) if error.transient => {
                                tracing::warn!(attempt, event_id = %event.event_id, error = %error.detail, "event not accepted by the bus");
                                still.push((*i, error.detail));
                            }
                            Some(error) => outcome.refused.push((*i, error.detail)),
                        }
                    }
                    unsent = still;
                }
                Err(error) if error.transient => {
                    tracing::warn!(attempt, entries = unsent.len(), error = %error.detail, "PutEvents failed");
                    for (_, detail) in &mut unsent {
                        detail.clone_from(&error.detail);
                    }
                }
                Err(error) => {
                    outcome
                        .refused
                        .extend(unsent.drain(..).map(|(i, _)| (i, error.detail.clone())));
                }
            }
            if unsent.is_empty() {
                break;
            }
            if attempt < self.retry.attempts {
                tokio::time::sleep(backoff + backoff.mul_f64(fastrand::f64() / 2.0)).await;
                backoff *= 2;
            }
        }
        outcome.failing = unsent;
        outcome
    }

    /// Deletes a published event's outbox item. A failure is only logged: the event is on
    /// the bus, so its record must not go back to Lambda, and the TTL still removes it.
    async fn forget(&self, table: Option<&str>, event: &OutboxEvent) {
        let (Some(client), Some(table)) = (&self.tables, table) else {
            tracing::warn!(event_id = %event.event_id, "no table client: an event carrying a secret stays until its TTL");
            return;
        };
        let deleted = client
            .delete_item()
            .table_name(table)
            .key("pk", AttributeValue::S(event.pk.clone()))
            .key("sk", AttributeValue::S(event.sk.clone()))
            .send()
            .await;
        if let Err(error) = deleted {
            tracing::warn!(event_id = %event.event_id, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&error), "could not delete a published event carrying a secret; its TTL will");
        }
    }

    async fn park(&self, table: Option<&str>, parked: &ParkedEvent) -> Result<(), String> {
        let (Some(client), Some(table)) = (&self.tables, table) else {
            return Err("no parking configured for this record's table".into());
        };
        let item = serde_dynamo::to_item(parked).map_err(|e| e.to_string())?;
        client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))
    }
}

/// The positions of `pending` in chunks PutEvents takes: at most ten entries and 256 KB
/// each, in order. An entry larger than a whole call is a chunk of its own (which the
/// caller parks).
fn chunks(pending: &[Pending]) -> Vec<Vec<usize>> {
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for (i, item) in pending.iter().enumerate() {
        let size = entry_size(&item.event);
        if !current.is_empty()
            && (current.len() == MAX_ENTRIES_PER_CALL || bytes + size > MAX_BYTES_PER_CALL)
        {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(i);
        bytes += size;
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// An entry's size as EventBridge counts it against a call's 256 KB: the UTF-8 bytes of its
/// source, detail-type and detail (the relay sets no time and no resources).
pub fn entry_size(event: &OutboxEvent) -> usize {
    event.source.len() + event.detail_type.len() + event.detail.len()
}

/// The table a stream record comes from, named by its stream's ARN
/// (`arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>`).
fn table_of(record: &EventRecord) -> Option<String> {
    let arn = record.event_source_arn.as_deref()?;
    let after = arn.split_once(":table/")?.1;
    Some(after.split('/').next()?.to_owned())
}

/// The outbox event an INSERT stream record carries, if it is one.
fn outbox_event(record: &EventRecord) -> Result<Option<OutboxEvent>, serde_dynamo::Error> {
    let is_outbox = record.event_name == "INSERT"
        && matches!(record.change.new_image.get("pk"), Some(serde_dynamo::AttributeValue::S(pk)) if pk.starts_with(OUTBOX_PREFIX));
    if !is_outbox {
        return Ok(None);
    }
    serde_dynamo::from_item(record.change.new_image.clone()).map(Some)
}

/// What a replay of parked events did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    /// Published and removed from the parked store.
    pub published: Vec<String>,
    /// Still not publishable (with the reason), kept.
    pub kept: Vec<(String, String)>,
}

/// The events parked in `table`, oldest first.
pub async fn parked(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Vec<ParkedEvent>, String> {
    let mut parked = Vec::new();
    let mut after: Option<HashMap<String, AttributeValue>> = None;
    loop {
        let output = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :parked")
            .expression_attribute_values(":parked", AttributeValue::S(PARKED_PARTITION.into()))
            .consistent_read(true)
            .set_exclusive_start_key(after)
            .send()
            .await
            .map_err(|e| format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
        for item in output.items.unwrap_or_default() {
            parked.push(serde_dynamo::from_item(item).map_err(|e| e.to_string())?);
        }
        match output.last_evaluated_key {
            Some(key) if !key.is_empty() => after = Some(key),
            _ => return Ok(parked),
        }
    }
}

/// Publishes every event parked in `table` (the cause fixed), removing each from the
/// store once the bus took it; what still cannot be published (an unreadable record, an
/// entry the bus refuses again) stays, and is reported.
pub async fn replay_parked<P: Publisher>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    publisher: &P,
) -> Result<Replay, String> {
    let mut replay = Replay::default();
    for parked in parked(client, table).await? {
        let Some(event) = &parked.event else {
            replay.kept.push((
                parked.sk.clone(),
                format!("unreadable record: {}", parked.detail),
            ));
            continue;
        };
        if entry_size(event) > MAX_BYTES_PER_CALL {
            replay
                .kept
                .push((parked.sk.clone(), "too large for PutEvents".into()));
            continue;
        }
        match publisher.publish(&[event]).await {
            Ok(results) if results.first().is_some_and(Option::is_none) => {
                client
                    .delete_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S(parked.pk.clone()))
                    .key("sk", AttributeValue::S(parked.sk.clone()))
                    .send()
                    .await
                    .map_err(|e| format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
                tracing::info!(event_id = %event.event_id, "parked event replayed");
                replay.published.push(event.event_id.clone());
            }
            Ok(results) => {
                let detail = results
                    .into_iter()
                    .flatten()
                    .next()
                    .map(|e| e.detail)
                    .unwrap_or_else(|| "no result".into());
                replay.kept.push((parked.sk.clone(), detail));
            }
            Err(error) => replay.kept.push((parked.sk.clone(), error.detail)),
        }
    }
    Ok(replay)
}

/// The whole relay Lambda, the same for every capability: publishes to the bus named by
/// `EVENT_BUS_NAME`, parks in the table the stream belongs to, counts what it parks.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init_tracing();
    crate::metrics::init()?;
    let bus = crate::aws::required_env("EVENT_BUS_NAME")?;
    let config = crate::aws::sdk_config().await?;
    let client = aws_sdk_eventbridge::Client::new(&config);
    crate::aws::warm_eventbridge(&client, &bus).await;
    let relay = Relay::new(
        EventBridgePublisher::new(client, bus),
        RetryPolicy::default(),
    )
    .with_tables(aws_sdk_dynamodb::Client::new(&config));
    let relay = &relay;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<StreamEvent>| async move {
            let response = relay.handle(event.payload).await;
            crate::metrics::flush();
            Ok::<_, lambda_runtime::Error>(response)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    /// A bus that rejects chosen events a given number of times (transiently, or for good
    /// when the count is `u32::MAX`), fails whole calls, and records every call.
    struct ScriptedBus {
        rejections: Mutex<HashMap<String, u32>>,
        whole_call_failures: Mutex<u32>,
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl ScriptedBus {
        fn new(rejections: &[(&str, u32)], whole_call_failures: u32) -> Self {
            Self {
                rejections: Mutex::new(
                    rejections
                        .iter()
                        .map(|(id, n)| (id.to_string(), *n))
                        .collect(),
                ),
                whole_call_failures: Mutex::new(whole_call_failures),
                calls: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> Vec<Vec<String>> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Publisher for ScriptedBus {
        async fn publish(
            &self,
            entries: &[&OutboxEvent],
        ) -> Result<Vec<Option<PublishError>>, PublishError> {
            self.calls
                .lock()
                .unwrap()
                .push(entries.iter().map(|e| e.event_id.clone()).collect());
            {
                let mut failures = self.whole_call_failures.lock().unwrap();
                if *failures > 0 {
                    *failures -= 1;
                    return Err(PublishError {
                        transient: true,
                        detail: "throttled".into(),
                    });
                }
            }
            let mut rejections = self.rejections.lock().unwrap();
            Ok(entries
                .iter()
                .map(|e| match rejections.get_mut(&e.event_id) {
                    Some(left) if *left == u32::MAX => {
                        Some(PublishError::entry("MalformedDetail", "never"))
                    }
                    Some(left) if *left > 0 => {
                        *left -= 1;
                        Some(PublishError::entry("InternalFailure", "again"))
                    }
                    _ => None,
                })
                .collect())
        }
    }

    fn batch_of(ids: &[&str], detail_bytes: usize, created: i64) -> StreamEvent {
        let detail = format!("\"{}\"", "x".repeat(detail_bytes.saturating_sub(2)));
        let records: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                json!({
                    "eventID": format!("r{n}"), "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                    "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/things/stream/2026-01-01T00:00:00.000",
                    "dynamodb": {"ApproximateCreationDateTime": created, "Keys": {}, "SequenceNumber": format!("{}", 1000 + n),
                        "SizeBytes": 1, "StreamViewType": "NEW_IMAGE", "NewImage": {
                            "pk": {"S": format!("OUTBOX#{id}")}, "sk": {"S": "EVENT"}, "eventId": {"S": id},
                            "source": {"S": "shop.test"}, "detailType": {"S": "Tested"}, "detail": {"S": detail},
                            "correlationId": {"S": "c"}, "occurredAt": {"S": "2026-01-01T00:00:00.000Z"}, "expiresAt": {"N": "1"}}}
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn batch(ids: &[&str]) -> StreamEvent {
        batch_of(ids, 2, Utc::now().timestamp())
    }

    fn relay(bus: ScriptedBus) -> Relay<ScriptedBus> {
        Relay::new(
            bus,
            RetryPolicy {
                attempts: 3,
                first_backoff: Duration::ZERO,
            },
        )
    }

    fn failed(response: &DynamoDbEventResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn only_the_failed_entries_are_sent_again() {
        let relay = relay(ScriptedBus::new(&[("b", 1), ("d", 2)], 0));
        let response = relay.handle(batch(&["a", "b", "c", "d", "e"])).await;
        assert!(failed(&response).is_empty());
        assert_eq!(
            relay.publisher.calls(),
            vec![vec!["a", "b", "c", "d", "e"], vec!["b", "d"], vec!["d"]]
        );
    }

    #[tokio::test]
    async fn entries_still_failing_after_the_last_attempt_go_back_to_lambda_while_young() {
        let relay = relay(ScriptedBus::new(&[("b", 99)], 0));
        let response = relay.handle(batch(&["a", "b", "c"])).await;
        assert_eq!(failed(&response), vec!["1001"]);
        assert_eq!(relay.publisher.calls().len(), 3);
    }

    #[tokio::test]
    async fn an_entry_the_bus_refuses_for_good_is_not_retried() {
        // Without parking configured, a refused entry goes back to Lambda (the harness
        // tests against moto park it): what matters here is that nobody retries it.
        let relay = relay(ScriptedBus::new(&[("b", u32::MAX)], 0));
        let response = relay.handle(batch(&["a", "b", "c"])).await;
        assert_eq!(relay.publisher.calls(), vec![vec!["a", "b", "c"]]);
        assert_eq!(failed(&response), vec!["1001"]);
    }

    #[tokio::test]
    async fn a_failed_call_is_retried_whole_and_batches_hold_ten_entries() {
        let ids: Vec<String> = (0..23).map(|n| format!("e{n}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let relay = relay(ScriptedBus::new(&[], 1));
        let response = relay.handle(batch(&refs)).await;
        assert!(failed(&response).is_empty());
        let sizes: Vec<usize> = relay.publisher.calls().iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            vec![10, 10, 10, 3],
            "the first call failed whole and was repeated"
        );
    }

    #[tokio::test]
    async fn calls_stay_under_256_kb_whatever_the_count() {
        // Five events of 100 KB: two fit a call, a third would not.
        let ids = ["a", "b", "c", "d", "e"];
        let relay = relay(ScriptedBus::new(&[], 0));
        let response = relay
            .handle(batch_of(&ids, 100 * 1024, Utc::now().timestamp()))
            .await;
        assert!(failed(&response).is_empty());
        let calls = relay.publisher.calls();
        assert_eq!(
            calls,
            vec![vec!["a", "b"], vec!["c", "d"], vec!["e"]],
            "by size, not count"
        );
    }

    #[tokio::test]
    async fn records_that_are_not_outbox_inserts_are_not_published() {
        let mut event = batch(&["a", "b"]);
        event.records[0].event_name = "MODIFY".into();
        event.records[1].change.new_image.insert(
            "pk".into(),
            serde_dynamo::AttributeValue::S("PRODUCT#1".into()),
        );
        let relay = relay(ScriptedBus::new(&[], 0));
        let response = relay.handle(event).await;
        assert!(failed(&response).is_empty());
        assert!(relay.publisher.calls().is_empty());
    }

    #[test]
    fn the_table_is_named_by_the_stream_arn() {
        let record = &batch(&["a"]).records[0];
        assert_eq!(table_of(record).as_deref(), Some("things"));
    }

    #[test]
    fn only_the_buses_own_trouble_is_transient() {
        assert!(PublishError::entry("InternalFailure", "").transient);
        assert!(PublishError::entry("ThrottlingException", "").transient);
        assert!(!PublishError::entry("MalformedDetail", "").transient);
        assert!(!PublishError::entry("InvalidArgument", "").transient);
    }
}
