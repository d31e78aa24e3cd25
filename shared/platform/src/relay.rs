//! The outbox relay: the Lambda on a capability's table stream that publishes outbox
//! items to the bus. PutEvents takes 10 entries per call and can fail per entry
//! (`FailedEntryCount`): only the failed entries are retried, with backoff, and when the
//! attempts run out only the stream records behind them are reported as failed, so
//! Lambda retries from there. Publishing is at least once; consumers deduplicate on
//! the event id.

use std::time::Duration;

use aws_lambda_events::dynamodb::{Event as StreamEvent, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::outbox::{OUTBOX_PREFIX, OutboxEvent};

/// PutEvents' limit of entries per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;

/// Where events go. The real one is [`EventBridgePublisher`]; the trait exists so the
/// retry rules can be tested exactly (which entries are sent on which attempt).
pub trait Publisher {
    /// Sends up to ten entries. `Ok` holds, per entry in order, `None` when accepted and
    /// the error when that entry failed; `Err` means the whole call failed.
    fn publish(
        &self,
        entries: &[&OutboxEvent],
    ) -> impl Future<Output = Result<Vec<Option<String>>, String>> + Send;
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
    async fn publish(&self, entries: &[&OutboxEvent]) -> Result<Vec<Option<String>>, String> {
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
            .map_err(|error| format!("{}", DisplayErrorContext(&error)))?;
        let results = output.entries();
        if output.failed_entry_count() > 0 && results.len() != entries.len() {
            return Err(format!(
                "PutEvents answered {} results for {} entries",
                results.len(),
                entries.len()
            ));
        }
        Ok((0..entries.len())
            .map(|i| {
                results.get(i).and_then(|result| {
                    result
                        .error_code()
                        .map(|code| format!("{code}: {}", result.error_message().unwrap_or("")))
                })
            })
            .collect())
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

pub struct Relay<P> {
    publisher: P,
    retry: RetryPolicy,
}

/// One outbox event and the stream record it came from.
struct Pending {
    sequence_number: String,
    event: OutboxEvent,
}

impl<P: Publisher> Relay<P> {
    pub fn new(publisher: P, retry: RetryPolicy) -> Self {
        Self { publisher, retry }
    }

    /// Handles one stream batch. Records that are not outbox inserts are skipped; an
    /// outbox record that cannot be read is reported failed (never dropped), as is every
    /// record whose event could not be published.
    pub async fn handle(&self, batch: StreamEvent) -> DynamoDbEventResponse {
        let mut failed_records: Vec<String> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        for record in batch.records {
            match outbox_event(&record) {
                Ok(None) => {}
                Ok(Some(event)) => match record.change.sequence_number.clone() {
                    Some(sequence_number) => pending.push(Pending {
                        sequence_number,
                        event,
                    }),
                    None => {
                        tracing::error!(event_id = %event.event_id, "stream record without a sequence number; cannot report it")
                    }
                },
                Err(error) => {
                    tracing::error!(error = %error, record_id = %record.event_id, "unreadable outbox record");
                    if let Some(sequence_number) = record.change.sequence_number.clone() {
                        failed_records.push(sequence_number);
                    }
                }
            }
        }
        for chunk in pending.chunks(MAX_ENTRIES_PER_CALL) {
            for index in self.publish_chunk(chunk).await {
                failed_records.push(chunk[index].sequence_number.clone());
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

    /// Publishes one chunk, retrying exactly the entries that failed. Returns the
    /// positions that still failed after the last attempt.
    async fn publish_chunk(&self, chunk: &[Pending]) -> Vec<usize> {
        let mut unsent: Vec<usize> = (0..chunk.len()).collect();
        let mut backoff = self.retry.first_backoff;
        for attempt in 1..=self.retry.attempts {
            let entries: Vec<&OutboxEvent> = unsent.iter().map(|&i| &chunk[i].event).collect();
            match self.publisher.publish(&entries).await {
                Ok(results) => {
                    let still_failing: Vec<usize> = unsent
                        .iter()
                        .zip(&results)
                        .filter_map(|(&i, result)| {
                            let error = result.as_ref()?;
                            tracing::warn!(attempt, event_id = %chunk[i].event.event_id, error = %error, "event not accepted by the bus");
                            Some(i)
                        })
                        .collect();
                    for &i in unsent.iter().filter(|i| !still_failing.contains(i)) {
                        let event = &chunk[i].event;
                        tracing::info!(event_id = %event.event_id, detail_type = %event.detail_type, correlation_id = %event.correlation_id, "event published");
                    }
                    unsent = still_failing;
                }
                Err(error) => {
                    tracing::warn!(attempt, entries = unsent.len(), error = %error, "PutEvents failed")
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
        for &i in &unsent {
            tracing::error!(event_id = %chunk[i].event.event_id, attempts = self.retry.attempts, "event not published; its stream record goes back to Lambda");
        }
        unsent
    }
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

/// The whole relay Lambda, the same for every capability: publishes to the bus named by
/// `EVENT_BUS_NAME`.
pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init_tracing();
    let bus = crate::aws::required_env("EVENT_BUS_NAME")?;
    let client = aws_sdk_eventbridge::Client::new(&crate::aws::sdk_config().await?);
    crate::aws::warm_eventbridge(&client, &bus).await;
    let relay = Relay::new(
        EventBridgePublisher::new(client, bus),
        RetryPolicy::default(),
    );
    let relay = &relay;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<StreamEvent>| async move {
            Ok::<_, lambda_runtime::Error>(relay.handle(event.payload).await)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    /// A bus that rejects chosen events a given number of times, and records every call.
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
        async fn publish(&self, entries: &[&OutboxEvent]) -> Result<Vec<Option<String>>, String> {
            self.calls
                .lock()
                .unwrap()
                .push(entries.iter().map(|e| e.event_id.clone()).collect());
            {
                let mut failures = self.whole_call_failures.lock().unwrap();
                if *failures > 0 {
                    *failures -= 1;
                    return Err("throttled".into());
                }
            }
            let mut rejections = self.rejections.lock().unwrap();
            Ok(entries
                .iter()
                .map(|e| match rejections.get_mut(&e.event_id) {
                    Some(left) if *left > 0 => {
                        *left -= 1;
                        Some("InternalFailure".to_owned())
                    }
                    _ => None,
                })
                .collect())
        }
    }

    fn batch(ids: &[&str]) -> StreamEvent {
        let records: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                json!({
                    "eventID": format!("r{n}"), "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                    "dynamodb": {"ApproximateCreationDateTime": 0, "Keys": {}, "SequenceNumber": format!("{}", 1000 + n),
                        "SizeBytes": 1, "StreamViewType": "NEW_IMAGE", "NewImage": {
                            "pk": {"S": format!("OUTBOX#{id}")}, "sk": {"S": "EVENT"}, "eventId": {"S": id},
                            "source": {"S": "shop.test"}, "detailType": {"S": "Tested"}, "detail": {"S": "{}"},
                            "correlationId": {"S": "c"}, "occurredAt": {"S": "2026-01-01T00:00:00.000Z"}, "expiresAt": {"N": "1"}}}
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
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
    async fn entries_still_failing_after_the_last_attempt_fail_only_their_records() {
        let relay = relay(ScriptedBus::new(&[("b", 99)], 0));
        let response = relay.handle(batch(&["a", "b", "c"])).await;
        assert_eq!(failed(&response), vec!["1001"]);
        assert_eq!(relay.publisher.calls().len(), 3);
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
}
