//! The inventory API Lambda's handler against moto, driven by the sample events in
//! `events/inventory/` (the same files `sam local invoke -e` and `shop-local invoke` take).

use crate::support::*;
use inventory::api::{App, handle};
use inventory::store::InventoryStore;
use serde_json::json;
use shop_testing::api::{BadRequest, anonymous, assert_rejected_without_writes, call, with_body};
use shop_testing::unique;

const SAMPLE_PRODUCT: &str = "01JDKQ8M3ZP7G5V4X2N6R9T1CB";

#[tokio::test]
async fn an_admin_sets_stock_and_reads_it_back() {
    let inventory = Inventory::new().await;
    let (status, levels, response) = inventory.call(fixture("api-set-stock.json")).await;
    assert_eq!(status, 200, "{levels}");
    assert_eq!(response.headers()["content-type"], "application/json");
    let expected = json!({"productId": SAMPLE_PRODUCT, "available": 25, "reserved": 0, "shipped": 0, "shards": 1});
    assert_eq!(levels, expected);

    let (status, read, _) = inventory.call(fixture("api-get-stock.json")).await;
    assert_eq!((status, read), (200, expected));

    let lowered = with_body(fixture("api-set-stock.json"), r#"{"available": 0}"#);
    let (status, levels, _) = inventory.call(lowered).await;
    assert_eq!((status, levels["available"].clone()), (200, json!(0)));
    let stock = inventory.stock(SAMPLE_PRODUCT).await.unwrap();
    assert_eq!(stock.shards[0].version, 2);
    assert!(
        inventory.table.outbox().await.is_empty(),
        "setting stock is no event"
    );
}

#[tokio::test]
async fn a_never_stocked_product_is_404() {
    let inventory = Inventory::new().await;
    let (status, problem, response) = inventory.call(fixture("api-get-stock.json")).await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let (status, _, _) = inventory
        .call(for_product(fixture("api-get-stock.json"), "not-a-product"))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn setting_stock_replaces_only_what_is_available() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 10).await;
    let order = new_id();
    inventory
        .apply(&order_submitted(&order, &[(&product, 4)]))
        .await;
    inventory
        .apply(&shipment_dispatched(&order, &[(&product, 4)]))
        .await;
    inventory
        .apply(&order_submitted(&new_id(), &[(&product, 1)]))
        .await;

    let levels = inventory.set_stock(&product, 20).await;
    assert_eq!(
        levels,
        json!({"productId": product, "available": 20, "reserved": 1, "shipped": 4, "shards": 1})
    );
    let (_, read, _) = inventory
        .call(for_product(fixture("api-get-stock.json"), &product))
        .await;
    assert_eq!(read, levels);
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn a_deleted_product_cannot_be_restocked() {
    let inventory = Inventory::new().await;
    let (stocked, never_stocked) = (new_id(), new_id());
    inventory.set_stock(&stocked, 3).await;
    inventory.apply(&product_deleted(&stocked)).await;
    inventory.apply(&product_deleted(&never_stocked)).await;
    let before = inventory.table.item_count().await;

    for product in [&stocked, &never_stocked] {
        let (status, problem, _) = inventory
            .call(for_product(fixture("api-set-stock.json"), product))
            .await;
        assert_eq!(status, 409, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("deleted"));
    }
    assert_eq!(inventory.table.item_count().await, before);
    assert_eq!(inventory.levels(&stocked).await, (3, 0, 0));
    // Its stock can still be looked at.
    let (status, levels, _) = inventory
        .call(for_product(fixture("api-get-stock.json"), &stocked))
        .await;
    assert_eq!((status, levels["available"].clone()), (200, json!(3)));
}

#[tokio::test]
async fn bad_input_gets_the_right_problem_and_writes_nothing() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 6).await;

    let put = for_product(fixture("api-set-stock.json"), &product);
    let body = |text: &str| with_body(put.clone(), text);
    let cases: Vec<BadRequest> = vec![
        ("malformed JSON", body("{\"available\": "), 400, None),
        ("trailing garbage", body("{\"available\": 1} x"), 400, None),
        ("no body", body(""), 400, None),
        (
            "wrong type",
            body(r#"{"available": "12"}"#),
            422,
            Some("available"),
        ),
        (
            "fraction",
            body(r#"{"available": 1.5}"#),
            422,
            Some("available"),
        ),
        ("missing field", body("{}"), 422, Some("available")),
        (
            "negative",
            body(r#"{"available": -1}"#),
            422,
            Some("available"),
        ),
        (
            "over a million",
            body(r#"{"available": 1000001}"#),
            422,
            Some("available"),
        ),
        (
            "a field it does not take",
            body(r#"{"available": 1, "reserved": 0}"#),
            422,
            Some("reserved"),
        ),
        (
            "beyond any integer",
            body(r#"{"available": 99999999999999999999}"#),
            422,
            Some("available"),
        ),
        (
            "oversized body",
            body(&format!(r#"{{"available": 1{}}}"#, " ".repeat(2000))),
            413,
            None,
        ),
        (
            "not an admin",
            for_product(fixture("api-set-stock-non-admin.json"), &product),
            403,
            None,
        ),
        ("no token", anonymous(put.clone()), 401, None),
        (
            "read without a token",
            anonymous(for_product(fixture("api-get-stock.json"), &product)),
            401,
            None,
        ),
        (
            "not a product id",
            for_product(fixture("api-set-stock.json"), "../../etc"),
            404,
            None,
        ),
    ];
    assert_rejected_without_writes(&inventory.table, async |e| inventory.call(e).await, cases)
        .await;
    assert_eq!(inventory.levels(&product).await, (6, 0, 0));
    assert_eq!(
        inventory.stock(&product).await.unwrap().shards[0].version,
        1
    );
}

#[tokio::test]
async fn health_answers_200_when_the_table_is_reachable_and_503_when_not() {
    let inventory = Inventory::new().await;
    let (status, body, _) = inventory.call(fixture("api-health.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "ok", "capability": "inventory"}));
    assert!(
        fixture("api-health.json")["requestContext"]
            .get("authorizer")
            .is_none()
    );

    let missing = App {
        store: InventoryStore::new(inventory.table.dynamodb.clone(), unique("no-such-table")),
    };
    let (status, _, _) = call(
        |request| handle(&missing, request),
        fixture("api-health.json"),
    )
    .await;
    assert_eq!(status, 503);
}
