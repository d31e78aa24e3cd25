//! The catalog relay Lambda's handler, driven by its sample event.

use aws_lambda_events::dynamodb::Event as StreamEvent;
use shop_platform::relay::{EventBridgePublisher, Relay, RetryPolicy};
use shop_testing::{bus_with_queue, drain_queue, sdk_config, workspace_root};

#[tokio::test]
async fn the_sample_stream_batch_publishes_its_outbox_event_and_skips_the_product_record() {
    let config = sdk_config().await;
    let (bus, queue) = bus_with_queue(&config).await;
    let text =
        std::fs::read_to_string(workspace_root().join("events/catalog/relay-stream-batch.json"))
            .unwrap();
    let batch: StreamEvent = serde_json::from_str(&text).unwrap();
    assert_eq!(batch.records.len(), 2);
    let relay = Relay::new(
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &bus),
        RetryPolicy::default(),
    );

    let response = relay.handle(batch).await;

    assert!(response.batch_item_failures.is_empty());
    let delivered = drain_queue(&config, &queue).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["detail-type"], "ProductCreated");
    assert_eq!(delivered[0]["source"], "shop.catalog");
    assert_eq!(
        delivered[0]["detail"]["metadata"]["eventId"],
        "01JDKQ8MA0Z5W6Y7B8C9D0E1F2"
    );
    assert_eq!(delivered[0]["detail"]["data"]["price"]["amount"], 3999);
}

#[test]
fn every_sample_event_of_catalog_is_exercised_by_a_test() {
    let tests: String = std::fs::read_dir(workspace_root().join("functions/catalog/tests"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    for entry in std::fs::read_dir(workspace_root().join("events/catalog")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            tests.contains(&name),
            "events/catalog/{name} is used by no test"
        );
    }
}
