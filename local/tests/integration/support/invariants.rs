//! DESIGN §3's invariants, checked through the API after a scenario has settled: what
//! every capability says about every order of the scenario must tell one story.
//!
//! - stock: no product's available, reserved or shipped is negative; their sum is what
//!   the admin set; what is reserved is exactly the lines of the orders holding stock
//!   (stock_confirmed, paid) and what is shipped exactly those of shipped and delivered
//!   orders;
//! - money: an order is charged (net of refunds) exactly when it is paid, cancelling,
//!   shipped or delivered — counted at the provider's own ledger (which holds the charges
//!   whose answer the shop never got, too) and by payment's record, for the order's total;
//!   and no payment is left unsettled;
//! - shipments: a cancelled order's shipment was never dispatched, and a dispatched one's
//!   units are shipped, never released (the shipped counts are exactly those of the orders
//!   whose parcels left);
//! - progress: every order is paid or cancelled, or further along by an admin's step
//!   (never left `cancelling`), its history a path the state machine allows, and its
//!   shipment in step with it;
//! - nothing given up: every dead-letter queue is empty.
//!
//! [`settle`] waits for the quiet moment the invariants speak of: every order settled,
//! every payment settled, every queue empty and no event source delivering anything for a
//! while.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use serde_json::Value;

use super::shop::{Shop, history, is_settled};
use super::{Runner, eventually};

/// The orders of a scenario, and the stock the admin set for its products (products no
/// other scenario's orders touch).
#[derive(Default)]
pub struct Scenario {
    /// productId → the quantity the admin set with `PUT /inventory/{productId}`.
    pub stock_set: BTreeMap<String, u32>,
    /// (orderId, its owner's token).
    pub orders: Vec<(String, String)>,
}

/// The sandbox provider as the tests see it: its URL's path under the local API and the
/// API key from the secret in moto.
pub struct Provider {
    pub path: String,
    pub api_key: String,
}

pub async fn moto_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "e2e",
        ))
        .load()
        .await
}

pub async fn stats(stack: &Runner) -> Value {
    stack.call("GET", "/_local/stats", None, None).await.1
}

impl Provider {
    pub async fn of(stack: &Runner) -> Self {
        let stats = stats(stack).await;
        let url = stats["functionUrls"]
            .as_array()
            .and_then(|urls| {
                urls.iter().find(|u| {
                    u["logicalId"]
                        .as_str()
                        .is_some_and(|id| id.ends_with("/SandboxFunctionUrl"))
                })
            })
            .and_then(|u| u["url"].as_str())
            .expect("the sandbox provider's function URL")
            .to_owned();
        let path = url
            .strip_prefix(&stack.url)
            .expect("served by the local API")
            .to_owned();
        let secret = stats["secrets"]
            .as_array()
            .and_then(|secrets| {
                secrets.iter().find(|s| {
                    s["logicalId"]
                        .as_str()
                        .is_some_and(|id| id.ends_with("/ProviderApiKeySecret"))
                })
            })
            .and_then(|s| s["name"].as_str())
            .expect("the provider's API key secret")
            .to_owned();
        let config = moto_config(stats["motoEndpoint"].as_str().unwrap()).await;
        let value = aws_sdk_secretsmanager::Client::new(&config)
            .get_secret_value()
            .secret_id(&secret)
            .send()
            .await
            .expect("the secret is readable")
            .secret_string
            .expect("a string secret");
        let value: Value = serde_json::from_str(&value).expect("the secret is JSON");
        Self {
            path,
            api_key: value["apiKey"].as_str().expect("apiKey").to_owned(),
        }
    }

    /// The charge the provider made under `order`'s idempotency key, if any.
    pub async fn charge(&self, stack: &Runner, order: &str) -> Option<Value> {
        let (status, charge) = stack
            .call_retrying(
                "GET",
                &format!("{}v1/charges?idempotencyKey={order}", self.path),
                Some(&self.api_key),
                None,
            )
            .await;
        match status {
            200 => Some(charge),
            404 => None,
            other => panic!("the sandbox answered {other}: {charge}"),
        }
    }

