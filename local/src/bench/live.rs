//! The live-updates phase: `connections` shoppers each open a WebSocket to the
//! notifications API, place one order and follow it until it is paid (or cancelled), all
//! at once. What it
//! measures is the push's latency, from the event's `occurredAt` (when ordering recorded
//! the change) to the client's receipt, and what the connections cost per order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use super::load::Catalog;
use super::report::{LatencyFigures, latency, round};
use crate::client::ApiClient;
use crate::stack::Stack;

/// How long a shopper waits for their order to be paid before it counts as missed.
const FOLLOW_LIMIT: Duration = Duration::from_secs(180);
/// Checkouts in flight at once: the emulator, not the shop, is what more would measure.
const CHECKOUTS_AT_ONCE: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveFigures {
    pub connections: u64,
    /// Connections `$connect` refused or that failed to open.
    pub refused: u64,
    pub orders: u64,
    /// `orderStatus` messages received, all connections together.
    pub messages: u64,
    /// Orders cancelled on their way (the sandbox overwhelmed, say): their `cancelled`
    /// arrived, and they count as followed.
    #[serde(default)]
    pub cancelled: u64,
    /// Orders whose final status (`paid` or `cancelled`) never arrived within the limit.
    pub missed: u64,
    /// From `occurredAt` to the client's receipt.
    pub push_latency_ms: LatencyFigures,
    /// The handshake, `$connect`'s token check and its write included.
    pub connect_ms: LatencyFigures,
    /// How long a connection stayed open, on average: from its open to its order's `paid`.
    pub connection_seconds_per_order: f64,
    /// The socket function's invocations per order (`$connect`, `$disconnect`), and their
    /// billed GB-seconds at the template's memory.
    pub socket_invocations_per_order: f64,
    pub socket_gb_seconds_per_order: f64,
}

struct Followed {
    connected: Option<Duration>,
    latencies_ms: Vec<f64>,
    messages: u64,
    open_for: Duration,
    settled: Option<String>,
    ordered: bool,
}

/// Runs the phase; `Err` only when it cannot start (no WebSocket API in the templates).
pub async fn run(
    stack: &Stack,
    api: &ApiClient,
    catalog: &Catalog,
    connections: usize,
    log: &(dyn Fn(&str) + Send + Sync),
) -> Result<LiveFigures, String> {
    let url = crate::websocket::client_url(&stack.topology, &stack.api_url)
        .ok_or("the templates declare no WebSocket API")?;
    let product = catalog
        .products
        .first()
        .ok_or("the catalog has no product")?
        .clone();
    let socket = stack
        .topology
        .functions
        .iter()
        .find(|spec| spec.binary == "notifications-socket")
        .ok_or("no notifications-socket function")?;
    let socket_function = stack
        .functions
        .get(&socket.name)
        .ok_or("notifications-socket is not running")?;
    let before = socket_function.stats();
    let checkouts = Arc::new(Semaphore::new(CHECKOUTS_AT_ONCE));
    let mut shoppers = Vec::new();
    for n in 0..connections {
        let user = format!("bench-live-{n}");
        let token = stack
            .issuer
            .token(&user, false, Duration::from_secs(3600))
            .map_err(|e| format!("token: {e}"))?;
        let url = url.clone();
        let api = api.clone();
        let product = product.clone();
        let checkouts = checkouts.clone();
        shoppers.push(tokio::spawn(async move {
            follow_one(&url, &api, &token, &product, n, &checkouts).await
        }));
    }
    let mut figures = LiveFigures {
        connections: connections as u64,
        ..LiveFigures::default()
    };
    let mut latencies = Vec::new();
    let mut connects = Vec::new();
    let mut open_seconds = 0.0;
    for shopper in shoppers {
        let Ok(followed) = shopper.await else {
            figures.refused += 1;
            continue;
        };
        match followed.connected {
            Some(took) => connects.push(took.as_secs_f64() * 1000.0),
            None => figures.refused += 1,
        }
        figures.orders += u64::from(followed.ordered);
        figures.missed += u64::from(followed.ordered && followed.settled.is_none());
        figures.cancelled += u64::from(followed.settled.as_deref() == Some("cancelled"));
        figures.messages += followed.messages;
        latencies.extend(followed.latencies_ms);
        open_seconds += followed.open_for.as_secs_f64();
    }
    figures.push_latency_ms = latency(&mut latencies);
    figures.connect_ms = latency(&mut connects);
    let orders = figures.orders.max(1) as f64;
    figures.connection_seconds_per_order = round(open_seconds / orders);
    // $disconnect is invoked once the close has gone through: wait for the last ones.
    super::wait_quiet(stack, None).await;
    let after = socket_function.stats();
    let invocations = after.invocations.saturating_sub(before.invocations) as f64;
    let billed_ms = (after.warm_billed_ms + after.cold_billed_ms)
        .saturating_sub(before.warm_billed_ms + before.cold_billed_ms) as f64;
    figures.socket_invocations_per_order = round(invocations / orders);
    figures.socket_gb_seconds_per_order =
        billed_ms / 1000.0 * f64::from(socket.memory_mb) / 1024.0 / orders;
    log(&format!("live: {figures:?}"));
    Ok(figures)
}

async fn follow_one(
    url: &str,
    api: &ApiClient,
    token: &str,
    product: &str,
    n: usize,
    checkouts: &Semaphore,
) -> Followed {
    let mut followed = Followed {
        connected: None,
        latencies_ms: Vec::new(),
        messages: 0,
        open_for: Duration::ZERO,
        settled: None,
        ordered: false,
    };
    let started = Instant::now();
    let Ok((mut socket, _)) = connect_async(format!("{url}?token={token}")).await else {
        return followed;
    };
    let opened = Instant::now();
    followed.connected = Some(opened - started);
    let order = {
        let Ok(_permit) = checkouts.acquire().await else {
            return followed;
        };
        place_order(api, token, product, n).await
    };
    let Some(order) = order else {
        let _ = socket.close(None).await;
        return followed;
    };
    followed.ordered = true;
    let deadline = tokio::time::Instant::now() + FOLLOW_LIMIT;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, socket.next()).await {
        let Message::Text(text) = frame else {
            continue;
        };
        let received = chrono::Utc::now();
        let Ok(message) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if message["type"] != "orderStatus" {
            continue;
        }
        followed.messages += 1;
        if let Some(at) = message["at"]
            .as_str()
            .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        {
            let took = received.signed_duration_since(at);
            followed
                .latencies_ms
                .push(took.num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
        let status = message["status"].as_str().unwrap_or_default();
        if message["orderId"] == order.as_str() && matches!(status, "paid" | "cancelled") {
            followed.settled = Some(status.to_owned());
            break;
        }
    }
    followed.open_for = opened.elapsed();
    let _ = socket.send(Message::Close(None)).await;
    followed
}

async fn place_order(api: &ApiClient, token: &str, product: &str, n: usize) -> Option<String> {
    let path = format!("/basket/items/{product}");
    let (status, _) = api
        .call(
            "PUT",
            &path,
            Some(token),
            Some(&json!({"quantity": 1})),
            &[],
        )
        .await
        .ok()?;
    if status != 200 {
        return None;
    }
    let body = crate::shop::checkout_body("tok_visa");
    let key = format!("bench-live-{n:06}");
    let (status, answer) = api
        .call(
            "POST",
            "/basket/checkout",
            Some(token),
            Some(&body),
            &[("idempotency-key", key.as_str())],
        )
        .await
        .ok()?;
    (status == 202).then(|| answer["orderId"].as_str().map(str::to_owned))?
}
