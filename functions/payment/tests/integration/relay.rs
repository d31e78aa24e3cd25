//! The relay Lambda's handler, driven by its sample event, and the whole way out: what the
//! consumer records reaches the bus as `shop.payment` events; and the check that every
//! sample event is exercised and names a function.

use crate::support::*;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use shop_testing::outbox::publish;
use shop_testing::{samples, sdk_config};

#[tokio::test]
async fn the_sample_stream_batch_publishes_its_outbox_event_and_skips_the_payment_and_marker() {
    let batch: StreamEvent =
        serde_json::from_value(fixture("relay-stream-batch.json")).expect("a stream event");
    assert_eq!(batch.records.len(), 3);

    let delivered = publish(&sdk_config().await, batch).await;

    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["detail-type"], "PaymentSucceeded");
    assert_eq!(delivered[0]["source"], "shop.payment");
    assert_eq!(delivered[0]["detail"]["data"]["orderId"], ORDER_ID);
    let _: shop_events::payment::PaymentSucceeded =
        serde_json::from_value(delivered[0]["detail"]["data"].clone()).unwrap();
}

#[tokio::test]
async fn what_the_consumer_records_reaches_the_bus_with_the_order_correlation() {
    let payments = Payments::new().await;
    payments
        .apply(&sample_message("consumer-order-stock-confirmed.json"))
        .await;
    payments
        .apply(&sample_message("consumer-order-cancelled.json"))
        .await;

    let mut delivered = payments.table.published().await;
    delivered.sort_by_key(|e| e["detail-type"].as_str().map(str::to_owned));
    let kinds: Vec<&str> = delivered
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["PaymentRefunded", "PaymentSucceeded"]);
    for event in &delivered {
        assert_eq!(event["source"], "shop.payment");
        assert_eq!(event["detail"]["metadata"]["correlationId"], CORRELATION_ID);
        assert_eq!(event["detail"]["metadata"]["schemaVersion"], 1);
    }
}

#[test]
fn every_sample_event_of_payment_is_exercised_and_names_a_function() {
    assert_eq!(samples::assert_all_used_and_invokable("payment"), 12);
}
