//! The store's guards against moto, one write at a time: the conditions, not a read made
//! earlier, are what keep stock from going below zero and reservations from moving twice.

use crate::support::*;
use inventory::domain::{
    Decision, Movement, Reservation, ReservationStatus, StockMove, requested_lines,
};
use inventory::store::StoreError;
use shop_events::{Money, OrderLine};
use shop_platform::transaction::{CommitError, Transaction};

fn stock_move(product_id: &str, movement: Movement, quantity: u64) -> StockMove {
    StockMove {
        product_id: product_id.to_owned(),
        shard: 0,
        movement,
        quantity,
    }
}

impl Inventory {
    async fn commit_move(&self, change: StockMove) -> Result<(), CommitError> {
        let mut transaction = Transaction::new(&self.table.name);
        transaction.write(self.store.move_stock(&change).unwrap());
        transaction.commit(&self.table.dynamodb).await
    }
}

fn reserved(order_id: &str, product_id: &str) -> Reservation {
    let lines = requested_lines(&[OrderLine {
        product_id: product_id.to_owned(),
        name: "A product".into(),
        unit_price: Money::usd(500),
        quantity: 1,
    }])
    .unwrap();
    let stock = inventory::domain::Stock::new(product_id).restocked(1, 1);
    match Reservation::decide(order_id, lines, |_| Some(&stock), 0, chrono::Utc::now()) {
        Decision::Reserve(change) => change.reservation,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_movement_never_takes_more_than_its_source_counter_holds() {
    let inventory = Inventory::new().await;
    let product = new_id();
    inventory.set_stock(&product, 5).await;

    let too_many = inventory
        .commit_move(stock_move(&product, Movement::Reserve, 6))
        .await;
    assert!(
        matches!(too_many, Err(CommitError::ConditionFailed { .. })),
        "{too_many:?}"
    );
    inventory
        .commit_move(stock_move(&product, Movement::Reserve, 5))
        .await
        .unwrap();
    assert_eq!(inventory.levels(&product).await, (0, 5, 0));

    for movement in [Movement::Release, Movement::Ship] {
        let result = inventory
            .commit_move(stock_move(&product, movement, 6))
            .await;
        assert!(
            matches!(result, Err(CommitError::ConditionFailed { .. })),
            "{movement:?}"
        );
    }
    inventory
        .commit_move(stock_move(&product, Movement::Ship, 2))
        .await
        .unwrap();
    inventory
        .commit_move(stock_move(&product, Movement::Release, 3))
        .await
        .unwrap();
    assert_eq!(inventory.levels(&product).await, (3, 0, 2));
    let stock = inventory.stock(&product).await.unwrap();
    assert_eq!(stock.shards[0].version, 4, "one PUT and three movements");
    inventory.assert_conserved().await;
}

#[tokio::test]
async fn nothing_is_reserved_of_a_deleted_or_never_stocked_product() {
    let inventory = Inventory::new().await;
    let (deleted, never_stocked) = (new_id(), new_id());
    inventory.set_stock(&deleted, 5).await;
    inventory
        .commit_move(stock_move(&deleted, Movement::Reserve, 2))
        .await
        .unwrap();
    inventory.apply(&product_deleted(&deleted)).await;

    for (product, movement) in [
        (&deleted, Movement::Reserve),
        (&never_stocked, Movement::Reserve),
        (&never_stocked, Movement::Release),
    ] {
        let result = inventory
            .commit_move(stock_move(product, movement, 1))
            .await;
        assert!(
            matches!(result, Err(CommitError::ConditionFailed { .. })),
            "{movement:?}: {result:?}"
        );
    }
    assert!(inventory.stock(&never_stocked).await.is_none());
    // What the deleted product had promised still moves.
    inventory
        .commit_move(stock_move(&deleted, Movement::Release, 2))
        .await
        .unwrap();
    assert_eq!(inventory.levels(&deleted).await, (5, 0, 0));
}

#[tokio::test]
async fn a_reservation_is_recorded_once_and_moves_on_only_from_the_version_read() {
    let inventory = Inventory::new().await;
    let (order, product) = (new_id(), new_id());
    let first = reserved(&order, &product);

    let create = |reservation: &Reservation| {
        let mut transaction = Transaction::new(&inventory.table.name);
        transaction.write(inventory.store.create_reservation(reservation).unwrap());
        transaction.commit(&inventory.table.dynamodb)
    };
    create(&first).await.unwrap();
    let again = create(&Reservation::cancelled_before_reservation(
        &order,
        chrono::Utc::now(),
    ))
    .await;
    assert!(matches!(again, Err(CommitError::ConditionFailed { .. })));
    assert_eq!(inventory.reservation(&order).await, Some(first.clone()));

    let released = first.release(chrono::Utc::now()).unwrap().reservation;
    let shipped = first.ship(chrono::Utc::now()).unwrap().reservation;
    let update = |reservation: &Reservation| {
        let mut transaction = Transaction::new(&inventory.table.name);
        transaction.write(
            inventory
                .store
                .update_reservation(reservation, first.version)
                .unwrap(),
        );
        transaction.commit(&inventory.table.dynamodb)
    };
    update(&released).await.unwrap();
    let stale = update(&shipped).await;
    assert!(
        matches!(stale, Err(CommitError::ConditionFailed { .. })),
        "a transition from a stale read must fail: {stale:?}"
    );
    assert_eq!(
        inventory.status(&order).await,
        Some(ReservationStatus::Released)
    );
}

#[tokio::test]
async fn setting_stock_creates_or_replaces_available_and_refuses_a_deleted_product() {
    let inventory = Inventory::new().await;
    let product = new_id();
    let created = inventory
        .store
        .set_available(&product, 4, None)
        .await
        .unwrap();
    assert_eq!(created.levels().available, 4);
    assert_eq!(created.total(), 4);
    assert_eq!(created.shards[0].version, 1);
    assert!(!created.deleted);

    let replaced = inventory
        .store
        .set_available(&product, 9, None)
        .await
        .unwrap();
    assert_eq!((replaced.available(), replaced.shards[0].version), (9, 2));

    inventory.apply(&product_deleted(&product)).await;
    assert!(matches!(
        inventory.store.set_available(&product, 1, None).await,
        Err(StoreError::Discontinued)
    ));
    assert_eq!(inventory.levels(&product).await, (9, 0, 0));
}

#[tokio::test]
async fn stocks_are_read_in_one_go_and_missing_ones_are_absent() {
    let inventory = Inventory::new().await;
    let stocked: Vec<String> = (0..3).map(|_| new_id()).collect();
    for (units, product) in stocked.iter().enumerate() {
        inventory.set_stock(product, units as u64).await;
    }
    let missing = new_id();
    let found = inventory
        .store
        .stocks(stocked.iter().map(String::as_str).chain([missing.as_str()]))
        .await
        .unwrap();
    assert_eq!(found.len(), 3);
    for (units, product) in stocked.iter().enumerate() {
        assert_eq!(found[product].available(), units as u64);
    }
    assert!(!found.contains_key(&missing));
}
