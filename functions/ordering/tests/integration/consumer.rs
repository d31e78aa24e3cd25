//! The consumer Lambda's handler against moto, driven by the sample events in
//! `events/ordering/consumer-*.json` (SQS batches as the bus delivers them). Each consumed
//! event is delivered once, twice, recorded twice, and out of order relative to the events
//! it interacts with; the state must be the same as after one delivery in order.

use crate::support::*;
use ordering::domain::OrderStatus;
use serde_json::{Value, json};
use shop_events::ordering::CancellationReason;
use shop_platform::consumer::Outcome;
use shop_testing::metrics::expected;
use shop_testing::sqs;

fn checkout_requested() -> Value {
    fixture("consumer-checkout-requested.json")
}

fn stock_reserved() -> Value {
    fixture("consumer-stock-reserved.json")
}

fn stock_reservation_failed() -> Value {
    fixture("consumer-stock-reservation-failed.json")
}

fn statuses(order: &ordering::domain::Order) -> Vec<OrderStatus> {
    order.status_history.iter().map(|c| c.status).collect()
}

#[tokio::test]
async fn a_checkout_becomes_a_submitted_order_and_announces_it_with_the_checkout_correlation() {
    let ordering = Ordering::new().await;
    assert!(ordering.deliver(checkout_requested()).await.is_empty());

    let order = ordering.order(ORDER_ID).await.expect("the order exists");
    let sent = sqs::envelope(&checkout_requested())["detail"]["data"].clone();
    assert_eq!(order.status, OrderStatus::Submitted);
    assert_eq!(order.user_id, SHOPPER);
    assert_eq!(serde_json::to_value(&order.lines).unwrap(), sent["lines"]);
    assert_eq!(serde_json::to_value(&order.total).unwrap(), sent["total"]);
    assert_eq!(
        serde_json::to_value(&order.shipping_address).unwrap(),
        sent["shippingAddress"]
    );
    assert_eq!(
        order.payment_token.as_ref().map(|token| token.expose()),
        Some(PAYMENT_TOKEN),
        "kept for payment"
    );
    assert_eq!(statuses(&order), [OrderStatus::Submitted]);
    assert_eq!(order.version, 1);

    let events = ordering.outbox().await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["detail-type"], "OrderSubmitted");
    assert_eq!(event["source"], "shop.ordering");
    assert_eq!(
        event["detail"]["metadata"]["correlationId"],
        CHECKOUT_CORRELATION_ID
    );
    assert_eq!(
        event["detail"]["metadata"]["occurredAt"].as_str(),
        Some(order.created_at.as_str())
    );
    assert_eq!(
        event["detail"]["data"],
        json!({"orderId": ORDER_ID, "userId": SHOPPER, "lines": sent["lines"], "total": sent["total"]})
    );
}

#[tokio::test]
async fn checkout_requested_twice_makes_one_order_and_one_order_submitted() {
    let ordering = Ordering::new().await;
    let once = checkout_requested();
    assert_eq!(ordering.deliver_one(&once).await, Outcome::Applied);
    let after_once = ordering.order(ORDER_ID).await.unwrap();
    assert_eq!(ordering.counts.snapshot(), expected([("OrdersPlaced", 1)]));

    // SQS redelivers the message; an EventBridge retry brings it in a new one.
    assert_eq!(ordering.deliver_one(&once).await, Outcome::Duplicate);
    assert_eq!(
        ordering.deliver_one(&sqs::redelivered(&once)).await,
        Outcome::Duplicate
    );
    // Basket recorded the same checkout twice: a new event id, the same order.
    assert_eq!(
        ordering.deliver_one(&sqs::republished(&once)).await,
        Outcome::Applied
    );

    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), after_once);
    assert_eq!(ordering.raised().await, ["OrderSubmitted"]);
    assert_eq!(
        ordering.counts.snapshot(),
        expected([("OrdersPlaced", 1)]),
        "placed once, however often the checkout came"
    );
}

