//! The payment consumer against moto, through the harness that runs it in Lambda (dedup
//! marker, conflict retries), charging through the real HTTP adapter at the sandbox served
//! on loopback. Every scenario ends by checking DESIGN §3's money invariant from both
//! sides: what payment recorded and what the provider's ledger holds.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use payment::consumer::{CONSUMER_NAME, Handler};
use payment::domain::PaymentStatus;
use payment::provider::RetryPolicy;
use serde_json::{Value, json};
use shop_events::payment::PaymentFailureReason;
use shop_platform::consumer::Outcome;
use shop_testing::metrics::expected;
use shop_testing::sqs;
use support::*;
use tokio::task::JoinSet;

fn money(amount: i64) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

/// The order's charge at the provider: (charged, refunded).
async fn ledger_of(payments: &Payments, order: &str) -> Option<(String, bool)> {
    payments.provider.charge_of(order).await.map(|charge| {
        (
            charge["id"].as_str().unwrap().to_owned(),
            charge["refunded"] == true,
        )
    })
}

/// DESIGN §3's money invariant for an order that ended cancelled: nothing is charged net
/// of refunds, by payment's record and by the ledger.
async fn assert_nothing_charged(payments: &Payments, order: &str) {
    let payment = payments.payment(order).await;
    let status = payment.as_ref().map(|p| p.status);
    assert!(
        matches!(
            status,
            Some(PaymentStatus::Refunded | PaymentStatus::Voided | PaymentStatus::Failed)
        ),
        "{payment:?}"
    );
    if let Some((charge, refunded)) = ledger_of(payments, order).await {
        assert!(
            refunded,
            "charge {charge} of {order} was never refunded: {payment:?}"
        );
        assert!(
            payment.and_then(|p| p.refund_reference).is_some(),
            "the refund is recorded"
        );
    }
}

#[tokio::test]
async fn the_sample_events_charge_the_order_and_refund_it_on_cancellation() {
    let payments = Payments::new().await;
    let confirmed = sample_message("consumer-order-stock-confirmed.json");
    payments.apply(&confirmed).await;

    let payment = payments.payment(ORDER_ID).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert_eq!(payment.amount, Some(shop_events::Money::usd(TOTAL)));
    let (charge_id, refunded) = ledger_of(&payments, ORDER_ID).await.unwrap();
    assert_eq!(
        payment.provider_reference.as_deref(),
        Some(charge_id.as_str())
    );
    assert!(!refunded);
    assert_eq!(
        payments.outbox_of("PaymentSucceeded").await,
        [json!({"orderId": ORDER_ID, "amount": money(TOTAL), "providerReference": charge_id})]
    );
    let outbox = payments.table.outbox().await;
    assert_eq!(outbox[0]["source"], "shop.payment");
    assert_eq!(
        outbox[0]["detail"]["metadata"]["correlationId"],
        CORRELATION_ID
    );

    assert_eq!(
        payments.deliver(&sqs::redelivered(&confirmed)).await,
        Outcome::Duplicate
    );
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsSucceeded", 1)]),
        "counted once, not for the redelivery"
    );

    payments
        .apply(&sample_message("consumer-order-cancelled.json"))
        .await;
    let payment = payments.payment(ORDER_ID).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Refunded);
    assert_eq!(payment.version, 2);
    let refunds = payments.outbox_of("PaymentRefunded").await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], money(TOTAL));
    assert_eq!(
        refunds[0]["providerReference"].as_str(),
        payment.refund_reference.as_deref()
    );
    assert_eq!(payments.provider.charges().await, (1, 1));
    assert_nothing_charged(&payments, ORDER_ID).await;
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsRefunded", 1), ("PaymentsSucceeded", 1)])
    );
}

#[tokio::test]
async fn a_declined_card_fails_the_payment_and_charges_nothing() {
    let payments = Payments::new().await;
    let order = new_order_id();
    let confirmed = stock_confirmed(&order, 800, DECLINED_TOKEN);
    payments.apply(&confirmed).await;
    assert_eq!(
        payments.deliver(&sqs::redelivered(&confirmed)).await,
        Outcome::Duplicate
    );
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(
        (payment.status, payment.reason, payment.charge_uncertain),
        (
            PaymentStatus::Failed,
            Some(PaymentFailureReason::Declined),
            false
        )
    );
    assert_eq!(
        payments.outbox_of("PaymentFailed").await,
        [json!({"orderId": order, "amount": money(800), "reason": "declined"})]
    );
    assert_eq!(payments.provider.charges().await, (0, 0));

    // The cancellation that follows has nothing to give back.
    payments.apply(&order_cancelled(&order)).await;
    assert_eq!(payments.payment(&order).await.unwrap(), payment);
    assert_eq!(payments.outbox_types().await, ["PaymentFailed"]);
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsDeclined", 1)]),
        "a decline is not a failure of the shop's, and counts once"
    );
}

