//! Lambda's event source mappings, locally: SQS queues and DynamoDB streams feeding
//! functions in batches, with Lambda's failure semantics.
//!
//! - SQS: pollers receive up to `batch_size` messages (waiting up to the batching
//!   window), invoke, and delete what succeeded. With `ReportBatchItemFailures` only
//!   the reported messages stay; a failed invocation, or a report naming an empty or
//!   unknown message id, leaves the whole batch to come back after the visibility
//!   timeout, and the queue's redrive policy moves a message to its DLQ after
//!   maxReceiveCount receives (moto applies it). Records carry the messages' attributes
//!   in Lambda's shape.
//! - Streams: one poller per shard, strictly in order. A batch is delivered once it has
//!   `batch_size` records or the batching window has passed since its first record was
//!   read. A failed invocation retries the same batch (with `BisectBatchOnFunctionError`,
//!   its halves, left first, a split not counting as a retry); with
//!   `ReportBatchItemFailures` it resumes from the lowest failed sequence number; after
//!   `MaximumRetryAttempts` the batch's description goes to the on-failure destination
//!   and the shard moves on. Records that match none of the filter patterns never reach
//!   the function.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::faults::Faults;
use crate::lambda::{Invocation, InvocationsEnded, LambdaFunction, Outcome};
use crate::pattern;
use crate::streams::lambda_record;
use crate::topology::{QueueMappingSpec, REGION, StreamMappingSpec};

/// The shortest time between two reads of a shard with nothing new: Lambda polls shards
/// about four times a second.
const STREAM_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// The longest, by default: a shard is read again this soon even if no invocation has ended
/// since, for the writes that come from outside the stack (a test, a script).
const STREAM_IDLE_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// SQS long-poll wait with no message in hand: Lambda's pollers wait the most SQS allows,
/// and moto answers as soon as a message arrives. A shorter wait only costs requests
/// (each poller asked once a second when this was 1). Shutdown aborts the poll.
pub const SQS_LONG_POLL_SECONDS: i32 = 20;

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingStats {
    pub mapping: String,
    pub function: String,
    pub batches: AtomicU64,
    pub records: AtomicU64,
    pub failed_batches: AtomicU64,
    pub filtered_out: AtomicU64,
    pub duplicates_delivered: AtomicU64,
    /// Requests to the source: SQS receives, or reads of a stream's shards.
    pub polls: AtomicU64,
}

impl MappingStats {
    fn new(mapping: &str, function: &str) -> Arc<Self> {
        Arc::new(Self {
            mapping: mapping.into(),
            function: function.into(),
            ..Self::default()
        })
    }
}

