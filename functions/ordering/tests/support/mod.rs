//! What ordering's tests share: a table of their own in the binary's moto, the two
//! handlers over it, the sample events of `events/ordering/`, and ways to look at what was
//! written (orders, outbox events, item counts).

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use chrono::{DateTime, Utc};
use lambda_http::{Body, Response};
use ordering::api::{App, handle};
use ordering::consumer::{CONSUMER_NAME, Handler};
use ordering::domain::Order;
use ordering::store::OrderStore;
use serde_json::{Value, json};
use shop_events::Envelope;
use shop_events::basket::CheckoutRequested;
use shop_platform::consumer::{Outcome, SqsConsumer};
use shop_platform::transaction::Transaction;
use shop_testing::{create_table, sdk_config, unique, workspace_root};

/// The order, shopper and correlation id the sample events are about.
pub const ORDER_ID: &str = "01JDMB4W7K2Q9F3R5T8V1X6Z0N";
pub const SHOPPER: &str = "8d2e4f61-7a3b-4c5d-9e0f-1a2b3c4d5e6f";
pub const CHECKOUT_CORRELATION_ID: &str = "dK9pQjR2oAMEXyA=";
pub const PAYMENT_TOKEN: &str = "tok_visa_4242";
pub const ADMIN: &str = "3f9c2a71-5b4e-4d8a-9c61-2e7f0b8d4a15";
pub const STRANGER: &str = "c0ffee00-1111-4222-8333-444455556666";

/// The events of one order, in the order its life raises them.
const LIFE: [&str; 6] = [
    "OrderSubmitted",
    "OrderStockConfirmed",
    "OrderPaid",
    "OrderShipped",
    "OrderDelivered",
    "OrderCancelled",
];

pub struct Ordering {
    pub config: shop_testing::Config,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub store: OrderStore,
    pub app: App,
    pub consumer: SqsConsumer<Handler>,
}

impl Ordering {
    pub async fn new() -> Self {
        let config = sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let table = unique("orders");
        create_table(&dynamodb, &table, &["gsi1"], true).await;
        let store = OrderStore::new(dynamodb.clone(), &table);
        Self {
            app: App {
                store: store.clone(),
            },
            consumer: SqsConsumer::new(
                dynamodb.clone(),
                &table,
                CONSUMER_NAME,
                Handler {
                    store: store.clone(),
                },
            ),
            config,
            dynamodb,
            table,
            store,
        }
    }

    /// One SQS batch through the consumer Lambda's handler; the ids of the failed messages.
    pub async fn deliver(&self, batch: Value) -> Vec<String> {
        let batch: SqsEvent = serde_json::from_value(batch).expect("an SQS event");
        self.consumer
            .handle_batch(batch)
            .await
            .batch_item_failures
            .into_iter()
            .map(|failure| failure.item_identifier)
            .collect()
    }

    /// The first message of a batch, alone, with what the harness made of it.
    pub async fn deliver_one(&self, batch: &Value) -> Outcome {
        let message: SqsMessage =
            serde_json::from_value(batch["Records"][0].clone()).expect("an SQS message");
        self.consumer.handle_message(&message).await
    }