#[tokio::test]
async fn an_outage_fails_the_payment_after_the_attempts_instead_of_hanging() {
    let payments = Payments::with(RetryPolicy::default(), Duration::ZERO).await;
    payments
        .provider
        .set_test_mode(json!({"outage": true}))
        .await;
    let order = new_order_id();
    let started = Instant::now();
    payments
        .apply(&stock_confirmed(&order, 1500, APPROVED_TOKEN))
        .await;
    assert!(
        started.elapsed() < RetryPolicy::default().worst_case(),
        "gave up within the policy: {:?}",
        started.elapsed()
    );
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Failed);
    assert_eq!(
        payment.reason,
        Some(PaymentFailureReason::ProviderUnavailable)
    );
    assert!(
        !payment.charge_uncertain,
        "the provider said it processed nothing"
    );
    assert_eq!(
        payments.outbox_of("PaymentFailed").await,
        [json!({"orderId": order, "amount": money(1500), "reason": "provider_unavailable"})]
    );

    // The provider comes back; the order's fate is decided and a late redelivery keeps it.
    payments.provider.set_test_mode(json!({})).await;
    payments
        .apply(&stock_confirmed(&order, 1500, APPROVED_TOKEN))
        .await;
    assert_eq!(payments.provider.charges().await, (0, 0));
    assert_eq!(payments.payment(&order).await.unwrap(), payment);
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsFailed{Reason=provider_unavailable}", 1)])
    );
}

#[tokio::test]
async fn a_provider_failing_twice_is_retried_into_a_charge() {
    let payments = Payments::new().await;
    payments
        .provider
        .set_test_mode(json!({"failNext": 2}))
        .await;
    let order = new_order_id();
    payments
        .apply(&stock_confirmed(&order, 990, APPROVED_TOKEN))
        .await;
    assert_eq!(
        payments.payment(&order).await.unwrap().status,
        PaymentStatus::Succeeded
    );
    assert_eq!(payments.provider.charges().await, (1, 0));
    let (_, mode, _) = payments
        .provider
        .request("GET", "/v1/test-mode", None, None)
        .await;
    assert_eq!(mode["failNext"], 0, "both failures were used up by retries");
}

#[tokio::test]
async fn duplicate_stock_confirmations_charge_once_even_at_the_same_moment() {
    let payments = Arc::new(Payments::new().await);
    let order = new_order_id();
    let first = stock_confirmed(&order, 4321, APPROVED_TOKEN);
    // Ordering recorded the event twice (a new event id each): dedup alone cannot help.
    let copies = [
        first.clone(),
        sqs::republished(&first),
        sqs::republished(&first),
    ];
    let mut deliveries = JoinSet::new();
    for copy in copies.clone() {
        let payments = payments.clone();
        deliveries.spawn(async move { payments.deliver(&copy).await });
    }
    for outcome in deliveries.join_all().await {
        assert_eq!(outcome, Outcome::Applied);
    }
    payments.apply(&sqs::republished(&first)).await;

    assert_eq!(payments.provider.charges().await, (1, 0));
    assert_eq!(payments.outbox_of("PaymentSucceeded").await.len(), 1);
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(
        (payment.status, payment.version),
        (PaymentStatus::Succeeded, 1)
    );
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsSucceeded", 1)]),
        "the copies that lost the race counted nothing"
    );
}

#[tokio::test]
async fn a_crash_between_charging_and_recording_is_healed_by_the_redelivery() {
    let payments = Payments::new().await;
    let order = new_order_id();
    // The first attempt charged, then died before its transaction: the provider has the
    // charge, payment has nothing, and the message comes back.
    let (status, charge) = payments.provider.charge(&order, 2750, APPROVED_TOKEN).await;
    assert_eq!(status, 201);
    assert_eq!(payments.payment(&order).await, None);

    payments
        .apply(&stock_confirmed(&order, 2750, APPROVED_TOKEN))
        .await;
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert_eq!(payment.provider_reference.as_deref(), charge["id"].as_str());
    assert_eq!(payments.provider.charges().await, (1, 0), "one charge");
}

