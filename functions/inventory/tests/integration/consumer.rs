//! The inventory consumer against moto, through the harness that runs it in Lambda
//! (dedup marker, conflict retries), driven by the sample events in `events/inventory/`.
//! Every test ends by checking DESIGN §3's invariant: no consumed event changed any
//! product's `available + reserved + shipped`.

use std::sync::{Arc, Mutex};

use crate::support::*;
use aws_lambda_events::sqs::SqsMessage;
use inventory::consumer::Handler;
use inventory::domain::ReservationStatus;
use inventory::store::InventoryStore;
use serde_json::{Value, json};
use shop_platform::consumer::{ConsumeError, EventHandler, IncomingEvent, Outcome, SqsConsumer};
use shop_platform::transaction::Transaction;
use shop_testing::metrics::expected;
use shop_testing::sqs;
use tokio::task::JoinSet;

const SAMPLE_PRODUCT: &str = "01JDKQ8M3ZP7G5V4X2N6R9T1CB";
const SAMPLE_ORDER: &str = "01JDKR2B7C9D1E3F5G7H9J1K3M";

#[tokio::test]
async fn the_sample_events_take_an_order_from_reservation_to_shipment_through_the_bus() {
    let inventory = Inventory::new().await;
    inventory
        .apply(&sample_message("consumer-product-created.json"))
        .await;
    assert_eq!(inventory.levels(SAMPLE_PRODUCT).await, (0, 0, 0));
    inventory.set_stock(SAMPLE_PRODUCT, 10).await;

    inventory
        .apply(&sample_message("consumer-order-submitted.json"))
        .await;
    assert_eq!(inventory.levels(SAMPLE_PRODUCT).await, (8, 2, 0));
    assert_eq!(
        inventory.status(SAMPLE_ORDER).await,
        Some(ReservationStatus::Reserved)
    );

    inventory
        .apply(&sample_message("consumer-shipment-dispatched.json"))
        .await;
    assert_eq!(inventory.levels(SAMPLE_PRODUCT).await, (8, 0, 2));
    assert_eq!(
        inventory.status(SAMPLE_ORDER).await,
        Some(ReservationStatus::Shipped)
    );

    // A cancellation that lost the race with the dispatch: what left cannot come back.
    inventory
        .apply(&sample_message("consumer-order-cancelled.json"))
        .await;
    assert_eq!(inventory.levels(SAMPLE_PRODUCT).await, (8, 0, 2));
    assert_eq!(
        inventory.status(SAMPLE_ORDER).await,
        Some(ReservationStatus::Shipped)
    );

    inventory
        .apply(&sample_message("consumer-product-deleted.json"))
        .await;
    assert!(inventory.stock(SAMPLE_PRODUCT).await.unwrap().deleted);
    assert_eq!(inventory.levels(SAMPLE_PRODUCT).await, (8, 0, 2));
    inventory.assert_conserved().await;

    // The one event of the story reaches the bus, carrying the order's correlation id.
    let delivered = inventory.table.published().await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let event = &delivered[0];
    assert_eq!(event["source"], "shop.inventory");
    assert_eq!(event["detail-type"], "StockReserved");
    assert_eq!(
        event["detail"]["metadata"]["correlationId"],
        "req-demo-0007"
    );
    assert_eq!(
        inventory.counts.snapshot(),
        expected([("StockReserved", 1)])
    );
    assert_eq!(
        event["detail"]["data"],
        json!({"orderId": SAMPLE_ORDER, "lines": [{"productId": SAMPLE_PRODUCT, "quantity": 2}]})
    );
}