#[tokio::test]
async fn the_same_checkout_arriving_twice_at_once_makes_one_order() {
    let ordering = Ordering::new().await;
    let first = checkout_requested();
    let second = sqs::republished(&first);
    let (a, b) = tokio::join!(ordering.deliver(first), ordering.deliver(second));
    assert!(a.is_empty() && b.is_empty(), "{a:?} {b:?}");
    assert_eq!(ordering.raised().await, ["OrderSubmitted"]);
    assert_eq!(ordering.order(ORDER_ID).await.unwrap().version, 1);
    assert_eq!(
        ordering.counts.snapshot(),
        expected([("OrdersPlaced", 1)]),
        "the commit that lost the race counted nothing"
    );
}

#[tokio::test]
async fn stock_reserved_confirms_the_stock_and_hands_payment_the_token() {
    let ordering = Ordering::new().await;
    ordering.deliver(checkout_requested()).await;
    assert!(ordering.deliver(stock_reserved()).await.is_empty());

    let order = ordering.order(ORDER_ID).await.unwrap();
    assert_eq!(order.status, OrderStatus::StockConfirmed);
    assert_eq!(
        statuses(&order),
        [OrderStatus::Submitted, OrderStatus::StockConfirmed]
    );
    assert_eq!(order.version, 2);

    let events = ordering.outbox().await;
    assert_eq!(events.len(), 2);
    let confirmed = &events[1];
    assert_eq!(confirmed["detail-type"], "OrderStockConfirmed");
    assert_eq!(
        confirmed["detail"]["data"],
        json!({"orderId": ORDER_ID, "userId": SHOPPER,
               "total": serde_json::to_value(&order.total).unwrap(), "paymentToken": PAYMENT_TOKEN})
    );
    assert_eq!(
        confirmed["detail"]["metadata"]["correlationId"],
        CHECKOUT_CORRELATION_ID
    );
}

#[tokio::test]
async fn stock_reserved_twice_confirms_once() {
    let ordering = Ordering::new().await;
    ordering.deliver(checkout_requested()).await;
    let reserved = stock_reserved();
    assert_eq!(ordering.deliver_one(&reserved).await, Outcome::Applied);
    let once = ordering.order(ORDER_ID).await.unwrap();

    assert_eq!(ordering.deliver_one(&reserved).await, Outcome::Duplicate);
    // Recorded twice by inventory: the order's status no longer allows it.
    assert_eq!(
        ordering.deliver_one(&sqs::republished(&reserved)).await,
        Outcome::Applied
    );

    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), once);
    assert_eq!(
        ordering.raised().await,
        ["OrderSubmitted", "OrderStockConfirmed"]
    );
}

#[tokio::test]
async fn stock_reserved_after_a_customer_cancel_leaves_it_cancelled_and_raises_nothing() {
    let ordering = Ordering::new().await;
    ordering.deliver(checkout_requested()).await;
    let (status, body, _) = ordering.call(fixture("api-cancel-order.json")).await;
    assert_eq!(status, 202, "{body}");
    let cancelled = ordering.order(ORDER_ID).await.unwrap();

    assert!(
        ordering.deliver(stock_reserved()).await.is_empty(),
        "acknowledged, not retried"
    );

    let order = ordering.order(ORDER_ID).await.unwrap();
    assert_eq!(order, cancelled);
    assert_eq!(
        order.cancellation_reason,
        Some(CancellationReason::CustomerRequest)
    );
    assert_eq!(
        ordering.raised().await,
        ["OrderSubmitted", "OrderCancelled"]
    );
}

