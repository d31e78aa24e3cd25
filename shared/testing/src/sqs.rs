//! SQS batches as a consumer Lambda receives them, each message an EventBridge event: the
//! samples of `events/<capability>/consumer-*.json` reshaped, delivered again or published
//! again, and delivered through the real consumer harness.
//!
//! A batch is kept as JSON, the shape of the sample files, so a test can break any part
//! of it; [`message`] types it where a handler wants it.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use serde_json::{Value, json};
use shop_events::new_event_id;
use shop_platform::consumer::{EventHandler, Outcome, SqsConsumer};

use crate::Table;

/// The EventBridge event in the first message of a batch.
pub fn envelope(batch: &Value) -> Value {
    let body = batch["Records"][0]["body"]
        .as_str()
        .expect("a message body");
    serde_json::from_str(body).expect("an EventBridge event")
}

/// The batch as SQS would hold it had the bus delivered its (first) event changed by `change`.
pub fn with_envelope(mut batch: Value, change: impl FnOnce(&mut Value)) -> Value {
    let mut event = envelope(&batch);
    change(&mut event);
    batch["Records"][0]["body"] = json!(event.to_string());
    batch
}

/// The same event in a new message, as an SQS redelivery or an EventBridge retry brings
/// it: the event id stays, which is what deduplication keys on.
pub fn redelivered(batch: &Value) -> Value {
    let mut again = batch.clone();
    again["Records"][0]["messageId"] = json!(new_message_id());
    again
}

/// The same fact published a second time (its publisher recorded it twice): a new event,
/// so a new event id, which deduplication alone cannot catch.
pub fn republished(batch: &Value) -> Value {
    let again = with_envelope(batch.clone(), |event| {
        event["id"] = json!(new_message_id());
        event["detail"]["metadata"]["eventId"] = json!(new_event_id());
    });
    redelivered(&again)
}

/// The first message of a batch under `message_id`, to name it in a batch's failures.
pub fn record(batch: &Value, message_id: &str) -> Value {
    let mut record = batch["Records"][0].clone();
    record["messageId"] = json!(message_id);
    record
}

/// A message under `message_id` whose body is no event at all.
pub fn not_an_event(batch: &Value, message_id: &str) -> Value {
    let mut record = record(batch, message_id);
    record["body"] = json!("}{ not an event");
    record
}

/// The first message of a batch, typed as the consumer harness takes it.
pub fn message(batch: &Value) -> SqsMessage {
    serde_json::from_value(batch["Records"][0].clone()).expect("an SQS message")
}

/// The first message of a batch alone through the harness, with what it made of it.
pub async fn deliver<H: EventHandler>(consumer: &SqsConsumer<H>, batch: &Value) -> Outcome {
    consumer.handle_message(&message(batch)).await
}

/// A whole batch through the harness, as the consumer Lambda gets it; the ids of the
/// messages it reported failed, in batch order.
pub async fn deliver_batch<H: EventHandler>(
    consumer: &SqsConsumer<H>,
    batch: Value,
) -> Vec<String> {
    let batch: SqsEvent = serde_json::from_value(batch).expect("an SQS event");
    consumer
        .handle_batch(batch)
        .await
        .batch_item_failures
        .into_iter()
        .map(|failure| failure.item_identifier)
        .collect()
}

impl Table {
    /// The consumer harness over this table, its markers named for `consumer_name`.
    pub fn consumer<H: EventHandler>(&self, consumer_name: &str, handler: H) -> SqsConsumer<H> {
        SqsConsumer::new(self.dynamodb.clone(), &self.name, consumer_name, handler)
    }
}

fn new_message_id() -> String {
    ulid::Ulid::generate().to_string().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    fn ids(batch: &Value) -> (Value, Value) {
        (
            batch["Records"][0]["messageId"].clone(),
            envelope(batch)["detail"]["metadata"]["eventId"].clone(),
        )
    }

    #[test]
    fn a_redelivery_keeps_the_event_id_and_a_republication_does_not() {
        let sample = fixture("ordering", "consumer-stock-reserved.json");
        let (message_id, event_id) = ids(&sample);

        let (again_message, again_event) = ids(&redelivered(&sample));
        assert_ne!(again_message, message_id);
        assert_eq!(again_event, event_id);

        let republished = republished(&sample);
        let (new_message, new_event) = ids(&republished);
        assert_ne!(new_message, message_id);
        assert_ne!(new_event, event_id);
        assert_eq!(
            envelope(&republished)["detail"]["data"],
            envelope(&sample)["detail"]["data"],
            "the same fact"
        );
    }

    #[test]
    fn records_keep_the_message_and_name_it() {
        let sample = fixture("ordering", "consumer-stock-reserved.json");
        let record = record(&sample, "renamed");
        assert_eq!(record["messageId"], "renamed");
        assert_eq!(record["body"], sample["Records"][0]["body"]);
        let typed = message(&json!({ "Records": [record] }));
        assert_eq!(typed.message_id.as_deref(), Some("renamed"));
        assert_eq!(not_an_event(&sample, "x")["body"], "}{ not an event");
    }
}