    /// One API Gateway request through the API Lambda's handler.
    pub async fn call(&self, event: Value) -> (u16, Value, Response<Body>) {
        let request = lambda_http::request::from_str(&event.to_string())
            .expect("a valid API Gateway v2 event");
        let response = handle(&self.app, request).await;
        let body = match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::String(text.clone())),
            Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
            _ => Value::Null,
        };
        (response.status().as_u16(), body, response)
    }

    pub async fn order(&self, id: &str) -> Option<Order> {
        self.store.get(id).await.expect("the table answers")
    }

    /// Writes `order` as it is, whatever its status, as if it had got there on its own.
    pub async fn seed(&self, order: &Order) {
        let announced = Envelope::new(
            shop_events::ordering::OrderSubmitted {
                order_id: order.id.clone(),
                user_id: order.user_id.clone(),
                lines: order.lines.clone(),
                total: order.total.clone(),
            },
            "seed",
        );
        let mut transaction = Transaction::new(&self.table);
        self.store
            .stage_create(&mut transaction, order, &announced)
            .unwrap();
        transaction.commit(&self.dynamodb).await.unwrap();
    }

    /// The events in the outbox as `{"detail-type", "source", "detail"}`.
    pub async fn outbox(&self) -> Vec<Value> {
        let items = self
            .dynamodb
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :outbox)")
            .expression_attribute_values(":outbox", AttributeValue::S("OUTBOX#".into()))
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        let mut events: Vec<Value> = items
            .iter()
            .map(|item| {
                let text = |name: &str| item[name].as_s().unwrap().clone();
                json!({
                    "detail-type": text("detailType"),
                    "source": text("source"),
                    "detail": serde_json::from_str::<Value>(&text("detail")).unwrap(),
                })
            })
            .collect();
        // In the order of an order's life, which for one order is the order they were
        // raised in (cancellation is final); not by id or time, which two events raised
        // within one millisecond do not order.
        events.sort_by_key(|e| {
            let detail_type = e["detail-type"].as_str().unwrap();
            let rank = LIFE.iter().position(|t| *t == detail_type);
            (
                rank,
                e["detail"]["metadata"]["eventId"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        });
        events
    }

    /// The detail-types in the outbox, excluding what [`Self::seed`] wrote.
    pub async fn raised(&self) -> Vec<String> {
        self.outbox()
            .await
            .iter()
            .filter(|e| e["detail"]["metadata"]["correlationId"] != "seed")
            .map(|e| e["detail-type"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn item_count(&self) -> i32 {
        self.dynamodb
            .scan()
            .table_name(&self.table)
            .select(Select::Count)
            .send()
            .await
            .unwrap()
            .count
    }
}

pub fn fixture(name: &str) -> Value {
    let path = workspace_root().join("events/ordering").join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// The bus event inside the first message of an SQS batch.
pub fn bus_event(batch: &Value) -> Value {
    serde_json::from_str(batch["Records"][0]["body"].as_str().unwrap()).unwrap()
}

/// The batch with its (first) bus event changed by `change`: the message is what SQS
/// would hold had the bus delivered that event.
pub fn with_event(mut batch: Value, change: impl FnOnce(&mut Value)) -> Value {
    let mut event = bus_event(&batch);
    change(&mut event);
    batch["Records"][0]["body"] = json!(event.to_string());
    batch
}

/// The same event republished: EventBridge gives it a new message, ours keeps its id.
pub fn redelivered_as(batch: Value, message_id: &str) -> Value {
    let mut batch = batch;
    batch["Records"][0]["messageId"] = json!(message_id);
    batch
}

/// Another event with the same data (the publisher recorded it twice): a new event id.
pub fn recorded_again(batch: Value, event_id: &str) -> Value {
    with_event(batch, |event| {
        event["detail"]["metadata"]["eventId"] = json!(event_id)
    })
}

/// A sample consumer event about another order.
pub fn for_order(batch: Value, order_id: &str) -> Value {
    with_event(batch, |event| {
        event["detail"]["data"]["orderId"] = json!(order_id)
    })
}

/// The sample checkout, for `order_id` of `user_id`.
pub fn checkout(order_id: &str, user_id: &str) -> CheckoutRequested {
    let mut data =
        bus_event(&fixture("consumer-checkout-requested.json"))["detail"]["data"].clone();
    data["orderId"] = json!(order_id);
    data["userId"] = json!(user_id);
    serde_json::from_value(data).unwrap()
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

/// A sample API request about another order.
pub fn on_order(mut event: Value, order_id: &str) -> Value {
    let route = event["routeKey"].as_str().unwrap().to_owned();
    let path = route
        .split_once(' ')
        .unwrap()
        .1
        .replace("{orderId}", order_id);
    event["pathParameters"]["orderId"] = json!(order_id);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event
}

pub fn as_user(mut event: Value, claims: Value) -> Value {
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    event
}

pub fn anonymous(mut event: Value) -> Value {
    if let Some(context) = event["requestContext"].as_object_mut() {
        context.remove("authorizer");
    }
    if let Some(headers) = event["headers"].as_object_mut() {
        headers.remove("authorization");
    }
    event
}

pub fn with_query(mut event: Value, query: Value) -> Value {
    let raw = query
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect::<Vec<_>>()
        .join("&");
    event["queryStringParameters"] = query;
    event["rawQueryString"] = json!(raw);
    event
}
