//! The inventory relay Lambda's handler, driven by its sample event; and the check that
//! every sample event is exercised.

use aws_lambda_events::dynamodb::Event as StreamEvent;
use shop_platform::relay::{EventBridgePublisher, Relay, RetryPolicy};
use shop_testing::{bus_with_queue, drain_queue, sdk_config, workspace_root};

#[tokio::test]
async fn the_sample_stream_batch_publishes_its_outbox_event_and_skips_the_reservation() {
    let config = sdk_config().await;
    let (bus, queue) = bus_with_queue(&config).await;
    let text =
        std::fs::read_to_string(workspace_root().join("events/inventory/relay-stream-batch.json"))
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
    assert_eq!(delivered[0]["detail-type"], "StockReserved");
    assert_eq!(delivered[0]["source"], "shop.inventory");
    assert_eq!(
        delivered[0]["detail"]["metadata"]["eventId"],
        "01JDKR2BC5D7E9F1G3H5J7K9M1"
    );
    assert_eq!(delivered[0]["detail"]["data"]["lines"][0]["quantity"], 2);
    // The sample's event is a valid StockReserved.
    let _: shop_events::inventory::StockReserved =
        serde_json::from_value(delivered[0]["detail"]["data"].clone()).unwrap();
}

#[test]
fn every_sample_event_of_inventory_is_exercised_by_a_test() {
    let tests_dir = workspace_root().join("functions/inventory/tests");
    let tests: String = walk(&tests_dir)
        .into_iter()
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    for entry in std::fs::read_dir(workspace_root().join("events/inventory")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            tests.contains(&name),
            "events/inventory/{name} is used by no test"
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