#[tokio::test]
async fn stock_reservation_failed_cancels_the_order_for_out_of_stock() {
    let ordering = Ordering::new().await;
    ordering.deliver(checkout_requested()).await;
    let failed = stock_reservation_failed();
    assert_eq!(ordering.deliver_one(&failed).await, Outcome::Applied);

    let order = ordering.order(ORDER_ID).await.unwrap();
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(
        order.cancellation_reason,
        Some(CancellationReason::OutOfStock)
    );
    assert_eq!(
        statuses(&order),
        [OrderStatus::Submitted, OrderStatus::Cancelled]
    );
    assert_eq!(order.status_history[0].reason, None);
    assert_eq!(
        order.status_history[1].reason,
        Some(CancellationReason::OutOfStock)
    );

    // Twice, and recorded twice: nothing more.
    assert_eq!(ordering.deliver_one(&failed).await, Outcome::Duplicate);
    assert_eq!(
        ordering.deliver_one(&sqs::republished(&failed)).await,
        Outcome::Applied
    );
    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), order);

    let events = ordering.outbox().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["detail-type"], "OrderCancelled");
    assert_eq!(
        events[1]["detail"]["data"],
        json!({"orderId": ORDER_ID, "userId": SHOPPER, "reason": "out_of_stock"})
    );
    assert_eq!(
        ordering.counts.snapshot(),
        expected([
            ("OrdersCancelled{Reason=out_of_stock}", 1),
            ("OrdersPlaced", 1)
        ])
    );
}

#[tokio::test]
async fn the_first_stock_answer_wins_and_a_contradicting_late_one_changes_nothing() {
    // Confirmed, then a stale failure.
    let ordering = Ordering::new().await;
    ordering.deliver(checkout_requested()).await;
    ordering.deliver(stock_reserved()).await;
    let confirmed = ordering.order(ORDER_ID).await.unwrap();
    assert!(
        ordering
            .deliver(stock_reservation_failed())
            .await
            .is_empty()
    );
    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), confirmed);
    assert_eq!(
        ordering.raised().await,
        ["OrderSubmitted", "OrderStockConfirmed"]
    );

    // Failed, then a stale confirmation.
    let ordering = Ordering::new().await;
    ordering.deliver(checkout_requested()).await;
    ordering.deliver(stock_reservation_failed()).await;
    let cancelled = ordering.order(ORDER_ID).await.unwrap();
    assert!(ordering.deliver(stock_reserved()).await.is_empty());
    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), cancelled);
    assert_eq!(
        ordering.raised().await,
        ["OrderSubmitted", "OrderCancelled"]
    );
}

#[tokio::test]
async fn a_stock_answer_before_its_order_exists_is_given_back_and_applies_once_it_does() {
    let ordering = Ordering::new().await;
    let reserved = stock_reserved();
    let message_id = reserved["Records"][0]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Ahead of its order (queues do not keep order between each other): handed back to
    // the queue, nothing written, not even the processed marker.
    assert_eq!(ordering.deliver(reserved.clone()).await, [message_id]);
    assert_eq!(ordering.table.item_count().await, 0);
    let failed = stock_reservation_failed();
    assert_eq!(ordering.deliver(failed).await.len(), 1);
    assert_eq!(ordering.table.item_count().await, 0);
    assert_eq!(
        ordering.counts.snapshot(),
        expected([]),
        "nothing committed, nothing counted"
    );

    ordering.deliver(checkout_requested()).await;
    // SQS redelivers after the visibility timeout.
    assert!(ordering.deliver(reserved).await.is_empty());

    let order = ordering.order(ORDER_ID).await.unwrap();
    assert_eq!(
        statuses(&order),
        [OrderStatus::Submitted, OrderStatus::StockConfirmed]
    );
    assert_eq!(
        ordering.raised().await,
        ["OrderSubmitted", "OrderStockConfirmed"]
    );
}

