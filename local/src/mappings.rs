//! Lambda's event source mappings, locally: SQS queues and DynamoDB streams feeding
//! functions in batches, with Lambda's failure semantics.
//!
//! - SQS: pollers receive up to `batch_size` messages (waiting up to the batching
//!   window), invoke, and delete what succeeded. With `ReportBatchItemFailures` only
//!   the reported messages stay; a failed invocation leaves the whole batch to come back
//!   after the visibility timeout, and the queue's redrive policy moves a message to its
//!   DLQ after maxReceiveCount receives (moto applies it).
//! - Streams: one poller per shard, strictly in order. A failed invocation retries the
//!   same batch; with `ReportBatchItemFailures` it resumes from the lowest failed
//!   sequence number; after `MaximumRetryAttempts` the batch's description goes to the
//!   on-failure destination and the shard moves on. Records that match none of the
//!   filter patterns never reach the function.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::faults::Faults;
use crate::lambda::{Invocation, LambdaFunction, Outcome};
use crate::pattern;
use crate::streams::lambda_record;
use crate::topology::{QueueMappingSpec, REGION, StreamMappingSpec};

/// How long an idle stream poller waits before asking again (Lambda polls shards about
/// four times a second).
const STREAM_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// SQS long-poll wait; short, so shutdown is prompt.
const SQS_WAIT_SECONDS: i32 = 1;

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
        .map(|_| {
            let poller = QueuePoller {
                sqs: sqs.clone(),
                spec: spec.clone(),
                function: function.clone(),
                faults: faults.clone(),
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
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.spec.queue_url)
                .max_number_of_messages(wanted as i32)
                .wait_time_seconds(SQS_WAIT_SECONDS)
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
        let failed: Vec<String> =
            match batch_result(&invocation, self.spec.report_batch_item_failures) {
                BatchResult::Done => Vec::new(),
                BatchResult::Partial(ids) => ids,
                BatchResult::Failed(reason) => {
                    count(&self.stats.failed_batches, 1);
                    eprintln!(
                        "shop-local: {} failed a batch of {} from {}: {reason}",
                        self.spec.function,
                        records.len(),
                        self.spec.logical_id
                    );
                    return;
                }
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

    fn record(&self, message: &aws_sdk_sqs::types::Message) -> Value {
        let attributes: serde_json::Map<String, Value> = message
            .attributes()
            .into_iter()
            .flatten()
            .map(|(name, value)| (name.as_str().to_owned(), json!(value)))
            .collect();
        json!({
            "messageId": message.message_id(),
            "receiptHandle": message.receipt_handle(),
            "body": message.body(),
            "attributes": attributes,
            "messageAttributes": {},
            "md5OfBody": message.md5_of_body(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.spec.queue_arn,
            "awsRegion": REGION,
        })
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

/// Starts the pollers of one stream mapping: one per shard.
pub async fn start_stream_mapping(
    config: &SdkConfig,
    spec: StreamMappingSpec,
    function: Arc<LambdaFunction>,
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
}

impl ShardPoller {
    async fn run(self) {
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
        let mut pending: VecDeque<Value> = VecDeque::new();
        let mut attempts: i64 = 0;
        loop {
            if pending.len() < self.spec.batch_size as usize
                && let Some(current) = iterator.clone()
            {
                match self
                    .streams
                    .get_records()
                    .shard_iterator(current)
                    .send()
                    .await
                {
                    Ok(page) => {
                        iterator = page.next_shard_iterator;
                        for record in page.records.unwrap_or_default() {
                            let record = lambda_record(&record, &self.stream_arn);
                            if self.spec.filters.is_empty()
                                || self
                                    .spec
                                    .filters
                                    .iter()
                                    .any(|f| pattern::matches(f, &record))
                            {
                                pending.push_back(record);
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
            if pending.is_empty() {
                tokio::time::sleep(STREAM_POLL_INTERVAL).await;
                continue;
            }
            let size = pending.len().min(self.spec.batch_size as usize);
            let batch: Vec<Value> = pending.iter().take(size).cloned().collect();
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
                attempts = 0;
                continue;
            }
            count(&self.stats.failed_batches, 1);
            attempts += 1;
            if self.spec.maximum_retry_attempts >= 0 && attempts > self.spec.maximum_retry_attempts
            {
                let remaining: Vec<Value> = pending.drain(..size - done).collect();
                self.give_up(&remaining).await;
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
