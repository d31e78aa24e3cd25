//! What the inventory's test modules share: one inventory (table, API, consumer) against
//! moto, the sample events of `events/inventory/` and variations of them, and the checks
//! every test ends with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use inventory::api::{App, handle};
use inventory::consumer::Handler;
use inventory::domain::{Reservation, ReservationStatus, Stock};
use inventory::store::InventoryStore;
use serde_json::{Value, json};
use shop_events::new_event_id;
use shop_platform::consumer::{Outcome, SqsConsumer};
use shop_testing::api::{Answer, call, for_path_param, with_body};
use shop_testing::metrics::Counts;
use shop_testing::{Table, sqs};
use tokio::task::JoinSet;

pub fn fixture(name: &str) -> Value {
    shop_testing::fixture("inventory", name)
}

/// A fresh id in the catalog's and ordering's format.
pub fn new_id() -> String {
    new_event_id()
}

pub struct Inventory {
    pub table: Table,
    pub store: InventoryStore,
    pub app: App,
    pub consumer: SqsConsumer<Handler>,
    /// What the consumer counted.
    pub counts: Counts,
    /// Per product, the total the last admin PUT left: nothing else may change it.
    totals: Mutex<HashMap<String, u64>>,
}

impl Inventory {
    pub async fn new() -> Self {
        let table = Table::new("inventory", &[]).await;
        let store = InventoryStore::new(table.dynamodb.clone(), &table.name);
        let counts = Counts::new();
        Self {
            app: App {
                store: store.clone(),
            },
            consumer: table
                .consumer(
                    "inventory",
                    Handler {
                        store: store.clone(),
                    },
                )
                .with_metrics(counts.metrics()),
            counts,
            table,
            store,
            totals: Mutex::default(),
        }
    }

    /// Calls the API function with an API Gateway event. Stock levels it answers are the
    /// totals [`Self::assert_conserved`] holds the consumer to.
    pub async fn call(&self, event: Value) -> Answer {
        let answer = call(|request| handle(&self.app, request), event).await;
        let (status, body, _) = &answer;
        if *status == 200 && body.get("shipped").is_some() {
            self.remember_total(body);
        }
        answer
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

    /// Delivers the first message of an SQS batch to the consumer.
    pub async fn deliver(&self, batch: &Value) -> Outcome {
        sqs::deliver(&self.consumer, batch).await
    }

    /// Delivers and expects the event to be applied (not a duplicate, not a failure).
    pub async fn apply(&self, batch: &Value) {
        assert_eq!(self.deliver(batch).await, Outcome::Applied);
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
        (stock.available(), stock.reserved(), stock.shipped())
    }

    pub async fn reservation(&self, order_id: &str) -> Option<Reservation> {
        self.store.reservation(order_id).await.unwrap()
    }

    pub async fn status(&self, order_id: &str) -> Option<ReservationStatus> {
        self.reservation(order_id).await.map(|r| r.status)
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

    /// DESIGN §3's invariant: every product's `available + reserved + shipped`, summed
    /// over every stock item of the table (every shard), is what the last admin PUT made
    /// it (0 if none), whatever the consumer did since.
    pub async fn assert_conserved(&self) {
        let totals = self.totals.lock().unwrap().clone();
        let mut counted: HashMap<String, u64> = HashMap::new();
        for item in self.table.items("STOCK#").await {
            let item: Value = serde_dynamo::from_item(item).unwrap();
            let units: u64 = ["available", "reserved", "shipped"]
                .iter()
                .map(|counter| item[counter].as_u64().unwrap())
                .sum();
            *counted
                .entry(item["productId"].as_str().unwrap().to_owned())
                .or_default() += units;
        }
        for (product_id, units) in counted {
            let expected = totals.get(&product_id).copied().unwrap_or(0);
            assert_eq!(
                units, expected,
                "{product_id}: available + reserved + shipped changed without an admin"
            );
        }
    }
}

pub fn for_product(event: Value, id: &str) -> Value {
    for_path_param(event, "productId", id)
}

/// A sample consumer event, as its queue delivers it: a batch of one message.
pub fn sample_message(name: &str) -> Value {
    let batch = fixture(name);
    assert_eq!(batch["Records"].as_array().unwrap().len(), 1, "{name}");
    batch
}

/// A sample consumer event with other data, published anew: another event of the same
/// type, as the bus would deliver it.
pub fn message(name: &str, data: Value) -> Value {
    let batch = sqs::with_envelope(sample_message(name), |event| event["detail"]["data"] = data);
    sqs::republished(&batch)
}

pub fn product_created(product_id: &str) -> Value {
    let mut data =
        sqs::envelope(&sample_message("consumer-product-created.json"))["detail"]["data"].clone();
    data["productId"] = json!(product_id);
    message("consumer-product-created.json", data)
}

pub fn product_deleted(product_id: &str) -> Value {
    message(
        "consumer-product-deleted.json",
        json!({"productId": product_id, "version": 2}),
    )
}

pub fn order_submitted(order_id: &str, lines: &[(&str, u32)]) -> Value {
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

pub fn order_cancelled(order_id: &str) -> Value {
    message(
        "consumer-order-cancelled.json",
        json!({"orderId": order_id, "userId": "user-1", "reason": "customer_request"}),
    )
}

pub fn shipment_dispatched(order_id: &str, lines: &[(&str, u32)]) -> Value {
    let lines: Vec<Value> = lines
        .iter()
        .map(|(product_id, quantity)| json!({"productId": product_id, "quantity": quantity}))
        .collect();
    message(
        "consumer-shipment-dispatched.json",
        json!({"orderId": order_id, "lines": lines}),
    )
}

/// One OrderSubmitted of one unit of `product` per order, each delivered as its own batch
/// and all at once, as concurrent pollers would: join the set for their outcomes.
pub fn submit_all_at_once(
    inventory: &Arc<Inventory>,
    orders: &[String],
    product: &str,
) -> JoinSet<Outcome> {
    let mut deliveries = JoinSet::new();
    for order in orders {
        let inventory = Arc::clone(inventory);
        let message = order_submitted(order, &[(product, 1)]);
        deliveries.spawn(async move { inventory.deliver(&message).await });
    }
    deliveries
}
