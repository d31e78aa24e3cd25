//! The outbox relay against moto: DynamoDB stream records in, EventBridge → SQS out.

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use shop_events::Envelope;
use shop_events::Money;
use shop_events::catalog::ProductDeleted;
use shop_events::ordering::OrderStockConfirmed;
use shop_platform::relay::{
    EventBridgePublisher, Relay, RelayOptions, RetryPolicy, parked, replay_parked,
};
use shop_platform::transaction::Transaction;
use shop_testing::metrics::{Counts, expected};
use shop_testing::{bus_with_queue, create_table, drain_queue, sdk_config, stream_batch, unique};

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        first_backoff: std::time::Duration::from_millis(1),
    }
}

/// A table with its stream, as every capability's outbox has.
struct Outbox {
    config: aws_config::SdkConfig,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

impl Outbox {
    async fn new() -> Self {
        let config = sdk_config().await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let table = unique("relay");
        create_table(&dynamodb, &table, &[], true).await;
        Self {
            config,
            dynamodb,
            table,
        }
    }
}

/// The relay as `run` builds it, publishing to `bus`.
fn relay_to(
    config: &aws_config::SdkConfig,
    dynamodb: &aws_sdk_dynamodb::Client,
    bus: &str,
) -> Relay<EventBridgePublisher> {
    Relay::new(
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(config), bus),
        quick_retries(),
    )
    .with_tables(dynamodb.clone())
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
    let Outbox {
        config,
        dynamodb,
        table,
    } = Outbox::new().await;
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
    let relay = relay_to(&config, &dynamodb, &bus);
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
async fn a_published_event_carrying_a_payment_token_leaves_the_outbox_at_once() {
    let Outbox {
        config,
        dynamodb,
        table,
    } = Outbox::new().await;
    let (bus, queue) = bus_with_queue(&config).await;

    let confirmed = Envelope::new(
        OrderStockConfirmed {
            order_id: "01J0000000000000000000000A".into(),
            user_id: "shopper".into(),
            total: Money {
                amount: 1000,
                currency: "EUR".into(),
            },
            payment_token: "tok_visa_secret".into(),
        },
        "corr-secret",
    );
    let deleted = Envelope::new(
        ProductDeleted {
            product_id: "p1".into(),
            version: 2,
        },
        "corr-secret",
    );
    let mut transaction = Transaction::new(&table);
    transaction.publish(&confirmed).unwrap();
    transaction.publish(&deleted).unwrap();
    transaction.commit(&dynamodb).await.unwrap();

    let relay = relay_to(&config, &dynamodb, &bus);
    let response = relay.handle(stream_event(&config, &table).await).await;
    assert!(response.batch_item_failures.is_empty());

    let delivered = drain_queue(&config, &queue).await;
    assert_eq!(delivered.len(), 2, "both published");
    let outbox = dynamodb
        .scan()
        .table_name(&table)
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let kept: Vec<String> = outbox
        .iter()
        .filter_map(|item| item.get("eventId")?.as_s().ok().cloned())
        .collect();
    assert_eq!(
        kept,
        std::slice::from_ref(&deleted.metadata.event_id),
        "the token's event is gone; the other stays for the replay window"
    );
    assert!(!format!("{outbox:?}").contains("tok_visa_secret"));
}

#[tokio::test]
async fn an_entry_the_bus_refuses_is_parked_whole_and_the_rest_published_across_chunks() {
    let Outbox {
        config,
        dynamodb,
        table,
    } = Outbox::new().await;
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
    let counts = Counts::new();
    let relay = relay_to(&config, &dynamodb, &bus).with_metrics(counts.metrics());
    let response = relay.handle(batch).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "nothing goes back to Lambda: the shard moves on"
    );
    assert_eq!(drain_queue(&config, &queue).await.len(), 11);
    let parked = parked(&dynamodb, &table).await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].reason, "refused");
    let kept = parked[0].event.as_ref().expect("kept whole");
    assert_eq!(kept.event_id, poisoned_event_id);
    assert_eq!(kept.detail, "{not json");
    assert!(!poisoned_sequence.is_empty());
    assert_eq!(counts.snapshot(), expected([("EventsParked", 1)]));
}

#[tokio::test]
async fn an_event_larger_than_putevents_takes_is_parked_and_calls_stay_under_256_kb() {
    let Outbox {
        config,
        dynamodb,
        table,
    } = Outbox::new().await;
    let (bus, queue) = bus_with_queue(&config).await;
    // Three events of 120 KB (two fit one call, not three) and one of 300 KB, which no
    // call takes: the outbox item fits DynamoDB's 400 KB, the entry not PutEvents' 256.
    let mut big_id = String::new();
    for (n, kilobytes) in [120, 120, 120, 300].into_iter().enumerate() {
        let event = Envelope::new(
            ProductDeleted {
                product_id: format!("p{n}"),
                version: 1,
            },
            "corr",
        );
        let mut transaction = Transaction::new(&table);
        transaction.publish(&event).unwrap();
        let mut outbox = transaction.events()[0].clone();
        let mut detail: serde_json::Value = serde_json::from_str(&outbox.detail).unwrap();
        detail["data"]["padding"] = serde_json::json!("x".repeat(kilobytes * 1024));
        outbox.detail = detail.to_string();
        if kilobytes == 300 {
            big_id = outbox.event_id.clone();
        }
        dynamodb
            .put_item()
            .table_name(&table)
            .set_item(Some(outbox.item()))
            .send()
            .await
            .unwrap();
    }
    let relay = relay_to(&config, &dynamodb, &bus);
    let response = relay.handle(stream_event(&config, &table).await).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(drain_queue(&config, &queue).await.len(), 3);
    let parked = parked(&dynamodb, &table).await.unwrap();
    assert_eq!(
        parked
            .iter()
            .map(|p| (
                p.reason.as_str(),
                p.event.as_ref().map(|e| e.event_id.clone())
            ))
            .collect::<Vec<_>>(),
        [("too_large", Some(big_id))]
    );
}