fn count(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

/// What an invocation reported, for a batch-oriented source.
enum BatchResult {
    /// Everything succeeded.
    Done,
    /// These item identifiers failed (ReportBatchItemFailures).
    Partial(Vec<String>),
    /// The invocation failed as a whole.
    Failed(String),
}

fn batch_result(invocation: &Invocation, report_item_failures: bool) -> BatchResult {
    match &invocation.outcome {
        Outcome::Success(body) if report_item_failures => {
            let parsed: Option<Vec<String>> =
                serde_json::from_slice::<Value>(body)
                    .ok()
                    .and_then(|response| match response.get("batchItemFailures") {
                        None | Some(Value::Null) => Some(Vec::new()),
                        Some(Value::Array(failures)) => failures
                            .iter()
                            .map(|f| {
                                f.get("itemIdentifier")
                                    .and_then(Value::as_str)
                                    .map(str::to_owned)
                            })
                            .collect(),
                        Some(_) => None,
                    });
            match parsed {
                Some(failed) if failed.is_empty() => BatchResult::Done,
                Some(failed) => BatchResult::Partial(failed),
                // Lambda treats an unreadable response as a failure of the whole batch.
                None => BatchResult::Failed("unreadable batchItemFailures response".into()),
            }
        }
        Outcome::Success(_) => BatchResult::Done,
        _ => {
            let error = invocation.error_payload().unwrap_or_default();
            BatchResult::Failed(format!(
                "{}: {}",
                error["errorType"].as_str().unwrap_or("?"),
                error["errorMessage"].as_str().unwrap_or("")
            ))
        }
    }
}

/// Starts the pollers of one SQS mapping.
pub fn start_queue_mapping(
    config: &SdkConfig,
    spec: QueueMappingSpec,
    function: Arc<LambdaFunction>,
    faults: Arc<Faults>,
    pollers: usize,
) -> (Arc<MappingStats>, Vec<JoinHandle<()>>) {
    let stats = MappingStats::new(&spec.logical_id, &spec.function);
    let sqs = aws_sdk_sqs::Client::new(config);
    let spec = Arc::new(spec);
    let handles = (0..pollers.max(1))
        .map(|poller| {
            let poller = QueuePoller {
                sqs: sqs.clone(),
                spec: spec.clone(),
                function: function.clone(),
                faults: faults.for_source(&format!("{}#{poller}", spec.logical_id)),
                stats: stats.clone(),
            };
            tokio::spawn(poller.run())
        })
        .collect();
    (stats, handles)
}

struct QueuePoller {
    sqs: aws_sdk_sqs::Client,
    spec: Arc<QueueMappingSpec>,
    function: Arc<LambdaFunction>,
    faults: Arc<Faults>,
    stats: Arc<MappingStats>,
}

impl QueuePoller {
    async fn run(self) {
        loop {
            let messages = self.receive_batch().await;
            if messages.is_empty() {
                continue;
            }
            self.deliver(messages).await;
        }
    }

    async fn receive_batch(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let mut batch = Vec::new();
        let window = Duration::from_secs(self.spec.batching_window_seconds.into());
        let started = tokio::time::Instant::now();
        loop {
            let wanted = (self.spec.batch_size as usize)
                .saturating_sub(batch.len())
                .clamp(1, 10);
            // A batch begun waits no longer than its batching window for the rest.
            let wait = if batch.is_empty() {
                SQS_LONG_POLL_SECONDS
            } else {
                let left = window
                    .saturating_sub(started.elapsed())
                    .as_secs_f64()
                    .ceil();
                (left as i32).min(SQS_LONG_POLL_SECONDS)
            };
            count(&self.stats.polls, 1);
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.spec.queue_url)
                .max_number_of_messages(wanted as i32)
                .wait_time_seconds(wait)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await;
            match received {
                Ok(output) => batch.extend(output.messages.unwrap_or_default()),
                Err(error) => {
                    eprintln!(
                        "shop-local: receiving from {}: {}",
                        self.spec.queue_url,
                        aws_sdk_sqs::error::DisplayErrorContext(error)
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    return batch;
                }
            }
            if batch.len() >= self.spec.batch_size as usize
                || batch.is_empty()
                || started.elapsed() >= window
            {
                return batch;
            }
        }
    }

    async fn deliver(&self, messages: Vec<aws_sdk_sqs::types::Message>) {
        let delay = self.faults.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (records, filtered): (Vec<_>, Vec<_>) = messages
            .iter()
            .map(|m| (m, self.record(m)))
            .partition(|(_, record)| {
                self.spec.filters.is_empty()
                    || self
                        .spec
                        .filters
                        .iter()
                        .any(|filter| pattern::matches(filter, &filter_view(record)))
            });
        // Lambda deletes messages that match no filter without invoking.
        count(&self.stats.filtered_out, filtered.len());
        self.delete(filtered.iter().map(|(m, _)| *m)).await;
        if records.is_empty() {
            return;
        }
        count(&self.stats.batches, 1);
        count(&self.stats.records, records.len());
        let event = json!({ "Records": records.iter().map(|(_, r)| r).collect::<Vec<_>>() });
        let invocation = self.function.invoke(Bytes::from(event.to_string())).await;
        // At-least-once delivery: some messages arrive a second time, in their own batch,
        // before they are deleted.
        for (_, record) in records.iter().filter(|_| self.faults.should_duplicate()) {
            count(&self.stats.duplicates_delivered, 1);
            let _ = self
                .function
                .invoke(Bytes::from(json!({ "Records": [record] }).to_string()))
                .await;
        }
        let in_batch = |id: &String| {
            records
                .iter()
                .any(|(m, _)| m.message_id() == Some(id.as_str()))
        };
        let failed: Vec<String> =
            match batch_result(&invocation, self.spec.report_batch_item_failures) {
                BatchResult::Done => Vec::new(),
                BatchResult::Partial(ids) if ids.iter().all(in_batch) => ids,
                // Lambda treats an empty or unknown itemIdentifier as a failure of the
                // whole batch: nothing is deleted, everything comes back.
                BatchResult::Partial(ids) => {
                    let reason =
                        format!("batchItemFailures names no message of the batch: {ids:?}");
                    return self.fail_batch(records.len(), &reason);
                }
                BatchResult::Failed(reason) => return self.fail_batch(records.len(), &reason),
            };
        if !failed.is_empty() {
            count(&self.stats.failed_batches, 1);
        }
        self.delete(
            records
                .iter()
                .map(|(m, _)| *m)
                .filter(|m| !failed.iter().any(|id| Some(id.as_str()) == m.message_id())),
        )
        .await;
    }

    /// A failed batch stays in the queue, to come back after the visibility timeout.
    fn fail_batch(&self, size: usize, reason: &str) {
        count(&self.stats.failed_batches, 1);
        eprintln!(
            "shop-local: {} failed a batch of {size} from {}: {reason}",
            self.spec.function, self.spec.logical_id
        );
    }

    fn record(&self, message: &aws_sdk_sqs::types::Message) -> Value {
        let attributes: serde_json::Map<String, Value> = message
            .attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.as_str().to_owned(), json!(value)))
            .collect();
        let mut record = json!({
            "messageId": message.message_id(),
            "receiptHandle": message.receipt_handle(),
            "body": message.body(),
            "attributes": attributes,
            "messageAttributes": message_attributes(message),
            "md5OfBody": message.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.spec.queue_arn,
            "awsRegion": REGION,
        });
        if let Some(md5) = message.md5_of_message_attributes() {
            record["md5OfMessageAttributes"] = json!(md5);
        }
        record
    }

    async fn delete<'a>(&self, messages: impl Iterator<Item = &'a aws_sdk_sqs::types::Message>) {
        let entries: Vec<_> = messages
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        for chunk in entries.chunks(10) {
            let result = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.spec.queue_url)
                .set_entries(Some(chunk.to_vec()))
                .send()
                .await;
            if let Err(error) = result {
                eprintln!(
                    "shop-local: deleting from {}: {}",
                    self.spec.queue_url,
                    aws_sdk_sqs::error::DisplayErrorContext(error)
                );
            }
        }
    }
}