#[tokio::test]
async fn a_customer_cancel_racing_the_stock_confirmation_loses_neither_change() {
    let ordering = Ordering::new().await;
    ordering.deliver(checkout_requested()).await;
    let (failures, (status, body, _)) = tokio::join!(
        ordering.deliver(stock_reserved()),
        ordering.call(fixture("api-cancel-order.json"))
    );
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(status, 202, "{body}");

    let order = ordering.order(ORDER_ID).await.unwrap();
    let raised = ordering.raised().await;
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(order.version as usize, order.status_history.len());
    // Whichever went first, history and events tell the same story.
    if raised.contains(&"OrderStockConfirmed".to_owned()) {
        assert_eq!(
            raised,
            ["OrderSubmitted", "OrderStockConfirmed", "OrderCancelled"]
        );
        assert_eq!(
            statuses(&order),
            [
                OrderStatus::Submitted,
                OrderStatus::StockConfirmed,
                OrderStatus::Cancelled
            ]
        );
    } else {
        assert_eq!(raised, ["OrderSubmitted", "OrderCancelled"]);
        assert_eq!(
            statuses(&order),
            [OrderStatus::Submitted, OrderStatus::Cancelled]
        );
    }
}

#[tokio::test]
async fn bad_messages_fail_alone_and_write_nothing() {
    let ordering = Ordering::new().await;
    let good = checkout_requested();
    let bad = |id: &str, batch: Value| sqs::record(&batch, id);

    let records = vec![
        sqs::not_an_event(&good, "garbage"),
        bad(
            "wrong-schema",
            sqs::with_envelope(good.clone(), |e| {
                e["detail"]["data"]["lines"][0]["quantity"] = json!("one")
            }),
        ),
        bad(
            "wrong-total",
            sqs::with_envelope(good.clone(), |e| {
                e["detail"]["data"]["total"]["amount"] = json!(1)
            }),
        ),
        bad(
            "unsafe-order-id",
            for_order(good.clone(), "../../etc/passwd"),
        ),
        bad(
            "forged-source",
            sqs::with_envelope(good.clone(), |e| e["source"] = json!("shop.catalog")),
        ),
        bad(
            "not-ours",
            sqs::with_envelope(good.clone(), |e| {
                e["detail-type"] = json!("ProductCreated");
                e["source"] = json!("shop.catalog");
            }),
        ),
        bad("empty-order-id", for_order(stock_reserved(), "")),
        good["Records"][0].clone(),
    ];
    let failures = ordering.deliver(json!({ "Records": records })).await;
    assert_eq!(
        failures,
        [
            "garbage",
            "wrong-schema",
            "wrong-total",
            "unsafe-order-id",
            "forged-source",
            "not-ours",
            "empty-order-id"
        ]
    );
    // The good message alone: its order, its event, its marker.
    assert_eq!(ordering.table.item_count().await, 3);
    assert_eq!(ordering.raised().await, ["OrderSubmitted"]);
}

fn payment_succeeded() -> Value {
    fixture("consumer-payment-succeeded.json")
}

fn payment_failed() -> Value {
    fixture("consumer-payment-failed.json")
}

fn shipment_dispatched() -> Value {
    fixture("consumer-shipment-dispatched.json")
}

fn shipment_delivered() -> Value {
    fixture("consumer-shipment-delivered.json")
}

/// Checkout and stock confirmed: the order waits for payment.
async fn confirmed_order() -> Ordering {
    let ordering = Ordering::new().await;
    ordering.deliver(checkout_requested()).await;
    ordering.deliver(stock_reserved()).await;
    ordering
}

#[tokio::test]
async fn an_order_lives_to_delivered_and_announces_every_step() {
    let ordering = confirmed_order().await;
    for step in [
        payment_succeeded(),
        shipment_dispatched(),
        shipment_delivered(),
    ] {
        assert_eq!(ordering.deliver_one(&step).await, Outcome::Applied);
    }

    let order = ordering.order(ORDER_ID).await.unwrap();
    assert_eq!(order.status, OrderStatus::Delivered);
    assert_eq!(
        statuses(&order),
        [
            OrderStatus::Submitted,
            OrderStatus::StockConfirmed,
            OrderStatus::Paid,
            OrderStatus::Shipped,
            OrderStatus::Delivered
        ]
    );
    assert_eq!(order.version, 5);

    let events = ordering.outbox().await;
    let raised: Vec<&str> = events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    assert_eq!(
        raised,
        [
            "OrderSubmitted",
            "OrderStockConfirmed",
            "OrderPaid",
            "OrderShipped",
            "OrderDelivered"
        ]
    );
    let sent = sqs::envelope(&checkout_requested())["detail"]["data"].clone();
    // Shipping prepares the parcel from OrderPaid alone: lines and address travel with it.
    assert_eq!(
        events[2]["detail"]["data"],
        json!({"orderId": ORDER_ID, "userId": SHOPPER, "lines": sent["lines"],
               "total": sent["total"], "shippingAddress": sent["shippingAddress"]})
    );
    assert_eq!(
        events[3]["detail"]["data"],
        json!({"orderId": ORDER_ID, "userId": SHOPPER})
    );
    assert_eq!(
        events[4]["detail"]["data"],
        json!({"orderId": ORDER_ID, "userId": SHOPPER})
    );
    for event in &events {
        assert_eq!(
            event["detail"]["metadata"]["correlationId"],
            CHECKOUT_CORRELATION_ID
        );
    }
}

