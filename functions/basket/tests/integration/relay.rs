//! The basket relay Lambda's handler, driven by its sample event, and the checks that
//! every sample event of the capability is exercised and invokable.

use aws_lambda_events::dynamodb::Event as StreamEvent;
use basket::domain::is_ulid;
use shop_testing::outbox::publish;
use shop_testing::{fixture, samples, sdk_config, sqs};

#[tokio::test]
async fn the_sample_stream_batch_publishes_checkout_requested_and_skips_the_checkout_items() {
    let batch: StreamEvent =
        serde_json::from_value(fixture("basket", "relay-stream-batch.json")).unwrap();
    assert_eq!(batch.records.len(), 3);

    let delivered = publish(&sdk_config().await, batch).await;

    assert_eq!(delivered.len(), 1);
    let event = &delivered[0];
    assert_eq!(event["detail-type"], "CheckoutRequested");
    assert_eq!(event["source"], "shop.basket");
    assert_eq!(
        event["detail"]["metadata"]["eventId"],
        "01JDKRB5R8T0V2X4Z6B8D0F2H4"
    );
    let requested: shop_events::basket::CheckoutRequested =
        serde_json::from_value(event["detail"]["data"].clone()).unwrap();
    assert_eq!(requested.total.amount, 6998);
    assert_eq!(requested.shipping_address.country, "GB");
}

#[test]
fn every_sample_event_of_basket_is_exercised_and_names_a_function() {
    let samples = samples::assert_all_used_and_invokable("basket");
    assert!(samples >= 10, "{samples} samples");
}

#[test]
fn the_sample_events_are_what_the_basket_produces_and_consumes() {
    for (name, detail_type) in [
        ("consumer-product-created.json", "ProductCreated"),
        ("consumer-product-updated.json", "ProductUpdated"),
        ("consumer-product-deleted.json", "ProductDeleted"),
        ("consumer-order-submitted.json", "OrderSubmitted"),
    ] {
        let body = sqs::envelope(&fixture("basket", name));
        assert_eq!(body["detail-type"], detail_type, "{name}");
        assert!(
            is_ulid(body["detail"]["metadata"]["eventId"].as_str().unwrap()),
            "{name}"
        );
    }
    let order = sqs::envelope(&fixture("basket", "consumer-order-submitted.json"));
    assert!(is_ulid(
        order["detail"]["data"]["orderId"].as_str().unwrap()
    ));
}
