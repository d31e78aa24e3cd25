//! The relay Lambda's handler, driven by its sample event, and the whole way out: what the
//! API records reaches the bus as `shop.shipping` events; and the check that every sample
//! event is exercised and invokable.

use crate::support::*;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use shop_events::shipping::{ShipmentDelivered, ShipmentDispatched};
use shop_testing::outbox::publish;
use shop_testing::{samples, sdk_config};

#[tokio::test]
async fn the_sample_stream_batch_publishes_its_outbox_event_and_skips_the_shipment_and_marker() {
    let batch: StreamEvent =
        serde_json::from_value(fixture("relay-stream-batch.json")).expect("a stream event");
    assert_eq!(batch.records.len(), 4);

    let delivered = publish(&sdk_config().await, batch).await;

    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["detail-type"], "ShipmentDispatched");
    assert_eq!(delivered[0]["source"], "shop.shipping");
    assert_eq!(
        delivered[0]["detail"]["metadata"]["correlationId"],
        fixture("api-dispatch.json")["requestContext"]["requestId"]
    );
    let dispatched: ShipmentDispatched =
        serde_json::from_value(delivered[0]["detail"]["data"].clone()).unwrap();
    assert_eq!(dispatched.order_id, ORDER_ID);
    assert_eq!(dispatched.lines.len(), 2);
}

#[tokio::test]
async fn what_the_api_records_reaches_the_bus_with_the_requests_correlation() {
    let shipping = Shipping::new().await;
    shipping.apply(&order_paid()).await;
    for request in ["api-dispatch.json", "api-deliver.json"] {
        let (status, body, _) = shipping.call(fixture(request)).await;
        assert_eq!(status, 200, "{request}: {body}");
    }

    let mut delivered = shipping.table.published().await;
    delivered.sort_by_key(|e| e["detail-type"] != "ShipmentDispatched");
    let kinds: Vec<&str> = delivered
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ShipmentDispatched", "ShipmentDelivered"]);
    for (event, request) in delivered
        .iter()
        .zip(["api-dispatch.json", "api-deliver.json"])
    {
        assert_eq!(event["source"], "shop.shipping");
        assert_eq!(
            event["detail"]["metadata"]["correlationId"],
            fixture(request)["requestContext"]["requestId"]
        );
        assert_eq!(event["detail"]["metadata"]["schemaVersion"], 1);
    }
    let delivered: ShipmentDelivered =
        serde_json::from_value(delivered[1]["detail"]["data"].clone()).unwrap();
    assert_eq!(delivered.order_id, ORDER_ID);
}

#[test]
fn every_sample_event_of_shipping_is_exercised_and_names_a_function() {
    assert_eq!(samples::assert_all_used_and_invokable("shipping"), 9);
}
