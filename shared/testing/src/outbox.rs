//! What a capability hands to its relay: the events in its outbox, and what the real relay
//! makes of them on a bus.

use aws_config::SdkConfig;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use serde_json::{Value, json};
use shop_platform::relay::{EventBridgePublisher, Relay, RetryPolicy};

use crate::{Table, bus_with_queue, drain_queue, stream_batch};

impl Table {
    /// Every event in the outbox, shaped as the relay puts it on the bus
    /// (`{"detail-type", "source", "detail"}`), by event id. Reading the table instead of
    /// relaying spares a bus and a queue where only what was recorded matters.
    pub async fn outbox(&self) -> Vec<Value> {
        let mut events: Vec<Value> = self
            .items("OUTBOX#")
            .await
            .iter()
            .map(|item| {
                let text = |name: &str| item[name].as_s().unwrap().clone();
                json!({
                    "detail-type": text("detailType"),
                    "source": text("source"),
                    "detail": serde_json::from_str::<Value>(&text("detail")).unwrap(),
                })
            })
            .collect();
        events.sort_by_key(|event| {
            event["detail"]["metadata"]["eventId"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        events
    }

    /// Runs the relay over everything in the table's stream; what reached the bus.
    pub async fn published(&self) -> Vec<Value> {
        let batch = serde_json::from_value(stream_batch(&self.config, &self.name).await)
            .expect("a stream event");
        publish(&self.config, batch).await
    }
}

/// Runs the real relay over one stream batch to a new bus whose rule feeds a queue, and
/// asserts it reported no record failed; answers the events the queue received.
pub async fn publish(config: &SdkConfig, batch: StreamEvent) -> Vec<Value> {
    let (bus, queue) = bus_with_queue(config).await;
    let relay = Relay::new(
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(config), &bus),
        RetryPolicy::default(),
    );
    let response = relay.handle(batch).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "the relay failed {:?}",
        response.batch_item_failures
    );
    drain_queue(config, &queue).await
}
