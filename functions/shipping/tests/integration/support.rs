//! What shipping's tests share: a table of their own in the binary's moto, the two
//! handlers over it, the sample events of `events/shipping/` and variations of them, and
//! ways to look at what was written (shipments, outbox events).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shipping::api::{App, handle};
use shipping::consumer::{CONSUMER_NAME, Handler};
use shipping::domain::{Shipment, ShipmentStatus};
use shipping::store::ShipmentStore;
use shop_events::ordering::OrderPaid;
use shop_platform::consumer::{Outcome, SqsConsumer};
use shop_testing::api::{Answer, call, for_path_param, with_claims};
use shop_testing::{Table, sqs};

/// The order and the shopper the sample events are about.
pub const ORDER_ID: &str = "01JDMB4W7K2Q9F3R5T8V1X6Z0N";
pub const SHOPPER: &str = "8d2e4f61-7a3b-4c5d-9e0f-1a2b3c4d5e6f";

pub struct Shipping {
    pub table: Table,
    pub store: ShipmentStore,
    pub app: App,
    pub consumer: SqsConsumer<Handler>,
}

impl Shipping {
    pub async fn new() -> Self {
        let table = Table::new("shipping", &["gsi1"]).await;
        let store = ShipmentStore::new(table.dynamodb.clone(), &table.name);
        Self {
            app: App {
                cursors: shop_platform::pagination::CursorKey::new(b"test cursors"),
                store: store.clone(),
            },
            consumer: table.consumer(
                CONSUMER_NAME,
                Handler {
                    store: store.clone(),
                },
            ),
            table,
            store,
        }
    }

    /// One SQS batch through the consumer Lambda's handler; the ids of the failed messages.
    pub async fn deliver(&self, batch: Value) -> Vec<String> {
        sqs::deliver_batch(&self.consumer, batch).await
    }

    /// The first message of a batch, alone, with what the harness made of it.
    pub async fn deliver_one(&self, batch: &Value) -> Outcome {
        sqs::deliver(&self.consumer, batch).await
    }

    /// Delivers and expects the event to be applied (not a duplicate, not a failure).
    pub async fn apply(&self, batch: &Value) {
        assert_eq!(self.deliver_one(batch).await, Outcome::Applied);
    }

    /// One API Gateway request through the API Lambda's handler.
    pub async fn call(&self, event: Value) -> Answer {
        call(|request| handle(&self.app, request), event).await
    }

    pub async fn shipment(&self, order_id: &str) -> Option<Shipment> {
        self.store.get(order_id).await.expect("the table answers")
    }

    pub async fn status(&self, order_id: &str) -> Option<ShipmentStatus> {
        self.shipment(order_id).await.map(|s| s.status)
    }

    /// Writes `shipment` as it is, whatever its status, as if it had got there on its own.
    pub async fn seed(&self, shipment: &Shipment) {
        let mut transaction = self.store.table().transaction();
        self.store.stage_create(&mut transaction, shipment).unwrap();
        transaction.commit(&self.table.dynamodb).await.unwrap();
    }

    /// The detail-types in the outbox, in the order of a shipment's life.
    pub async fn raised(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .table
            .outbox()
            .await
            .iter()
            .map(|e| e["detail-type"].as_str().unwrap().to_owned())
            .collect();
        kinds.sort_by_key(|kind| kind != "ShipmentDispatched");
        kinds
    }

    /// The outbox events of one type.
    pub async fn outbox_of(&self, detail_type: &str) -> Vec<Value> {
        self.table
            .outbox()
            .await
            .into_iter()
            .filter(|event| event["detail-type"] == detail_type)
            .collect()
    }
}

pub fn fixture(name: &str) -> Value {
    shop_testing::fixture("shipping", name)
}

pub fn order_paid() -> Value {
    fixture("consumer-order-paid.json")
}

pub fn order_cancelled() -> Value {
    fixture("consumer-order-cancelled.json")
}

/// A sample consumer event about another order, published anew (a new event id).
pub fn for_order(batch: Value, order_id: &str) -> Value {
    sqs::republished(&sqs::with_envelope(batch, |event| {
        event["detail"]["data"]["orderId"] = json!(order_id)
    }))
}

/// The sample OrderPaid's data, for `order_id`.
pub fn paid(order_id: &str) -> OrderPaid {
    let mut data = sqs::envelope(&order_paid())["detail"]["data"].clone();
    data["orderId"] = json!(order_id);
    serde_json::from_value(data).unwrap()
}

/// A shipment of the sample order's lines for `order_id`, prepared at `seconds`.
pub fn prepared(order_id: &str, seconds: i64) -> Shipment {
    Shipment::prepare(paid(order_id), at(seconds)).unwrap()
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

/// A sample API request about another order.
pub fn on_order(event: Value, order_id: &str) -> Value {
    for_path_param(event, "orderId", order_id)
}

/// The same request from a signed-in customer, who is no admin.
pub fn as_customer(event: Value) -> Value {
    with_claims(event, json!({"sub": SHOPPER, "token_use": "access"}))
}

/// A fresh order id, as basket mints them.
pub fn new_order_id() -> String {
    shop_events::new_ulid()
}

pub fn cancellation_requested() -> Value {
    fixture("consumer-order-cancellation-requested.json")
}
