//! The SQS consumer harness against moto: real messages from the bus, dedup in the
//! same transaction as the effect, one failure per bad message, and a handler's business
//! facts counted once they are committed, never for a duplicate or a failed commit.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use serde_json::{Value, json};
use shop_events::catalog::ProductDeleted;
use shop_events::{Envelope, new_ulid};
use shop_platform::consumer::{ConsumeError, EventHandler, IncomingEvent, Outcome, SqsConsumer};
use shop_platform::metrics::Count;
use shop_platform::relay::{EventBridgePublisher, Relay, RetryPolicy};
use shop_platform::transaction::Transaction;
use shop_testing::metrics::{Counts, expected};
use shop_testing::{bus_with_queue, create_table, sdk_config, stream_batch, unique};

/// Counts the ProductDeleted events it sees, per product, in the table and as a metric;
/// and how often it was called, to prove which messages never reached it.
#[derive(Default)]
struct CountDeletions {
    calls: AtomicUsize,
    /// Its deletion takes this long (a provider that is slow to answer, say).
    slow: Option<(String, Duration)>,
    /// It loses this many races before it wins one.
    conflicts_left: AtomicU32,
}

impl CountDeletions {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl EventHandler for CountDeletions {
    async fn handle(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let deleted: ProductDeleted = event.data()?;
        if let Some((product, pause)) = &self.slow
            && *product == deleted.product_id
        {
            tokio::time::sleep(*pause).await;
        }
        if self
            .conflicts_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(ConsumeError::Conflict);
        }
        let update = Update::builder()
            .table_name(transaction.table())
            .key(
                "pk",
                AttributeValue::S(format!("COUNT#{}", deleted.product_id)),
            )
            .key("sk", AttributeValue::S("COUNT".into()))
            .update_expression("ADD seen :one")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .build()
            .unwrap();
        transaction.write(TransactWriteItem::builder().update(update).build());
        transaction.count(Count::of("ProductsDeleted"));
        Ok(())
    }
}

async fn seen(client: &aws_sdk_dynamodb::Client, table: &str, product: &str) -> u32 {
    let item = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("COUNT#{product}")))
        .key("sk", AttributeValue::S("COUNT".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    item.and_then(|item| {
        item.get("seen")
            .and_then(|n| n.as_n().ok())
            .and_then(|n| n.parse().ok())
    })
    .unwrap_or(0)
}

fn deletion(product: &str) -> Envelope<ProductDeleted> {
    Envelope::new(
        ProductDeleted {
            product_id: product.to_owned(),
            version: 2,
        },
        "corr",
    )
}

fn message(id: &str, body: String) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.into());
    message.body = Some(body);
    message
}

/// Sends events through the real path (outbox → stream → relay → bus → queue) and
/// returns the raw SQS bodies, as the consumer Lambda would get them.
async fn bodies_from_the_bus(
    config: &aws_config::SdkConfig,
    events: &[Envelope<ProductDeleted>],
) -> Vec<String> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let source_table = unique("source");
    create_table(&dynamodb, &source_table, &[], true).await;
    let (bus, queue) = bus_with_queue(config).await;
    for event in events {
        let mut transaction = Transaction::new(&source_table);
        transaction.publish(event).unwrap();
        transaction.commit(&dynamodb).await.unwrap();
    }
    let relay = Relay::new(
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(config), &bus),
        RetryPolicy::default(),
    );
    let batch = serde_json::from_value(stream_batch(config, &source_table).await).unwrap();
    assert!(relay.handle(batch).await.batch_item_failures.is_empty());
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut bodies = Vec::new();
    while bodies.len() < events.len() {
        let received = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        bodies.extend(
            received
                .messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.body),
        );
    }
    bodies
}

#[tokio::test]
async fn a_redelivered_event_is_applied_once() {
    let config = sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("consumer");
    create_table(&dynamodb, &table, &[], false).await;
    let counts = Counts::new();
    let consumer = SqsConsumer::new(
        dynamodb.clone(),
        &table,
        "counter",
        CountDeletions::default(),
    )
    .with_metrics(counts.metrics());

    let product = new_ulid();
    let event = deletion(&product);
    let body = bodies_from_the_bus(&config, std::slice::from_ref(&event))
        .await
        .remove(0);

    assert_eq!(
        consumer.handle_message(&message("m1", body.clone())).await,
        Outcome::Applied
    );
    // SQS redelivers (same message) and EventBridge republishes (new message id): both no-ops.
    assert_eq!(
        consumer.handle_message(&message("m1", body.clone())).await,
        Outcome::Duplicate
    );
    assert_eq!(
        consumer.handle_message(&message("m2", body)).await,
        Outcome::Duplicate
    );
    assert_eq!(seen(&dynamodb, &table, &product).await, 1);
    assert_eq!(counts.snapshot(), expected([("ProductsDeleted", 1)]));
}

