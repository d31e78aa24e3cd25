//! What payment's tests share: a payments table of their own in the binary's moto, the
//! API and the consumer over it, and the sandbox provider served for real on loopback HTTP
//! with its own ledger table and its API key in a moto secret, which the consumer reaches
//! through the real HTTP adapter. Plus the sample events of `events/payment/` and ways to
//! look at what was written on both sides, and at what the consumer counted.

use std::sync::Arc;
use std::time::Duration;

use payment::api::{App, handle};
use payment::consumer::{CONSUMER_NAME, Handler};
use payment::domain::{Payment, SettlePolicy};
use payment::provider::{HttpProvider, RetryPolicy};
use payment::reconciler::{Reconciler, Run};
use payment::sandbox::{self, Sandbox};
use payment::secret::ApiKeySecret;
use payment::settle::Settler;
use payment::store::PaymentStore;
use serde_json::{Value, json};
use shop_events::new_event_id;
use shop_platform::consumer::{Outcome, SqsConsumer};
use shop_platform::store::Table as PlatformTable;
use shop_testing::api::{Answer, call};
use shop_testing::metrics::Counts;
use shop_testing::secrets::create_secret;
use shop_testing::serve::{Served, serve};
use shop_testing::{Table, sqs};

/// The order, shopper, total and correlation id the sample events are about.
pub const ORDER_ID: &str = "01JDMB4W7K2Q9F3R5T8V1X6Z0N";
pub const SHOPPER: &str = "8d2e4f61-7a3b-4c5d-9e0f-1a2b3c4d5e6f";
pub const TOTAL: i64 = 6499;
pub const CORRELATION_ID: &str = "dK9pQjR2oAMEXyA=";
pub const APPROVED_TOKEN: &str = "tok_visa_4242";
pub const DECLINED_TOKEN: &str = "tok_decline_insufficient_funds";
/// The key the sandbox's sample requests present.
pub const SAMPLE_API_KEY: &str = "sk_sandbox_sample_0123456789abcdefghij";

/// Settling with no window and no pauses: a look decides at once, and the next look is
/// due at once. The windows and pauses themselves are unit-tested in `domain`.
pub fn settle_at_once() -> SettlePolicy {
    SettlePolicy {
        window: Duration::ZERO,
        first_pause: Duration::ZERO,
        max_pause: Duration::ZERO,
    }
}

/// A settle window that covers one attempt of [`quick_policy`] with room for a loaded
/// machine, as production's covers one of its own (CHARGE_SETTLE_SECONDS is refused below
/// one attempt): for scenarios that look at the provider while a charge is in flight,
/// where "no charge yet" is not "none". Such a scenario waits the window out before it
/// reconciles.
pub fn covering_one_attempt() -> SettlePolicy {
    SettlePolicy {
        window: Duration::from_secs(1),
        ..settle_at_once()
    }
}

/// A policy that gives up within half a second, so the failure paths are quick to test;
/// the real one's numbers are unit-tested in `provider`.
pub fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        first_backoff: Duration::from_millis(20),
        attempt_timeout: Duration::from_millis(300),
    }
}

pub fn fixture(name: &str) -> Value {
    shop_testing::fixture("payment", name)
}

/// A fresh order id, in ordering's format.
pub fn new_order_id() -> String {
    new_event_id()
}

/// The sandbox provider, served on loopback, on its own ledger table.
pub struct Provider {
    pub ledger: Table,
    pub secret_id: String,
    pub api_key: String,
    pub sandbox: Arc<Sandbox>,
    pub served: Served,
    pub http: reqwest::Client,
}

impl Provider {
    pub async fn new() -> Self {
        Self::with_key(&format!("sk_test_{}", new_event_id().to_lowercase())).await
    }