/// A message's attributes as Lambda shows them: both list fields always present, binary
/// values in base64.
fn message_attributes(message: &aws_sdk_sqs::types::Message) -> Value {
    let base64 = |blob: &aws_sdk_sqs::primitives::Blob| BASE64.encode(blob.as_ref());
    let attributes: serde_json::Map<String, Value> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let mut attribute = serde_json::Map::new();
            if let Some(string) = value.string_value() {
                attribute.insert("stringValue".into(), json!(string));
            }
            if let Some(binary) = value.binary_value() {
                attribute.insert("binaryValue".into(), json!(base64(binary)));
            }
            attribute.insert("stringListValues".into(), json!(value.string_list_values()));
            attribute.insert(
                "binaryListValues".into(),
                json!(
                    value
                        .binary_list_values()
                        .iter()
                        .map(base64)
                        .collect::<Vec<_>>()
                ),
            );
            attribute.insert("dataType".into(), json!(value.data_type()));
            (name.clone(), Value::Object(attribute))
        })
        .collect();
    Value::Object(attributes)
}

/// Filter patterns see an SQS message with its body parsed when it is JSON.
fn filter_view(record: &Value) -> Value {
    let mut view = record.clone();
    if let Some(parsed) = record["body"]
        .as_str()
        .and_then(|body| serde_json::from_str::<Value>(body).ok())
    {
        view["body"] = parsed;
    }
    view
}

/// When a stream poller reads again a shard that had nothing new.
#[derive(Clone)]
pub struct IdleReads {
    /// The invocations of the functions that write the tables.
    pub invocations_ended: InvocationsEnded,
    /// Read again after this long even if no invocation has ended.
    pub at_the_latest: Duration,
}

impl IdleReads {
    pub fn after(invocations_ended: &InvocationsEnded) -> Self {
        Self {
            invocations_ended: invocations_ended.clone(),
            at_the_latest: STREAM_IDLE_POLL_INTERVAL,
        }
    }
}

