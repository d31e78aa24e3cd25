//! What the basket's handler tests share: one table in moto per test, the API and the
//! consumer on it, and the sample events of `events/basket/` reshaped per case.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::{AttributeValue, Select};
use basket::api::{App, handle};
use basket::consumer::Handler;
use basket::store::BasketStore;
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use shop_platform::consumer::{Outcome, SqsConsumer};
use shop_platform::relay::{EventBridgePublisher, Relay, RetryPolicy};
use shop_testing::{
    bus_with_queue, create_table, drain_queue, sdk_config, stream_batch, unique, workspace_root,
};

/// The `sub` of every sample API event.
pub const SHOPPER: &str = "b8e14d02-6a3f-4c97-8f25-91d3c6e7a0b4";
/// The product of every sample event.
pub const BOOK: &str = "01JDKQ8M3ZP7G5V4X2N6R9T1CB";

pub struct Shop {
    pub config: shop_testing::Config,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub app: App,
    pub consumer: SqsConsumer<Handler>,
}

impl Shop {
    pub async fn new() -> Self {
        let config = sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let table = unique("basket");
        create_table(&dynamodb, &table, &[], true).await;
        let store = BasketStore::new(dynamodb.clone(), &table);
        Self {
            app: App {
                store: store.clone(),
            },
            consumer: SqsConsumer::new(dynamodb.clone(), &table, "basket", Handler { store }),
            config,
            dynamodb,
            table,
        }
    }

    pub fn store(&self) -> &BasketStore {
        &self.app.store
    }

    /// One API Gateway event through the API handler: status, JSON body, response.
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

    /// `PUT /basket/items/{product}` for `user`; asserts it succeeded.
    pub async fn set(&self, user: &str, product: &str, quantity: u32) -> Value {
        let event = with_body(
            as_user(for_product(fixture("api-set-item.json"), product), user),
            &json!({ "quantity": quantity }).to_string(),
        );
        let (status, basket, _) = self.call(event).await;
        assert_eq!(status, 200, "{basket}");
        basket
    }

    pub async fn view(&self, user: &str) -> Value {
        let (status, basket, _) = self
            .call(as_user(fixture("api-get-basket.json"), user))
            .await;
        assert_eq!(status, 200, "{basket}");
        basket
    }

    /// `POST /basket/checkout` for `user` with an idempotency key: (status, body).
    pub async fn checkout(&self, user: &str, key: &str) -> (u16, Value) {
        let event = with_header(
            as_user(fixture("api-checkout.json"), user),
            "idempotency-key",
            key,
        );
        let (status, body, _) = self.call(event).await;
        (status, body)
    }

    /// Delivers the first message of an SQS batch (a sample event, maybe reshaped) to the
    /// consumer, under a fresh message id as SQS would on a new delivery.
    pub async fn deliver(&self, batch: &Value) -> Outcome {
        let mut message: SqsMessage =
            serde_json::from_value(batch["Records"][0].clone()).expect("a sample SQS record");
        message.message_id = Some(unique("message"));
        self.consumer.handle_message(&message).await
    }

    /// Delivers every message of a batch, as the consumer Lambda gets it.
    pub async fn deliver_batch(&self, records: Vec<Value>) -> Vec<String> {
        let batch: SqsEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
        self.consumer
            .handle_batch(batch)
            .await
            .batch_item_failures
            .into_iter()
            .map(|failure| failure.item_identifier)
            .collect()
    }

    /// Projects a product on sale, as a ProductCreated/Updated of that version would.
    pub async fn project(&self, product: &str, name: &str, amount: i64, version: u64) {
        let sample = if version == 1 {
            "consumer-product-created.json"
        } else {
            "consumer-product-updated.json"
        };
        let event = catalog_event(sample, product, version, |data| {
            data["name"] = json!(name);
            data["price"]["amount"] = json!(amount);
        });
        assert_eq!(self.deliver(&event).await, Outcome::Applied);
    }

    pub async fn item_count(&self) -> i32 {
        self.dynamodb
            .scan()
            .table_name(&self.table)
            .select(Select::Count)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .count
    }

    /// Every item whose pk starts with `prefix`.
    pub async fn items(
        &self,
        prefix: &str,
    ) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        self.dynamodb
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :prefix)")
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    }

    /// The `detail` of every event waiting in the outbox.
    pub async fn outbox(&self) -> Vec<Value> {
        self.items("OUTBOX#")
            .await
            .iter()
            .map(|item| serde_json::from_str(item["detail"].as_s().unwrap()).unwrap())
            .collect()
    }

    /// Runs the relay over everything in the table's stream; returns what reached the bus.
    pub async fn published(&self) -> Vec<Value> {
        let (bus, queue) = bus_with_queue(&self.config).await;
        let relay = Relay::new(
            EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&self.config), &bus),
            RetryPolicy::default(),
        );
        let batch = serde_json::from_value(stream_batch(&self.config, &self.table).await).unwrap();
        assert!(relay.handle(batch).await.batch_item_failures.is_empty());
        drain_queue(&self.config, &queue).await
    }
}

pub fn fixture(name: &str) -> Value {
    let path = workspace_root().join("events/basket").join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

pub fn for_product(mut event: Value, id: &str) -> Value {
    event["pathParameters"]["productId"] = json!(id);
    event["rawPath"] = json!(format!("/basket/items/{id}"));
    event["requestContext"]["http"]["path"] = event["rawPath"].clone();
    event
}

pub fn with_body(mut event: Value, body: &str) -> Value {
    event["body"] = json!(body);
    event
}

pub fn without_body(mut event: Value) -> Value {
    event.as_object_mut().unwrap().remove("body");
    without_header(event, "content-type")
}

pub fn with_header(mut event: Value, name: &str, value: &str) -> Value {
    event["headers"][name] = json!(value);
    event
}

pub fn without_header(mut event: Value, name: &str) -> Value {
    event["headers"].as_object_mut().unwrap().remove(name);
    event
}

/// The same request from another signed-in user.
pub fn as_user(mut event: Value, user: &str) -> Value {
    let claims = &mut event["requestContext"]["authorizer"]["jwt"]["claims"];
    claims["sub"] = json!(user);
    claims["username"] = json!(user);
    event
}

pub fn anonymous(mut event: Value) -> Value {
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    without_header(event, "authorization")
}

/// A sample consumer event with its EventBridge body reshaped by `change`, as a new
/// event (a fresh event id).
pub fn reshaped(sample: &str, change: impl FnOnce(&mut Value)) -> Value {
    let mut batch = fixture(sample);
    let mut body: Value =
        serde_json::from_str(batch["Records"][0]["body"].as_str().unwrap()).unwrap();
    body["detail"]["metadata"]["eventId"] = json!(shop_events::new_event_id());
    change(&mut body);
    batch["Records"][0]["body"] = json!(body.to_string());
    batch
}

/// A catalog sample event about `product` at `version`, its data further reshaped.
pub fn catalog_event(
    sample: &str,
    product: &str,
    version: u64,
    change: impl FnOnce(&mut Value),
) -> Value {
    reshaped(sample, |body| {
        let data = &mut body["detail"]["data"];
        data["productId"] = json!(product);
        data["version"] = json!(version);
        change(data);
    })
}

/// OrderSubmitted for an order of `user`.
pub fn order_submitted(order_id: &str, user: &str) -> Value {
    reshaped("consumer-order-submitted.json", |body| {
        body["detail"]["data"]["orderId"] = json!(order_id);
        body["detail"]["data"]["userId"] = json!(user);
    })
}

/// A product id no test shares with another.
pub fn new_product() -> String {
    ulid::Ulid::generate().to_string()
}