#[tokio::test]
async fn product_created_makes_an_empty_stock_once_and_never_overwrites_one() {
    let inventory = Inventory::new().await;
    let (fresh, stocked_early, deleted_early) = (new_id(), new_id(), new_id());

    let created = product_created(&fresh);
    inventory.apply(&created).await;
    assert_eq!(
        inventory.deliver(&sqs::redelivered(&created)).await,
        Outcome::Duplicate
    );
    inventory.apply(&sqs::republished(&created)).await;
    let stock = inventory.stock(&fresh).await.unwrap();
    assert_eq!(stock.total(), 0);
    assert!(!stock.deleted);
    assert_eq!(
        stock.shards[0].version, 1,
        "a second ProductCreated changed nothing"
    );

    // An admin stocked it before the catalog's event arrived.
    inventory.set_stock(&stocked_early, 7).await;
    inventory.apply(&product_created(&stocked_early)).await;
    assert_eq!(inventory.levels(&stocked_early).await, (7, 0, 0));

    // The deletion overtook the creation.
    inventory.apply(&product_deleted(&deleted_early)).await;
    inventory.apply(&product_created(&deleted_early)).await;
    assert!(inventory.stock(&deleted_early).await.unwrap().deleted);

    assert!(inventory.table.outbox().await.is_empty());
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn product_deleted_marks_the_stock_or_leaves_a_tombstone_and_is_idempotent() {
    let inventory = Inventory::new().await;
    let (stocked, unknown) = (new_id(), new_id());
    inventory.set_stock(&stocked, 4).await;

    let deleted = product_deleted(&stocked);
    inventory.apply(&deleted).await;
    assert_eq!(
        inventory.deliver(&sqs::redelivered(&deleted)).await,
        Outcome::Duplicate
    );
    inventory.apply(&sqs::republished(&deleted)).await;
    let stock = inventory.stock(&stocked).await.unwrap();
    assert!(stock.deleted);
    assert_eq!(inventory.levels(&stocked).await, (4, 0, 0));

    inventory.apply(&product_deleted(&unknown)).await;
    let tombstone = inventory.stock(&unknown).await.unwrap();
    assert!(tombstone.deleted);
    assert_eq!(tombstone.total(), 0);

    let order = new_id();
    inventory
        .apply(&order_submitted(&order, &[(&stocked, 1)]))
        .await;
    assert_eq!(
        inventory.outbox_of("StockReservationFailed").await,
        [json!({"orderId": order, "shortProductIds": [stocked]})]
    );
    assert_eq!(inventory.levels(&stocked).await, (4, 0, 0));
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn what_was_reserved_before_a_deletion_can_still_be_released_and_shipped() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 10).await;
    let (to_cancel, to_ship) = (new_id(), new_id());
    inventory
        .apply(&order_submitted(&to_cancel, &[(&product, 2)]))
        .await;
    inventory
        .apply(&order_submitted(&to_ship, &[(&product, 3)]))
        .await;
    inventory.apply(&product_deleted(&product)).await;
    assert_eq!(inventory.levels(&product).await, (5, 5, 0));

    inventory.apply(&order_cancelled(&to_cancel)).await;
    inventory
        .apply(&shipment_dispatched(&to_ship, &[(&product, 3)]))
        .await;
    assert_eq!(inventory.levels(&product).await, (7, 0, 3));
    assert_eq!(
        inventory.status(&to_cancel).await,
        Some(ReservationStatus::Released)
    );
    assert_eq!(
        inventory.status(&to_ship).await,
        Some(ReservationStatus::Shipped)
    );
    assert!(inventory.stock(&product).await.unwrap().deleted);
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn an_order_reserves_every_line_or_none() {
    let inventory = Inventory::new().await;
    let (a, b, never_stocked, deleted) = (new_id(), new_id(), new_id(), new_id());
    inventory.set_stock(&a, 5).await;
    inventory.set_stock(&b, 1).await;
    inventory.set_stock(&deleted, 9).await;
    inventory.apply(&product_deleted(&deleted)).await;

    // `a` twice in one order: held as one line.
    let whole = new_id();
    inventory
        .apply(&order_submitted(&whole, &[(&b, 1), (&a, 2), (&a, 1)]))
        .await;
    assert_eq!(inventory.levels(&a).await, (2, 3, 0));
    assert_eq!(inventory.levels(&b).await, (0, 1, 0));
    let mut expected_lines = vec![
        json!({"productId": a, "quantity": 3}),
        json!({"productId": b, "quantity": 1}),
    ];
    expected_lines.sort_by_key(|line| line["productId"].as_str().unwrap().to_owned());
    assert_eq!(
        inventory.outbox_of("StockReserved").await,
        [json!({"orderId": whole, "lines": expected_lines})]
    );

    // `b` is short now; `a` alone could be held but is not.
    let short_of_b = new_id();
    inventory
        .apply(&order_submitted(&short_of_b, &[(&a, 1), (&b, 1)]))
        .await;
    // Never stocked and deleted are short too; every short product is named once, sorted.
    let three_short = new_id();
    inventory
        .apply(&order_submitted(
            &three_short,
            &[
                (&deleted, 1),
                (&a, 1),
                (&never_stocked, 1),
                (&b, 1),
                (&deleted, 1),
            ],
        ))
        .await;
    assert_eq!(
        inventory.levels(&a).await,
        (2, 3, 0),
        "failures hold nothing"
    );
    assert_eq!(inventory.levels(&b).await, (0, 1, 0));
    let mut three = vec![b.clone(), never_stocked.clone(), deleted.clone()];
    three.sort();
    let failures = inventory.outbox_of("StockReservationFailed").await;
    assert_eq!(failures.len(), 2);
    assert!(failures.contains(&json!({"orderId": short_of_b, "shortProductIds": [b]})));
    assert!(failures.contains(&json!({"orderId": three_short, "shortProductIds": three})));
    assert_eq!(
        inventory.status(&three_short).await,
        Some(ReservationStatus::Failed)
    );
    assert!(
        inventory.stock(&never_stocked).await.is_none(),
        "a failed order creates no stock"
    );
    assert_eq!(
        inventory.counts.snapshot(),
        expected([("ReservationsFailed", 2), ("StockReserved", 1)])
    );
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn a_repeated_order_submitted_reserves_once() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 5).await;
    let order = new_id();
    let submitted = order_submitted(&order, &[(&product, 2)]);

    inventory.apply(&submitted).await;
    assert_eq!(inventory.deliver(&submitted).await, Outcome::Duplicate);
    assert_eq!(
        inventory.deliver(&sqs::redelivered(&submitted)).await,
        Outcome::Duplicate
    );
    // Even published twice with two event ids, an order is decided once.
    inventory.apply(&sqs::republished(&submitted)).await;

    assert_eq!(inventory.levels(&product).await, (3, 2, 0));
    assert_eq!(inventory.outbox_of("StockReserved").await.len(), 1);
    assert_eq!(inventory.table.outbox().await.len(), 1);

    // A failed order stays failed, even if stock arrives before the repeat.
    let failed = new_id();
    let too_much = order_submitted(&failed, &[(&product, 4)]);
    inventory.apply(&too_much).await;
    inventory.set_stock(&product, 50).await;
    inventory.apply(&sqs::republished(&too_much)).await;
    assert_eq!(inventory.levels(&product).await, (50, 2, 0));
    assert_eq!(
        inventory.status(&failed).await,
        Some(ReservationStatus::Failed)
    );
    assert_eq!(inventory.outbox_of("StockReservationFailed").await.len(), 1);
    assert_eq!(
        inventory.counts.snapshot(),
        expected([("ReservationsFailed", 1), ("StockReserved", 1)]),
        "each order decided and counted once, however often it came"
    );
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn a_cancellation_that_overtakes_its_submission_leaves_the_stock_as_in_order() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 5).await;

    let in_order = new_id();
    inventory
        .apply(&order_submitted(&in_order, &[(&product, 2)]))
        .await;
    inventory.apply(&order_cancelled(&in_order)).await;
    let after_in_order = inventory.levels(&product).await;

    let reordered = new_id();
    let cancelled = order_cancelled(&reordered);
    inventory.apply(&cancelled).await;
    assert_eq!(
        inventory.status(&reordered).await,
        Some(ReservationStatus::CancelledBeforeReservation)
    );
    inventory
        .apply(&order_submitted(&reordered, &[(&product, 2)]))
        .await;
    inventory.apply(&sqs::republished(&cancelled)).await;

    assert_eq!(after_in_order, (5, 0, 0));
    assert_eq!(inventory.levels(&product).await, after_in_order);
    assert_eq!(
        inventory.status(&reordered).await,
        Some(ReservationStatus::CancelledBeforeReservation)
    );
    let about_reordered: Vec<Value> = inventory
        .table
        .outbox()
        .await
        .into_iter()
        .filter(|e| e["detail"]["data"]["orderId"] == reordered.as_str())
        .collect();
    assert!(
        about_reordered.is_empty(),
        "an order cancelled before inventory saw it needs no answer: {about_reordered:?}"
    );
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn a_repeated_order_cancelled_releases_once() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 5).await;
    let order = new_id();
    inventory
        .apply(&order_submitted(&order, &[(&product, 3)]))
        .await;
    assert_eq!(inventory.levels(&product).await, (2, 3, 0));

    let cancelled = order_cancelled(&order);
    inventory.apply(&cancelled).await;
    assert_eq!(
        inventory.deliver(&sqs::redelivered(&cancelled)).await,
        Outcome::Duplicate
    );
    inventory.apply(&sqs::republished(&cancelled)).await;

    assert_eq!(inventory.levels(&product).await, (5, 0, 0));
    assert_eq!(
        inventory.status(&order).await,
        Some(ReservationStatus::Released)
    );
    let released = inventory.outbox_of("StockReleased").await;
    assert_eq!(
        released,
        [json!({"orderId": order, "lines": [{"productId": product, "quantity": 3}]})]
    );
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn cancelling_a_failed_order_changes_nothing() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 1).await;
    let order = new_id();
    inventory
        .apply(&order_submitted(&order, &[(&product, 2)]))
        .await;
    inventory.apply(&order_cancelled(&order)).await;
    assert_eq!(
        inventory.status(&order).await,
        Some(ReservationStatus::Failed)
    );
    assert_eq!(inventory.levels(&product).await, (1, 0, 0));
    assert!(inventory.outbox_of("StockReleased").await.is_empty());
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn a_repeated_dispatch_ships_once_and_a_later_cancellation_releases_nothing() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 5).await;
    let order = new_id();
    inventory
        .apply(&order_submitted(&order, &[(&product, 2)]))
        .await;

    let dispatched = shipment_dispatched(&order, &[(&product, 2)]);
    inventory.apply(&dispatched).await;
    assert_eq!(
        inventory.deliver(&sqs::redelivered(&dispatched)).await,
        Outcome::Duplicate
    );
    inventory.apply(&sqs::republished(&dispatched)).await;
    inventory.apply(&order_cancelled(&order)).await;

    assert_eq!(inventory.levels(&product).await, (3, 0, 2));
    assert_eq!(
        inventory.status(&order).await,
        Some(ReservationStatus::Shipped)
    );
    assert!(inventory.outbox_of("StockReleased").await.is_empty());
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn a_dispatch_of_a_released_or_unknown_order_ships_nothing() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 5).await;
    let released = new_id();
    inventory
        .apply(&order_submitted(&released, &[(&product, 2)]))
        .await;
    inventory.apply(&order_cancelled(&released)).await;

    inventory
        .apply(&shipment_dispatched(&released, &[(&product, 2)]))
        .await;
    inventory
        .apply(&shipment_dispatched(&new_id(), &[(&product, 1)]))
        .await;

    assert_eq!(inventory.levels(&product).await, (5, 0, 0));
    assert_eq!(
        inventory.status(&released).await,
        Some(ReservationStatus::Released)
    );
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn a_dispatch_ships_what_was_reserved_whatever_it_lists() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 5).await;
    let order = new_id();
    inventory
        .apply(&order_submitted(&order, &[(&product, 2)]))
        .await;
    inventory
        .apply(&shipment_dispatched(&order, &[(&product, 5)]))
        .await;
    assert_eq!(inventory.levels(&product).await, (3, 0, 2));
    inventory.assert_conserved().await;
}

