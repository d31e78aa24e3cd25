//! The sandbox provider over real HTTP on loopback, its ledger in moto and its API key in a
//! moto secret: declines and approvals, idempotency (replays, concurrent requests with one
//! key, a key reused for another request), authentication, the test-mode switches, and
//! refunds. Its sample requests (Function URL events) go through the handler as Lambda
//! would invoke it.

use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{Value, json};
use tokio::task::JoinSet;

fn amount(amount: i64) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

#[tokio::test]
async fn the_sample_requests_charge_find_and_refund_one_order() {
    let provider = Provider::with_key(SAMPLE_API_KEY).await;

    let (status, health, _) = provider.invoke(fixture("sandbox-health.json")).await;
    assert_eq!((status, health["status"].clone()), (200, json!("ok")));

    let (status, mode, _) = provider.invoke(fixture("sandbox-set-test-mode.json")).await;
    assert_eq!(status, 200, "{mode}");
    assert_eq!(
        mode,
        json!({"outage": false, "failNext": 0, "delayMs": 0, "failAfterActing": 0})
    );

    let (status, charge, response) = provider.invoke(fixture("sandbox-create-charge.json")).await;
    assert_eq!(status, 201, "{charge}");
    assert!(response.headers().get("idempotent-replayed").is_none());
    let charge_id = charge["id"].as_str().unwrap().to_owned();
    assert!(charge_id.starts_with("ch_"), "{charge}");
    assert_eq!(charge["status"], "succeeded");
    assert_eq!(charge["amount"], amount(TOTAL));
    assert_eq!(charge["refunded"], false);

    let (status, again, response) = provider.invoke(fixture("sandbox-create-charge.json")).await;
    assert_eq!((status, &again), (201, &charge));
    assert_eq!(response.headers()["idempotent-replayed"], "true");

    let (status, found, _) = provider.invoke(fixture("sandbox-find-charge.json")).await;
    assert_eq!(
        (status, found["id"].as_str()),
        (200, Some(charge_id.as_str()))
    );

    // The sample refunds the charge the samples' story made; this run's charge has its own id.
    let mut refund = fixture("sandbox-refund-charge.json");
    let path = format!("/v1/charges/{charge_id}/refunds");
    refund["rawPath"] = json!(path);
    refund["requestContext"]["http"]["path"] = json!(path);
    let (status, refunded, _) = provider.invoke(refund).await;
    assert_eq!(status, 200, "{refunded}");
    assert_eq!(refunded["chargeId"], charge_id.as_str());
    assert!(refunded["id"].as_str().unwrap().starts_with("re_"));

    let (_, found, _) = provider.invoke(fixture("sandbox-find-charge.json")).await;
    assert_eq!(found["refunded"], true);
    assert_eq!(found["refundId"], refunded["id"]);
    assert_eq!(provider.charges().await, (1, 1));
}

#[tokio::test]
async fn a_declined_token_charges_nothing_and_its_decline_is_replayed() {
    let provider = Provider::new().await;
    let key = new_order_id();
    let (status, body) = provider.charge(&key, 500, DECLINED_TOKEN).await;
    assert_eq!(
        (status, body["error"].clone()),
        (402, json!("card_declined"))
    );

    let (status, body, headers) = provider
        .request(
            "POST",
            "/v1/charges",
            Some(&key),
            Some(json!({"amount": amount(500), "token": DECLINED_TOKEN})),
        )
        .await;
    assert_eq!(
        (status, body["error"].clone()),
        (402, json!("card_declined"))
    );
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(provider.charges().await, (0, 0));
    assert_eq!(
        provider.charge_of(&key).await,
        None,
        "a decline is no charge"
    );
}