#[tokio::test]
async fn every_later_step_delivered_twice_or_recorded_twice_moves_the_order_once() {
    let ordering = confirmed_order().await;
    for step in [
        payment_succeeded(),
        shipment_dispatched(),
        shipment_delivered(),
    ] {
        assert_eq!(ordering.deliver_one(&step).await, Outcome::Applied);
        let once = ordering.order(ORDER_ID).await.unwrap();
        assert_eq!(ordering.deliver_one(&step).await, Outcome::Duplicate);
        assert_eq!(
            ordering.deliver_one(&sqs::republished(&step)).await,
            Outcome::Applied
        );
        assert_eq!(ordering.order(ORDER_ID).await.unwrap(), once);
    }
    assert_eq!(
        ordering.raised().await,
        [
            "OrderSubmitted",
            "OrderStockConfirmed",
            "OrderPaid",
            "OrderShipped",
            "OrderDelivered"
        ]
    );
    assert_eq!(
        ordering.counts.snapshot(),
        expected([("OrdersPaid", 1), ("OrdersPlaced", 1)]),
        "paid once; shipping and delivery are not counted"
    );
}

/// Read from the table itself, not through the domain type that skips the field.
async fn stored_orders_mention_the_token(ordering: &Ordering) -> bool {
    format!("{:?}", ordering.table.items("ORDER#").await).contains(PAYMENT_TOKEN)
}

#[tokio::test]
async fn the_payment_token_leaves_the_table_once_the_charge_has_an_outcome() {
    for outcome in [payment_succeeded(), payment_failed()] {
        let ordering = confirmed_order().await;
        assert!(
            stored_orders_mention_the_token(&ordering).await,
            "payment has not charged yet"
        );
        assert_eq!(ordering.deliver_one(&outcome).await, Outcome::Applied);
        assert!(!stored_orders_mention_the_token(&ordering).await);
    }
}

#[tokio::test]
async fn a_declined_payment_cancels_the_order_for_payment_failed() {
    let ordering = confirmed_order().await;
    assert_eq!(
        ordering.deliver_one(&payment_failed()).await,
        Outcome::Applied
    );
    assert_eq!(
        ordering.deliver_one(&payment_failed()).await,
        Outcome::Duplicate
    );
    assert_eq!(
        ordering.counts.snapshot(),
        expected([
            ("OrdersCancelled{Reason=payment_failed}", 1),
            ("OrdersPlaced", 1)
        ])
    );

    let order = ordering.order(ORDER_ID).await.unwrap();
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(
        order.cancellation_reason,
        Some(CancellationReason::PaymentFailed)
    );
    let events = ordering.outbox().await;
    assert_eq!(
        events.last().unwrap()["detail"]["data"],
        json!({"orderId": ORDER_ID, "userId": SHOPPER, "reason": "payment_failed"})
    );
}