#[tokio::test]
async fn a_cancellation_before_the_charge_leaves_a_tombstone_and_nothing_is_charged() {
    let payments = Payments::new().await;
    let order = new_order_id();
    payments.apply(&order_cancelled(&order)).await;
    let tombstone = payments.payment(&order).await.unwrap();
    assert_eq!(tombstone.status, PaymentStatus::Voided);
    assert!(tombstone.expires_at.is_some());

    payments
        .apply(&stock_confirmed(&order, 600, APPROVED_TOKEN))
        .await;
    assert_eq!(payments.provider.charges().await, (0, 0));
    assert_eq!(payments.payment(&order).await.unwrap(), tombstone);
    assert!(
        payments.outbox_types().await.is_empty(),
        "nothing happened to announce"
    );

    // A second cancellation changes nothing either.
    payments.apply(&order_cancelled(&order)).await;
    assert_eq!(payments.payment(&order).await.unwrap(), tombstone);
}

#[tokio::test]
async fn a_cancellation_after_the_charge_refunds_it_once() {
    let payments = Payments::new().await;
    let order = new_order_id();
    payments
        .apply(&stock_confirmed(&order, 3100, APPROVED_TOKEN))
        .await;
    let cancelled = order_cancelled(&order);
    payments.apply(&cancelled).await;
    assert_eq!(
        payments.deliver(&sqs::redelivered(&cancelled)).await,
        Outcome::Duplicate
    );
    payments.apply(&sqs::republished(&cancelled)).await;

    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Refunded);
    assert_eq!(payments.provider.charges().await, (1, 1));
    assert_eq!(
        payments
            .outbox_types()
            .await
            .iter()
            .filter(|t| *t == "PaymentRefunded")
            .count(),
        1
    );
    let refunded = &payments.outbox_of("PaymentRefunded").await[0];
    assert_eq!(refunded["orderId"], order.as_str());
    assert_eq!(refunded["amount"], money(3100));
    assert_nothing_charged(&payments, &order).await;
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsRefunded", 1), ("PaymentsSucceeded", 1)])
    );
}

#[tokio::test]
async fn a_provider_down_at_refund_time_gets_the_cancellation_back_to_the_queue() {
    let payments = Payments::new().await;
    let order = new_order_id();
    payments
        .apply(&stock_confirmed(&order, 3100, APPROVED_TOKEN))
        .await;
    payments
        .provider
        .set_test_mode(json!({"outage": true}))
        .await;
    let cancelled = order_cancelled(&order);
    assert!(matches!(
        payments.deliver(&cancelled).await,
        Outcome::Failed(_)
    ));
    assert_eq!(
        payments.payment(&order).await.unwrap().status,
        PaymentStatus::Succeeded,
        "nothing recorded, not even the marker"
    );
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsSucceeded", 1)]),
        "nothing recorded, nothing counted"
    );

    payments.provider.set_test_mode(json!({})).await;
    payments.apply(&sqs::redelivered(&cancelled)).await;
    assert_eq!(
        payments.payment(&order).await.unwrap().status,
        PaymentStatus::Refunded
    );
    assert_eq!(payments.provider.charges().await, (1, 1));
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsRefunded", 1), ("PaymentsSucceeded", 1)])
    );
}