#[tokio::test]
async fn one_bad_message_fails_alone_and_changes_nothing() {
    let config = sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("consumer");
    create_table(&dynamodb, &table, &[], false).await;
    let consumer = SqsConsumer::new(
        dynamodb.clone(),
        &table,
        "counter",
        CountDeletions::default(),
    );

    let (a, b) = (new_ulid(), new_ulid());
    let events = vec![deletion(&a), deletion(&b)];
    let bodies = bodies_from_the_bus(&config, &events).await;
    // Each bad copy carries an event id of its own: the messages of a batch are handled
    // at once, so a copy sharing good-1's id could find good-1's marker first and be
    // skipped as the duplicate it then is, whatever else is wrong with it.
    let bad_copy = || {
        let mut copy: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
        copy["detail"]["metadata"]["eventId"] = serde_json::json!(new_ulid());
        copy
    };
    let mut wrong_schema = bad_copy();
    wrong_schema["detail"]["data"]["version"] = serde_json::json!("not a number");
    let mut forged_source = bad_copy();
    forged_source["source"] = serde_json::json!("shop.payment");
    let mut unexpected_type = bad_copy();
    unexpected_type["detail-type"] = serde_json::json!("SomethingElse");

    let mut batch = SqsEvent::default();
    batch.records = vec![
        message("good-1", bodies[0].clone()),
        message("garbage", "}{ not an event".into()),
        message("wrong-schema", wrong_schema.to_string()),
        message("unexpected-type", unexpected_type.to_string()),
        message("forged-source", forged_source.to_string()),
        message("good-2", bodies[1].clone()),
    ];
    let response = consumer.handle_batch(batch).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        vec![
            "garbage",
            "wrong-schema",
            "unexpected-type",
            "forged-source"
        ]
    );
    assert_eq!(seen(&dynamodb, &table, &a).await, 1);
    assert_eq!(seen(&dynamodb, &table, &b).await, 1);
}

#[tokio::test]
async fn a_failed_commit_records_no_marker_so_the_retry_applies_it() {
    let config = sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("consumer");
    // The table does not exist yet: the commit fails as a transient error.
    let counts = Counts::new();
    let consumer = SqsConsumer::new(
        dynamodb.clone(),
        &table,
        "counter",
        CountDeletions::default(),
    )
    .with_metrics(counts.metrics());
    let product = new_ulid();
    let event = deletion(&product);
    let body = bodies_from_the_bus(&config, std::slice::from_ref(&event))
        .await
        .remove(0);
    assert!(matches!(
        consumer.handle_message(&message("m", body.clone())).await,
        Outcome::Failed(_)
    ));
    assert_eq!(
        counts.snapshot(),
        expected([]),
        "nothing committed, nothing counted"
    );

    create_table(&dynamodb, &table, &[], false).await;
    assert_eq!(
        consumer.handle_message(&message("m", body)).await,
        Outcome::Applied
    );
    assert_eq!(seen(&dynamodb, &table, &product).await, 1);
    assert_eq!(counts.snapshot(), expected([("ProductsDeleted", 1)]));
}

/// A consumer of its own table and the bus bodies of deletions of `products`.
async fn consumer_and_bodies(
    handler: CountDeletions,
    products: &[&str],
) -> (
    SqsConsumer<CountDeletions>,
    aws_sdk_dynamodb::Client,
    String,
    Vec<String>,
) {
    let config = sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("consumer");
    create_table(&dynamodb, &table, &[], false).await;
    let consumer = SqsConsumer::new(dynamodb.clone(), &table, "counter", handler);
    let events: Vec<_> = products.iter().map(|p| deletion(p)).collect();
    let bodies = bodies_from_the_bus(&config, &events).await;
    (consumer, dynamodb, table, bodies)
}

fn edited(body: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut event: Value = serde_json::from_str(body).unwrap();
    change(&mut event);
    event.to_string()
}

