//! What the basket's handler tests share: one table in moto per test, the API and the
//! consumer on it, and the sample events of `events/basket/` reshaped per case.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use basket::api::{App, handle};
use basket::consumer::Handler;
use basket::store::BasketStore;
use serde_json::{Value, json};
use shop_platform::consumer::{Outcome, SqsConsumer};
use shop_testing::api::{Answer, call, for_path_param, with_body, with_header, without_header};
use shop_testing::{Table, sqs};

/// The `sub` of every sample API event.
pub const SHOPPER: &str = "b8e14d02-6a3f-4c97-8f25-91d3c6e7a0b4";
/// The product of every sample event.
pub const BOOK: &str = "01JDKQ8M3ZP7G5V4X2N6R9T1CB";

pub struct Shop {
    pub table: Table,
    pub app: App,
    pub consumer: SqsConsumer<Handler>,
}

impl Shop {
    pub async fn new() -> Self {
        let table = Table::new("basket", &[]).await;
        let store = BasketStore::new(table.dynamodb.clone(), &table.name);
        Self {
            app: App {
                store: store.clone(),
            },
            consumer: table.consumer("basket", Handler { store }),
            table,
        }
    }

    pub fn store(&self) -> &BasketStore {
        &self.app.store
    }

    pub async fn call(&self, event: Value) -> Answer {
        call(|request| handle(&self.app, request), event).await
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
        sqs::deliver(&self.consumer, &sqs::redelivered(batch)).await
    }

    /// Delivers every message of a batch, as the consumer Lambda gets it.
    pub async fn deliver_batch(&self, records: Vec<Value>) -> Vec<String> {
        sqs::deliver_batch(&self.consumer, json!({ "Records": records })).await
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

    /// The `detail` of every event waiting in the outbox.
    pub async fn outbox(&self) -> Vec<Value> {
        self.table
            .outbox()
            .await
            .into_iter()
            .map(|event| event["detail"].clone())
            .collect()
    }
}

pub fn fixture(name: &str) -> Value {
    shop_testing::fixture("basket", name)
}

pub fn for_product(event: Value, id: &str) -> Value {
    for_path_param(event, "productId", id)
}

pub fn without_body(mut event: Value) -> Value {
    event.as_object_mut().unwrap().remove("body");
    without_header(event, "content-type")
}

/// The same request from another signed-in user.
pub fn as_user(mut event: Value, user: &str) -> Value {
    let claims = &mut event["requestContext"]["authorizer"]["jwt"]["claims"];
    claims["sub"] = json!(user);
    claims["username"] = json!(user);
    event
}

/// A sample consumer event with its EventBridge body reshaped by `change`, as a new
/// event (a fresh event id).
pub fn reshaped(sample: &str, change: impl FnOnce(&mut Value)) -> Value {
    sqs::with_envelope(sqs::republished(&fixture(sample)), change)
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