/// The inventory's handler with a rival event applied between its reads and its commit:
/// a race lost on purpose, deterministically.
struct LosesTheRaceTo {
    handler: Handler,
    rival: SqsConsumer<Handler>,
    rival_event: Mutex<Option<SqsMessage>>,
}

impl LosesTheRaceTo {
    fn consumer(inventory: &Inventory, rival_event: Value) -> SqsConsumer<Self> {
        let table = &inventory.table;
        let handler = || Handler {
            store: InventoryStore::new(table.dynamodb.clone(), &table.name),
        };
        table
            .consumer(
                "inventory",
                LosesTheRaceTo {
                    handler: handler(),
                    rival: table
                        .consumer("inventory", handler())
                        .with_metrics(inventory.counts.metrics()),
                    rival_event: Mutex::new(Some(sqs::message(&rival_event))),
                },
            )
            .with_metrics(inventory.counts.metrics())
    }
}

impl EventHandler for LosesTheRaceTo {
    async fn handle(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        self.handler.handle(event, transaction).await?;
        let rival_event = self.rival_event.lock().unwrap().take();
        if let Some(rival_event) = rival_event {
            assert_eq!(
                self.rival.handle_message(&rival_event).await,
                Outcome::Applied
            );
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_order_that_loses_the_last_units_between_read_and_commit_fails_on_the_retry() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 1).await;
    let (loser, winner) = (new_id(), new_id());
    let consumer = LosesTheRaceTo::consumer(&inventory, order_submitted(&winner, &[(&product, 1)]));

    let outcome = sqs::deliver(&consumer, &order_submitted(&loser, &[(&product, 1)])).await;

    assert_eq!(outcome, Outcome::Applied);
    assert_eq!(inventory.levels(&product).await, (0, 1, 0));
    assert_eq!(
        inventory.status(&winner).await,
        Some(ReservationStatus::Reserved)
    );
    assert_eq!(
        inventory.status(&loser).await,
        Some(ReservationStatus::Failed)
    );
    assert_eq!(
        inventory.outbox_of("StockReservationFailed").await,
        [json!({"orderId": loser, "shortProductIds": [product]})]
    );
    assert_eq!(inventory.outbox_of("StockReserved").await.len(), 1);
    assert_eq!(
        inventory.counts.snapshot(),
        expected([("ReservationsFailed", 1), ("StockReserved", 1)]),
        "the loser's first attempt, a reservation that never committed, counted nothing"
    );
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn a_cancellation_that_lands_between_read_and_commit_of_its_submission_wins() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 3).await;
    let order = new_id();
    let consumer = LosesTheRaceTo::consumer(&inventory, order_cancelled(&order));

