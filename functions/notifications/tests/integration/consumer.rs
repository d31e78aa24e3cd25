//! The consumer's handler against moto, driven by the sample events in
//! `events/notifications/consumer-*.json`: who hears an update, once, and what becomes of
//! connections that are gone or failing.

use crate::support::*;
use serde_json::json;
use shop_platform::consumer::Outcome;
use shop_testing::sqs;

#[tokio::test]
async fn an_update_reaches_its_owners_connections_and_the_watchers_and_no_one_else() {
    let notifications = Notifications::new().await;
    notifications.connected("phone=", SHOPPER, false).await;
    notifications.connected("laptop=", SHOPPER, false).await;
    notifications.connected("bob=", "bob", false).await;
    let operator = notifications.connected("ops=", "op", true).await;
    notifications.store.watch_all(&operator).await.unwrap();
    // An admin not watching everything hears only their own orders.
    notifications.connected("other-admin=", "op2", true).await;

    let paid = fixture("consumer-order-paid.json");
    assert_eq!(notifications.deliver_one(&paid).await, Outcome::Applied);
    let event = sqs::envelope(&paid);
    let expected = json!({"type": "orderStatus", "orderId": event["detail"]["data"]["orderId"],
                          "status": "paid", "at": event["detail"]["metadata"]["occurredAt"]});
    let push = notifications.push();
    for id in ["phone=", "laptop=", "ops="] {
        assert_eq!(
            push.received_by(id),
            std::slice::from_ref(&expected),
            "{id}"
        );
    }
    assert!(push.received_by("bob=").is_empty());
    assert!(push.received_by("other-admin=").is_empty());
}

#[tokio::test]
async fn a_cancellation_carries_its_reason() {
    let notifications = Notifications::new().await;
    notifications.connected("phone=", SHOPPER, false).await;
    let cancelled = fixture("consumer-order-cancelled.json");
    assert_eq!(
        notifications.deliver_one(&cancelled).await,
        Outcome::Applied
    );
    let received = notifications.push().received_by("phone=");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["status"], "cancelled");
    assert_eq!(
        received[0]["reason"],
        sqs::envelope(&cancelled)["detail"]["data"]["reason"]
    );
}

#[tokio::test]
async fn a_redelivered_update_is_not_pushed_again() {
    let notifications = Notifications::new().await;
    notifications.connected("phone=", SHOPPER, false).await;
    let paid = fixture("consumer-order-paid.json");
    assert_eq!(notifications.deliver_one(&paid).await, Outcome::Applied);
    assert_eq!(
        notifications.deliver_one(&sqs::redelivered(&paid)).await,
        Outcome::Duplicate
    );
    assert_eq!(notifications.push().count(), 1);
}

#[tokio::test]
async fn a_gone_connection_is_removed_and_the_others_still_hear() {
    let notifications = Notifications::new().await;
    notifications.connected("alive=", SHOPPER, false).await;
    let dead = notifications.connected("dead=", SHOPPER, false).await;
    notifications.store.watch_all(&dead).await.unwrap();
    notifications
        .push()
        .gone
        .lock()
        .unwrap()
        .insert("dead=".into());

    let order = new_order_id();
    let shipped = order_event("consumer-order-paid.json", &order, SHOPPER);
    assert_eq!(notifications.deliver_one(&shipped).await, Outcome::Applied);
    assert_eq!(notifications.push().received_by("alive=").len(), 1);
    assert_eq!(notifications.store.find("dead=").await.unwrap(), None);
    let left: Vec<String> = notifications
        .store
        .connections_of(SHOPPER)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.connection_id)
        .collect();
    assert_eq!(left, ["alive="]);
    assert!(notifications.store.watchers().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_push_fails_the_message_so_the_queue_brings_it_back() {
    let notifications = Notifications::new().await;
    notifications.connected("alive=", SHOPPER, false).await;
    notifications.connected("throttled=", SHOPPER, false).await;
    notifications
        .push()
        .failing
        .lock()
        .unwrap()
        .insert("throttled=".into());
    let paid = order_event("consumer-order-paid.json", &new_order_id(), SHOPPER);
    assert!(matches!(
        notifications.deliver_one(&paid).await,
        Outcome::Failed(_)
    ));
    // Nothing is lost: the redelivery pushes to everyone, the one that had it included
    // (at least once; the client keys what it shows on the order's status).
    notifications.push().failing.lock().unwrap().clear();
    assert_eq!(
        notifications.deliver_one(&sqs::redelivered(&paid)).await,
        Outcome::Applied
    );
    assert_eq!(notifications.push().received_by("throttled=").len(), 1);
    assert_eq!(notifications.push().received_by("alive=").len(), 2);
}

#[tokio::test]
async fn an_event_notifications_does_not_follow_or_a_forged_one_pushes_nothing() {
    let notifications = Notifications::new().await;
    notifications.connected("phone=", SHOPPER, false).await;
    let forged = sqs::republished(&sqs::with_envelope(
        fixture("consumer-order-paid.json"),
        |event| event["source"] = json!("shop.basket"),
    ));
    let unknown = sqs::republished(&sqs::with_envelope(
        fixture("consumer-order-paid.json"),
        |event| event["detail-type"] = json!("OrderRefunded"),
    ));
    let garbage =
        json!({"Records": [sqs::not_an_event(&fixture("consumer-order-paid.json"), "garbage-1")]});
    for batch in [forged, unknown, garbage] {
        assert!(matches!(
            notifications.deliver_one(&batch).await,
            Outcome::Failed(_)
        ));
    }
    assert_eq!(notifications.push().count(), 0);
}

#[tokio::test]
async fn two_updates_of_one_order_in_one_batch_both_reach_the_owner() {
    let notifications = Notifications::new().await;
    notifications.connected("phone=", SHOPPER, false).await;
    let order = new_order_id();
    let paid = order_event("consumer-order-paid.json", &order, SHOPPER);
    let cancelled = order_event("consumer-order-cancelled.json", &order, SHOPPER);
    let batch = json!({"Records": [
        sqs::record(&paid, "m-paid"),
        sqs::record(&cancelled, "m-cancelled"),
    ]});
    assert!(
        sqs::deliver_batch(&notifications.consumer, batch)
            .await
            .is_empty()
    );
    let mut statuses: Vec<String> = notifications
        .push()
        .received_by("phone=")
        .iter()
        .map(|m| m["status"].as_str().unwrap().to_owned())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["cancelled", "paid"]);
}