#[tokio::test]
async fn an_unreachable_provider_cancels_the_order_for_provider_unavailable() {
    let ordering = confirmed_order().await;
    let unavailable = sqs::with_envelope(payment_failed(), |e| {
        e["detail"]["data"]["reason"] = json!("provider_unavailable")
    });
    assert!(ordering.deliver(unavailable).await.is_empty());

    let order = ordering.order(ORDER_ID).await.unwrap();
    assert_eq!(
        order.cancellation_reason,
        Some(CancellationReason::ProviderUnavailable)
    );
    assert_eq!(
        ordering.counts.snapshot(),
        expected([
            ("OrdersCancelled{Reason=provider_unavailable}", 1),
            ("OrdersPlaced", 1)
        ])
    );
    assert_eq!(
        ordering.raised().await,
        ["OrderSubmitted", "OrderStockConfirmed", "OrderCancelled"]
    );
}

#[tokio::test]
async fn a_payment_that_lands_after_a_customer_cancel_changes_nothing() {
    // Payment refunds the charge on OrderCancelled; the order stays cancelled.
    let ordering = confirmed_order().await;
    let (status, body, _) = ordering.call(fixture("api-cancel-order.json")).await;
    assert_eq!(status, 202, "{body}");
    let cancelled = ordering.order(ORDER_ID).await.unwrap();

    assert!(ordering.deliver(payment_succeeded()).await.is_empty());
    assert!(ordering.deliver(payment_failed()).await.is_empty());

    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), cancelled);
    assert_eq!(
        ordering.raised().await,
        ["OrderSubmitted", "OrderStockConfirmed", "OrderCancelled"]
    );
}

#[tokio::test]
async fn the_first_payment_answer_wins_and_a_contradicting_late_one_changes_nothing() {
    let ordering = confirmed_order().await;
    ordering.deliver(payment_succeeded()).await;
    let paid = ordering.order(ORDER_ID).await.unwrap();
    assert!(ordering.deliver(payment_failed()).await.is_empty());
    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), paid);

    let ordering = confirmed_order().await;
    ordering.deliver(payment_failed()).await;
    let cancelled = ordering.order(ORDER_ID).await.unwrap();
    assert!(ordering.deliver(payment_succeeded()).await.is_empty());
    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), cancelled);
}

#[tokio::test]
async fn a_delivery_that_overtook_its_dispatch_waits_for_it_instead_of_being_lost() {
    let ordering = confirmed_order().await;
    ordering.deliver(payment_succeeded()).await;
    let delivered = shipment_delivered();
    let message_id = delivered["Records"][0]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Given back to the queue, nothing written, not even the processed marker.
    assert_eq!(ordering.deliver(delivered.clone()).await, [message_id]);
    assert_eq!(
        ordering.order(ORDER_ID).await.unwrap().status,
        OrderStatus::Paid
    );

    ordering.deliver(shipment_dispatched()).await;
    // SQS redelivers after the visibility timeout.
    assert!(ordering.deliver(delivered).await.is_empty());
    assert_eq!(
        ordering.order(ORDER_ID).await.unwrap().status,
        OrderStatus::Delivered
    );
}

#[tokio::test]
async fn a_shipment_event_for_a_cancelled_order_is_acknowledged_and_changes_nothing() {
    let ordering = confirmed_order().await;
    ordering.deliver(payment_failed()).await;
    let cancelled = ordering.order(ORDER_ID).await.unwrap();
    assert!(ordering.deliver(shipment_dispatched()).await.is_empty());
    assert!(ordering.deliver(shipment_delivered()).await.is_empty());
    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), cancelled);
}

