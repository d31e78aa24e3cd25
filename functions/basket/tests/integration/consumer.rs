//! The basket consumer Lambda's handler against moto, driven by the sample SQS batches in
//! `events/basket/`. Every consumed event is delivered once, twice, and in the wrong
//! order relative to the events it interacts with; each way must end in the same state.

use crate::support::*;
use basket::domain::{Listing, ProjectedProduct};
use serde_json::{Value, json};
use shop_events::Money;
use shop_platform::consumer::Outcome;
use shop_testing::sqs;

fn on_sale(product: &str, name: &str, amount: i64, version: u64) -> ProjectedProduct {
    ProjectedProduct {
        product_id: product.into(),
        version,
        listing: Listing::OnSale {
            name: name.into(),
            unit_price: Money::usd(amount),
        },
    }
}

fn deleted(product: &str, version: u64) -> ProjectedProduct {
    ProjectedProduct {
        product_id: product.into(),
        version,
        listing: Listing::Deleted,
    }
}

fn updated(product: &str, amount: i64, version: u64) -> Value {
    catalog_event("consumer-product-updated.json", product, version, |data| {
        data["price"]["amount"] = json!(amount)
    })
}

fn created(product: &str, amount: i64) -> Value {
    catalog_event("consumer-product-created.json", product, 1, |data| {
        data["price"]["amount"] = json!(amount)
    })
}

fn deletion(product: &str, version: u64) -> Value {
    catalog_event("consumer-product-deleted.json", product, version, |_| {})
}

#[tokio::test]
async fn the_sample_catalog_events_project_the_product_through_its_life() {
    let shop = Shop::new().await;
    let book = |amount, version| on_sale(BOOK, "The Rust Programming Language", amount, version);

    assert_eq!(
        shop.deliver(&fixture("consumer-product-created.json"))
            .await,
        Outcome::Applied
    );
    assert_eq!(
        shop.store().product(BOOK).await.unwrap(),
        Some(book(3999, 1))
    );
    assert_eq!(
        shop.deliver(&fixture("consumer-product-updated.json"))
            .await,
        Outcome::Applied
    );
    assert_eq!(
        shop.store().product(BOOK).await.unwrap(),
        Some(book(3499, 2))
    );
    assert_eq!(
        shop.deliver(&fixture("consumer-product-deleted.json"))
            .await,
        Outcome::Applied
    );
    assert_eq!(
        shop.store().product(BOOK).await.unwrap(),
        Some(deleted(BOOK, 3))
    );
}

#[tokio::test]
async fn an_older_event_after_a_newer_one_changes_nothing_and_is_still_marked_done() {
    let shop = Shop::new().await;
    let product = new_product();
    assert_eq!(
        shop.deliver(&updated(&product, 700, 3)).await,
        Outcome::Applied
    );

    let late_creation = created(&product, 100);
    assert_eq!(
        shop.deliver(&late_creation).await,
        Outcome::Applied,
        "a stale event is done, not failed"
    );
    assert_eq!(
        shop.deliver(&late_creation).await,
        Outcome::Duplicate,
        "its marker was committed"
    );
    assert_eq!(
        shop.deliver(&updated(&product, 200, 2)).await,
        Outcome::Applied
    );
    assert_eq!(
        shop.store().product(&product).await.unwrap(),
        Some(on_sale(&product, "The Rust Programming Language", 700, 3)),
        "version 3 stays"
    );
    assert_eq!(shop.table.items("PRODUCT#").await.len(), 1);
    assert_eq!(shop.table.items("PROCESSED#basket#").await.len(), 3);
}

#[tokio::test]
async fn a_repeated_event_changes_nothing_whether_redelivered_or_republished() {
    let shop = Shop::new().await;
    let product = new_product();
    let event = updated(&product, 700, 2);
    assert_eq!(shop.deliver(&event).await, Outcome::Applied);
    assert_eq!(
        shop.deliver(&event).await,
        Outcome::Duplicate,
        "SQS redelivery"
    );
    // The same change recorded again under a new event id (a republished outbox item
    // would keep its id; this is the stricter case).
    assert_eq!(
        shop.deliver(&sqs::republished(&event)).await,
        Outcome::Applied
    );
    assert_eq!(
        shop.store().product(&product).await.unwrap(),
        Some(on_sale(&product, "The Rust Programming Language", 700, 2))
    );
}

