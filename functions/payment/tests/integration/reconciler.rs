//! The reconciler against moto and the sandbox served on loopback: what its schedule
//! settles with nobody's help, what it leaves alone, and the levels its alarm watches.

use std::time::Duration;

use crate::support::*;
use chrono::Utc;
use payment::domain::{Payment, PaymentStatus, SettlePolicy};
use payment::reconciler::{OLDEST_UNSETTLED, UNSETTLED_DUE};
use serde_json::json;
use shop_events::Money;
use shop_testing::metrics::expected;

/// A charge was asked for and the message that asked was lost (a crash, then its last
/// receive): the payment says `charging` and nothing will ever deliver it again.
async fn left_charging(payments: &Payments, order: &str, amount: i64) {
    payments
        .store
        .create_now(&Payment::start_charge(
            order,
            Money::usd(amount),
            Utc::now(),
            &settle_at_once(),
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_charge_whose_message_was_lost_pays_the_order_if_the_provider_made_it() {
    let payments = Payments::new().await;
    let order = new_order_id();
    left_charging(&payments, &order, 1250).await;
    let (status, charge) = payments.provider.charge(&order, 1250, APPROVED_TOKEN).await;
    assert_eq!(status, 201);

    let run = payments.reconcile().await;
    assert_eq!((run.due, run.settled), (1, 1), "{run:?}");
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    assert_eq!(payment.provider_reference.as_deref(), charge["id"].as_str());
    assert_eq!(
        payments.outbox_of("PaymentSucceeded").await,
        [
            json!({"orderId": order, "amount": {"amount": 1250, "currency": "USD"}, "providerReference": charge["id"]})
        ],
        "ordering hears of it and the order is paid"
    );
    assert_eq!(
        payments.counts.snapshot(),
        expected([("PaymentsSucceeded", 1)])
    );
    assert!(payments.unsettled().await.is_empty());
    assert_eq!(payments.reconcile().await.due, 0, "nothing left to do");
}

#[tokio::test]
async fn a_charge_whose_message_was_lost_fails_the_order_if_the_provider_never_made_it() {
    let payments = Payments::new().await;
    let order = new_order_id();
    left_charging(&payments, &order, 900).await;
    payments.reconcile_until_settled(2).await;
    let payment = payments.payment(&order).await.unwrap();
    assert_eq!(
        (payment.status, payment.charge_uncertain),
        (PaymentStatus::Failed, false)
    );
    assert_eq!(
        payments.outbox_of("PaymentFailed").await,
        [
            json!({"orderId": order, "amount": {"amount": 900, "currency": "USD"}, "reason": "provider_unavailable"})
        ],
        "the order ends instead of waiting for ever"
    );
    assert_eq!(payments.provider.charges().await, (0, 0));
}

#[tokio::test]
async fn only_what_is_due_is_looked_at() {
    let payments = Payments::with(
        quick_policy(),
        SettlePolicy {
            window: Duration::from_secs(600),
            ..settle_at_once()
        },
    )
    .await;
    let order = new_order_id();
    payments
        .store
        .create_now(&Payment::start_charge(
            &order,
            Money::usd(100),
            Utc::now(),
            &SettlePolicy {
                window: Duration::from_secs(600),
                ..settle_at_once()
            },
        ))
        .await
        .unwrap();
    assert_eq!(payments.unsettled().await, std::slice::from_ref(&order));
    let run = payments.reconcile().await;
    assert_eq!(
        run.due, 0,
        "its charge may still be under way: not due for ten minutes"
    );
    assert_eq!(
        payments.payment(&order).await.unwrap().status,
        PaymentStatus::Charging
    );
}

#[tokio::test]
async fn every_run_reports_what_was_due_and_how_long_the_oldest_has_waited() {
    let payments = Payments::new().await;
    let order = new_order_id();
    payments
        .apply(&stock_confirmed(&order, 4000, APPROVED_TOKEN))
        .await;
    payments
        .provider
        .set_test_mode(json!({"outage": true}))
        .await;
    payments.apply(&order_cancelled(&order)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let run = payments.reconcile().await;
    assert_eq!((run.due, run.still_unsettled), (1, 1));
    assert!(run.oldest_unsettled >= Duration::from_secs(1), "{run:?}");
    let levels = payments.counts.levels();
    assert_eq!(levels[UNSETTLED_DUE], 1.0);
    assert!(levels[OLDEST_UNSETTLED] >= 1.0, "{levels:?}");

    payments.provider.set_test_mode(json!({})).await;
    payments.reconcile_until_settled(2).await;
    let levels = payments.counts.levels();
    assert_eq!(
        (levels[UNSETTLED_DUE], levels[OLDEST_UNSETTLED]),
        (0.0, 0.0),
        "back to nothing once settled"
    );
}

#[test]
fn the_sample_scheduled_event_is_the_reconcilers() {
    let event = fixture("reconciler-scheduled.json");
    assert_eq!(event["detail-type"], "Scheduled Event");
    assert_eq!(event["source"], "aws.events");
}
