//! The outbox relay against moto: DynamoDB stream records in, EventBridge → SQS out.

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use shop_events::Envelope;
use shop_events::catalog::ProductDeleted;
use shop_platform::relay::{EventBridgePublisher, Relay, RetryPolicy};
use shop_platform::transaction::Transaction;
use shop_testing::{bus_with_queue, create_table, drain_queue, sdk_config, stream_batch, unique};

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        first_backoff: std::time::Duration::from_millis(1),
    }
}

fn state_item(table: &str, id: &str) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table)
        .item("pk", AttributeValue::S(format!("THING#{id}")))
        .item("sk", AttributeValue::S("THING".into()))
        .build()
        .unwrap();
    TransactWriteItem::builder().put(put).build()
}

async fn stream_event(config: &aws_config::SdkConfig, table: &str) -> StreamEvent {
    serde_json::from_value(stream_batch(config, table).await).unwrap()
}

#[tokio::test]
async fn outbox_inserts_reach_the_bus_in_the_design_envelope_and_state_records_are_skipped() {
    let config = sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("relay");
    create_table(&dynamodb, &table, &[], true).await;
    let (bus, queue) = bus_with_queue(&config).await;

    let mut transaction = Transaction::new(&table);
    transaction.write(state_item(&table, "1"));
    let first = Envelope::new(
        ProductDeleted {
            product_id: "p1".into(),
            version: 2,
        },
        "corr-relay",
    );
    let second = Envelope::new(
        ProductDeleted {
            product_id: "p2".into(),
            version: 5,
        },
        "corr-relay",
    );
    transaction.publish(&first).unwrap();
    transaction.publish(&second).unwrap();
    transaction.commit(&dynamodb).await.unwrap();

    let batch = stream_event(&config, &table).await;
    assert_eq!(
        batch.records.len(),
        3,
        "the state item and two outbox items"
    );
    let relay = Relay::new(
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &bus),
        quick_retries(),
    );
    let response = relay.handle(batch).await;
    assert!(response.batch_item_failures.is_empty());

    let mut delivered = drain_queue(&config, &queue).await;
    delivered.sort_by_key(|message| {
        message["detail"]["data"]["productId"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    assert_eq!(delivered.len(), 2);
    for (message, sent) in delivered.iter().zip([&first, &second]) {
        assert_eq!(message["source"], "shop.catalog");
        assert_eq!(message["detail-type"], "ProductDeleted");
        assert_eq!(
            message["detail"],
            serde_json::to_value(sent).unwrap(),
            "the detail is our envelope, byte for byte"
        );
    }
}

#[tokio::test]
async fn a_rejected_entry_fails_only_its_own_record_across_chunks() {
    let config = sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("relay");
    create_table(&dynamodb, &table, &[], true).await;
    let (bus, queue) = bus_with_queue(&config).await;

    // Twelve events span two PutEvents calls; the seventh has a detail the bus rejects
    // (MalformedDetail) on every attempt.
    let mut poisoned_event_id = String::new();
    for n in 0..12 {
        let event = Envelope::new(
            ProductDeleted {
                product_id: format!("p{n}"),
                version: 1,
            },
            "corr",
        );
        let mut transaction = Transaction::new(&table);
        transaction.publish(&event).unwrap();
        if n == 6 {
            poisoned_event_id = event.metadata.event_id.clone();
            let mut outbox = transaction.events()[0].clone();
            outbox.detail = "{not json".into();
            dynamodb
                .put_item()
                .table_name(&table)
                .set_item(Some(outbox.item()))
                .send()
                .await
                .unwrap();
        } else {
            transaction.commit(&dynamodb).await.unwrap();
        }
    }

    let batch = stream_event(&config, &table).await;
    let poisoned_sequence = batch
        .records
        .iter()
        .find(|r| matches!(r.change.new_image.get("eventId"), Some(serde_dynamo::AttributeValue::S(id)) if *id == poisoned_event_id))
        .and_then(|r| r.change.sequence_number.clone())
        .unwrap();
    let relay = Relay::new(
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &bus),
        quick_retries(),
    );
    let response = relay.handle(batch).await;

    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap())
        .collect();
    assert_eq!(failed, vec![poisoned_sequence]);
    assert_eq!(drain_queue(&config, &queue).await.len(), 11);
}

#[tokio::test]
async fn events_written_while_the_bus_is_unreachable_go_out_when_lambda_retries() {
    // The state change and its event commit, then publishing fails (as if the relay
    // crashed or the bus were down): every outbox record is handed back to Lambda, and
    // the retry of the same records delivers the event. Nothing is lost in between.
    let config = sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let table = unique("relay");
    create_table(&dynamodb, &table, &[], true).await;

    let event = Envelope::new(
        ProductDeleted {
            product_id: "p-crash".into(),
            version: 3,
        },
        "corr-crash",
    );
    let mut transaction = Transaction::new(&table);
    transaction.write(state_item(&table, "crash"));
    transaction.publish(&event).unwrap();
    transaction.commit(&dynamodb).await.unwrap();

    let missing_bus = unique("missing-bus");
    let down = Relay::new(
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &missing_bus),
        quick_retries(),
    );
    let response = down.handle(stream_event(&config, &table).await).await;
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "only the outbox record, not the state record"
    );

    let (bus, queue) = bus_with_queue(&config).await;
    let up = Relay::new(
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &bus),
        quick_retries(),
    );
    let response = up.handle(stream_event(&config, &table).await).await;
    assert!(response.batch_item_failures.is_empty());
    let delivered = drain_queue(&config, &queue).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0]["detail"]["metadata"]["eventId"],
        event.metadata.event_id.as_str()
    );
}

#[tokio::test]
async fn an_unreadable_outbox_record_is_reported_not_dropped() {
    let config = sdk_config().await;
    let (bus, _queue) = bus_with_queue(&config).await;
    let relay = Relay::new(
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &bus),
        quick_retries(),
    );
    let batch: StreamEvent = serde_json::from_value(serde_json::json!({"Records": [{
        "eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {"ApproximateCreationDateTime": 0, "Keys": {}, "SequenceNumber": "100", "SizeBytes": 1,
            "StreamViewType": "NEW_IMAGE", "NewImage": {"pk": {"S": "OUTBOX#broken"}, "sk": {"S": "EVENT"}}}
    }]}))
    .unwrap();
    let response = relay.handle(batch).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec![Some("100".to_owned())]);
}
