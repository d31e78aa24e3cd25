//! Live order updates over the WebSocket API (DESIGN §6, the notifications capability),
//! through `shop-local up` and a real WebSocket client, as a browser would use it: who may
//! connect, what each connection hears, and what happens to connections that close or die.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use shop_local::issuer::{Issuer, forged_tokens};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::support::invariants::moto_config;
use crate::support::shop::Shop;
use crate::support::{STARTUP_LIMIT, eventually};

const TABLE: &str = "notifications-NotificationsTable";

struct Socket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Every message heard, in arrival order.
    heard: Vec<Value>,
}

impl Socket {
    async fn open(url: &str, token: &str) -> Self {
        let (stream, _) = connect_async(format!("{url}?token={token}"))
            .await
            .unwrap_or_else(|e| panic!("a valid token connects: {e}"));
        Self {
            stream,
            heard: Vec::new(),
        }
    }

    async fn send(&mut self, message: Value) {
        self.stream
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next message, if one comes within `within`.
    async fn next(&mut self, within: Duration) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(within, self.stream.next())
                .await
                .ok()??;
            if let Ok(Message::Text(text)) = frame {
                let message: Value = serde_json::from_str(&text).unwrap();
                self.heard.push(message.clone());
                return Some(message);
            }
        }
    }

    /// The next message that is not an order update (an answer to what this client sent).
    async fn answer(&mut self) -> Value {
        loop {
            let message = self.next(STARTUP_LIMIT).await.expect("an answer");
            if message["type"] != "orderStatus" {
                return message;
            }
        }
    }

    /// Listens until `order` has been heard at `status`; then the statuses heard for it,
    /// each once (a push is at least once), in the order ordering recorded them (`at`).
    async fn until(&mut self, order: &str, status: &str) -> Vec<String> {
        while !self.heard_at(order, status) {
            self.next(STARTUP_LIMIT)
                .await
                .unwrap_or_else(|| panic!("never heard {order} {status}: {:?}", self.heard));
        }
        self.statuses(order)
    }

    fn heard_at(&self, order: &str, status: &str) -> bool {
        self.heard
            .iter()
            .any(|m| m["orderId"] == order && m["status"] == status)
    }

    fn statuses(&self, order: &str) -> Vec<String> {
        let updates: BTreeSet<(String, String)> = self
            .heard
            .iter()
            .filter(|m| m["type"] == "orderStatus" && m["orderId"] == order)
            .map(|m| {
                (
                    m["at"].as_str().unwrap().to_owned(),
                    m["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        updates.into_iter().map(|(_, status)| status).collect()
    }

    fn orders_heard(&self) -> BTreeSet<String> {
        self.heard
            .iter()
            .filter_map(|m| m["orderId"].as_str().map(str::to_owned))
            .collect()
    }
}

/// The status of a handshake that must be refused before a connection exists.
async fn refused(url: &str) -> u16 {
    match connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("refused with a status, not {other}"),
        Ok(_) => panic!("{url} connected"),
    }
}

async fn table(shop: &Shop) -> aws_sdk_dynamodb::Client {
    let (_, stats) = shop.stack.call("GET", "/_local/stats", None, None).await;
    aws_sdk_dynamodb::Client::new(&moto_config(stats["motoEndpoint"].as_str().unwrap()).await)
}

/// The connection ids kept under `user`.
async fn connections_of(dynamodb: &aws_sdk_dynamodb::Client, user: &str) -> Vec<String> {
    let items = dynamodb
        .query()
        .table_name(TABLE)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("USER#{user}")))
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|item| item.get("connectionId")?.as_s().ok().cloned())
        .collect()
}