#[tokio::test]
async fn any_other_token_is_charged_once_per_key() {
    let provider = Provider::new().await;
    let key = new_order_id();
    let (status, charge) = provider.charge(&key, 1234, APPROVED_TOKEN).await;
    assert_eq!(status, 201, "{charge}");
    assert_eq!(charge["amount"], amount(1234));
    for _ in 0..3 {
        let (status, again) = provider.charge(&key, 1234, APPROVED_TOKEN).await;
        assert_eq!((status, &again), (201, &charge));
    }
    let (status, other) = provider.charge(&new_order_id(), 1234, APPROVED_TOKEN).await;
    assert_eq!(status, 201);
    assert_ne!(other["id"], charge["id"], "another key is another charge");
    assert_eq!(provider.charges().await, (2, 0));
    assert_eq!(provider.charge_of(&key).await.unwrap()["id"], charge["id"]);
}

/// As card processors do: while a request under a key is being processed, another under
/// the same key is told so (409 `idempotency_key_in_use`) rather than answered with a
/// guess, and so is a lookup of the charge under it; once it is done, the same request is
/// answered with its stored outcome.
#[tokio::test]
async fn requests_under_a_key_in_use_are_told_so_and_one_charge_is_made() {
    let provider = std::sync::Arc::new(Provider::new().await);
    provider.set_test_mode(json!({"delayMs": 400})).await;
    let key = new_order_id();
    let mut requests = JoinSet::new();
    for n in 0..6u64 {
        let (provider, key) = (provider.clone(), key.clone());
        requests.spawn(async move {
            // The first one in, then the others while it is held.
            tokio::time::sleep(Duration::from_millis(if n == 0 { 0 } else { 100 })).await;
            provider
                .request(
                    "POST",
                    "/v1/charges",
                    Some(&key),
                    Some(json!({"amount": amount(700), "token": APPROVED_TOKEN})),
                )
                .await
        });
    }
    let (status, lookup, _) = {
        tokio::time::sleep(Duration::from_millis(150)).await;
        provider
            .request(
                "GET",
                &format!("/v1/charges?idempotencyKey={key}"),
                None,
                None,
            )
            .await
    };
    assert_eq!(
        (status, lookup["error"].clone()),
        (409, json!("idempotency_key_in_use")),
        "no one may conclude 'no charge' while one is being made: {lookup}"
    );
    let answers: Vec<_> = requests.join_all().await;
    let made: Vec<_> = answers
        .iter()
        .filter(|(status, _, _)| *status == 201)
        .collect();
    let in_use = answers
        .iter()
        .filter(|(status, body, _)| *status == 409 && body["error"] == "idempotency_key_in_use")
        .count();
    assert_eq!((made.len(), in_use), (1, 5), "{answers:?}");
    assert_eq!(provider.charges().await, (1, 0));

    provider.set_test_mode(json!({})).await;
    let (status, again) = provider.charge(&key, 700, APPROVED_TOKEN).await;
    assert_eq!(
        (status, &again),
        (201, &made[0].1),
        "the retry gets the charge"
    );
}

#[tokio::test]
async fn fail_after_acting_makes_the_charge_then_answers_500() {
    let provider = Provider::new().await;
    provider.set_test_mode(json!({"failAfterActing": 1})).await;
    let key = new_order_id();
    let (status, _) = provider.charge(&key, 100, APPROVED_TOKEN).await;
    assert_eq!(status, 500);
    assert_eq!(provider.charges().await, (1, 0), "acted before failing");
    let (status, charge) = provider.charge(&key, 100, APPROVED_TOKEN).await;
    assert_eq!(status, 201, "the retry replays what was done: {charge}");
    assert_eq!(provider.charges().await, (1, 0));
    let (_, mode, _) = provider.request("GET", "/v1/test-mode", None, None).await;
    assert_eq!(mode["failAfterActing"], 0);
}

#[tokio::test]
async fn a_key_reused_for_another_request_is_422_and_changes_nothing() {
    let provider = Provider::new().await;
    let key = new_order_id();
    let (status, charge) = provider.charge(&key, 900, APPROVED_TOKEN).await;
    assert_eq!(status, 201);
    for (amount_, token) in [
        (901, APPROVED_TOKEN),
        (900, "tok_mastercard_4444"),
        (900, DECLINED_TOKEN),
    ] {
        let (status, problem) = provider.charge(&key, amount_, token).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["status"], 422);
    }
    assert_eq!(provider.charges().await, (1, 0));
    assert_eq!(provider.charge_of(&key).await.unwrap()["id"], charge["id"]);
}

