//! A best-seller's stock split over shards, against moto: what an admin sets is spread and
//! summed, orders take units from one shard or several and give back exactly those, and
//! the writes that span every shard (a restock, a deletion) never miss one that a racing
//! writer added.

use std::sync::Arc;

use crate::support::*;
use inventory::domain::ReservationStatus;
use inventory::store::StoreError;
use serde_json::{Value, json};
use shop_platform::consumer::Outcome;
use tokio::task::JoinSet;

impl Inventory {
    /// An admin sets the product's available units and shard count, through the API.
    async fn set_sharded(&self, product_id: &str, available: u64, shards: u32) -> Value {
        let event = shop_testing::api::with_body(
            for_product(fixture("api-set-stock.json"), product_id),
            &json!({ "available": available, "shards": shards }).to_string(),
        );
        let (status, body, _) = self.call(event).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Each shard's (available, reserved, shipped), by shard number.
    async fn shard_levels(&self, product_id: &str) -> Vec<(u64, u64, u64)> {
        let stock = self.stock(product_id).await.unwrap();
        stock
            .shards
            .iter()
            .map(|shard| (shard.available, shard.reserved, shard.shipped))
            .collect()
    }

    /// Every stock item of the product, as stored.
    async fn stored_shards(&self, product_id: &str) -> Vec<Value> {
        self.table
            .items("STOCK#")
            .await
            .into_iter()
            .map(|item| serde_dynamo::from_item::<_, Value>(item).unwrap())
            .filter(|item| item["productId"] == product_id)
            .collect()
    }
}

#[tokio::test]
async fn an_admin_spreads_stock_over_shards_and_every_read_is_the_sum() {
    let inventory = Inventory::new().await;
    let product = new_id();
    let levels = inventory.set_sharded(&product, 10, 4).await;
    assert_eq!(
        levels,
        json!({"productId": product, "available": 10, "reserved": 0, "shipped": 0, "shards": 4})
    );
    assert_eq!(
        inventory.shard_levels(&product).await,
        [(3, 0, 0), (3, 0, 0), (2, 0, 0), (2, 0, 0)]
    );
    assert_eq!(
        inventory.stored_shards(&product).await.len(),
        4,
        "an item per shard"
    );

    let (status, read, _) = inventory
        .call(for_product(fixture("api-get-stock.json"), &product))
        .await;
    assert_eq!((status, read), (200, levels));

    let kept = inventory.set_stock(&product, 5).await;
    assert_eq!(kept["shards"], 4, "a PUT without shards keeps the count");
    assert_eq!(
        inventory.shard_levels(&product).await,
        [(2, 0, 0), (1, 0, 0), (1, 0, 0), (1, 0, 0)]
    );
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn a_line_no_shard_holds_alone_is_split_and_comes_back_exactly() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_sharded(&product, 8, 4).await;
    let (big, small) = (new_id(), new_id());
    inventory
        .apply(&order_submitted(&big, &[(&product, 5)]))
        .await;
    let reservation = inventory.reservation(&big).await.unwrap();
    assert_eq!(reservation.status, ReservationStatus::Reserved);
    assert_eq!(reservation.taken.len(), 3, "2 + 2 + 1: {reservation:?}");
    assert_eq!(inventory.levels(&product).await, (3, 5, 0));
    assert_eq!(
        inventory.outbox_of("StockReserved").await,
        [json!({"orderId": big, "lines": [{"productId": product, "quantity": 5}]})],
        "the event speaks of the product, not its shards"
    );

    inventory
        .apply(&order_submitted(&small, &[(&product, 1)]))
        .await;
    inventory.apply(&order_cancelled(&big)).await;
    inventory
        .apply(&shipment_dispatched(&small, &[(&product, 1)]))
        .await;
    assert_eq!(inventory.levels(&product).await, (7, 0, 1));
    let per_shard = inventory.shard_levels(&product).await;
    assert!(
        per_shard
            .iter()
            .all(|&(available, reserved, _)| reserved == 0 && available <= 2),
        "every unit went back to the shard it came from: {per_shard:?}"
    );
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn units_held_in_a_shard_an_admin_dropped_still_move_and_sell_again() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_sharded(&product, 8, 4).await;
    let orders: Vec<String> = (0..4).map(|_| new_id()).collect();
    for order in &orders {
        inventory
            .apply(&order_submitted(order, &[(&product, 2)]))
            .await;
    }
    assert_eq!(inventory.levels(&product).await, (0, 8, 0));

    let one = inventory.set_sharded(&product, 3, 1).await;
    assert_eq!(
        (one["available"].clone(), one["shards"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(inventory.stored_shards(&product).await.len(), 4);

    inventory
        .apply(&shipment_dispatched(&orders[0], &[(&product, 2)]))
        .await;
    for order in &orders[1..] {
        inventory.apply(&order_cancelled(order)).await;
    }
    assert_eq!(inventory.levels(&product).await, (9, 0, 2));

    // Everything free is sold, whichever shard it went back to.
    let everything = new_id();
    inventory
        .apply(&order_submitted(&everything, &[(&product, 9)]))
        .await;
    assert_eq!(
        inventory.status(&everything).await,
        Some(ReservationStatus::Reserved)
    );
    assert_eq!(inventory.levels(&product).await, (0, 9, 2));
    inventory.assert_conserved().await;
}

/// A flash sale on a sharded product: eighty orders for forty units over eight shards,
/// all at once. Exactly forty reserve, no message fails, and the orders spread over the
/// shards instead of queueing on one item.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eighty_concurrent_orders_for_forty_units_in_eight_shards_reserve_exactly_forty() {
    let inventory = Arc::new(Inventory::new().await);
    let product = new_id();
    inventory.set_sharded(&product, 40, 8).await;
    let orders: Vec<String> = (0..80).map(|_| new_id()).collect();
    let deliveries = submit_all_at_once(&inventory, &orders, &product);
    let outcomes = deliveries.join_all().await;
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Applied),
        "{outcomes:?}"
    );
    assert_eq!(inventory.levels(&product).await, (0, 40, 0));
    assert_eq!(inventory.outbox_of("StockReserved").await.len(), 40);
    assert_eq!(
        inventory.outbox_of("StockReservationFailed").await.len(),
        40
    );
    let mut shards_used = std::collections::BTreeSet::new();
    for order in &orders {
        let reservation = inventory.reservation(order).await.unwrap();
        shards_used.extend(reservation.taken.iter().map(|take| take.shard));
    }
    assert_eq!(shards_used.len(), 8, "{shards_used:?}");
    println!(
        "80 orders for 40 units in 8 shards: {} attempts lost a race and were made again",
        inventory.counts.conflicts_retried()
    );
    inventory.assert_conserved().await;
}

/// A restock that adds shards and the catalog's deletion, at once, many times over: the
/// deletion must reach every shard that exists when it is done, or a shard the restock
/// added would sell a product the catalog no longer has.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deletion_racing_a_restock_that_adds_shards_reaches_every_shard() {
    let inventory = Arc::new(Inventory::new().await);
    let mut races = JoinSet::new();
    for _ in 0..12 {
        let product = new_id();
        inventory.set_stock(&product, 4).await;
        let inventory = Arc::clone(&inventory);
        races.spawn(async move {
            let deletion = product_deleted(&product);
            let (restocked, deleted) = tokio::join!(
                inventory.store.set_available(&product, 16, Some(8)),
                inventory.deliver(&deletion)
            );
            assert_eq!(deleted, Outcome::Applied);
            match restocked {
                Ok(stock) => assert_eq!(stock.shards.len(), 8),
                Err(StoreError::Discontinued) => {}
                Err(other) => panic!("{other:?}"),
            }
            product
        });
    }
    for product in races.join_all().await {
        let stored = inventory.stored_shards(&product).await;
        assert!(
            stored.iter().all(|shard| shard["deleted"] == true),
            "a shard escaped the deletion: {stored:?}"
        );
        let order = new_id();
        inventory
            .apply(&order_submitted(&order, &[(&product, 1)]))
            .await;
        assert_eq!(
            inventory.status(&order).await,
            Some(ReservationStatus::Failed)
        );
    }
}

/// An admin resharding while orders arrive: no unit is lost or made, and every reserved
/// order holds what it took.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restock_racing_orders_keeps_every_unit_accounted_for() {
    let inventory = Arc::new(Inventory::new().await);
    let product = new_id();
    inventory.set_stock(&product, 10).await;
    let orders: Vec<String> = (0..20).map(|_| new_id()).collect();
    let deliveries = submit_all_at_once(&inventory, &orders, &product);
    let restock = {
        let inventory = Arc::clone(&inventory);
        let product = product.clone();
        tokio::spawn(async move { inventory.set_sharded(&product, 30, 4).await })
    };
    let outcomes = deliveries.join_all().await;
    restock.await.unwrap();
    assert!(outcomes.iter().all(|o| *o == Outcome::Applied));
    let mut reserved = 0;
    for order in &orders {
        if inventory.status(order).await == Some(ReservationStatus::Reserved) {
            reserved += 1;
        }
    }
    let (_, held, _) = inventory.levels(&product).await;
    assert_eq!(
        held, reserved,
        "every reserved unit belongs to a reserved order"
    );
    inventory.assert_conserved().await;
}