#[tokio::test]
async fn every_arrival_order_of_a_products_events_ends_in_the_same_state() {
    let shop = Shop::new().await;
    let orders: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        let product = new_product();
        let events = [
            created(&product, 100),
            updated(&product, 200, 2),
            updated(&product, 300, 3),
        ];
        for &i in &order {
            assert_eq!(shop.deliver(&events[i]).await, Outcome::Applied);
            assert_eq!(shop.deliver(&events[i]).await, Outcome::Duplicate);
        }
        assert_eq!(
            shop.store().product(&product).await.unwrap(),
            Some(on_sale(&product, "The Rust Programming Language", 300, 3)),
            "{order:?}"
        );
    }
}

#[tokio::test]
async fn a_deletion_that_overtakes_the_creation_leaves_a_tombstone_for_good() {
    let shop = Shop::new().await;
    let product = new_product();
    assert_eq!(shop.deliver(&deletion(&product, 2)).await, Outcome::Applied);
    assert_eq!(
        shop.deliver(&created(&product, 100)).await,
        Outcome::Applied
    );
    assert_eq!(
        shop.store().product(&product).await.unwrap(),
        Some(deleted(&product, 2))
    );
    let event = for_product(fixture("api-set-item.json"), &product);
    let (status, _, _) = shop.call(event).await;
    assert_eq!(status, 404, "never for sale");
}