#[tokio::test]
async fn only_the_key_in_the_secret_is_accepted_and_health_needs_none() {
    let provider = Provider::new().await;
    let body = || Some(json!({"amount": amount(100), "token": APPROVED_TOKEN}));
    for key in [None, Some("sk_test_wrong"), Some("")] {
        let (status, problem, _) = provider
            .request_as(key, "POST", "/v1/charges", Some(&new_order_id()), body())
            .await;
        assert_eq!(status, 401, "{key:?}: {problem}");
    }
    let (status, _, _) = provider
        .request_as(None, "GET", "/v1/test-mode", None, None)
        .await;
    assert_eq!(status, 401);
    let (status, _, _) = provider
        .request_as(None, "GET", "/health", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(provider.charges().await, (0, 0));

    // A rotated key is accepted without a restart, and the old one no longer is.
    let rotated = format!("sk_test_{}", new_order_id().to_lowercase());
    shop_testing::secrets::rotate_secret(
        &provider.ledger.config,
        &provider.secret_id,
        &json!({ "apiKey": rotated }).to_string(),
    )
    .await;
    let (status, _, _) = provider
        .request_as(Some(&rotated), "GET", "/v1/test-mode", None, None)
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = provider
        .request_as(Some(&provider.api_key), "GET", "/v1/test-mode", None, None)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn writes_need_an_idempotency_key_and_a_well_formed_body() {
    let provider = Provider::new().await;
    let charge = |body: Value, key: Option<&str>| {
        let key = key.map(str::to_owned);
        let provider = &provider;
        async move {
            provider
                .request("POST", "/v1/charges", key.as_deref(), Some(body))
                .await
                .0
        }
    };
    let good = json!({"amount": amount(100), "token": APPROVED_TOKEN});
    assert_eq!(charge(good.clone(), None).await, 400);
    assert_eq!(charge(good.clone(), Some("not a key")).await, 400);
    for bad in [
        json!({"amount": amount(0), "token": APPROVED_TOKEN}),
        json!({"amount": {"amount": 100, "currency": "usd"}, "token": APPROVED_TOKEN}),
        json!({"amount": amount(100)}),
        json!({"amount": amount(100), "token": "tok visa"}),
        json!({"amount": amount(100), "token": APPROVED_TOKEN, "capture": false}),
    ] {
        assert_eq!(
            charge(bad.clone(), Some(&new_order_id())).await,
            422,
            "{bad}"
        );
    }
    let (status, _, _) = provider.request("GET", "/v1/charges", None, None).await;
    assert_eq!(status, 400, "a lookup needs its key");
    let (status, _, _) = provider.request("DELETE", "/v1/charges", None, None).await;
    assert_eq!(status, 404);
    assert_eq!(provider.charges().await, (0, 0));
    assert_eq!(provider.ledger.item_count().await, 0, "nothing stored");
}

#[tokio::test]
async fn an_outage_answers_503_to_everything_but_test_mode_and_stores_nothing() {
    let provider = Provider::new().await;
    provider.set_test_mode(json!({"outage": true})).await;
    let key = new_order_id();
    let (status, problem) = provider.charge(&key, 100, APPROVED_TOKEN).await;
    assert_eq!(status, 503, "{problem}");
    let (status, _) = provider.charge(&new_order_id(), 100, DECLINED_TOKEN).await;
    assert_eq!(status, 503);
    let (status, mode, _) = provider.request("GET", "/v1/test-mode", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        mode,
        json!({"outage": true, "failNext": 0, "delayMs": 0, "failAfterActing": 0})
    );

    provider.set_test_mode(json!({})).await;
    let (status, _, headers) = provider
        .request(
            "POST",
            "/v1/charges",
            Some(&key),
            Some(json!({"amount": amount(100), "token": APPROVED_TOKEN})),
        )
        .await;
    assert_eq!(
        status, 201,
        "the 503 was not stored: this is a first attempt"
    );
    assert!(headers.get("idempotent-replayed").is_none());
    assert_eq!(provider.charges().await, (1, 0));
}

#[tokio::test]
async fn fail_next_fails_exactly_that_many_requests() {
    let provider = Provider::new().await;
    provider.set_test_mode(json!({"failNext": 2})).await;
    let key = new_order_id();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(provider.charge(&key, 100, APPROVED_TOKEN).await.0);
    }
    assert_eq!(statuses, [503, 503, 201]);
    let (_, mode, _) = provider.request("GET", "/v1/test-mode", None, None).await;
    assert_eq!(mode["failNext"], 0);
    assert_eq!(provider.charges().await, (1, 0));
}

#[tokio::test]
async fn a_delayed_charge_still_happens_after_its_client_gave_up() {
    let provider = Provider::new().await;
    provider.set_test_mode(json!({"delayMs": 500})).await;
    let key = new_order_id();

    let started = Instant::now();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(format!("{}/v1/charges", provider.served.url))
        .bearer_auth(&provider.api_key)
        .header("Idempotency-Key", &key)
        .json(&json!({"amount": amount(100), "token": APPROVED_TOKEN}))
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());
    assert!(started.elapsed() < Duration::from_millis(450));

    provider.set_test_mode(json!({})).await;
    let charge =
        shop_testing::eventually(Duration::from_secs(5), || provider.charge_of(&key)).await;
    assert!(charge.is_some(), "the charge was made after the delay");
    assert_eq!(provider.charges().await, (1, 0));

    // And a patient client simply waits.
    provider.set_test_mode(json!({"delayMs": 300})).await;
    let started = Instant::now();
    let (status, _) = provider.charge(&new_order_id(), 100, APPROVED_TOKEN).await;
    assert_eq!(status, 201);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_refund_is_whole_idempotent_and_happens_once_per_charge() {
    let provider = Provider::new().await;
    let order = new_order_id();
    let (_, charge) = provider.charge(&order, 2500, APPROVED_TOKEN).await;
    let charge_id = charge["id"].as_str().unwrap();
    let path = format!("/v1/charges/{charge_id}/refunds");
    let refund = |key: &str, value: i64| {
        let (path, key) = (path.clone(), key.to_owned());
        let provider = &provider;
        async move {
            provider
                .request(
                    "POST",
                    &path,
                    Some(&key),
                    Some(json!({"amount": amount(value)})),
                )
                .await
        }
    };

    let (status, problem, _) = refund("refund-partial", 1000).await;
    assert_eq!(status, 422, "full refunds only: {problem}");

    let (status, first, headers) = refund(&format!("refund-{order}"), 2500).await;
    assert_eq!(status, 200, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    assert_eq!(first["chargeId"], charge_id);
    assert_eq!(first["amount"], amount(2500));

    let (status, again, headers) = refund(&format!("refund-{order}"), 2500).await;
    assert_eq!((status, &again), (200, &first));
    assert_eq!(headers["idempotent-replayed"], "true");

    let (status, problem, _) = refund("another-refund-key", 2500).await;
    assert_eq!(status, 409, "refunded already: {problem}");

    let found = provider.charge_of(&order).await.unwrap();
    assert_eq!(
        (found["refunded"].clone(), found["refundId"].clone()),
        (json!(true), first["id"].clone())
    );
    assert_eq!(provider.charges().await, (1, 1));

    let (status, _, _) = provider
        .request(
            "POST",
            "/v1/charges/ch_nosuchcharge/refunds",
            Some("refund-x"),
            Some(json!({"amount": amount(2500)})),
        )
        .await;
    assert_eq!(status, 404);
}