#[tokio::test]
async fn events_written_while_the_bus_is_unreachable_go_out_when_lambda_retries() {
    // The state change and its event commit, then publishing fails (as if the relay
    // crashed or the bus were down): every outbox record is handed back to Lambda, and
    // the retry of the same records delivers the event. Nothing is lost in between.
    let Outbox {
        config,
        dynamodb,
        table,
    } = Outbox::new().await;

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
    let down = relay_to(&config, &dynamodb, &missing_bus);
    let response = down.handle(stream_event(&config, &table).await).await;
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "only the outbox record, not the state record"
    );

    let (bus, queue) = bus_with_queue(&config).await;
    let up = relay_to(&config, &dynamodb, &bus);
    let response = up.handle(stream_event(&config, &table).await).await;
    assert!(response.batch_item_failures.is_empty());
    let delivered = drain_queue(&config, &queue).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0]["detail"]["metadata"]["eventId"],
        event.metadata.event_id.as_str()
    );
}

/// A bus down longer than the relay's patience: the event is parked whole (the stream
/// would trim it after 24 hours, and Lambda's failure destination keeps only a position),
/// and the replay command publishes it once the bus is back.
#[tokio::test]
async fn an_event_undeliverable_past_its_time_is_parked_and_replayed_when_the_bus_is_back() {
    let Outbox {
        config,
        dynamodb,
        table,
    } = Outbox::new().await;
    let event = Envelope::new(
        ProductDeleted {
            product_id: "p-late".into(),
            version: 3,
        },
        "corr-late",
    );
    let mut transaction = Transaction::new(&table);
    transaction.publish(&event).unwrap();
    transaction.commit(&dynamodb).await.unwrap();

    let missing_bus = unique("missing-bus");
    let impatient = relay_to(&config, &dynamodb, &missing_bus).with_options(RelayOptions {
        park_after: std::time::Duration::ZERO,
    });
    let response = impatient.handle(stream_event(&config, &table).await).await;
    assert!(response.batch_item_failures.is_empty());
    let kept = parked(&dynamodb, &table).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].reason, "undeliverable");

    let (bus, queue) = bus_with_queue(&config).await;
    let replay = replay_parked(
        &dynamodb,
        &table,
        &EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &bus),
    )
    .await
    .unwrap();
    assert_eq!(
        replay.published,
        std::slice::from_ref(&event.metadata.event_id)
    );
    assert!(replay.kept.is_empty());
    assert!(
        parked(&dynamodb, &table).await.unwrap().is_empty(),
        "removed once published"
    );
    let delivered = drain_queue(&config, &queue).await;
    assert_eq!(
        delivered[0]["detail"],
        serde_json::to_value(&event).unwrap(),
        "the event itself, byte for byte"
    );
}

#[tokio::test]
async fn an_unreadable_outbox_record_is_parked_as_it_was_and_does_not_stall_its_shard() {
    let Outbox {
        config,
        dynamodb,
        table,
    } = Outbox::new().await;
    let (bus, queue) = bus_with_queue(&config).await;
    // A record no relay can read (written outside the outbox's own code), then a good one.
    dynamodb
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("OUTBOX#broken".into()))
        .item("sk", AttributeValue::S("EVENT".into()))
        .send()
        .await
        .unwrap();
    let good = Envelope::new(
        ProductDeleted {
            product_id: "p-after".into(),
            version: 1,
        },
        "corr",
    );
    let mut transaction = Transaction::new(&table);
    transaction.publish(&good).unwrap();
    transaction.commit(&dynamodb).await.unwrap();

    let relay = relay_to(&config, &dynamodb, &bus);
    let response = relay.handle(stream_event(&config, &table).await).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "the shard moves on"
    );
    assert_eq!(
        drain_queue(&config, &queue).await.len(),
        1,
        "the good event went out"
    );
    let kept = parked(&dynamodb, &table).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].reason, "unreadable");
    assert!(kept[0].event.is_none());
    assert!(
        kept[0].record.as_deref().unwrap().contains("OUTBOX#broken"),
        "the record as the stream showed it"
    );
    // A replay cannot publish it, and says so; it stays for a person to read.
    let replay = replay_parked(
        &dynamodb,
        &table,
        &EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), &bus),
    )
    .await
    .unwrap();
    assert!(replay.published.is_empty());
    assert_eq!(replay.kept.len(), 1);
    assert_eq!(parked(&dynamodb, &table).await.unwrap().len(), 1);
}