#[tokio::test]
async fn events_without_a_trustworthy_id_are_refused_before_their_handler_runs() {
    let (a, b) = (new_ulid(), new_ulid());
    let (consumer, dynamodb, table, bodies) =
        consumer_and_bodies(CountDeletions::default(), &[&a, &b]).await;
    // Two different events that would share one marker if an empty id were trusted.
    for (n, body) in bodies.iter().enumerate() {
        for id in [json!(""), json!("not-a-ulid"), json!(null)] {
            let body = edited(body, |event| event["detail"]["metadata"]["eventId"] = id);
            let outcome = consumer
                .handle_message(&message(&format!("m{n}"), body))
                .await;
            assert!(
                matches!(&outcome, Outcome::Failed(why) if why.contains("eventId") || why.contains("not a shop event")),
                "{outcome:?}"
            );
        }
    }
    assert_eq!(consumer.handler().calls(), 0, "no handler saw them");
    assert_eq!(seen(&dynamodb, &table, &a).await, 0);
    assert_eq!(seen(&dynamodb, &table, &b).await, 0);
}

#[tokio::test]
async fn a_schema_version_this_consumer_does_not_read_is_refused_not_guessed_at() {
    let product = new_ulid();
    let (consumer, dynamodb, table, bodies) =
        consumer_and_bodies(CountDeletions::default(), &[&product]).await;
    for version in [json!(99), json!(2), json!("2"), json!(0)] {
        let body = edited(&bodies[0], |event| {
            event["detail"]["metadata"]["schemaVersion"] = version.clone()
        });
        let outcome = consumer.handle_message(&message("m", body)).await;
        assert!(
            matches!(outcome, Outcome::Failed(_)),
            "{version}: {outcome:?}"
        );
    }
    assert_eq!(seen(&dynamodb, &table, &product).await, 0);
    assert_eq!(
        consumer
            .handle_message(&message("m", bodies[0].clone()))
            .await,
        Outcome::Applied,
        "version 1 is read"
    );
}

#[tokio::test]
async fn data_outside_the_contracts_bounds_changes_nothing() {
    let product = new_ulid();
    let (consumer, dynamodb, table, bodies) =
        consumer_and_bodies(CountDeletions::default(), &[&product]).await;
    for (field, value) in [
        ("productId", json!("p".repeat(200 * 1024))),
        ("productId", json!("")),
        ("version", json!(0)),
    ] {
        let body = edited(&bodies[0], |event| event["detail"]["data"][field] = value);
        let outcome = consumer.handle_message(&message("m", body)).await;
        assert!(
            matches!(&outcome, Outcome::Failed(why) if why.contains("breaks its contract")),
            "{field}: {outcome:?}"
        );
    }
    assert_eq!(seen(&dynamodb, &table, &product).await, 0);
}

#[tokio::test]
async fn a_replay_is_recognised_before_its_handler_runs() {
    let product = new_ulid();
    let (consumer, _, _, bodies) =
        consumer_and_bodies(CountDeletions::default(), &[&product]).await;
    let body = bodies[0].clone();
    assert_eq!(
        consumer.handle_message(&message("m1", body.clone())).await,
        Outcome::Applied
    );
    for id in ["m1", "m2", "m3"] {
        assert_eq!(
            consumer.handle_message(&message(id, body.clone())).await,
            Outcome::Duplicate
        );
    }
    assert_eq!(consumer.handler().calls(), 1);
}

#[tokio::test]
async fn losing_race_after_race_is_retried_until_the_write_goes_through() {
    let product = new_ulid();
    let handler = CountDeletions {
        conflicts_left: AtomicU32::new(12),
        ..CountDeletions::default()
    };
    let (consumer, dynamodb, table, bodies) = consumer_and_bodies(handler, &[&product]).await;
    assert_eq!(
        consumer
            .handle_message(&message("m", bodies[0].clone()))
            .await,
        Outcome::Applied
    );
    assert_eq!(consumer.handler().calls(), 13);
    assert_eq!(seen(&dynamodb, &table, &product).await, 1);
}

#[tokio::test]
async fn a_message_still_running_near_the_deadline_is_reported_and_the_rest_applied() {
    let (slow, quick) = (new_ulid(), new_ulid());
    let handler = CountDeletions {
        slow: Some((slow.clone(), Duration::from_secs(60))),
        ..CountDeletions::default()
    };
    let (consumer, dynamodb, table, bodies) = consumer_and_bodies(handler, &[&slow, &quick]).await;
    let mut batch = SqsEvent::default();
    let slow_body = bodies.iter().find(|b| b.contains(&slow)).unwrap().clone();
    let quick_body = bodies.iter().find(|b| b.contains(&quick)).unwrap().clone();
    batch.records = vec![message("slow", slow_body), message("quick", quick_body)];
    let started = Instant::now();
    let response = consumer
        .handle_batch_until(batch, Instant::now() + Duration::from_secs(3))
        .await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["slow"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered before the deadline, not after the slow message"
    );
    assert_eq!(seen(&dynamodb, &table, &quick).await, 1);
    assert_eq!(seen(&dynamodb, &table, &slow).await, 0);
}
