//! The relay Lambda's handler, driven by its sample event, and the whole way out: what the
//! consumer records reaches the bus as `shop.ordering` events.

mod support;

use aws_lambda_events::dynamodb::Event as StreamEvent;
use serde_json::Value;
use shop_platform::relay::{EventBridgePublisher, Relay, RetryPolicy};
use shop_testing::{bus_with_queue, drain_queue, sdk_config, stream_batch, workspace_root};
use support::*;

fn relay(config: &shop_testing::Config, bus: &str) -> Relay<EventBridgePublisher> {
    Relay::new(
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(config), bus),
        RetryPolicy::default(),
    )
}

#[tokio::test]
async fn the_sample_stream_batch_publishes_its_outbox_event_and_skips_the_order_and_marker() {
    let config = sdk_config().await;
    let (bus, queue) = bus_with_queue(&config).await;
    let batch: StreamEvent =
        serde_json::from_value(fixture("relay-stream-batch.json")).expect("a stream event");
    assert_eq!(batch.records.len(), 3);

    let response = relay(&config, &bus).handle(batch).await;

    assert!(response.batch_item_failures.is_empty());
    let delivered = drain_queue(&config, &queue).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["detail-type"], "OrderSubmitted");
    assert_eq!(delivered[0]["source"], "shop.ordering");
    assert_eq!(delivered[0]["detail"]["data"]["orderId"], ORDER_ID);
    assert!(
        !delivered[0].to_string().contains(PAYMENT_TOKEN),
        "OrderSubmitted does not carry the token"
    );
}

#[tokio::test]
async fn what_the_consumer_records_reaches_the_bus_with_the_checkout_correlation() {
    let ordering = Ordering::new().await;
    ordering
        .deliver(fixture("consumer-checkout-requested.json"))
        .await;
    ordering
        .deliver(fixture("consumer-stock-reserved.json"))
        .await;

    let (bus, queue) = bus_with_queue(&ordering.config).await;
    let batch = serde_json::from_value(stream_batch(&ordering.config, &ordering.table).await)
        .expect("a stream event");
    let response = relay(&ordering.config, &bus).handle(batch).await;
    assert!(response.batch_item_failures.is_empty());

    let mut delivered = drain_queue(&ordering.config, &queue).await;
    delivered.sort_by_key(|e| e["detail-type"].as_str().map(str::to_owned));
    let kinds: Vec<&str> = delivered
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["OrderStockConfirmed", "OrderSubmitted"]);
    for event in &delivered {
        assert_eq!(event["source"], "shop.ordering");
        assert_eq!(
            event["detail"]["metadata"]["correlationId"],
            CHECKOUT_CORRELATION_ID
        );
        assert_eq!(event["detail"]["metadata"]["schemaVersion"], 1);
    }
}

#[test]
fn every_sample_event_of_ordering_is_exercised_by_a_test() {
    let root = workspace_root().join("functions/ordering/tests");
    let tests: String = [root.clone(), root.join("support")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .filter_map(|entry| std::fs::read_to_string(entry.unwrap().path()).ok())
        .collect();
    for entry in std::fs::read_dir(workspace_root().join("events/ordering")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            tests.contains(&format!("\"{name}\"")),
            "events/ordering/{name} is used by no test"
        );
    }
}

/// The e2e suite invokes each sample with the function its prefix names; a file whose
/// prefix names no function of ordering would be invoked against nothing.
#[test]
fn every_sample_event_names_a_function_of_ordering() {
    let manifest =
        std::fs::read_to_string(workspace_root().join("functions/ordering/Cargo.toml")).unwrap();
    for entry in std::fs::read_dir(workspace_root().join("events/ordering")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let prefix = name.split('-').next().unwrap();
        assert!(
            manifest.contains(&format!("name = \"ordering-{prefix}\"")),
            "events/ordering/{name}: no function ordering-{prefix}"
        );
        let sample: Value = fixture(&name);
        assert!(sample.is_object(), "{name}");
    }
}