    pub async fn with_key(api_key: &str) -> Self {
        let ledger = Table::new("sandbox-ledger", &[]).await;
        let secret_id = create_secret(
            &ledger.config,
            "provider-api-key",
            &json!({ "apiKey": api_key }).to_string(),
        )
        .await;
        let secret = ApiKeySecret::new(
            aws_sdk_secretsmanager::Client::new(&ledger.config),
            &secret_id,
        );
        let sandbox = Sandbox::new(
            PlatformTable::new(ledger.dynamodb.clone(), &ledger.name),
            secret,
        )
        .await
        .expect("the sandbox reads its key");
        // Every unknown key is checked against the secret, so a rotation shows at once.
        let sandbox = Arc::new(sandbox.refreshing_key_every(Duration::ZERO));
        let served = {
            let sandbox = sandbox.clone();
            serve(move |request| {
                let sandbox = sandbox.clone();
                async move { sandbox::handle(&sandbox, request).await }
            })
            .await
        };
        Self {
            ledger,
            secret_id,
            api_key: api_key.to_owned(),
            sandbox,
            served,
            http: reqwest::Client::new(),
        }
    }

    pub fn secret(&self) -> ApiKeySecret {
        ApiKeySecret::new(
            aws_sdk_secretsmanager::Client::new(&self.ledger.config),
            &self.secret_id,
        )
    }

    /// The HTTP adapter pointed at this sandbox, its key read from the secret.
    pub async fn adapter(&self) -> HttpProvider {
        HttpProvider::new(&self.served.url, self.secret())
            .await
            .expect("the adapter reads its key")
    }

    /// One request to the sandbox over HTTP with the right key (or `key`): the status,
    /// the body as JSON and the response's headers.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        self.request_as(Some(&self.api_key), method, path, idempotency_key, body)
            .await
    }

    pub async fn request_as(
        &self,
        api_key: Option<&str>,
        method: &str,
        path: &str,
        idempotency_key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.served.url));
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the sandbox answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body, headers)
    }

    pub async fn charge(&self, idempotency_key: &str, amount: i64, token: &str) -> (u16, Value) {
        let (status, body, _) = self
            .request(
                "POST",
                "/v1/charges",
                Some(idempotency_key),
                Some(json!({"amount": {"amount": amount, "currency": "USD"}, "token": token})),
            )
            .await;
        (status, body)
    }

    /// Test mode: `{"outage": bool, "failNext": n, "delayMs": n, "failAfterActing": n}`;
    /// left out is off.
    pub async fn set_test_mode(&self, mode: Value) {
        let (status, body, _) = self.request("PUT", "/v1/test-mode", None, Some(mode)).await;
        assert_eq!(status, 200, "{body}");
    }

    /// The charge made under `idempotency_key` (an order id), as the ledger shows it.
    pub async fn charge_of(&self, idempotency_key: &str) -> Option<Value> {
        let (status, body, _) = self
            .request(
                "GET",
                &format!("/v1/charges?idempotencyKey={idempotency_key}"),
                None,
                None,
            )
            .await;
        match status {
            200 => Some(body),
            // 409: a request under the key is being processed; there is none to see yet.
            404 | 409 => None,
            other => panic!("the sandbox answered {other}: {body}"),
        }
    }

    /// How many charges the ledger holds, and how many of them are refunded.
    pub async fn charges(&self) -> (usize, usize) {
        let charges = self.ledger.items("CHARGE#").await;
        let refunded = charges
            .iter()
            .filter(|c| c.get("refunded").and_then(|r| r.as_bool().ok()) == Some(&true))
            .count();
        (charges.len(), refunded)
    }

    /// A sandbox sample request (a Function URL event) through the handler, as Lambda
    /// would invoke it.
    pub async fn invoke(&self, event: Value) -> Answer {
        call(|request| sandbox::handle(&self.sandbox, request), event).await
    }
}

/// Payment as its Lambdas run it, against a sandbox of its own: the API, the consumer and
/// the reconciler on one table.
pub struct Payments {
    pub table: Table,
    pub store: PaymentStore,
    pub app: App,
    pub consumer: SqsConsumer<Handler<HttpProvider>>,
    pub reconciler: Reconciler<HttpProvider>,
    pub provider: Provider,
    /// What the consumer and the reconciler counted.
    pub counts: Counts,
}

impl Payments {
    pub async fn new() -> Self {
        Self::with(quick_policy(), settle_at_once()).await
    }

