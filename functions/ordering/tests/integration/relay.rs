//! The relay Lambda's handler, driven by its sample event, and the whole way out: what the
//! consumer records reaches the bus as `shop.ordering` events.

use crate::support::*;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use shop_testing::outbox::publish;
use shop_testing::{samples, sdk_config};

#[tokio::test]
async fn the_sample_stream_batch_publishes_its_outbox_event_and_skips_the_order_and_marker() {
    let batch: StreamEvent =
        serde_json::from_value(fixture("relay-stream-batch.json")).expect("a stream event");
    assert_eq!(batch.records.len(), 3);

    let delivered = publish(&sdk_config().await, batch).await;

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

    let mut delivered = ordering.table.published().await;
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
fn every_sample_event_of_ordering_is_exercised_and_names_a_function() {
    samples::assert_all_used_and_invokable("ordering");
}
