//! The SQS consumer harness against moto: real messages from the bus, dedup in the
//! same transaction as the effect, one failure per bad message, and a handler's business
//! facts counted once they are committed, never for a duplicate or a failed commit.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use shop_events::Envelope;
use shop_events::catalog::ProductDeleted;
use shop_platform::consumer::{ConsumeError, EventHandler, IncomingEvent, Outcome, SqsConsumer};
use shop_platform::metrics::Count;
use shop_platform::relay::{EventBridgePublisher, Relay, RetryPolicy};
use shop_platform::transaction::Transaction;
use shop_testing::metrics::{Counts, expected};
use shop_testing::{bus_with_queue, create_table, sdk_config, stream_batch, unique};

/// Counts the ProductDeleted events it sees, per product, in the table and as a metric.
struct CountDeletions;

impl EventHandler for CountDeletions {
    async fn handle(
        &self,
        event: &IncomingEvent,
        transaction: &mut Transaction,
    ) -> Result<(), ConsumeError> {
        let deleted: ProductDeleted = event.data()?;
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
    let consumer = SqsConsumer::new(dynamodb.clone(), &table, "counter", CountDeletions)
        .with_metrics(counts.metrics());

    let event = Envelope::new(
        ProductDeleted {
            product_id: "p1".into(),
            version: 2,
        },
        "corr-dup",
    );
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
    assert_eq!(seen(&dynamodb, &table, "p1").await, 1);
    assert_eq!(counts.snapshot(), expected([("ProductsDeleted", 1)]));
}

#[tokio::test]
async fn one_bad_message_fails_alone_and_changes_nothing() {
    let config = sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("consumer");
    create_table(&dynamodb, &table, &[], false).await;
    let consumer = SqsConsumer::new(dynamodb.clone(), &table, "counter", CountDeletions);

    let events: Vec<_> = ["a", "b"]
        .iter()
        .map(|p| {
            Envelope::new(
                ProductDeleted {
                    product_id: (*p).into(),
                    version: 1,
                },
                "corr",
            )
        })
        .collect();
    let bodies = bodies_from_the_bus(&config, &events).await;
    let mut wrong_schema: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    wrong_schema["detail"]["data"]["version"] = serde_json::json!("not a number");
    let mut forged_source: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    forged_source["source"] = serde_json::json!("shop.payment");
    let mut unexpected_type: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
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
    assert_eq!(seen(&dynamodb, &table, "a").await, 1);
    assert_eq!(seen(&dynamodb, &table, "b").await, 1);
}

#[tokio::test]
async fn a_failed_commit_records_no_marker_so_the_retry_applies_it() {
    let config = sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("consumer");
    // The table does not exist yet: the commit fails as a transient error.
    let counts = Counts::new();
    let consumer = SqsConsumer::new(dynamodb.clone(), &table, "counter", CountDeletions)
        .with_metrics(counts.metrics());
    let event = Envelope::new(
        ProductDeleted {
            product_id: "p9".into(),
            version: 1,
        },
        "corr",
    );
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
    assert_eq!(seen(&dynamodb, &table, "p9").await, 1);
    assert_eq!(counts.snapshot(), expected([("ProductsDeleted", 1)]));
}
