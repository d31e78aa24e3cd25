//! What ordering's tests share: a table of their own in the binary's moto, the two
//! handlers over it counting into a recorder of their own, the sample events of
//! `events/ordering/`, and ways to look at what was written (orders, outbox events, item
//! counts) and counted.

use chrono::{DateTime, Utc};
use ordering::api::{App, handle};
use ordering::consumer::{CONSUMER_NAME, Handler};
use ordering::domain::Order;
use ordering::store::OrderStore;
use serde_json::{Value, json};
use shop_events::Envelope;
use shop_events::basket::CheckoutRequested;
use shop_platform::consumer::{Outcome, SqsConsumer};
use shop_platform::transaction::Transaction;
use shop_testing::api::{Answer, call};
use shop_testing::metrics::Counts;
use shop_testing::{Table, sqs};

/// The order, shopper and correlation id the sample events are about.
pub const ORDER_ID: &str = "01JDMB4W7K2Q9F3R5T8V1X6Z0N";
pub const SHOPPER: &str = "8d2e4f61-7a3b-4c5d-9e0f-1a2b3c4d5e6f";
pub const CHECKOUT_CORRELATION_ID: &str = "dK9pQjR2oAMEXyA=";
pub const PAYMENT_TOKEN: &str = "tok_visa_4242";
pub const ADMIN: &str = "3f9c2a71-5b4e-4d8a-9c61-2e7f0b8d4a15";
pub const STRANGER: &str = "c0ffee00-1111-4222-8333-444455556666";

/// The events of one order, in the order its life raises them.
const LIFE: [&str; 7] = [
    "OrderSubmitted",
    "OrderStockConfirmed",
    "OrderPaid",
    "OrderCancellationRequested",
    "OrderShipped",
    "OrderDelivered",
    "OrderCancelled",
];

pub struct Ordering {
    pub table: Table,
    pub store: OrderStore,
    pub app: App,
    pub consumer: SqsConsumer<Handler>,
    /// What the API and the consumer counted.
    pub counts: Counts,
}

impl Ordering {
    pub async fn new() -> Self {
        let table = Table::new("orders", &["gsi1"]).await;
        let store = OrderStore::new(table.dynamodb.clone(), &table.name);
        let counts = Counts::new();
        Self {
            app: App {
                cursors: shop_platform::pagination::CursorKey::new(b"test cursors"),
                store: store.clone(),
                metrics: counts.metrics(),
            },
            consumer: table
                .consumer(
                    CONSUMER_NAME,
                    Handler {
                        store: store.clone(),
                    },
                )
                .with_metrics(counts.metrics()),
            counts,
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

    /// One API Gateway request through the API Lambda's handler.
    pub async fn call(&self, event: Value) -> Answer {
        call(|request| handle(&self.app, request), event).await
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
        let mut transaction = Transaction::new(&self.table.name);
        self.store
            .stage_create(&mut transaction, order, &announced)
            .unwrap();
        transaction.commit(&self.table.dynamodb).await.unwrap();
    }

    /// The events in the outbox as `{"detail-type", "source", "detail"}`.
    pub async fn outbox(&self) -> Vec<Value> {
        let mut events = self.table.outbox().await;
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
}

pub fn fixture(name: &str) -> Value {
    shop_testing::fixture("ordering", name)
}

/// A sample consumer event about another order.
pub fn for_order(batch: Value, order_id: &str) -> Value {
    sqs::with_envelope(batch, |event| {
        event["detail"]["data"]["orderId"] = json!(order_id)
    })
}

/// The sample checkout, for `order_id` of `user_id`.
pub fn checkout(order_id: &str, user_id: &str) -> CheckoutRequested {
    let mut data =
        sqs::envelope(&fixture("consumer-checkout-requested.json"))["detail"]["data"].clone();
    data["orderId"] = json!(order_id);
    data["userId"] = json!(user_id);
    serde_json::from_value(data).unwrap()
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

/// A sample API request about another order.
pub fn on_order(event: Value, order_id: &str) -> Value {
    shop_testing::api::for_path_param(event, "orderId", order_id)
}
