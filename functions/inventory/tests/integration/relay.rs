//! The inventory relay Lambda's handler, driven by its sample event; and the checks that
//! every sample event is exercised and invokable.

use aws_lambda_events::dynamodb::Event as StreamEvent;
use shop_testing::outbox::publish;
use shop_testing::{fixture, samples, sdk_config};

#[tokio::test]
async fn the_sample_stream_batch_publishes_its_outbox_event_and_skips_the_reservation() {
    let batch: StreamEvent =
        serde_json::from_value(fixture("inventory", "relay-stream-batch.json")).unwrap();
    assert_eq!(batch.records.len(), 2);

    let delivered = publish(&sdk_config().await, batch).await;

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
fn every_sample_event_of_inventory_is_exercised_and_names_a_function() {
    samples::assert_all_used_and_invokable("inventory");
}
