//! The payment consumer against moto, through the harness that runs it in Lambda (dedup
//! marker, conflict retries), charging through the real HTTP adapter at the sandbox served
//! on loopback. Every scenario ends by checking DESIGN §3's money invariant from both
//! sides: what payment recorded and what the provider's ledger holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use payment::domain::{PaymentStatus, SettlePolicy};
use serde_json::{Value, json};
use shop_events::payment::PaymentFailureReason;
use shop_platform::consumer::Outcome;
use shop_testing::metrics::expected;
use shop_testing::sqs;
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
/// of refunds, by payment's record and by the ledger, and nothing is left to settle.
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
    assert!(payment.as_ref().unwrap().is_settled(), "{payment:?}");
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
    assert!(payment.is_settled() && payment.cancelled);
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
async fn an_outage_fails_the_payment_at_once_and_the_reconciler_settles_it_once_it_ends() {
    let payments = Payments::new().await;
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
        started.elapsed() < quick_policy().worst_case() + Duration::from_secs(1),
        "gave up within the policy: {:?}",
        started.elapsed()
    );
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Failed);
    assert_eq!(
        payment.reason,
        Some(PaymentFailureReason::ProviderUnavailable)
    );
    // A 503 may come from a provider that failed after acting: not proof of no charge.
    assert!(payment.charge_uncertain && !payment.is_settled());
    assert_eq!(
        payments.outbox_of("PaymentFailed").await,
        [json!({"orderId": order, "amount": money(1500), "reason": "provider_unavailable"})]
    );

    // While the outage lasts, every look settles nothing and the next one waits longer.
    for _ in 0..3 {
        let run = payments.reconcile().await;
        assert_eq!((run.due, run.still_unsettled), (1, 1), "{run:?}");
    }
    assert_eq!(payments.payment(&order).await.unwrap().checks, 3);

    payments.provider.set_test_mode(json!({})).await;
    payments.reconcile_until_settled(2).await;
    let settled = payments.payment(&order).await.unwrap();
    assert!(settled.is_settled() && !settled.charge_uncertain);
    assert_eq!(payments.provider.charges().await, (0, 0));
    assert!(
        payments.unsettled().await.is_empty(),
        "off the reconciler's list"
    );

    // A late redelivery of the confirmation changes nothing.
    payments
        .apply(&stock_confirmed(&order, 1500, APPROVED_TOKEN))
        .await;
    assert_eq!(payments.payment(&order).await.unwrap(), settled);
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
async fn a_charge_answered_500_after_the_provider_acted_is_found_by_the_retry() {
    let payments = Payments::new().await;
    payments
        .provider
        .set_test_mode(json!({"failAfterActing": 1}))
        .await;
    let order = new_order_id();
    payments
        .apply(&stock_confirmed(&order, 990, APPROVED_TOKEN))
        .await;
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert_eq!(
        payments.provider.charges().await,
        (1, 0),
        "one charge, not two"
    );
    assert_eq!(
        payment.provider_reference.as_deref(),
        payments.provider.charge_of(&order).await.unwrap()["id"].as_str()
    );
}

#[tokio::test]
async fn a_charge_answered_500_every_time_is_never_taken_for_no_charge() {
    let payments = Payments::new().await;
    payments
        .provider
        .set_test_mode(json!({"failAfterActing": 100}))
        .await;
    let order = new_order_id();
    payments
        .apply(&stock_confirmed(&order, 2500, APPROVED_TOKEN))
        .await;
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Failed);
    assert!(
        payment.charge_uncertain,
        "the provider may have acted: it did"
    );
    assert_eq!(payments.provider.charges().await, (1, 0));
    payments.provider.set_test_mode(json!({})).await;

    // Ordering cancels the order for the failed payment; the charge is found and refunded.
    payments.apply(&order_cancelled(&order)).await;
    assert_nothing_charged(&payments, &order).await;
    assert_eq!(payments.provider.charges().await, (1, 1));
    assert_eq!(
        payments.counts.snapshot(),
        expected([
            ("PaymentsFailed{Reason=provider_unavailable}", 1),
            ("PaymentsRefunded", 1)
        ])
    );
}

