//! The HTTP adapter of the provider port against the sandbox served on loopback: what each
//! answer means for the money (charged, declined, not processed, maybe processed,
//! rejected), a rotated API key picked up on a 401, and the retry policy around it.

use std::time::{Duration, Instant};

use crate::support::*;
use payment::provider::{PaymentProvider, ProviderError, RetryPolicy};
use serde_json::json;
use shop_events::Money;

#[tokio::test]
async fn a_charge_is_found_by_its_key_and_refunded_once() {
    let provider = Provider::new().await;
    let adapter = provider.adapter().await;
    let order = new_order_id();

    let charge = adapter
        .charge(&order, &Money::usd(4200), APPROVED_TOKEN)
        .await
        .unwrap();
    assert!(charge.id.starts_with("ch_"));
    assert_eq!(
        (charge.amount.clone(), charge.refunded),
        (Money::usd(4200), false)
    );
    let again = adapter
        .charge(&order, &Money::usd(4200), APPROVED_TOKEN)
        .await
        .unwrap();
    assert_eq!(again, charge, "the same key is the same charge");

    assert_eq!(
        adapter.find_charge(&order).await.unwrap(),
        Some(charge.clone())
    );
    assert_eq!(adapter.find_charge(&new_order_id()).await.unwrap(), None);

    let refund = adapter
        .refund(&format!("refund-{order}"), &charge.id, &Money::usd(4200))
        .await
        .unwrap();
    assert_eq!(
        (refund.charge_id.as_str(), refund.amount.clone()),
        (charge.id.as_str(), Money::usd(4200))
    );
    let found = adapter.find_charge(&order).await.unwrap().unwrap();
    assert!(found.refunded);
    assert_eq!(found.refund_id, Some(refund.id.clone()));
    let replayed = adapter
        .refund(&format!("refund-{order}"), &charge.id, &Money::usd(4200))
        .await
        .unwrap();
    assert_eq!(replayed, refund);
    let by_hand = adapter
        .refund("refund-by-hand", &charge.id, &Money::usd(4200))
        .await;
    assert!(
        matches!(by_hand, Err(ProviderError::Rejected { status: 409, .. })),
        "refunded already: {by_hand:?}"
    );
}

#[tokio::test]
async fn a_decline_is_definitive_and_a_contract_error_is_rejected() {
    let provider = Provider::new().await;
    let adapter = provider.adapter().await;
    let order = new_order_id();
    assert_eq!(
        adapter
            .charge(&order, &Money::usd(100), DECLINED_TOKEN)
            .await,
        Err(ProviderError::Declined)
    );
    let reused = adapter
        .charge(&order, &Money::usd(100), APPROVED_TOKEN)
        .await;
    assert!(
        matches!(reused, Err(ProviderError::Rejected { status: 422, .. })),
        "{reused:?}"
    );
    let negative = adapter
        .charge(&new_order_id(), &Money::usd(-5), APPROVED_TOKEN)
        .await;
    assert!(matches!(
        negative,
        Err(ProviderError::Rejected { status: 422, .. })
    ));
}

/// A processor can fail after it acted: a 5xx proves nothing about the charge, and the
/// test mode shows it happen. Only a connection that was never made proves nothing was
/// processed.
#[tokio::test]
async fn a_5xx_may_have_been_processed_but_a_refused_connection_was_not() {
    let provider = Provider::new().await;
    let adapter = provider.adapter().await;
    provider.set_test_mode(json!({"outage": true})).await;
    let outcome = adapter
        .charge(&new_order_id(), &Money::usd(100), APPROVED_TOKEN)
        .await;
    assert!(
        matches!(
            outcome,
            Err(ProviderError::Unavailable {
                uncertain: true,
                ..
            })
        ),
        "{outcome:?}"
    );
    provider.set_test_mode(json!({"failAfterActing": 1})).await;
    let order = new_order_id();
    let outcome = adapter
        .charge(&order, &Money::usd(100), APPROVED_TOKEN)
        .await;
    assert!(
        matches!(
            outcome,
            Err(ProviderError::Unavailable {
                uncertain: true,
                ..
            })
        ),
        "{outcome:?}"
    );
    assert!(
        provider.charge_of(&order).await.is_some(),
        "the 500 came after the charge was made"
    );

    // Nothing listens on the port of a server that stopped.
    let url = provider.served.url.clone();
    drop(provider);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let gone = Provider::new().await;
    let adapter = payment::provider::HttpProvider::new(&url, gone.secret())
        .await
        .unwrap();
    let outcome = adapter
        .charge(&new_order_id(), &Money::usd(100), APPROVED_TOKEN)
        .await;
    assert!(
        matches!(
            outcome,
            Err(ProviderError::Unavailable {
                uncertain: false,
                ..
            })
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_request_cut_off_by_the_policy_may_have_been_processed() {
    let provider = Provider::new().await;
    let adapter = provider.adapter().await;
    provider.set_test_mode(json!({"delayMs": 400})).await;
    let order = new_order_id();
    let policy = RetryPolicy {
        attempts: 2,
        first_backoff: Duration::from_millis(10),
        attempt_timeout: Duration::from_millis(100),
    };
    let amount = Money::usd(100);
    let started = Instant::now();
    let outcome = policy
        .run("charge", || adapter.charge(&order, &amount, APPROVED_TOKEN))
        .await;
    assert!(
        matches!(
            outcome,
            Err(ProviderError::Unavailable {
                uncertain: true,
                ..
            })
        ),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "the policy did not wait it out"
    );
    provider.set_test_mode(json!({})).await;
    let charge =
        shop_testing::eventually(Duration::from_secs(5), || provider.charge_of(&order)).await;
    assert!(charge.is_some(), "and it was: the charge exists");
    assert_eq!(
        provider.charges().await,
        (1, 0),
        "both attempts were one charge"
    );
}

#[tokio::test]
async fn a_rotated_key_is_read_again_on_a_401() {
    let provider = Provider::new().await;
    let adapter = provider.adapter().await;
    let rotated = format!("sk_test_{}", new_order_id().to_lowercase());
    shop_testing::secrets::rotate_secret(
        &provider.ledger.config,
        &provider.secret_id,
        &json!({ "apiKey": rotated }).to_string(),
    )
    .await;
    // The sandbox learns the new key from the first caller presenting it (a fresh
    // instance, say) and from then on wants it; the adapter still holds the old one.
    let (status, _, _) = provider
        .request_as(Some(&rotated), "GET", "/v1/test-mode", None, None)
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = provider
        .request_as(Some(&provider.api_key), "GET", "/v1/test-mode", None, None)
        .await;
    assert_eq!(status, 401);
    let charge = adapter
        .charge(&new_order_id(), &Money::usd(100), APPROVED_TOKEN)
        .await;
    assert!(charge.is_ok(), "{charge:?}");
    assert_eq!(provider.charges().await, (1, 0));
}

#[tokio::test]
async fn a_key_nobody_accepts_is_rejected_after_one_fresh_read() {
    let provider = Provider::new().await;
    let adapter = provider.adapter().await;
    let other = Provider::new().await;
    let stranger = payment::provider::HttpProvider::new(&provider.served.url, other.secret())
        .await
        .unwrap();
    let outcome = stranger
        .charge(&new_order_id(), &Money::usd(100), APPROVED_TOKEN)
        .await;
    assert!(
        matches!(outcome, Err(ProviderError::Rejected { status: 401, .. })),
        "{outcome:?}"
    );
    assert!(adapter.find_charge(&new_order_id()).await.is_ok());
    assert!(
        !format!("{stranger:?}").contains(&other.api_key),
        "the key never shows"
    );
}