/// Starts the pollers of one stream mapping: one per shard.
pub async fn start_stream_mapping(
    config: &SdkConfig,
    spec: StreamMappingSpec,
    function: Arc<LambdaFunction>,
    idle_reads: IdleReads,
) -> Result<(Arc<MappingStats>, Vec<JoinHandle<()>>), String> {
    let stats = MappingStats::new(&spec.logical_id, &spec.function);
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let streams = aws_sdk_dynamodbstreams::Client::new(config);
    let error = |e: &dyn std::fmt::Display| format!("stream of {}: {e}", spec.table_name);
    let table = dynamodb
        .describe_table()
        .table_name(&spec.table_name)
        .send()
        .await
        .map_err(|e| error(&e))?;
    let stream_arn = table
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| error(&"the table has no stream"))?;
    let description = streams
        .describe_stream()
        .stream_arn(&stream_arn)
        .send()
        .await
        .map_err(|e| error(&e))?;
    let shards = description
        .stream_description
        .and_then(|d| d.shards)
        .unwrap_or_default();
    let spec = Arc::new(spec);
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut handles = Vec::new();
    for shard in shards {
        let Some(shard_id) = shard.shard_id else {
            continue;
        };
        let poller = ShardPoller {
            streams: streams.clone(),
            sqs: sqs.clone(),
            stream_arn: stream_arn.clone(),
            shard_id,
            spec: spec.clone(),
            function: function.clone(),
            stats: stats.clone(),
            ended: idle_reads.invocations_ended.subscribe(),
            idle_at_the_latest: idle_reads.at_the_latest,
        };
        handles.push(tokio::spawn(poller.run()));
    }
    Ok((stats, handles))
}

struct ShardPoller {
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    stream_arn: String,
    shard_id: String,
    spec: Arc<StreamMappingSpec>,
    function: Arc<LambdaFunction>,
    stats: Arc<MappingStats>,
    ended: watch::Receiver<u64>,
    idle_at_the_latest: Duration,
}

impl ShardPoller {
    /// After a read that found the shard empty: no sooner than Lambda would poll again,
    /// and then once an invocation has ended (only functions write to the tables), or at
    /// the latest after the idle interval.
    async fn until_worth_reading(&mut self, polled: Instant) {
        tokio::time::sleep_until(polled + STREAM_POLL_INTERVAL).await;
        let at_the_latest = polled + self.idle_at_the_latest;
        let _ = tokio::time::timeout_at(at_the_latest, self.ended.changed()).await;
    }

