//! The catalog relay Lambda's handler, driven by its sample event; and the checks that
//! every sample event is exercised and invokable.

use aws_lambda_events::dynamodb::Event as StreamEvent;
use shop_testing::outbox::publish;
use shop_testing::{fixture, samples, sdk_config};

#[tokio::test]
async fn the_sample_stream_batch_publishes_its_outbox_event_and_skips_the_product_record() {
    let batch: StreamEvent =
        serde_json::from_value(fixture("catalog", "relay-stream-batch.json")).unwrap();
    assert_eq!(batch.records.len(), 2);

    let delivered = publish(&sdk_config().await, batch).await;

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
fn every_sample_event_of_catalog_is_exercised_and_names_a_function() {
    samples::assert_all_used_and_invokable("catalog");
}