    /// Test mode: `{"outage": bool, "failNext": n, "delayMs": n}`; left out is off.
    pub async fn set_test_mode(&self, stack: &Runner, mode: Value) {
        let (status, answer) = stack
            .call(
                "PUT",
                &format!("{}v1/test-mode", self.path),
                Some(&self.api_key),
                Some(mode),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
}

/// Waits for the quiet moment: every order settled, every payment settled (the reconciler
/// has nothing left to do), every queue empty, and no event source mapping delivering a
/// record for two seconds.
pub async fn settle(shop: &Shop, scenario: &Scenario) {
    for (order, owner) in &scenario.orders {
        shop.settled(owner, order).await;
    }
    for (order, _) in &scenario.orders {
        eventually("the order's payment settles", async || {
            let (status, payment) = shop.payment(order).await;
            (status == 404 || (status == 200 && payment.get("settling").is_none())).then_some(())
        })
        .await;
    }
    let endpoint = stats(&shop.stack).await["motoEndpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let sqs = aws_sdk_sqs::Client::new(&moto_config(&endpoint).await);
    let mut quiet_since: Option<(Value, std::time::Instant)> = None;
    eventually("the shop goes quiet", async || {
        let stats = stats(&shop.stack).await;
        let delivered: Value = stats["mappings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["records"].clone())
            .collect();
        let mut empty = true;
        for queue in stats["queues"].as_array().unwrap() {
            if queue["deadLetter"] == true {
                continue;
            }
            let (visible, in_flight) = depth(&sqs, queue["url"].as_str().unwrap()).await;
            empty &= visible + in_flight == 0;
        }
        match &quiet_since {
            Some((before, since)) if empty && *before == delivered => {
                (since.elapsed() >= Duration::from_secs(2)).then_some(())
            }
            _ => {
                quiet_since = empty.then(|| (delivered, std::time::Instant::now()));
                None
            }
        }
    })
    .await;
}

async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    use aws_sdk_sqs::types::QueueAttributeName::{
        ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
    };
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(ApproximateNumberOfMessages)
        .attribute_names(ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    let count = |name| {
        attributes
            .get(&name)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (
        count(ApproximateNumberOfMessages),
        count(ApproximateNumberOfMessagesNotVisible),
    )
}

/// The transitions DESIGN §3 allows, as (from, to).
const ALLOWED: [(&str, &str); 9] = [
    ("submitted", "stock_confirmed"),
    ("submitted", "cancelled"),
    ("stock_confirmed", "paid"),
    ("stock_confirmed", "cancelled"),
    ("paid", "shipped"),
    ("paid", "cancelling"),
    ("cancelling", "cancelled"),
    ("cancelling", "shipped"),
    ("shipped", "delivered"),
];

fn allowed(from: &str, to: &str) -> bool {
    ALLOWED.contains(&(from, to))
}

/// Every violation of the invariants, in words; empty when the scenario tells one story.
pub async fn violations(shop: &Shop, provider: &Provider, scenario: &Scenario) -> Vec<String> {
    let mut found = Vec::new();
    // productId → (reserved, shipped) the orders account for.
    let mut held: BTreeMap<&str, (i64, i64)> = BTreeMap::new();

    for (order_id, owner) in &scenario.orders {
        let (status, order) = shop.order(owner, order_id).await;
        if status != 200 {
            found.push(format!("order {order_id}: GET answered {status}: {order}"));
            continue;
        }
        let state = order["status"].as_str().unwrap_or("?").to_owned();
        if !is_settled(&state) {
            found.push(format!("order {order_id} is stuck in {state}"));
        }
        let path = history(&order);
        if path.first().map(String::as_str) != Some("submitted")
            || path.windows(2).any(|step| !allowed(&step[0], &step[1]))
            || path.last() != Some(&state)
        {
            found.push(format!(
                "order {order_id}: history {path:?} is not a path to {state}"
            ));
        }

        for line in order["lines"].as_array().into_iter().flatten() {
            let product = scenario
                .stock_set
                .keys()
                .find(|p| line["productId"] == p.as_str());
            let Some(product) = product else { continue };
            let quantity = line["quantity"].as_i64().unwrap_or(0);
            let entry = held.entry(product.as_str()).or_default();
            match state.as_str() {
                "stock_confirmed" | "paid" => entry.0 += quantity,
                "shipped" | "delivered" => entry.1 += quantity,
                _ => {}
            }
        }

        let should_be_charged = matches!(
            state.as_str(),
            "paid" | "cancelling" | "shipped" | "delivered"
        );
        let (status, payment) = shop.payment(order_id).await;
        let recorded_charge = match status {
            200 => payment["status"] == "succeeded",
            404 => false,
            other => {
                found.push(format!("payment of {order_id}: GET answered {other}"));
                false
            }
        };
        if let Some(settling) = payment.get("settling") {
            found.push(format!("payment of {order_id} is not settled: {settling}"));
        }
        if recorded_charge != should_be_charged {
            found.push(format!(
                "order {order_id} is {state} but payment says {payment}"
            ));
        }
        if recorded_charge && payment["amount"] != order["total"] {
            found.push(format!(
                "order {order_id}: charged {} for a total of {}",
                payment["amount"], order["total"]
            ));
        }
        let provider_charge = provider.charge(&shop.stack, order_id).await;
        let provider_charged = provider_charge
            .as_ref()
            .is_some_and(|charge| charge["refunded"] == false);
        if provider_charged != should_be_charged {
            found.push(format!(
                "order {order_id} is {state} but the provider's ledger says {provider_charge:?}"
            ));
        }

        let (status, shipment) = shop.shipment(order_id).await;
        let shipment_status = match status {
            200 => shipment["status"].as_str().unwrap_or("?").to_owned(),
            404 => "none".to_owned(),
            other => format!("GET answered {other}"),
        };
        let expected: &[&str] = match state.as_str() {
            "paid" => &["pending"],
            "shipped" => &["dispatched"],
            "delivered" => &["delivered"],
            "cancelled" => &["none", "cancelled"],
            _ => &["none"],
        };
        if !expected.contains(&shipment_status.as_str()) {
            found.push(format!(
                "order {order_id} is {state} but its shipment is {shipment_status}"
            ));
        }
    }

    for (product, set) in &scenario.stock_set {
        let stock = shop.stock(product).await;
        let level = |name: &str| stock[name].as_i64().unwrap_or(i64::MIN);
        let (available, reserved, shipped) =
            (level("available"), level("reserved"), level("shipped"));
        if available < 0 || reserved < 0 || shipped < 0 {
            found.push(format!("product {product}: negative stock {stock}"));
        }
        if available + reserved + shipped != i64::from(*set) {
            found.push(format!(
                "product {product}: {available} + {reserved} + {shipped} != the {set} the admin set"
            ));
        }
        let (orders_reserved, orders_shipped) =
            held.get(product.as_str()).copied().unwrap_or_default();
        if (reserved, shipped) != (orders_reserved, orders_shipped) {
            found.push(format!(
                "product {product}: reserved {reserved} / shipped {shipped}, but the orders hold {orders_reserved} / {orders_shipped}"
            ));
        }
    }

    let stats = stats(&shop.stack).await;
    let sqs = aws_sdk_sqs::Client::new(&moto_config(stats["motoEndpoint"].as_str().unwrap()).await);
    for queue in stats["queues"].as_array().unwrap() {
        if queue["deadLetter"] != true {
            continue;
        }
        let (visible, in_flight) = depth(&sqs, queue["url"].as_str().unwrap()).await;
        if visible + in_flight > 0 {
            found.push(format!(
                "{} holds {} messages",
                queue["logicalId"],
                visible + in_flight
            ));
        }
    }
    found
}

/// Settles the scenario and asserts that no invariant is violated.
pub async fn assert_invariants(shop: &Shop, scenario: &Scenario) {
    settle(shop, scenario).await;
    let provider = Provider::of(&shop.stack).await;
    let found = violations(shop, &provider, scenario).await;
    assert!(
        found.is_empty(),
        "{} invariant violations:\n{}",
        found.len(),
        found.join("\n")
    );
}