    let outcome = sqs::deliver(&consumer, &order_submitted(&order, &[(&product, 2)])).await;

    assert_eq!(outcome, Outcome::Applied);
    assert_eq!(inventory.levels(&product).await, (3, 0, 0));
    assert_eq!(
        inventory.status(&order).await,
        Some(ReservationStatus::CancelledBeforeReservation)
    );
    assert!(inventory.table.outbox().await.is_empty());
    assert_eq!(
        inventory.counts.snapshot(),
        expected([]),
        "the reservation staged before the cancellation landed never counted"
    );
    inventory.assert_conserved().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_orders_for_five_units_reserve_exactly_five() {
    let inventory = Arc::new(Inventory::new().await);
    let product = new_id();
    inventory.set_stock(&product, 5).await;
    let orders: Vec<String> = (0..20).map(|_| new_id()).collect();

    let deliveries = submit_all_at_once(&inventory, &orders, &product);
    let outcomes = deliveries.join_all().await;
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Applied),
        "{outcomes:?}"
    );

    assert_eq!(inventory.levels(&product).await, (0, 5, 0));
    let mut statuses = Vec::new();
    for order in &orders {
        statuses.push(inventory.status(order).await);
    }
    let count = |status| statuses.iter().filter(|s| **s == Some(status)).count();
    assert_eq!(count(ReservationStatus::Reserved), 5);
    assert_eq!(count(ReservationStatus::Failed), 15);
    assert_eq!(inventory.outbox_of("StockReserved").await.len(), 5);
    let failures = inventory.outbox_of("StockReservationFailed").await;
    assert_eq!(failures.len(), 15);
    assert!(
        failures
            .iter()
            .all(|f| f["shortProductIds"] == json!([product]))
    );
    assert_eq!(
        inventory.counts.snapshot(),
        expected([("ReservationsFailed", 15), ("StockReserved", 5)]),
        "attempts retried after a conflict counted once, when they committed"
    );
    inventory.assert_conserved().await;
}

