//! The basket relay Lambda's handler, driven by its sample event, and the check that
//! every sample event of the capability is exercised.

use aws_lambda_events::dynamodb::Event as StreamEvent;
use shop_platform::relay::{EventBridgePublisher, Relay, RetryPolicy};
use shop_testing::{bus_with_queue, drain_queue, sdk_config, workspace_root};

#[tokio::test]
async fn the_sample_stream_batch_publishes_checkout_requested_and_skips_the_checkout_items() {
    let config = sdk_config().await;
    let (bus, queue) = bus_with_queue(&config).await;
    let text =
        std::fs::read_to_string(workspace_root().join("events/basket/relay-stream-batch.json"))
            .unwrap();
    let batch: StreamEvent = serde_json::from_str(&text).unwrap();
    assert_eq!(batch.records.len(), 3);
    let relay = Relay::new(
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &bus),
        RetryPolicy::default(),
    );

    let response = relay.handle(batch).await;

    assert!(response.batch_item_failures.is_empty());
    let delivered = drain_queue(&config, &queue).await;
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
fn every_sample_event_of_basket_is_exercised_by_a_test() {
    let tests_dir = workspace_root().join("functions/basket/tests");
    let tests: String = std::fs::read_dir(&tests_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    let mut samples = 0;
    for entry in std::fs::read_dir(workspace_root().join("events/basket")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            tests.contains(&name),
            "events/basket/{name} is used by no test"
        );
        samples += 1;
    }
    assert!(samples >= 10, "{samples} samples");
}

#[test]
fn the_sample_events_are_what_the_basket_produces_and_consumes() {
    use basket::domain::is_ulid;
    let sample = |name: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(workspace_root().join("events/basket").join(name)).unwrap(),
        )
        .unwrap()
    };
    for (name, detail_type) in [
        ("consumer-product-created.json", "ProductCreated"),
        ("consumer-product-updated.json", "ProductUpdated"),
        ("consumer-product-deleted.json", "ProductDeleted"),
        ("consumer-order-submitted.json", "OrderSubmitted"),
    ] {
        let body: serde_json::Value =
            serde_json::from_str(sample(name)["Records"][0]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["detail-type"], detail_type, "{name}");
        assert!(
            is_ulid(body["detail"]["metadata"]["eventId"].as_str().unwrap()),
            "{name}"
        );
    }
    let order: serde_json::Value = serde_json::from_str(
        sample("consumer-order-submitted.json")["Records"][0]["body"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(is_ulid(
        order["detail"]["data"]["orderId"].as_str().unwrap()
    ));
}
