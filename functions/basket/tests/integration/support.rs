//! What the basket's handler tests share: one table in moto per test, the API and the
//! consumer on it, and the sample events of `events/basket/` reshaped per case; and, for
//! what moto cannot show by itself, interceptors on the API's DynamoDB client: a replica
//! that lags behind the projection, and a change that lands just before a commit.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextMut, BeforeSerializationInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::types::AttributeValue;
use basket::api::{App, handle};
use basket::consumer::Handler;
use basket::store::BasketStore;
use serde_json::{Value, json};
use shop_platform::consumer::{Outcome, SqsConsumer};
use shop_testing::api::{Answer, call, for_path_param, with_body, with_header, without_header};
use shop_testing::{Item, Table, sqs};

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

    /// An API on this shop's table whose DynamoDB client passes every request through
    /// `interceptor` first.
    pub fn app_with(&self, interceptor: impl Intercept + 'static) -> App {
        let config = aws_sdk_dynamodb::config::Builder::from(&self.table.config)
            .interceptor(interceptor)
            .build();
        App {
            store: BasketStore::new(
                aws_sdk_dynamodb::Client::from_conf(config),
                &self.table.name,
            ),
        }
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

/// `PUT /basket/items/{product}` for `user`, unsent.
pub fn set_request(user: &str, product: &str, quantity: u32) -> Value {
    with_body(
        as_user(for_product(fixture("api-set-item.json"), product), user),
        &json!({ "quantity": quantity }).to_string(),
    )
}

/// `DELETE /basket/items/{product}` for `user`, unsent.
pub fn remove_request(user: &str, product: &str) -> Value {
    as_user(for_product(fixture("api-remove-item.json"), product), user)
}

/// `POST /basket/checkout` for `user` with an idempotency key, unsent.
pub fn checkout_request(user: &str, key: &str) -> Value {
    with_header(
        as_user(fixture("api-checkout.json"), user),
        "idempotency-key",
        key,
    )
}

/// The CheckoutRequested waiting in the outbox for `order_id`: its `data`.
pub async fn requested(shop: &Shop, order_id: &str) -> Value {
    shop.outbox()
        .await
        .into_iter()
        .map(|detail| detail["data"].clone())
        .find(|data| data["orderId"] == order_id)
        .unwrap_or_else(|| panic!("no CheckoutRequested for {order_id}"))
}

/// `(productId, quantity)` of each line of a basket answer or a CheckoutRequested.
pub fn lines(lines: &Value) -> Vec<(String, u64)> {
    lines
        .as_array()
        .unwrap()
        .iter()
        .map(|line| {
            (
                line["productId"].as_str().unwrap().to_owned(),
                line["quantity"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A replica of the table that has not yet seen the newest projection of some products:
/// an eventually consistent read of them finds nothing, as DynamoDB allows for a moment
/// after the write. Strongly consistent reads see everything. (moto has one copy of each
/// item and is always up to date; this stands in for the replication window.)
#[derive(Debug, Clone, Default)]
pub struct LaggingReplica {
    behind_on: Arc<Mutex<HashSet<String>>>,
}

impl LaggingReplica {
    /// From now on, eventually consistent reads miss `product`'s projection.
    pub fn falls_behind_on(&self, product: &str) {
        self.behind_on
            .lock()
            .unwrap()
            .insert(format!("PRODUCT#{product}"));
    }

    /// Asks for an item that does not exist instead of one the replica has not seen.
    fn miss_unseen(&self, keys: &mut [Item]) {
        let behind_on = self.behind_on.lock().unwrap();
        for key in keys {
            if let Some(AttributeValue::S(pk)) = key.get_mut("pk")
                && behind_on.contains(pk.as_str())
            {
                pk.push_str("#not-replicated-yet");
            }
        }
    }
}

impl Intercept for LaggingReplica {
    fn name(&self) -> &'static str {
        "LaggingReplica"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        if let Some(batch) = input.downcast_mut::<BatchGetItemInput>() {
            for wanted in batch
                .request_items
                .iter_mut()
                .flat_map(|items| items.values_mut())
            {
                if wanted.consistent_read != Some(true) {
                    self.miss_unseen(&mut wanted.keys);
                }
            }
        } else if let Some(get) = input.downcast_mut::<GetItemInput>()
            && get.consistent_read != Some(true)
        {
            self.miss_unseen(get.key.as_mut_slice());
        }
        Ok(())
    }
}

/// Runs other requests once, just before the first request of some kind the API makes
/// to DynamoDB: what another request of the same user would do if it landed in that
/// moment (between a checkout's read and its commit, say). Needs a multi-threaded
/// runtime: the requests run to completion while the intercepted one waits.
pub struct JustBefore {
    is_the_moment: fn(&BeforeSerializationInterceptorContextRef<'_>) -> bool,
    requests: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl JustBefore {
    /// Before the API's first commit of a transaction.
    pub fn commit(shop: &Shop, requests: Vec<Value>) -> Self {
        Self::new(shop, requests, |request| {
            request
                .input()
                .downcast_ref::<TransactWriteItemsInput>()
                .is_some()
        })
    }

    /// Before the API's first read of a basket.
    pub fn basket_read(shop: &Shop, requests: Vec<Value>) -> Self {
        Self::new(shop, requests, |request| {
            request
                .input()
                .downcast_ref::<GetItemInput>()
                .and_then(|get| get.key.as_ref()?.get("pk")?.as_s().ok())
                .is_some_and(|pk| pk.starts_with("BASKET#"))
        })
    }

    /// `requests` go through `shop`'s own API, one after another, and each must succeed.
    fn new(
        shop: &Shop,
        requests: Vec<Value>,
        is_the_moment: fn(&BeforeSerializationInterceptorContextRef<'_>) -> bool,
    ) -> Self {
        let store = shop.store().clone();
        let run = move || {
            let app = App { store };
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async {
                    for request in requests {
                        let (status, body, _) = call(|r| handle(&app, r), request).await;
                        assert!((200..300).contains(&status), "the other request: {body}");
                    }
                })
            })
        };
        Self {
            is_the_moment,
            requests: Mutex::new(Some(Box::new(run))),
        }
    }
}

impl fmt::Debug for JustBefore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JustBefore")
    }
}

impl Intercept for JustBefore {
    fn name(&self) -> &'static str {
        "JustBefore"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if (self.is_the_moment)(context) {
            let requests = self.requests.lock().unwrap().take();
            if let Some(requests) = requests {
                requests();
            }
        }
        Ok(())
    }
}