#[tokio::test]
async fn a_paid_order_is_cancelled_only_once_shipping_confirms() {
    let ordering = confirmed_order().await;
    ordering.deliver(payment_succeeded()).await;
    let (status, body, _) = ordering.call(fixture("api-cancel-order.json")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "cancelling");
    let asked = &ordering
        .outbox()
        .await
        .into_iter()
        .find(|e| e["detail-type"] == "OrderCancellationRequested")
        .expect("shipping is asked");
    assert_eq!(
        asked["detail"]["data"],
        json!({"orderId": ORDER_ID, "userId": SHOPPER})
    );
    assert!(
        !ordering
            .counts
            .snapshot()
            .contains_key("OrdersCancelled{Reason=customer_request}"),
        "not cancelled yet"
    );

    let confirmed = fixture("consumer-shipment-cancelled.json");
    assert!(ordering.deliver(confirmed.clone()).await.is_empty());
    let order = ordering.order(ORDER_ID).await.unwrap();
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(
        order.cancellation_reason,
        Some(CancellationReason::CustomerRequest)
    );
    let history: Vec<_> = order.status_history.iter().map(|c| c.status).collect();
    assert_eq!(
        history,
        [
            OrderStatus::Submitted,
            OrderStatus::StockConfirmed,
            OrderStatus::Paid,
            OrderStatus::Cancelling,
            OrderStatus::Cancelled
        ]
    );
    // Confirmed twice (a republished answer): still cancelled once.
    assert!(
        ordering
            .deliver(sqs::republished(&confirmed))
            .await
            .is_empty()
    );
    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), order);
    let mut raised = ordering.raised().await;
    raised.sort();
    assert_eq!(
        raised,
        [
            "OrderCancellationRequested",
            "OrderCancelled",
            "OrderPaid",
            "OrderStockConfirmed",
            "OrderSubmitted"
        ]
    );
}

#[tokio::test]
async fn a_refused_cancellation_ships_the_order_and_keeps_the_request_in_its_history() {
    for dispatch_first in [false, true] {
        let ordering = confirmed_order().await;
        ordering.deliver(payment_succeeded()).await;
        let (status, body, _) = ordering.call(fixture("api-cancel-order.json")).await;
        assert_eq!(status, 202, "{body}");
        let refused = fixture("consumer-shipment-cancellation-refused.json");
        // Shipping's two words for "the parcel left" may come in either order.
        let (first, second) = if dispatch_first {
            (shipment_dispatched(), refused)
        } else {
            (refused, shipment_dispatched())
        };
        assert!(ordering.deliver(first).await.is_empty());
        assert!(ordering.deliver(second).await.is_empty());
        let order = ordering.order(ORDER_ID).await.unwrap();
        assert_eq!(order.status, OrderStatus::Shipped);
        assert_eq!(order.cancellation_reason, None);
        let history: Vec<_> = order.status_history.iter().map(|c| c.status).collect();
        assert_eq!(
            history[2..],
            [
                OrderStatus::Paid,
                OrderStatus::Cancelling,
                OrderStatus::Shipped
            ]
        );
        assert_eq!(
            ordering
                .raised()
                .await
                .iter()
                .filter(|kind| *kind == "OrderShipped")
                .count(),
            1
        );
        assert!(
            !ordering
                .raised()
                .await
                .contains(&"OrderCancelled".to_owned())
        );
        let (status, body, _) = ordering.call(fixture("api-cancel-order.json")).await;
        assert_eq!(status, 409, "{body}");
    }
}

#[tokio::test]
async fn shippings_answer_to_a_cancellation_nobody_asked_for_changes_nothing() {
    let ordering = confirmed_order().await;
    ordering.deliver(payment_succeeded()).await;
    let paid = ordering.order(ORDER_ID).await.unwrap();
    for answer in [
        "consumer-shipment-cancelled.json",
        "consumer-shipment-cancellation-refused.json",
    ] {
        assert!(
            ordering.deliver(fixture(answer)).await.is_empty(),
            "acknowledged, not retried"
        );
    }
    assert_eq!(ordering.order(ORDER_ID).await.unwrap(), paid);
}

#[tokio::test]
async fn a_shipped_order_can_no_longer_be_cancelled() {
    let ordering = confirmed_order().await;
    ordering.deliver(payment_succeeded()).await;
    ordering.deliver(shipment_dispatched()).await;
    let (status, body, _) = ordering.call(fixture("api-cancel-order.json")).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        ordering.order(ORDER_ID).await.unwrap().status,
        OrderStatus::Shipped
    );
}