    /// With the retry policy of every provider call and the settle policy.
    pub async fn with(retry: RetryPolicy, policy: SettlePolicy) -> Self {
        Self::on(Provider::new().await, retry, policy).await
    }

    pub async fn on(provider: Provider, retry: RetryPolicy, policy: SettlePolicy) -> Self {
        let table = Table::new("payments", &["gsi1"]).await;
        let store = PaymentStore::new(table.dynamodb.clone(), &table.name);
        let mut handler = Handler::new(store.clone(), provider.adapter().await, policy);
        handler.settler.retry = retry;
        let counts = Counts::new();
        let reconciler = Reconciler {
            settler: Settler {
                store: store.clone(),
                provider: provider.adapter().await,
                retry,
                policy,
            },
            metrics: counts.metrics(),
        };
        Self {
            app: App {
                store: store.clone(),
            },
            consumer: table
                .consumer(CONSUMER_NAME, handler)
                .with_metrics(counts.metrics()),
            reconciler,
            table,
            store,
            provider,
            counts,
        }
    }

    /// One run of the reconciler, as its schedule would start it.
    pub async fn reconcile(&self) -> Run {
        self.reconciler
            .run(std::time::Instant::now() + Duration::from_secs(60))
            .await
            .expect("the table answers")
    }

    /// Runs the reconciler until nothing is due, as its schedule would over time; how many
    /// runs that took (at most `runs`).
    pub async fn reconcile_until_settled(&self, runs: usize) -> usize {
        for n in 1..=runs {
            if self.reconcile().await.due == 0 {
                return n;
            }
        }
        panic!("still unsettled after {runs} runs");
    }

    /// The ids of the payments the unsettled index lists, whether due or not.
    pub async fn unsettled(&self) -> Vec<String> {
        self.table
            .items("PAYMENT#")
            .await
            .iter()
            .filter(|item| item.contains_key("gsi1pk"))
            .map(|item| item["orderId"].as_s().unwrap().clone())
            .collect()
    }

    /// The first message of a batch, alone, through the consumer harness.
    pub async fn deliver(&self, batch: &Value) -> Outcome {
        sqs::deliver(&self.consumer, batch).await
    }

    /// Delivers and expects the event to be applied.
    pub async fn apply(&self, batch: &Value) {
        assert_eq!(self.deliver(batch).await, Outcome::Applied);
    }

    /// One API Gateway request through the API Lambda's handler.
    pub async fn call(&self, event: Value) -> Answer {
        call(|request| handle(&self.app, request), event).await
    }

    pub async fn payment(&self, order_id: &str) -> Option<Payment> {
        self.store.get(order_id).await.unwrap()
    }

    /// The data of every event of one type in the outbox.
    pub async fn outbox_of(&self, detail_type: &str) -> Vec<Value> {
        self.table
            .outbox()
            .await
            .into_iter()
            .filter(|event| event["detail-type"] == detail_type)
            .map(|event| event["detail"]["data"].clone())
            .collect()
    }

    /// Every event in the outbox, by type, in id order.
    pub async fn outbox_types(&self) -> Vec<String> {
        self.table
            .outbox()
            .await
            .iter()
            .map(|event| event["detail-type"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A sample consumer event, as its queue delivers it: a batch of one message.
pub fn sample_message(name: &str) -> Value {
    let batch = fixture(name);
    assert_eq!(batch["Records"].as_array().unwrap().len(), 1, "{name}");
    batch
}

/// A sample consumer event with other data, published anew.
pub fn message(name: &str, data: Value) -> Value {
    let batch = sqs::with_envelope(sample_message(name), |event| event["detail"]["data"] = data);
    sqs::republished(&batch)
}

pub fn stock_confirmed(order_id: &str, amount: i64, token: &str) -> Value {
    message(
        "consumer-order-stock-confirmed.json",
        json!({"orderId": order_id, "userId": SHOPPER, "total": {"amount": amount, "currency": "USD"}, "paymentToken": token}),
    )
}

pub fn order_cancelled(order_id: &str) -> Value {
    message(
        "consumer-order-cancelled.json",
        json!({"orderId": order_id, "userId": SHOPPER, "reason": "customer_request"}),
    )
}