/// A flash sale: eighty orders for the last forty units of one product, all delivered at
/// once. Most of them lose a race on the stock item (several times over); losing is never a
/// reason to fail a message (which the queue would, after five receives, move to the DLQ):
/// every one is applied, exactly forty reserve.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flash_sale_of_eighty_orders_for_forty_units_fails_no_message() {
    let inventory = Arc::new(Inventory::new().await);
    let product = new_id();
    inventory.set_stock(&product, 40).await;
    let orders: Vec<String> = (0..80).map(|_| new_id()).collect();
    let deliveries = submit_all_at_once(&inventory, &orders, &product);
    let outcomes = deliveries.join_all().await;
    let failed: Vec<_> = outcomes
        .iter()
        .filter(|o| **o != Outcome::Applied)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(inventory.levels(&product).await, (0, 40, 0));
    assert_eq!(inventory.outbox_of("StockReserved").await.len(), 40);
    assert_eq!(
        inventory.outbox_of("StockReservationFailed").await.len(),
        40
    );
    println!(
        "80 orders for 40 units in one item: {} attempts lost a race and were made again",
        inventory.counts.conflicts_retried()
    );
    inventory.assert_conserved().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancellation_racing_its_submission_or_its_dispatch_moves_the_units_once() {
    let inventory = Arc::new(Inventory::new().await);
    let product = new_id();
    inventory.set_stock(&product, 100).await;

    let mut races = JoinSet::new();
    for round in 0..8 {
        let order = new_id();
        let first = order_submitted(&order, &[(&product, 1)]);
        let cancel = order_cancelled(&order);
        let dispatch = shipment_dispatched(&order, &[(&product, 1)]);
        let inventory = Arc::clone(&inventory);
        races.spawn(async move {
            if round % 2 == 0 {
                // Submission and cancellation at once.
                let (a, b) = tokio::join!(inventory.deliver(&first), inventory.deliver(&cancel));
                (order, vec![a, b])
            } else {
                // Reserved, then a dispatch and a cancellation at once.
                let a = inventory.deliver(&first).await;
                let (b, c) = tokio::join!(inventory.deliver(&dispatch), inventory.deliver(&cancel));
                (order, vec![a, b, c])
            }
        });
    }
    let mut shipped = 0;
    for (order, outcomes) in races.join_all().await {
        assert!(
            outcomes.iter().all(|o| *o == Outcome::Applied),
            "{order}: {outcomes:?}"
        );
        let status = inventory.status(&order).await.unwrap();
        assert!(
            matches!(
                status,
                ReservationStatus::Released
                    | ReservationStatus::Shipped
                    | ReservationStatus::CancelledBeforeReservation
            ),
            "{order}: {status:?}"
        );
        if status == ReservationStatus::Shipped {
            shipped += 1;
        }
    }
    assert_eq!(
        inventory.levels(&product).await,
        (100 - shipped, 0, shipped),
        "nothing stays held once every order is settled"
    );
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn events_inventory_cannot_use_fail_alone_and_change_nothing() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 5).await;
    let before = inventory.table.item_count().await;

    let wrong_source = sqs::with_envelope(order_submitted(&new_id(), &[(&product, 1)]), |e| {
        e["source"] = json!("shop.catalog")
    });
    let not_consumed = sqs::with_envelope(product_created(&product), |e| {
        e["detail-type"] = json!("ProductUpdated")
    });
    let wrong_schema = sqs::with_envelope(order_cancelled(&new_id()), |e| {
        e["detail"]["data"]["reason"] = json!("bored")
    });
    let good = order_submitted(&new_id(), &[(&product, 1)]);

    let records = vec![
        sqs::not_an_event(&good, "garbage"),
        sqs::record(&wrong_source, "wrong-source"),
        sqs::record(&not_consumed, "not-consumed"),
        sqs::record(&wrong_schema, "wrong-schema"),
        sqs::record(&order_submitted(&new_id(), &[]), "no-lines"),
        sqs::record(&order_submitted(&new_id(), &[(&product, 0)]), "zero-units"),
        sqs::record(&good, "good"),
    ];
    let failed = sqs::deliver_batch(&inventory.consumer, json!({ "Records": records })).await;
    assert_eq!(
        failed,
        [
            "garbage",
            "wrong-source",
            "not-consumed",
            "wrong-schema",
            "no-lines",
            "zero-units"
        ]
    );
    // The good order: its reservation, its event and its marker.
    assert_eq!(inventory.table.item_count().await, before + 3);
    assert_eq!(inventory.levels(&product).await, (4, 1, 0));
    inventory.assert_conserved().await;
}
