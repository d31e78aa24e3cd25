//! The consumer Lambda's handler against moto, driven by the sample events in
//! `events/shipping/consumer-*.json` (SQS batches as the bus delivers them). Each event is
//! delivered once, twice, recorded twice, and ahead of the events it interacts with; the
//! state must be what one delivery in order would have left, and no event is raised.

use crate::support::*;
use serde_json::{Value, json};
use shipping::domain::{ShipmentStatus, StatusChange};
use shop_platform::consumer::Outcome;
use shop_testing::sqs;

fn statuses(history: &[StatusChange]) -> Vec<ShipmentStatus> {
    history.iter().map(|c| c.status).collect()
}

#[tokio::test]
async fn a_paid_order_becomes_a_pending_shipment_of_its_lines_to_its_address() {
    let shipping = Shipping::new().await;
    assert!(shipping.deliver(order_paid()).await.is_empty());

    let shipment = shipping.shipment(ORDER_ID).await.expect("a shipment");
    let sent = sqs::envelope(&order_paid())["detail"]["data"].clone();
    assert_eq!(shipment.status, ShipmentStatus::Pending);
    assert_eq!(shipment.user_id, SHOPPER);
    assert_eq!(
        serde_json::to_value(&shipment.shipping_address).unwrap(),
        sent["shippingAddress"]
    );
    let lines: Vec<Value> = sent["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| json!({"productId": l["productId"], "name": l["name"], "quantity": l["quantity"]}))
        .collect();
    assert_eq!(serde_json::to_value(&shipment.lines).unwrap(), json!(lines));
    assert_eq!(
        statuses(&shipment.status_history),
        [ShipmentStatus::Pending]
    );
    assert_eq!(shipment.version, 1);
    assert!(!shipment.is_tombstone());
    assert!(
        shipping.raised().await.is_empty(),
        "preparing a shipment is no event"
    );
    // The shipment and the processed marker.
    assert_eq!(shipping.table.item_count().await, 2);
}

#[tokio::test]
async fn order_paid_twice_prepares_one_shipment() {
    let shipping = Shipping::new().await;
    let once = order_paid();
    assert_eq!(shipping.deliver_one(&once).await, Outcome::Applied);
    let after_once = shipping.shipment(ORDER_ID).await.unwrap();

    // SQS redelivers the message; an EventBridge retry brings it in a new one.
    assert_eq!(shipping.deliver_one(&once).await, Outcome::Duplicate);
    assert_eq!(
        shipping.deliver_one(&sqs::redelivered(&once)).await,
        Outcome::Duplicate
    );
    // Ordering recorded it twice: a new event id, the same order.
    assert_eq!(
        shipping.deliver_one(&sqs::republished(&once)).await,
        Outcome::Applied
    );
    assert_eq!(shipping.shipment(ORDER_ID).await.unwrap(), after_once);
}

#[tokio::test]
async fn the_same_order_paid_twice_at_once_prepares_one_shipment() {
    let shipping = Shipping::new().await;
    let first = order_paid();
    let second = sqs::republished(&first);
    let (a, b) = tokio::join!(shipping.deliver(first), shipping.deliver(second));
    assert!(a.is_empty() && b.is_empty(), "{a:?} {b:?}");
    let shipment = shipping.shipment(ORDER_ID).await.unwrap();
    assert_eq!(shipment.version, 1);
    assert_eq!(shipping.table.items("SHIPMENT#").await.len(), 1);
}

#[tokio::test]
async fn order_paid_changes_nothing_once_the_shipment_has_moved_on() {
    let shipping = Shipping::new().await;
    for status in [
        ShipmentStatus::Dispatched,
        ShipmentStatus::Delivered,
        ShipmentStatus::Cancelled,
    ] {
        let id = new_order_id();
        let mut shipment = prepared(&id, 1_000);
        match status {
            ShipmentStatus::Dispatched => drop(shipment.dispatch(at(2_000)).unwrap()),
            ShipmentStatus::Delivered => {
                shipment.dispatch(at(2_000)).unwrap();
                shipment.deliver(at(3_000)).unwrap();
            }
            _ => shipment.cancel(at(2_000)).unwrap(),
        }
        shipping.seed(&shipment).await;
        shipping.apply(&for_order(order_paid(), &id)).await;
        assert_eq!(shipping.shipment(&id).await.unwrap(), shipment, "{status}");
    }
    assert!(shipping.raised().await.is_empty());
}

#[tokio::test]
async fn a_cancellation_drops_a_pending_shipment_once() {
    let shipping = Shipping::new().await;
    shipping.apply(&order_paid()).await;
    let cancelled = order_cancelled();
    assert_eq!(shipping.deliver_one(&cancelled).await, Outcome::Applied);

    let shipment = shipping.shipment(ORDER_ID).await.unwrap();
    assert_eq!(shipment.status, ShipmentStatus::Cancelled);
    assert_eq!(
        statuses(&shipment.status_history),
        [ShipmentStatus::Pending, ShipmentStatus::Cancelled]
    );
    assert_eq!(shipment.version, 2);
    assert!(shipment.shipping_address.is_some() && !shipment.lines.is_empty());
    assert!(!shipment.is_tombstone(), "a cancelled shipment is kept");

    assert_eq!(shipping.deliver_one(&cancelled).await, Outcome::Duplicate);
    assert_eq!(
        shipping.deliver_one(&sqs::republished(&cancelled)).await,
        Outcome::Applied
    );
    assert_eq!(shipping.shipment(ORDER_ID).await.unwrap(), shipment);
    assert!(
        shipping.raised().await.is_empty(),
        "the contract has no event for it"
    );
}

#[tokio::test]
async fn a_cancellation_ahead_of_its_payment_means_no_shipment_ever() {
    let shipping = Shipping::new().await;
    // The bus does not keep order: the customer's cancellation overtakes the OrderPaid.
    shipping.apply(&order_cancelled()).await;
    let tombstone = shipping.shipment(ORDER_ID).await.expect("a tombstone");
    assert!(tombstone.is_tombstone());
    assert_eq!(tombstone.status, ShipmentStatus::Cancelled);
    assert_eq!(tombstone.user_id, SHOPPER);

    let paid = order_paid();
    assert_eq!(shipping.deliver_one(&paid).await, Outcome::Applied);
    assert_eq!(
        shipping.deliver_one(&sqs::republished(&paid)).await,
        Outcome::Applied
    );
    assert_eq!(shipping.shipment(ORDER_ID).await.unwrap(), tombstone);

    // Nothing for an admin to dispatch, now or later.
    let (status, problem, _) = shipping.call(fixture("api-dispatch.json")).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(
        shipping.status(ORDER_ID).await,
        Some(ShipmentStatus::Cancelled)
    );
    assert!(shipping.raised().await.is_empty());
}

#[tokio::test]
async fn payment_and_cancellation_racing_end_cancelled_whichever_commits_first() {
    for _ in 0..3 {
        let shipping = Shipping::new().await;
        let (a, b) = tokio::join!(
            shipping.deliver(order_paid()),
            shipping.deliver(order_cancelled())
        );
        assert!(a.is_empty() && b.is_empty(), "{a:?} {b:?}");
        let shipment = shipping.shipment(ORDER_ID).await.unwrap();
        assert_eq!(shipment.status, ShipmentStatus::Cancelled);
        if shipment.is_tombstone() {
            assert_eq!(
                statuses(&shipment.status_history),
                [ShipmentStatus::Cancelled]
            );
        } else {
            assert_eq!(
                statuses(&shipment.status_history),
                [ShipmentStatus::Pending, ShipmentStatus::Cancelled]
            );
        }
    }
}

#[tokio::test]
async fn a_cancellation_after_the_parcel_left_changes_nothing() {
    let shipping = Shipping::new().await;
    shipping.apply(&order_paid()).await;
    let (status, body, _) = shipping.call(fixture("api-dispatch.json")).await;
    assert_eq!(status, 200, "{body}");
    let dispatched = shipping.shipment(ORDER_ID).await.unwrap();

    assert!(
        shipping.deliver(order_cancelled()).await.is_empty(),
        "acknowledged, not retried: nothing will ever make it apply"
    );
    assert_eq!(shipping.shipment(ORDER_ID).await.unwrap(), dispatched);

    let (status, body, _) = shipping.call(fixture("api-deliver.json")).await;
    assert_eq!(status, 200, "{body}");
    let delivered = shipping.shipment(ORDER_ID).await.unwrap();
    shipping.apply(&sqs::republished(&order_cancelled())).await;
    assert_eq!(shipping.shipment(ORDER_ID).await.unwrap(), delivered);
    assert_eq!(
        shipping.raised().await,
        ["ShipmentDispatched", "ShipmentDelivered"]
    );
}

#[tokio::test]
async fn bad_messages_fail_alone_and_write_nothing() {
    let shipping = Shipping::new().await;
    let good = order_paid();
    let bad = |id: &str, batch: Value| sqs::record(&batch, id);
    let paid_data = |change: fn(&mut Value)| {
        sqs::with_envelope(good.clone(), |e| change(&mut e["detail"]["data"]))
    };

    let records = vec![
        sqs::not_an_event(&good, "garbage"),
        bad(
            "wrong-schema",
            paid_data(|d| d["lines"][0]["quantity"] = json!("one")),
        ),
        bad(
            "no-address",
            paid_data(|d| drop(d.as_object_mut().unwrap().remove("shippingAddress"))),
        ),
        bad("no-lines", paid_data(|d| d["lines"] = json!([]))),
        bad(
            "zero-quantity",
            paid_data(|d| d["lines"][1]["quantity"] = json!(0)),
        ),
        bad(
            "unsafe-order-id",
            paid_data(|d| d["orderId"] = json!("../../etc/passwd")),
        ),
        bad(
            "cancel-unsafe-order-id",
            sqs::with_envelope(order_cancelled(), |e| {
                e["detail"]["data"]["orderId"] = json!("01jdmb4w7k2q9f3r5t8v1x6z0n")
            }),
        ),
        bad(
            "forged-source",
            sqs::with_envelope(good.clone(), |e| e["source"] = json!("shop.payment")),
        ),
        bad(
            "not-ours",
            sqs::with_envelope(good.clone(), |e| {
                e["detail-type"] = json!("ShipmentDispatched");
                e["source"] = json!("shop.shipping");
            }),
        ),
        good["Records"][0].clone(),
    ];
    let failures = shipping.deliver(json!({ "Records": records })).await;
    assert_eq!(
        failures,
        [
            "garbage",
            "wrong-schema",
            "no-address",
            "no-lines",
            "zero-quantity",
            "unsafe-order-id",
            "cancel-unsafe-order-id",
            "forged-source",
            "not-ours",
        ]
    );
    // The good message alone: its shipment and its marker.
    assert_eq!(shipping.table.item_count().await, 2);
    assert_eq!(
        shipping.status(ORDER_ID).await,
        Some(ShipmentStatus::Pending)
    );
}

#[tokio::test]
async fn a_cancellation_request_cancels_a_pending_shipment_and_says_so_once() {
    let shipping = Shipping::new().await;
    shipping.apply(&order_paid()).await;
    let requested = cancellation_requested();
    assert_eq!(shipping.deliver_one(&requested).await, Outcome::Applied);
    let shipment = shipping.shipment(ORDER_ID).await.unwrap();
    assert_eq!(shipment.status, ShipmentStatus::Cancelled);
    assert_eq!(shipping.raised().await, ["ShipmentCancelled"]);
    let answer = &shipping.outbox_of("ShipmentCancelled").await[0];
    assert_eq!(answer["detail"]["data"], json!({"orderId": ORDER_ID}));
    assert_eq!(
        answer["detail"]["metadata"]["correlationId"],
        sqs::envelope(&requested)["detail"]["metadata"]["correlationId"],
        "the answer follows the request's correlation id"
    );

    assert_eq!(shipping.deliver_one(&requested).await, Outcome::Duplicate);
    // Asked again (a new event): the same answer, nothing else changes.
    shipping.apply(&sqs::republished(&requested)).await;
    assert_eq!(shipping.shipment(ORDER_ID).await.unwrap(), shipment);
    assert_eq!(
        shipping.raised().await,
        ["ShipmentCancelled", "ShipmentCancelled"]
    );
    // And the parcel can no longer leave.
    let (status, body, _) = shipping.call(fixture("api-dispatch.json")).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn a_cancellation_request_ahead_of_the_payment_leaves_a_tombstone_and_confirms() {
    let shipping = Shipping::new().await;
    shipping.apply(&cancellation_requested()).await;
    let tombstone = shipping.shipment(ORDER_ID).await.unwrap();
    assert!(tombstone.is_tombstone());
    assert_eq!(shipping.raised().await, ["ShipmentCancelled"]);
    shipping.apply(&order_paid()).await;
    assert_eq!(
        shipping.shipment(ORDER_ID).await.unwrap(),
        tombstone,
        "the late OrderPaid prepares nothing"
    );
}

#[tokio::test]
async fn a_cancellation_request_after_the_parcel_left_is_refused_and_changes_nothing() {
    let shipping = Shipping::new().await;
    shipping.apply(&order_paid()).await;
    let (status, body, _) = shipping.call(fixture("api-dispatch.json")).await;
    assert_eq!(status, 200, "{body}");
    let dispatched = shipping.shipment(ORDER_ID).await.unwrap();
    shipping.apply(&cancellation_requested()).await;
    assert_eq!(shipping.shipment(ORDER_ID).await.unwrap(), dispatched);
    assert_eq!(
        shipping.raised().await,
        ["ShipmentDispatched", "ShipmentCancellationRefused"]
    );
}
