//! The socket function's handler against moto, driven by the sample events in
//! `events/notifications/socket-*.json`: who may connect, what a client may ask, and a
//! disconnect.

use crate::support::*;
use serde_json::json;
use shop_testing::samples;

#[tokio::test]
async fn a_valid_token_opens_a_connection_of_its_user() {
    let notifications = Notifications::new().await;
    let token = notifications.tokens.access("ann", false);
    let (status, body) = notifications.route(connect(Some(&token), "ann-1=")).await;
    assert_eq!((status, body), (200, None));
    let stored = notifications.store.find("ann-1=").await.unwrap().unwrap();
    assert_eq!((stored.user_id.as_str(), stored.admin), ("ann", false));
    assert_eq!(
        notifications.store.connections_of("ann").await.unwrap(),
        [stored]
    );
}

#[tokio::test]
async fn every_token_the_authorizer_refuses_is_refused_and_nothing_is_written() {
    let notifications = Notifications::new().await;
    let tokens = &notifications.tokens;
    let other = Tokens::new();
    let now = chrono::Utc::now().timestamp();
    let base = json!({"sub": "mallory", "iss": ISSUER, "client_id": CLIENT_ID, "iat": now, "exp": now + 300});
    let with = |key: &str, value: serde_json::Value| {
        let mut claims = base.clone();
        claims[key] = value;
        tokens.sign(&claims)
    };
    let valid = tokens.sign(&base);
    let (head, rest) = valid.split_once('.').unwrap();
    let signature = rest.rsplit('.').next().unwrap();
    let forged_admin = {
        let mut claims = base.clone();
        claims["cognito:groups"] = json!(["admin"]);
        use base64::Engine;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{head}.{payload}.{signature}")
    };
    let refused = [
        ("expired", with("exp", json!(now - 1))),
        ("not yet valid", with("nbf", json!(now + 60))),
        ("issued in the future", with("iat", json!(now + 60))),
        (
            "another issuer",
            with(
                "iss",
                json!("https://cognito-idp.us-east-1.amazonaws.com/other"),
            ),
        ),
        ("another app", with("client_id", json!("another-app"))),
        ("no subject", with("sub", json!(""))),
        ("another key", other.sign(&base)),
        ("forged groups", forged_admin),
        ("garbage", "not.a.token".to_owned()),
        (
            "the sample's",
            fixture("socket-connect.json")["queryStringParameters"]["token"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
    ];
    for (n, (name, token)) in refused.iter().enumerate() {
        let (status, _) = notifications
            .route(connect(Some(token), &format!("m-{n}=")))
            .await;
        assert_eq!(status, 401, "{name}");
    }
    let (status, _) = notifications.route(connect(None, "none=")).await;
    assert_eq!(status, 401, "no token");
    assert_eq!(notifications.table.item_count().await, 0);
}

#[tokio::test]
async fn only_an_admins_connection_may_follow_every_order() {
    let notifications = Notifications::new().await;
    notifications.connected("ops=", "op", true).await;
    notifications.connected("ann=", "ann", false).await;
    let subscribe = fixture("socket-subscribe.json")["body"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, answer) = notifications.route(message(&subscribe, "ann=")).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer.as_ref().map(|a| a["status"].clone()),
        Some(json!(403)),
        "{answer:?}"
    );
    assert!(notifications.store.watchers().await.unwrap().is_empty());

    let (_, answer) = notifications.route(message(&subscribe, "ops=")).await;
    assert_eq!(answer, Some(json!({"type": "subscribed", "scope": "all"})));
    let watchers = notifications.store.watchers().await.unwrap();
    assert_eq!(watchers.len(), 1);
    assert_eq!(watchers[0].connection_id, "ops=");
}

#[tokio::test]
async fn a_message_on_a_connection_that_is_not_open_changes_nothing() {
    let notifications = Notifications::new().await;
    let (_, answer) = notifications.route(fixture("socket-subscribe.json")).await;
    assert_eq!(answer.map(|a| a["status"].clone()), Some(json!(410)));
    assert_eq!(notifications.table.item_count().await, 0);
}

#[tokio::test]
async fn a_disconnect_removes_the_connection_and_a_second_one_is_harmless() {
    let notifications = Notifications::new().await;
    let operator = notifications
        .connected("Kx0u7dGbIAMCJHw=", "op", true)
        .await;
    notifications.store.watch_all(&operator).await.unwrap();
    let (status, _) = notifications.route(fixture("socket-disconnect.json")).await;
    assert_eq!(status, 200);
    assert_eq!(notifications.table.item_count().await, 0);
    let (status, _) = notifications.route(disconnect("Kx0u7dGbIAMCJHw=")).await;
    assert_eq!(status, 200);
}

#[test]
fn every_sample_event_of_notifications_is_exercised_and_names_a_function() {
    assert_eq!(samples::assert_all_used_and_invokable("notifications"), 5);
}