#[tokio::test]
async fn order_submitted_removes_the_checked_out_lines_and_keeps_those_set_since() {
    let shop = Shop::new().await;
    let [changed, taken, added] = [0; 3].map(|_| new_product());
    for product in [&changed, &taken, &added] {
        shop.project(product, "Thing", 100, 1).await;
    }
    shop.set(SHOPPER, &taken, 1).await;
    shop.set(SHOPPER, &changed, 1).await;
    let (status, checkout) = shop.checkout(SHOPPER, "key-order-01").await;
    assert_eq!(status, 202, "{checkout}");
    let order_id = checkout["orderId"].as_str().unwrap();

    // While ordering works, the user changes one checked-out line and adds another.
    shop.set(SHOPPER, &changed, 5).await;
    shop.set(SHOPPER, &added, 2).await;

    let submitted = order_submitted(order_id, SHOPPER);
    assert_eq!(shop.deliver(&submitted).await, Outcome::Applied);
    let left = |basket: Value| -> Vec<(String, u64)> {
        basket["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["productId"].as_str().unwrap().to_owned(),
                    i["quantity"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let expected = vec![(changed.clone(), 5), (added.clone(), 2)];
    assert_eq!(left(shop.view(SHOPPER).await), expected);

    // Redelivered: the marker. Republished under a new id, after the user put the taken
    // product back: the basket decides, and that line is newer than the checkout.
    assert_eq!(shop.deliver(&submitted).await, Outcome::Duplicate);
    shop.set(SHOPPER, &taken, 3).await;
    let republished = order_submitted(order_id, SHOPPER);
    assert_eq!(shop.deliver(&republished).await, Outcome::Applied);
    let mut expected = expected;
    expected.push((taken.clone(), 3));
    assert_eq!(left(shop.view(SHOPPER).await), expected);
}

#[tokio::test]
async fn the_sample_order_submitted_without_a_checkout_here_changes_nothing() {
    let shop = Shop::new().await;
    shop.deliver(&fixture("consumer-product-created.json"))
        .await;
    let basket = shop.set(SHOPPER, BOOK, 2).await;
    let before = shop.table.item_count().await;
    assert_eq!(
        shop.deliver(&fixture("consumer-order-submitted.json"))
            .await,
        Outcome::Applied
    );
    assert_eq!(shop.view(SHOPPER).await, basket);
    assert_eq!(shop.table.item_count().await, before + 1, "only the marker");
}

#[tokio::test]
async fn order_submitted_for_a_user_without_a_basket_changes_nothing() {
    let shop = Shop::new().await;
    shop.project(BOOK, "Book", 100, 1).await;
    shop.set(SHOPPER, BOOK, 1).await;
    let (_, checkout) = shop.checkout(SHOPPER, "key-gone-001").await;
    // The basket is gone (TTL) by the time the order exists.
    shop.table
        .dynamodb
        .delete_item()
        .table_name(&shop.table.name)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("BASKET#{SHOPPER}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("BASKET".into()),
        )
        .send()
        .await
        .unwrap();
    let submitted = order_submitted(checkout["orderId"].as_str().unwrap(), SHOPPER);
    assert_eq!(shop.deliver(&submitted).await, Outcome::Applied);
    assert!(
        shop.table.items("BASKET#").await.is_empty(),
        "not brought back"
    );
}

#[tokio::test]
async fn an_order_whose_user_differs_from_its_checkouts_is_rejected() {
    let shop = Shop::new().await;
    shop.project(BOOK, "Book", 100, 1).await;
    shop.set(SHOPPER, BOOK, 1).await;
    let (_, checkout) = shop.checkout(SHOPPER, "key-other-01").await;
    let forged = order_submitted(checkout["orderId"].as_str().unwrap(), "someone-else");
    assert!(matches!(shop.deliver(&forged).await, Outcome::Failed(_)));
    assert_eq!(shop.view(SHOPPER).await["items"][0]["quantity"], 1);
}

#[tokio::test]
async fn bad_messages_fail_alone_and_change_nothing() {
    let shop = Shop::new().await;
    let product = new_product();
    let good = created(&product, 100);
    let unknown_type = reshaped("consumer-product-created.json", |body| {
        body["detail-type"] = json!("ProductRenamed")
    });
    let foreign_source = reshaped("consumer-product-created.json", |body| {
        body["source"] = json!("shop.basket")
    });
    let wrong_schema = reshaped("consumer-product-updated.json", |body| {
        body["detail"]["data"]["version"] = json!("three")
    });
    let euros = catalog_event("consumer-product-created.json", &new_product(), 1, |data| {
        data["price"]["currency"] = json!("EUR")
    });
    let not_an_id = catalog_event(
        "consumer-product-created.json",
        &"x".repeat(3000),
        1,
        |_| {},
    );

    let failed = shop
        .deliver_batch(vec![
            sqs::record(&unknown_type, "unknown-type"),
            sqs::not_an_event(&good, "garbage"),
            sqs::record(&good, "good"),
            sqs::record(&foreign_source, "foreign-source"),
            sqs::record(&wrong_schema, "wrong-schema"),
            sqs::record(&euros, "euros"),
            sqs::record(&not_an_id, "not-an-id"),
        ])
        .await;
    assert_eq!(
        failed,
        [
            "unknown-type",
            "garbage",
            "foreign-source",
            "wrong-schema",
            "euros",
            "not-an-id"
        ]
    );
    assert_eq!(
        shop.table.items("PRODUCT#").await.len(),
        1,
        "only the good one"
    );
    assert!(shop.store().product(&product).await.unwrap().is_some());
}

/// The conditional writes make concurrent deliveries safe. (This needs the emulator to
/// isolate requests as DynamoDB does: `local/moto-launch.py` serialises moto's DynamoDB.)
#[tokio::test]
async fn a_products_events_delivered_all_at_once_end_at_the_newest() {
    let shop = Shop::new().await;
    for _ in 0..5 {
        let product = new_product();
        let (first, second, third) = (
            created(&product, 100),
            updated(&product, 200, 2),
            deletion(&product, 3),
        );
        let outcomes = tokio::join!(
            shop.deliver(&third),
            shop.deliver(&first),
            shop.deliver(&second),
        );
        assert_eq!(
            outcomes,
            (Outcome::Applied, Outcome::Applied, Outcome::Applied)
        );
        assert_eq!(
            shop.store().product(&product).await.unwrap(),
            Some(deleted(&product, 3))
        );
    }
}
