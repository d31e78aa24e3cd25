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

mod bounds {
    use shop_events::basket::CheckoutRequested;
    use shop_events::ordering::OrderStockConfirmed;
    use shop_events::{Address, DomainEvent, Envelope, EventMetadata, Money, OrderLine};

    const ORDER: &str = "01JDMB4W7K2Q9F3R5T8V1X6Z0N";
    const PRODUCT: &str = "01JDKQ8M3ZP7G5V4X2N6R9T1CB";

    fn checkout() -> CheckoutRequested {
        CheckoutRequested {
            order_id: ORDER.into(),
            user_id: "user-1".into(),
            lines: vec![OrderLine {
                product_id: PRODUCT.into(),
                name: "Mug".into(),
                unit_price: Money::usd(1200),
                quantity: 2,
            }],
            total: Money::usd(2400),
            shipping_address: Address {
                name: "Ada Lovelace".into(),
                line1: "12 St James's Square".into(),
                line2: None,
                city: "London".into(),
                postal_code: "SW1Y 4JH".into(),
                country: "GB".into(),
            },
            payment_token: "tok_visa".into(),
        }
    }

    #[test]
    fn an_event_the_api_would_have_accepted_keeps_the_contract() {
        assert_eq!(checkout().check(), Ok(()));
    }

    #[test]
    fn an_event_outside_the_apis_bounds_breaks_the_contract_naming_the_field() {
        type Breakage = Box<dyn Fn(&mut CheckoutRequested)>;
        let broken: Vec<(&str, Breakage)> = vec![
            (
                "shipping_address.line1",
                Box::new(|c| c.shipping_address.line1 = "x".repeat(200 * 1024)),
            ),
            ("order_id", Box::new(|c| c.order_id = "../../etc".into())),
            ("lines[0].quantity", Box::new(|c| c.lines[0].quantity = 100)),
            ("lines[0].quantity", Box::new(|c| c.lines[0].quantity = 0)),
            (
                "lines[0].product_id",
                Box::new(|c| c.lines[0].product_id = String::new()),
            ),
            (
                "lines[0].unit_price",
                Box::new(|c| c.lines[0].unit_price = Money::usd(1_000_000_001)),
            ),
            ("lines", Box::new(|c| c.lines.clear())),
            ("total.amount", Box::new(|c| c.total = Money::usd(-5))),
            (
                "total.currency",
                Box::new(|c| c.total.currency = "usd".into()),
            ),
            (
                "shipping_address.country",
                Box::new(|c| c.shipping_address.country = "UK".into()),
            ),
            ("payment_token", Box::new(|c| c.payment_token = "  ".into())),
            ("user_id", Box::new(|c| c.user_id = "u".repeat(129))),
        ];
        for (field, breaking) in broken {
            let mut event = checkout();
            breaking(&mut event);
            let refused = event.check().expect_err(field);
            assert!(refused.contains(field), "{field}: {refused}");
        }
    }

    #[test]
    fn the_payment_token_never_shows_in_debug_output() {
        let confirmed = OrderStockConfirmed {
            order_id: ORDER.into(),
            user_id: "user-1".into(),
            total: Money::usd(10),
            payment_token: "tok_secret_4242".into(),
        };
        assert!(!format!("{confirmed:?}").contains("tok_secret"));
        assert!(!format!("{:?}", checkout()).contains("tok_visa"));
        assert!(format!("{confirmed:?}").contains(ORDER));
    }

    #[test]
    fn metadata_needs_a_ulid_a_correlation_id_and_an_instant() {
        let good = Envelope::new(checkout(), "corr-1").metadata;
        assert_eq!(good.check(), Ok(()));
        let broken = [
            EventMetadata {
                event_id: String::new(),
                ..good.clone()
            },
            EventMetadata {
                event_id: "not-a-ulid".into(),
                ..good.clone()
            },
            EventMetadata {
                correlation_id: String::new(),
                ..good.clone()
            },
            EventMetadata {
                correlation_id: "c".repeat(129),
                ..good.clone()
            },
            EventMetadata {
                occurred_at: "yesterday".into(),
                ..good.clone()
            },
        ];
        for metadata in broken {
            assert!(metadata.check().is_err(), "{metadata:?}");
        }
    }
}