#[tokio::test]
async fn a_cancellation_racing_the_charge_never_leaves_money_taken() {
    let payments = Arc::new(Payments::new().await);
    // A little delay keeps the charge in flight while the cancellation lands.
    payments
        .provider
        .set_test_mode(json!({"delayMs": 15}))
        .await;
    let mut orders = Vec::new();
    for round in 0..16u64 {
        let order = new_order_id();
        let confirmed = stock_confirmed(&order, 1000 + round as i64, APPROVED_TOKEN);
        let cancelled = order_cancelled(&order);
        // Each side in turn gets a head start of 0 to 140 ms, so that every interleaving
        // comes up: the cancellation before the charge is read, while it is in flight,
        // after it is recorded.
        let head_start = Duration::from_millis(round / 2 * 20);
        let (charge_wait, cancel_wait) = if round % 2 == 0 {
            (Duration::ZERO, head_start)
        } else {
            (head_start, Duration::ZERO)
        };
        let charging = {
            let payments = payments.clone();
            tokio::spawn(async move {
                tokio::time::sleep(charge_wait).await;
                payments.deliver(&confirmed).await
            })
        };
        let cancelling = {
            let payments = payments.clone();
            tokio::spawn(async move {
                tokio::time::sleep(cancel_wait).await;
                payments.deliver(&cancelled).await
            })
        };
        assert_eq!(charging.await.unwrap(), Outcome::Applied, "round {round}");
        assert_eq!(cancelling.await.unwrap(), Outcome::Applied, "round {round}");
        orders.push(order);
    }
    let succeeded: Vec<Value> = payments.outbox_of("PaymentSucceeded").await;
    let mut endings = Vec::new();
    for order in &orders {
        assert_nothing_charged(&payments, order).await;
        let status = payments.payment(order).await.unwrap().status;
        // Whether the charge was recorded before the cancellation (it announced it), to
        // tell the interleavings apart in a failure's message.
        let recorded_first = succeeded.iter().any(|e| e["orderId"] == order.as_str());
        endings.push((status, recorded_first));
    }
    assert!(
        endings
            .iter()
            .all(|(s, _)| matches!(s, PaymentStatus::Refunded | PaymentStatus::Voided)),
        "{endings:?}"
    );
    let refunded = endings
        .iter()
        .filter(|(s, _)| *s == PaymentStatus::Refunded)
        .count();
    assert_eq!(
        payments.outbox_of("PaymentRefunded").await.len(),
        refunded,
        "one PaymentRefunded per refunded payment"
    );
    let (charges, refunds) = payments.provider.charges().await;
    assert_eq!(charges, refunds, "every charge made was refunded");
    let announced = |n: usize| u64::try_from(n).unwrap();
    assert_eq!(
        payments.counts.snapshot(),
        [
            ("PaymentsRefunded".to_owned(), announced(refunded)),
            ("PaymentsSucceeded".to_owned(), announced(succeeded.len())),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect(),
        "counted exactly what was announced, whatever the interleaving"
    );
}

#[tokio::test]
async fn a_charge_that_overtook_its_tombstone_is_refunded_when_the_event_comes_back() {
    let payments = Payments::new().await;
    let order = new_order_id();
    // The charge was made (an attempt that then crashed), and the cancellation landed
    // before the event came back: a tombstone over a real charge.
    payments.provider.charge(&order, 1800, APPROVED_TOKEN).await;
    payments.apply(&order_cancelled(&order)).await;
    assert_eq!(
        payments.payment(&order).await.unwrap().status,
        PaymentStatus::Voided
    );

    payments
        .apply(&stock_confirmed(&order, 1800, APPROVED_TOKEN))
        .await;
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Refunded);
    assert_eq!(payment.amount, Some(shop_events::Money::usd(1800)));
    assert_eq!(payment.expires_at, None, "a refund is kept");
    assert_eq!(payments.outbox_types().await, ["PaymentRefunded"]);
    assert_eq!(payments.provider.charges().await, (1, 1));
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsRefunded", 1)])
    );
}

#[tokio::test]
async fn a_timed_out_charge_is_an_uncertain_failure_that_the_cancellation_reconciles() {
    let payments = Payments::new().await;
    // Slower than each attempt may take: every attempt times out, and the first one's
    // charge completes at the provider anyway.
    payments
        .provider
        .set_test_mode(json!({"delayMs": 500}))
        .await;
    let order = new_order_id();
    payments
        .apply(&stock_confirmed(&order, 2200, APPROVED_TOKEN))
        .await;
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(
        (payment.status, payment.reason, payment.charge_uncertain),
        (
            PaymentStatus::Failed,
            Some(PaymentFailureReason::ProviderUnavailable),
            true
        )
    );
    assert_eq!(payments.outbox_types().await, ["PaymentFailed"]);
    payments.provider.set_test_mode(json!({})).await;
    let late =
        shop_testing::eventually(Duration::from_secs(5), || ledger_of(&payments, &order)).await;
    assert_eq!(
        late.map(|(_, refunded)| refunded),
        Some(false),
        "charged, late"
    );

    // Ordering cancels the order for the failed payment; payment finds the late charge.
    payments.apply(&order_cancelled(&order)).await;
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Refunded);
    assert!(!payment.charge_uncertain);
    assert_eq!(payments.outbox_types().await.len(), 2);
    assert_eq!(
        payments.outbox_of("PaymentRefunded").await[0]["amount"],
        money(2200)
    );
    assert_eq!(payments.provider.charges().await, (1, 1));
    assert_nothing_charged(&payments, &order).await;
    assert_eq!(
        payments.counts.snapshot(),
        expected([
            ("PaymentsFailed{Reason=provider_unavailable}", 1),
            ("PaymentsRefunded", 1)
        ])
    );
}

