//! The shipments table against moto: conditional writes, the status index kept in step
//! with every change, tombstones kept out of it, and pages that resume where they stopped.

use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use shipping::domain::{Shipment, ShipmentStatus};
use shipping::store::ShipmentStore;
use shop_events::Envelope;
use shop_platform::pagination::PageRequest;
use shop_platform::store::TableError;

fn first_page(limit: i32) -> PageRequest {
    PageRequest { limit, after: None }
}

async fn listed(shipping: &Shipping, status: ShipmentStatus) -> Vec<String> {
    let (shipments, next) = shipping
        .store
        .list_by_status(status, first_page(100))
        .await
        .unwrap();
    assert!(next.is_none());
    shipments.into_iter().map(|s| s.order_id).collect()
}

#[tokio::test]
async fn a_shipment_reads_back_as_written_and_is_created_only_once() {
    let shipping = Shipping::new().await;
    let shipment = prepared(ORDER_ID, 1_000);
    shipping.seed(&shipment).await;
    assert_eq!(shipping.shipment(ORDER_ID).await, Some(shipment.clone()));
    assert_eq!(shipping.shipment(&new_order_id()).await, None);

    let mut again = shipping.store.table().transaction();
    shipping
        .store
        .stage_create(&mut again, &prepared(ORDER_ID, 2_000))
        .unwrap();
    let refused = TableError::from(again.commit(&shipping.table.dynamodb).await.unwrap_err());
    assert!(matches!(refused, TableError::Conflict), "{refused:?}");
    assert_eq!(shipping.shipment(ORDER_ID).await, Some(shipment));
}

#[tokio::test]
async fn a_change_applies_only_at_the_version_it_read() {
    let shipping = Shipping::new().await;
    let stored = prepared(ORDER_ID, 1_000);
    shipping.seed(&stored).await;

    let mut dispatched = stored.clone();
    let event = Envelope::new(dispatched.dispatch(at(2_000)).unwrap(), "test");
    shipping
        .store
        .change(&dispatched, stored.version, &event)
        .await
        .unwrap();
    assert_eq!(shipping.shipment(ORDER_ID).await, Some(dispatched.clone()));
    assert_eq!(shipping.raised().await, ["ShipmentDispatched"]);

    // A writer that read the pending shipment before the dispatch loses, event and all.
    let mut stale = stored.clone();
    stale.cancel(at(3_000)).unwrap();
    let mut transaction = shipping.store.table().transaction();
    shipping
        .store
        .stage_change(&mut transaction, &stale, stored.version)
        .unwrap();
    assert!(transaction.commit(&shipping.table.dynamodb).await.is_err());
    let mut late = stored.clone();
    let late_event = Envelope::new(late.dispatch(at(4_000)).unwrap(), "test");
    assert!(matches!(
        shipping
            .store
            .change(&late, stored.version, &late_event)
            .await,
        Err(TableError::Conflict)
    ));
    assert_eq!(shipping.shipment(ORDER_ID).await, Some(dispatched));
    assert_eq!(shipping.raised().await, ["ShipmentDispatched"]);
}

#[tokio::test]
async fn the_status_index_follows_every_change_newest_first() {
    let shipping = Shipping::new().await;
    let ids: Vec<String> = (0..4).map(|_| new_order_id()).collect();
    for (n, id) in ids.iter().enumerate() {
        shipping.seed(&prepared(id, 1_000 + n as i64)).await;
    }
    assert_eq!(
        listed(&shipping, ShipmentStatus::Pending).await,
        [
            ids[3].clone(),
            ids[2].clone(),
            ids[1].clone(),
            ids[0].clone()
        ]
    );

    // The oldest pending shipment is dispatched last: it heads the dispatched list.
    for (id, seconds) in [(&ids[2], 5_000), (&ids[0], 6_000)] {
        let stored = shipping.shipment(id).await.unwrap();
        let mut changed = stored.clone();
        let event = Envelope::new(changed.dispatch(at(seconds)).unwrap(), "test");
        shipping
            .store
            .change(&changed, stored.version, &event)
            .await
            .unwrap();
    }
    assert_eq!(
        listed(&shipping, ShipmentStatus::Pending).await,
        [ids[3].clone(), ids[1].clone()]
    );
    assert_eq!(
        listed(&shipping, ShipmentStatus::Dispatched).await,
        [ids[0].clone(), ids[2].clone()]
    );
    assert!(
        listed(&shipping, ShipmentStatus::Delivered)
            .await
            .is_empty()
    );

    let raw = shipping.table.items("SHIPMENT#").await;
    let of = |id: &str| {
        raw.iter()
            .find(|item| item["orderId"].as_s().unwrap() == id)
            .unwrap()
    };
    // One of the status's index pieces: `STATUS#dispatched`, or that and `#<n>`.
    let listed_under = of(&ids[0])["gsi1pk"].as_s().unwrap();
    assert!(
        listed_under == "STATUS#dispatched" || listed_under.starts_with("STATUS#dispatched#"),
        "{listed_under}"
    );
    assert_eq!(
        of(&ids[0])["gsi1sk"].as_s().unwrap(),
        &format!("1970-01-01T01:40:00.000Z#{}", ids[0])
    );
    assert!(
        of(&ids[0]).get("expiresAt").is_none(),
        "shipments never expire"
    );
}

#[tokio::test]
async fn a_tombstone_is_found_by_key_listed_nowhere_and_expires() {
    let shipping = Shipping::new().await;
    let tombstone = Shipment::tombstone(ORDER_ID, SHOPPER, at(1_000));
    shipping.seed(&tombstone).await;
    let mut cancelled = prepared(&new_order_id(), 900);
    cancelled.cancel(at(950)).unwrap();
    shipping.seed(&cancelled).await;

    assert_eq!(shipping.shipment(ORDER_ID).await, Some(tombstone));
    assert_eq!(
        listed(&shipping, ShipmentStatus::Cancelled).await,
        [cancelled.order_id.clone()],
        "only the shipment that was prepared is listed"
    );
    let raw = shipping.table.items(&format!("SHIPMENT#{ORDER_ID}")).await;
    assert_eq!(raw.len(), 1);
    assert!(!raw[0].contains_key("gsi1pk") && !raw[0].contains_key("gsi1sk"));
    assert_eq!(
        raw[0]["expiresAt"],
        AttributeValue::N((1_000 + 30 * 24 * 3600).to_string()),
        "a number, as DynamoDB's TTL requires"
    );
}

#[tokio::test]
async fn pages_resume_where_they_stopped_and_only_within_their_status() {
    let shipping = Shipping::new().await;
    let ids: Vec<String> = (0..5).map(|_| new_order_id()).collect();
    for (n, id) in ids.iter().enumerate() {
        shipping.seed(&prepared(id, 1_000 + n as i64)).await;
    }
    let mut seen = Vec::new();
    let mut page = first_page(2);
    let mut sizes = Vec::new();
    loop {
        let (shipments, next) = shipping
            .store
            .list_by_status(ShipmentStatus::Pending, page)
            .await
            .unwrap();
        sizes.push(shipments.len());
        seen.extend(shipments.into_iter().map(|s| s.order_id));
        let Some(after) = next else { break };
        assert!(ShipmentStore::cursor_belongs_to(
            ShipmentStatus::Pending,
            &after
        ));
        assert!(!ShipmentStore::cursor_belongs_to(
            ShipmentStatus::Dispatched,
            &after
        ));
        page = PageRequest {
            limit: 2,
            after: Some(after),
        };
    }
    assert_eq!(sizes, [2, 2, 1]);
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
}