#[tokio::test]
async fn a_retry_while_the_first_request_still_runs_is_told_the_key_is_in_use_and_stays_uncertain()
{
    // Attempts give up after 300 ms; the provider holds each request 1 s, and answers the
    // retries meanwhile 409 "key in use".
    let payments = Payments::new().await;
    payments
        .provider
        .set_test_mode(json!({"delayMs": 1000}))
        .await;
    let order = new_order_id();
    payments
        .apply(&stock_confirmed(&order, 700, APPROVED_TOKEN))
        .await;
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Failed);
    assert!(
        payment.charge_uncertain,
        "a 409 for a key in use is no answer about the charge"
    );
    payments.provider.set_test_mode(json!({})).await;
    let charged =
        shop_testing::eventually(Duration::from_secs(5), || ledger_of(&payments, &order)).await;
    assert!(
        charged.is_some(),
        "the first attempt went through after all"
    );
    payments.apply(&order_cancelled(&order)).await;
    assert_nothing_charged(&payments, &order).await;
}

#[tokio::test]
async fn duplicate_stock_confirmations_charge_once_even_at_the_same_moment() {
    let payments = Arc::new(Payments::new().await);
    let order = new_order_id();
    let first = stock_confirmed(&order, 4321, APPROVED_TOKEN);
    // Ordering recorded the event twice (a new event id each): dedup alone cannot help;
    // and the first one is delivered twice at once as well.
    let copies = [
        first.clone(),
        sqs::redelivered(&first),
        sqs::republished(&first),
        sqs::republished(&first),
    ];
    let mut deliveries = JoinSet::new();
    for copy in copies.clone() {
        let payments = payments.clone();
        deliveries.spawn(async move { payments.deliver(&copy).await });
    }
    for outcome in deliveries.join_all().await {
        assert!(
            matches!(outcome, Outcome::Applied | Outcome::Duplicate),
            "{outcome:?}"
        );
    }
    payments.apply(&sqs::republished(&first)).await;

    assert_eq!(payments.provider.charges().await, (1, 0));
    assert_eq!(payments.outbox_of("PaymentSucceeded").await.len(), 1);
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsSucceeded", 1)]),
        "the copies that lost the race counted nothing"
    );
}

#[tokio::test]
async fn a_crash_after_charging_is_healed_by_the_redelivery() {
    let payments = Payments::new().await;
    let order = new_order_id();
    // The first attempt recorded that it was charging, charged, then died before its
    // transaction: the provider has the charge, payment says charging, the message comes
    // back.
    payments
        .store
        .create_now(&payment::domain::Payment::start_charge(
            &order,
            shop_events::Money::usd(2750),
            chrono::Utc::now(),
            &settle_at_once(),
        ))
        .await
        .unwrap();
    let (status, charge) = payments.provider.charge(&order, 2750, APPROVED_TOKEN).await;
    assert_eq!(status, 201);

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

/// The refund's provider is down longer than the queue would keep retrying the message
/// (five receives): the cancellation is done with at once, and the refund is owed on the
/// payment's own record until the reconciler gets it through.
#[tokio::test]
async fn a_refund_during_an_outage_longer_than_the_queues_patience_is_made_when_it_ends() {
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
    assert_eq!(
        payments.deliver(&cancelled).await,
        Outcome::Applied,
        "the message is done: nothing waits in a queue"
    );
    let owed = payments.payment(&order).await.unwrap();
    assert_eq!(owed.status, PaymentStatus::Succeeded);
    assert!(owed.cancelled && !owed.is_settled());
    assert_eq!(payments.unsettled().await, std::slice::from_ref(&order));

    // More looks than the queue's maxReceiveCount: none of them gives up.
    for _ in 0..7 {
        assert_eq!(payments.reconcile().await.still_unsettled, 1);
    }
    assert_eq!(payments.provider.charges().await, (1, 0));

    payments.provider.set_test_mode(json!({})).await;
    payments.reconcile_until_settled(2).await;
    assert_nothing_charged(&payments, &order).await;
    assert_eq!(payments.outbox_of("PaymentRefunded").await.len(), 1);
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsRefunded", 1), ("PaymentsSucceeded", 1)])
    );
}

#[tokio::test]
async fn a_cancellation_racing_the_charge_never_leaves_money_taken() {
    // A cancellation's look while the charge is in flight finds no charge yet, and must not
    // take that for none: the window covers the attempt.
    let policy = covering_one_attempt();
    let payments = Arc::new(Payments::with(quick_policy(), policy).await);
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
        // comes up: the cancellation before the charge is asked for, while it is in
        // flight, after it is recorded.
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
    // What a look could not settle at once (a charge still in flight), the schedule does,
    // once the window has passed.
    tokio::time::sleep(policy.window).await;
    payments.reconcile_until_settled(5).await;
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
    assert_eq!(
        charges, refunded,
        "and every one is on its payment's record"
    );
}

