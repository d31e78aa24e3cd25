use serde_json::json;
use shop_events::catalog::{ProductCreated, ProductDeleted, ProductSnapshot};
use shop_events::ordering::{CancellationReason, OrderCancelled};
use shop_events::{DomainEvent, Envelope, Money};

#[test]
fn an_event_serialises_to_the_design_envelope() {
    let event = Envelope::new(
        ProductDeleted {
            product_id: "p1".into(),
            version: 3,
        },
        "corr-1",
    );
    let detail = serde_json::to_value(&event).unwrap();
    assert_eq!(detail["data"], json!({"productId": "p1", "version": 3}));
    let metadata = &detail["metadata"];
    assert_eq!(metadata["correlationId"], "corr-1");
    assert_eq!(metadata["schemaVersion"], 1);
    assert_eq!(metadata["eventId"].as_str().unwrap().len(), 26, "a ULID");
    assert!(metadata["occurredAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(event.detail_type(), "ProductDeleted");
    assert_eq!(event.source(), "shop.catalog");
}

#[test]
fn a_wrapped_snapshot_is_flat_in_data_and_round_trips() {
    let created = ProductCreated(ProductSnapshot {
        product_id: "p1".into(),
        name: "Mug".into(),
        description: String::new(),
        category: "kitchen".into(),
        price: Money::usd(1200),
        image_url: None,
        version: 1,
    });
    let event = Envelope::new(created.clone(), "c");
    let text = serde_json::to_string(&event).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value["data"]["price"],
        json!({"amount": 1200, "currency": "USD"})
    );
    assert!(value["data"].get("imageUrl").is_none());
    let back: Envelope<ProductCreated> = serde_json::from_str(&text).unwrap();
    assert_eq!(back.data, created);
}

#[test]
fn reasons_use_the_snake_case_of_the_design() {
    let cancelled = OrderCancelled {
        order_id: "o".into(),
        user_id: "u".into(),
        reason: CancellationReason::OutOfStock,
    };
    assert_eq!(
        serde_json::to_value(&cancelled).unwrap()["reason"],
        "out_of_stock"
    );
    assert_eq!(OrderCancelled::SOURCE, "shop.ordering");
}