/// A connection that died without a `$disconnect` (a browser's network gone, API
/// Gateway's best-effort event lost): its items are in the table, its socket is nowhere.
async fn plant_dead_connection(dynamodb: &aws_sdk_dynamodb::Client, user: &str, id: &str) {
    let expires = chrono::Utc::now().timestamp() + 7200;
    for (pk, sk) in [
        (format!("CONNECTION#{id}"), "CONNECTION".to_owned()),
        (format!("USER#{user}"), format!("CONNECTION#{id}")),
    ] {
        dynamodb
            .put_item()
            .table_name(TABLE)
            .item("pk", AttributeValue::S(pk))
            .item("sk", AttributeValue::S(sk))
            .item("connectionId", AttributeValue::S(id.to_owned()))
            .item("userId", AttributeValue::S(user.to_owned()))
            .item("admin", AttributeValue::Bool(false))
            .item(
                "connectedAt",
                AttributeValue::S("2026-12-07T00:00:00.000Z".into()),
            )
            .item("expiresAt", AttributeValue::N(expires.to_string()))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shopper_sees_each_status_of_their_orders_pushed_and_never_anyone_elses() {
    let shop = Shop::start(&[]);
    let (_, config) = shop.stack.call("GET", "/config.json", None, None).await;
    let url = config["websocketUrl"]
        .as_str()
        .expect("the app is told where to connect")
        .to_owned();
    let dynamodb = table(&shop).await;

    // Refused before a connection exists: no token, and every forged or broken one the
    // HTTP API's authorizer refuses.
    assert_eq!(refused(&url).await, 401, "no token");
    let issuer = Issuer::load(&shop.stack.run_dir).unwrap();
    let other = Issuer::load_or_create(&shop.stack.run_dir.join("another-issuer")).unwrap();
    for (name, token) in forged_tokens(&issuer, &other) {
        let status = refused(&format!("{url}?token={token}")).await;
        assert_eq!(status, 401, "{name}");
    }
    assert!(connections_of(&dynamodb, "mallory").await.is_empty());

    let ada_token = shop.stack.token("ada", false);
    let bob_token = shop.stack.token("bob", false);
    let mut ada = Socket::open(&url, &ada_token).await;
    let mut bob = Socket::open(&url, &bob_token).await;
    let mut operator = Socket::open(&url, &shop.admin).await;

    // Only an admin may follow every order.
    bob.send(json!({"action": "subscribe", "scope": "all"}))
        .await;
    let answer = bob.answer().await;
    assert_eq!(
        (answer["type"].clone(), answer["status"].clone()),
        (json!("error"), json!(403)),
        "{answer}"
    );
    bob.send(json!({"action": "subscribe", "scope": "all", "userId": "ada"}))
        .await;
    assert_eq!(bob.answer().await["status"], 400);
    operator
        .send(json!({"action": "subscribe", "scope": "all"}))
        .await;
    assert_eq!(
        operator.answer().await,
        json!({"type": "subscribed", "scope": "all"})
    );
    ada.send(json!({"action": "ping"})).await;
    assert_eq!(ada.answer().await, json!({"type": "pong"}));

    // From submitted to delivered, each status as ordering records it.
    let lamp = shop.product_with_stock("Live Lamp", 1900, 10).await;
    shop.add(&ada_token, &lamp, 1).await;
    let delivered = shop.checkout(&ada_token, "live-ada-0001").await;
    ada.until(&delivered, "paid").await;
    shop.pending_shipment(&delivered).await;
    assert_eq!(shop.shipment_step(&delivered, "dispatch").await.0, 200);
    ada.until(&delivered, "shipped").await;
    assert_eq!(shop.shipment_step(&delivered, "deliver").await.0, 200);
    let expected = [
        "submitted",
        "stock_confirmed",
        "paid",
        "shipped",
        "delivered",
    ];
    assert_eq!(ada.until(&delivered, "delivered").await, expected);
    assert_eq!(operator.until(&delivered, "delivered").await, expected);

    // A connection that died without saying so is pruned by the next push to it, and the
    // live one beside it still hears everything.
    plant_dead_connection(&dynamodb, "ada", "deadConnection=").await;
    assert_eq!(connections_of(&dynamodb, "ada").await.len(), 2);

    // A paid order's cancellation: cancelling (shipping decides), then cancelled.
    shop.add(&ada_token, &lamp, 1).await;
    let cancelled = shop.checkout(&ada_token, "live-ada-0002").await;
    ada.until(&cancelled, "paid").await;
    let (status, order) = shop.cancel(&ada_token, &cancelled).await;
    assert_eq!(status, 202, "{order}");
    assert_eq!(
        ada.until(&cancelled, "cancelled").await,
        [
            "submitted",
            "stock_confirmed",
            "paid",
            "cancelling",
            "cancelled"
        ]
    );
    let reason = ada
        .heard
        .iter()
        .find(|m| m["orderId"] == cancelled.as_str() && m["status"] == "cancelled");
    assert_eq!(
        reason.map(|m| m["reason"].clone()),
        Some(json!("customer_request"))
    );
    operator.until(&cancelled, "cancelled").await;
    let live = eventually("the dead connection is pruned", async || {
        let ids = connections_of(&dynamodb, "ada").await;
        (ids.len() == 1).then_some(ids)
    })
    .await;
    assert_ne!(live[0], "deadConnection=");
    let lookup = dynamodb
        .get_item()
        .table_name(TABLE)
        .key("pk", AttributeValue::S("CONNECTION#deadConnection=".into()))
        .key("sk", AttributeValue::S("CONNECTION".into()))
        .send()
        .await
        .unwrap();
    assert!(
        lookup.item.is_none(),
        "every key of the dead connection goes"
    );

    // Bob heard nothing of Ada's orders: the pushes of her last update went out in one
    // consumer run with the operator's, which has arrived.
    while bob.next(Duration::from_millis(300)).await.is_some() {}
    assert!(bob.orders_heard().is_empty(), "bob heard {:?}", bob.heard);

    // A disconnect removes the connection.
    ada.stream.close(None).await.unwrap();
    eventually("ada's connection is removed", async || {
        connections_of(&dynamodb, "ada")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let started = shop.stack.started_pids().await;
    shop.stack.stop_with("TERM", &started);
}