/// The interleaving a review found: the same OrderStockConfirmed delivered twice at once
/// (at least once means that too), and the cancellation landing while the first
/// delivery's charge is in flight. The second delivery finds the order cancelled and
/// nothing at the provider yet; the first one's charge then lands, and its commit loses to
/// the second's marker. The charge must still be found and refunded.
#[tokio::test]
async fn a_charge_in_flight_when_its_duplicate_and_the_cancellation_land_is_refunded() {
    let policy = covering_one_attempt();
    for round in 0..4u64 {
        let payments = Arc::new(Payments::with(quick_policy(), policy).await);
        payments
            .provider
            .set_test_mode(json!({"delayMs": 250}))
            .await;
        let order = new_order_id();
        let confirmed = stock_confirmed(&order, 1800, APPROVED_TOKEN);
        let first = {
            let (payments, confirmed) = (payments.clone(), confirmed.clone());
            tokio::spawn(async move { payments.deliver(&confirmed).await })
        };
        // The charge is in flight; the cancellation lands, then the duplicate.
        tokio::time::sleep(Duration::from_millis(60 + round * 20)).await;
        payments.apply(&order_cancelled(&order)).await;
        let second = payments.deliver(&sqs::redelivered(&confirmed)).await;
        let first = first.await.unwrap();
        assert!(
            matches!(
                (&first, &second),
                (
                    Outcome::Applied | Outcome::Duplicate,
                    Outcome::Applied | Outcome::Duplicate
                )
            ),
            "{first:?} {second:?}"
        );
        payments.provider.set_test_mode(json!({})).await;
        tokio::time::sleep(policy.window).await;
        payments.reconcile_until_settled(5).await;
        assert_nothing_charged(&payments, &order).await;
        let (charges, refunds) = payments.provider.charges().await;
        assert_eq!(charges, refunds, "round {round}");
    }
}

#[tokio::test]
async fn a_timed_out_charge_is_an_uncertain_failure_that_the_cancellation_settles() {
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

/// Every attempt times out, the provider recovers later, and no cancellation ever comes
/// (ordering's OrderCancelled is lost to a DLQ, say): the reconciler alone finds the
/// charge the failed payment never recorded, and refunds it.
#[tokio::test]
async fn every_attempt_timing_out_then_the_provider_recovering_settles_by_itself() {
    let payments = Payments::new().await;
    payments
        .provider
        .set_test_mode(json!({"delayMs": 500}))
        .await;
    let order = new_order_id();
    payments
        .apply(&stock_confirmed(&order, 3300, APPROVED_TOKEN))
        .await;
    assert!(payments.payment(&order).await.unwrap().charge_uncertain);
    payments.provider.set_test_mode(json!({})).await;
    shop_testing::eventually(Duration::from_secs(5), || ledger_of(&payments, &order)).await;
    payments.reconcile_until_settled(3).await;
    assert_nothing_charged(&payments, &order).await;
    assert_eq!(payments.provider.charges().await, (1, 1));
}

#[tokio::test]
async fn an_uncertain_failure_without_a_charge_is_settled_only_after_the_window() {
    let window = Duration::from_secs(2);
    let payments = Payments::with(
        quick_policy(),
        SettlePolicy {
            window,
            ..settle_at_once()
        },
    )
    .await;
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
    let started =
        chrono::DateTime::parse_from_rfc3339(uncertain.charge_started_at.as_deref().unwrap())
            .unwrap();

    // The cancellation's look finds nothing, which proves nothing yet.
    payments.apply(&order_cancelled(&order)).await;
    let looked = payments.payment(&order).await.unwrap();
    assert!(!looked.is_settled() && looked.cancelled);

    // The reconciler settles it once the window has passed, not before.
    let settled = shop_testing::eventually(Duration::from_secs(10), || async {
        payments.reconcile().await;
        payments
            .payment(&order)
            .await
            .unwrap()
            .is_settled()
            .then_some(())
    })
    .await;
    assert!(settled.is_some(), "settled once the window passed");
    let waited = chrono::Utc::now()
        .signed_duration_since(started)
        .to_std()
        .unwrap();
    assert!(
        waited >= window,
        "settled only once the window had passed: {waited:?}"
    );
    let settled = payments.payment(&order).await.unwrap();
    assert_eq!(
        (settled.status, settled.charge_uncertain),
        (PaymentStatus::Failed, false)
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