#[tokio::test]
async fn an_uncertain_failure_without_a_charge_is_settled_only_after_the_window() {
    // A window longer than the handler may wait: the cancellation goes back to the queue.
    let payments = Payments::with(quick_policy(), Duration::from_secs(600)).await;
    // A declined card behind a slow provider: every attempt times out, no charge exists.
    payments
        .provider
        .set_test_mode(json!({"delayMs": 500}))
        .await;
    let order = new_order_id();
    payments
        .apply(&stock_confirmed(&order, 700, DECLINED_TOKEN))
        .await;
    payments.provider.set_test_mode(json!({})).await;
    let uncertain = payments.payment(&order).await.unwrap();
    assert!(uncertain.charge_uncertain);

    let cancelled = order_cancelled(&order);
    assert!(matches!(
        payments.deliver(&cancelled).await,
        Outcome::Failed(_)
    ));
    assert_eq!(payments.payment(&order).await.unwrap(), uncertain);

    // A window short enough to wait out: the handler waits, looks again, and settles the
    // failure as certain, silently.
    let window = Duration::from_secs(2);
    let mut handler = Handler::new(payments.store.clone(), payments.provider.adapter().await);
    handler.retry = quick_policy();
    handler.settle_window = window;
    let patient = payments
        .table
        .consumer(CONSUMER_NAME, handler)
        .with_metrics(payments.counts.metrics());
    let recorded = chrono::DateTime::parse_from_rfc3339(&uncertain.updated_at).unwrap();
    assert_eq!(
        sqs::deliver(&patient, &sqs::redelivered(&cancelled)).await,
        Outcome::Applied
    );
    let waited = chrono::Utc::now()
        .signed_duration_since(recorded)
        .to_std()
        .unwrap();
    assert!(
        waited >= window,
        "settled only once the window had passed: {waited:?}"
    );
    let settled = payments.payment(&order).await.unwrap();
    assert_eq!(
        (settled.status, settled.charge_uncertain, settled.version),
        (PaymentStatus::Failed, false, 2)
    );
    assert_eq!(payments.outbox_types().await, ["PaymentFailed"]);
    assert_eq!(payments.provider.charges().await, (0, 0));
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsFailed{Reason=provider_unavailable}", 1)]),
        "settling announces nothing, and counts nothing"
    );
}

#[tokio::test]
async fn events_that_break_their_contract_are_refused_and_charge_nothing() {
    let payments = Payments::new().await;
    let cases = [
        stock_confirmed("not-an-order", 100, APPROVED_TOKEN),
        stock_confirmed(&new_order_id(), 0, APPROVED_TOKEN),
        stock_confirmed(&new_order_id(), -100, APPROVED_TOKEN),
        order_cancelled("../../etc"),
        sqs::with_envelope(stock_confirmed(&new_order_id(), 100, APPROVED_TOKEN), |e| {
            e["source"] = json!("shop.basket")
        }),
        sqs::with_envelope(order_cancelled(&new_order_id()), |e| {
            e["detail-type"] = json!("OrderShipped")
        }),
        sqs::with_envelope(order_cancelled(&new_order_id()), |e| {
            e["detail"]["data"] = json!({"orderId": 7})
        }),
    ];
    for (n, batch) in cases.iter().enumerate() {
        assert!(
            matches!(payments.deliver(batch).await, Outcome::Failed(_)),
            "case {n}"
        );
    }
    // One garbage message never fails its batch.
    let good = stock_confirmed(&new_order_id(), 100, APPROVED_TOKEN);
    let batch = json!({"Records": [
        sqs::not_an_event(&good, "garbage"),
        sqs::record(&good, "good"),
    ]});
    assert_eq!(
        sqs::deliver_batch(&payments.consumer, batch).await,
        ["garbage"]
    );
    assert_eq!(payments.provider.charges().await, (1, 0));
    assert_eq!(payments.table.items("PAYMENT#").await.len(), 1);
}