    async fn run(mut self) {
        let start = if self.spec.starting_position == "LATEST" {
            ShardIteratorType::Latest
        } else {
            ShardIteratorType::TrimHorizon
        };
        let mut iterator = loop {
            let request = self
                .streams
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(&self.shard_id)
                .shard_iterator_type(start.clone())
                .send()
                .await;
            match request {
                Ok(output) => break output.shard_iterator,
                Err(error) => {
                    eprintln!(
                        "shop-local: stream {}: {}",
                        self.spec.table_name,
                        aws_sdk_dynamodbstreams::error::DisplayErrorContext(error)
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let batch_size = (self.spec.batch_size as usize).max(1);
        let window = Duration::from_secs(self.spec.batching_window_seconds.into());
        // Records read from the shard, in order, each with when it was read.
        let mut pending: VecDeque<(Instant, Value)> = VecDeque::new();
        // The batch in delivery, as sizes of consecutive sub-ranges of the front of
        // `pending`: the last is delivered next. One range, unless bisected.
        let mut ranges: Vec<usize> = Vec::new();
        // Retries of the range in delivery.
        let mut attempts: i64 = 0;
        let mut polled = Instant::now();
        loop {
            let mut read = 0;
            if pending.len() < batch_size
                && let Some(current) = iterator.clone()
            {
                // What an invocation writes from here on, this read may miss: it wakes
                // the next wait.
                self.ended.borrow_and_update();
                polled = Instant::now();
                count(&self.stats.polls, 1);
                match self
                    .streams
                    .get_records()
                    .shard_iterator(current)
                    .send()
                    .await
                {
                    Ok(page) => {
                        iterator = page.next_shard_iterator;
                        let now = Instant::now();
                        for record in page.records.unwrap_or_default() {
                            read += 1;
                            let record = lambda_record(&record, &self.stream_arn);
                            if self.spec.filters.is_empty()
                                || self
                                    .spec
                                    .filters
                                    .iter()
                                    .any(|f| pattern::matches(f, &record))
                            {
                                pending.push_back((now, record));
                            } else {
                                count(&self.stats.filtered_out, 1);
                            }
                        }
                    }
                    Err(error) => {
                        eprintln!(
                            "shop-local: stream {}: {}",
                            self.spec.table_name,
                            aws_sdk_dynamodbstreams::error::DisplayErrorContext(error)
                        );
                    }
                }
            }
            if ranges.is_empty() {
                // A new batch: once it is full, or the batching window has passed since
                // its first record was read.
                let Some((first_read, _)) = pending.front() else {
                    self.until_worth_reading(polled).await;
                    continue;
                };
                let waited = first_read.elapsed();
                if pending.len() < batch_size && waited < window {
                    if read == 0 {
                        tokio::time::sleep(STREAM_POLL_INTERVAL.min(window - waited)).await;
                    }
                    continue;
                }
                ranges.push(pending.len().min(batch_size));
            }
            let size = ranges.last().copied().unwrap_or_default();
            let batch: Vec<Value> = pending.iter().take(size).map(|(_, r)| r.clone()).collect();
            count(&self.stats.batches, 1);
            count(&self.stats.records, batch.len());
            let invocation = self
                .function
                .invoke(Bytes::from(json!({ "Records": batch }).to_string()))
                .await;
            let done = match batch_result(&invocation, self.spec.report_batch_item_failures) {
                BatchResult::Done => size,
                BatchResult::Partial(failed) => {
                    // Lambda resumes from the lowest failed sequence number; an identifier
                    // that is not in the batch fails the whole batch.
                    let positions: Option<Vec<usize>> = failed
                        .iter()
                        .map(|id| {
                            batch.iter().position(|r| {
                                r["dynamodb"]["SequenceNumber"].as_str() == Some(id.as_str())
                            })
                        })
                        .collect();
                    positions.and_then(|p| p.into_iter().min()).unwrap_or(0)
                }
                BatchResult::Failed(reason) => {
                    eprintln!(
                        "shop-local: {} failed a stream batch of {}: {reason}",
                        self.spec.function,
                        batch.len()
                    );
                    0
                }
            };
            pending.drain(..done);
            if done == size {
                ranges.pop();
                attempts = 0;
                continue;
            }
            count(&self.stats.failed_batches, 1);
            if self.spec.bisect_on_error && size > 1 && !invocation.outcome.is_success() {
                // BisectBatchOnFunctionError: the halves are retried in order, left first;
                // a split is not a retry attempt.
                ranges.pop();
                ranges.push(size - size / 2);
                ranges.push(size / 2);
                attempts = 0;
                continue;
            }
            let remaining = size - done;
            if let Some(range) = ranges.last_mut() {
                *range = remaining;
            }
            attempts += 1;
            if self.spec.maximum_retry_attempts >= 0 && attempts > self.spec.maximum_retry_attempts
            {
                let given_up: Vec<Value> = pending.drain(..remaining).map(|(_, r)| r).collect();
                ranges.pop();
                self.give_up(&given_up).await;
                attempts = 0;
                continue;
            }
            tokio::time::sleep(Duration::from_millis((100 * attempts as u64).min(2_000))).await;
        }
    }

    /// Lambda's on-failure record for a stream batch it stopped retrying: where the records
    /// were, not the records themselves.
    async fn give_up(&self, records: &[Value]) {
        let first = records
            .first()
            .and_then(|r| r["dynamodb"]["SequenceNumber"].as_str())
            .unwrap_or_default();
        let last = records
            .last()
            .and_then(|r| r["dynamodb"]["SequenceNumber"].as_str())
            .unwrap_or_default();
        eprintln!(
            "shop-local: {} gave up on {} stream records ({first}..{last}) of {}",
            self.spec.function,
            records.len(),
            self.spec.table_name
        );
        let Some(arn) = &self.spec.on_failure_arn else {
            return;
        };
        let Some(queue_name) = arn.rsplit(':').next() else {
            return;
        };
        let Ok(url) = self.sqs.get_queue_url().queue_name(queue_name).send().await else {
            return;
        };
        let message = json!({
            "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": self.spec.maximum_retry_attempts + 1},
            "DDBStreamBatchInfo": {
                "shardId": self.shard_id, "startSequenceNumber": first, "endSequenceNumber": last,
                "batchSize": records.len(), "streamArn": self.stream_arn,
            },
        });
        let _ = self
            .sqs
            .send_message()
            .queue_url(url.queue_url().unwrap_or_default())
            .message_body(message.to_string())
            .send()
            .await;
    }
}
