//! What the inventory's test binaries share: one inventory (table, API, consumer) against
//! moto, the sample events of `events/inventory/` and variations of them, and the checks
//! every test ends with.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use inventory::api::{App, handle};
use inventory::consumer::Handler;
use inventory::domain::{Reservation, ReservationStatus, Stock};
use inventory::store::InventoryStore;
use serde_json::{Value, json};
use shop_events::new_event_id;
use shop_platform::consumer::{Outcome, SqsConsumer};
use shop_testing::{create_table, sdk_config, unique, workspace_root};

pub fn fixture(name: &str) -> Value {
    let path = workspace_root().join("events/inventory").join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// A fresh id in the catalog's and ordering's format.
pub fn new_id() -> String {
    new_event_id()
}

pub struct Inventory {
    pub config: shop_testing::Config,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub store: InventoryStore,
    pub app: App,
    pub consumer: SqsConsumer<Handler>,
    /// Per product, the total the last admin PUT left: nothing else may change it.
    totals: Mutex<HashMap<String, u64>>,
}

impl Inventory {
    pub async fn new() -> Self {
        let config = sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let table = unique("inventory");
        create_table(&dynamodb, &table, &[], true).await;
        let store = InventoryStore::new(dynamodb.clone(), &table);
        Self {
            app: App {
                store: store.clone(),
            },
            consumer: SqsConsumer::new(
                dynamodb.clone(),
                &table,
                "inventory",
                Handler {
                    store: store.clone(),
                },
            ),
            config,
            dynamodb,
            table,
            store,
            totals: Mutex::default(),
        }
    }

    /// Calls the API function with an API Gateway event; answers status and JSON body.
    pub async fn call(
        &self,
        event: Value,
    ) -> (u16, Value, lambda_http::Response<lambda_http::Body>) {
        let request = lambda_http::request::from_str(&event.to_string())
            .expect("a valid API Gateway v2 event");
        let response = handle(&self.app, request).await;
        let body = match response.body() {
            lambda_http::Body::Text(text) => {
                serde_json::from_str(text).unwrap_or(Value::String(text.clone()))
            }
            _ => Value::Null,
        };
        let status = response.status().as_u16();
        if status == 200 && body.get("shipped").is_some() {
            self.remember_total(&body);
        }
        (status, body, response)
    }

    fn remember_total(&self, levels: &Value) {
        let total = ["available", "reserved", "shipped"]
            .iter()
            .map(|counter| levels[counter].as_u64().unwrap())
            .sum();
        self.totals
            .lock()
            .unwrap()
            .insert(levels["productId"].as_str().unwrap().to_owned(), total);
    }

    /// An admin sets the product's available units, through the API.
    pub async fn set_stock(&self, product_id: &str, available: u64) -> Value {
        let event = with_body(
            for_product(fixture("api-set-stock.json"), product_id),
            &json!({ "available": available }).to_string(),
        );
        let (status, body, _) = self.call(event).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn deliver(&self, message: &SqsMessage) -> Outcome {
        self.consumer.handle_message(message).await
    }

    /// Delivers and expects the event to be applied (not a duplicate, not a failure).
    pub async fn apply(&self, message: &SqsMessage) {
        assert_eq!(self.deliver(message).await, Outcome::Applied);
    }

    pub async fn stock(&self, product_id: &str) -> Option<Stock> {
        self.store.stock(product_id).await.unwrap()
    }

    /// (available, reserved, shipped) of a product that has a stock item.
    pub async fn levels(&self, product_id: &str) -> (u64, u64, u64) {
        let stock = self
            .stock(product_id)
            .await
            .unwrap_or_else(|| panic!("no stock item for {product_id}"));
        (stock.available, stock.reserved, stock.shipped)
    }

    pub async fn reservation(&self, order_id: &str) -> Option<Reservation> {
        self.store.reservation(order_id).await.unwrap()
    }

    pub async fn status(&self, order_id: &str) -> Option<ReservationStatus> {
        self.reservation(order_id).await.map(|r| r.status)
    }

    async fn scan(&self) -> Vec<HashMap<String, AttributeValue>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return items,
            }
        }
    }

    pub async fn item_count(&self) -> i32 {
        self.dynamodb
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .select(Select::Count)
            .send()
            .await
            .unwrap()
            .count
    }

    /// Every event recorded in the outbox, as `{"detail-type", "source", "detail"}`,
    /// oldest first.
    pub async fn published(&self) -> Vec<Value> {
        let mut events: Vec<Value> = self
            .scan()
            .await
            .into_iter()
            .filter(|item| matches!(item.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with("OUTBOX#")))
            .map(|item| {
                let text = |name: &str| item[name].as_s().unwrap().clone();
                json!({
                    "detail-type": text("detailType"),
                    "source": text("source"),
                    "detail": serde_json::from_str::<Value>(&text("detail")).unwrap(),
                })
            })
            .collect();
        events.sort_by_key(|event| {
            event["detail"]["metadata"]["eventId"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        events
    }

    /// The data of every published event of one type.
    pub async fn published_of(&self, detail_type: &str) -> Vec<Value> {
        self.published()
            .await
            .into_iter()
            .filter(|event| event["detail-type"] == detail_type)
            .map(|event| event["detail"]["data"].clone())
            .collect()
    }

    /// DESIGN §3's invariant: every product's `available + reserved + shipped` is what the
    /// last admin PUT made it (0 if none), whatever the consumer did since.
    pub async fn assert_conserved(&self) {
        let totals = self.totals.lock().unwrap().clone();
        for item in self.scan().await {
            if !matches!(item.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with("STOCK#")) {
                continue;
            }
            let stock: Stock = serde_dynamo::from_item(item).unwrap();
            let expected = totals.get(&stock.product_id).copied().unwrap_or(0);
            assert_eq!(
                stock.total(),
                expected,
                "{stock:?}: available + reserved + shipped changed without an admin"
            );
        }
    }
}

pub fn for_product(mut event: Value, id: &str) -> Value {
    event["pathParameters"]["productId"] = json!(id);
    event["rawPath"] = json!(format!("/inventory/{id}"));
    event["requestContext"]["http"]["path"] = event["rawPath"].clone();
    event
}

pub fn with_body(mut event: Value, body: &str) -> Value {
    event["body"] = json!(body);
    event
}

/// The SQS message of a sample consumer event, as its queue delivers it.
pub fn sample_message(name: &str) -> SqsMessage {
    let mut batch: SqsEvent = serde_json::from_value(fixture(name)).unwrap();
    assert_eq!(batch.records.len(), 1, "{name}");
    batch.records.remove(0)
}

/// A sample consumer event with other data and a new event id: another event of the
/// same type, as the bus would deliver it.
pub fn message(name: &str, data: Value) -> SqsMessage {
    let mut message = sample_message(name);
    let mut body: Value = serde_json::from_str(message.body.as_deref().unwrap()).unwrap();
    body["detail"]["data"] = data;
    body["detail"]["metadata"]["eventId"] = json!(new_id());
    body["id"] = json!(new_id());
    message.message_id = Some(new_id());
    message.body = Some(body.to_string());
    message
}

/// The same event again in a new message, as an EventBridge retry or an SQS redelivery
/// brings it: same event id.
pub fn again(message: &SqsMessage) -> SqsMessage {
    let mut again = message.clone();
    again.message_id = Some(new_id());
    again
}

/// The same event with a new event id: a second publication of the same fact.
pub fn republished(message: &SqsMessage) -> SqsMessage {
    let mut body: Value = serde_json::from_str(message.body.as_deref().unwrap()).unwrap();
    body["detail"]["metadata"]["eventId"] = json!(new_id());
    let mut republished = message.clone();
    republished.message_id = Some(new_id());
    republished.body = Some(body.to_string());
    republished
}

pub fn product_created(product_id: &str) -> SqsMessage {
    let mut data = fixture_data("consumer-product-created.json");
    data["productId"] = json!(product_id);
    message("consumer-product-created.json", data)
}

pub fn product_deleted(product_id: &str) -> SqsMessage {
    message(
        "consumer-product-deleted.json",
        json!({"productId": product_id, "version": 2}),
    )
}

pub fn order_submitted(order_id: &str, lines: &[(&str, u32)]) -> SqsMessage {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(product_id, quantity)| {
            json!({"productId": product_id, "name": "A product", "unitPrice": {"amount": 500, "currency": "USD"}, "quantity": quantity})
        })
        .collect();
    let total = 500
        * lines
            .iter()
            .map(|l| l["quantity"].as_i64().unwrap())
            .sum::<i64>();
    message(
        "consumer-order-submitted.json",
        json!({"orderId": order_id, "userId": "user-1", "lines": lines, "total": {"amount": total, "currency": "USD"}}),
    )
}

pub fn order_cancelled(order_id: &str) -> SqsMessage {
    message(
        "consumer-order-cancelled.json",
        json!({"orderId": order_id, "userId": "user-1", "reason": "customer_request"}),
    )
}

pub fn shipment_dispatched(order_id: &str, lines: &[(&str, u32)]) -> SqsMessage {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(product_id, quantity)| json!({"productId": product_id, "quantity": quantity}))
        .collect();
    message(
        "consumer-shipment-dispatched.json",
        json!({"orderId": order_id, "lines": lines}),
    )
}

fn fixture_data(name: &str) -> Value {
    let body: Value = serde_json::from_str(sample_message(name).body.as_deref().unwrap()).unwrap();
    body["detail"]["data"].clone()
}
