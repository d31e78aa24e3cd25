//! Event source mappings against moto with a real function process (the `test-function`
//! example): SQS partial failures, reports naming unknown messages, redrive to the DLQ,
//! duplicate delivery and message attributes; streams in order, retried on error, resumed
//! from the lowest reported failure, bisected, handed to the on-failure destination when
//! retries run out, filtered, and gathered over the batching window.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::support::test_function;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use shop_local::emulator::Moto;
use shop_local::faults::{FaultSettings, Faults};
use shop_local::lambda::{FunctionConfig, InvocationsEnded, LambdaFunction, LogSink};
use shop_local::mappings::{IdleReads, start_queue_mapping, start_stream_mapping};
use shop_local::topology::{
    ACCOUNT_ID, KeySpec, QueueMappingSpec, QueueSpec, REGION, Redrive, StreamMappingSpec,
    TableSpec, Topology,
};

fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        Moto::start(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")).expect("moto starts")
    })
}

async fn config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto().endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "t", "t", None, None, "test",
        ))
        .load()
        .await
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    )
}

/// A function whose every received record is appended to a file, one line each.
fn recording_function(name: &str, faults: Arc<Faults>) -> (Arc<LambdaFunction>, PathBuf) {
    recording_function_in(name, faults, &InvocationsEnded::default())
}

/// [`recording_function`], counted among the invocations a stream poller waits on.
fn recording_function_in(
    name: &str,
    faults: Arc<Faults>,
    invocations_ended: &InvocationsEnded,
) -> (Arc<LambdaFunction>, PathBuf) {
    let log = std::env::temp_dir().join(unique(name));
    let config = FunctionConfig {
        display_name: name.into(),
        function_name: name.into(),
        binary: test_function(),
        environment: [("RECORD_LOG".to_owned(), log.display().to_string())].into(),
        timeout: Duration::from_secs(5),
        memory_mb: 128,
        max_processes: 2,
    };
    let quiet: LogSink = Arc::new(|_: &str, _: &str| {});
    let function = LambdaFunction::new(config, faults, quiet, invocations_ended.clone());
    (function, log)
}

/// Creates these tables and queues in the test binary's moto.
async fn provision(config: &aws_config::SdkConfig, tables: Vec<TableSpec>, queues: Vec<QueueSpec>) {
    let topology = Topology {
        tables,
        queues,
        ..Topology::default()
    };
    shop_local::provision::provision(config, &topology)
        .await
        .unwrap();
}

fn received(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Every invocation's records, as the function received them (`<log>.batches`).
fn batches(log: &Path) -> Vec<Vec<serde_json::Value>> {
    received(&PathBuf::from(format!("{}.batches", log.display())))
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A stream record's `id`, as the test function logs it.
fn text(record: &serde_json::Value) -> &str {
    record["dynamodb"]["NewImage"]["id"]["S"]
        .as_str()
        .unwrap_or_default()
}

/// Every invocation's records as their ids.
fn batch_texts(log: &Path) -> Vec<Vec<String>> {
    batches(log)
        .iter()
        .map(|batch| batch.iter().map(|r| text(r).to_owned()).collect())
        .collect()
}

/// Waits for a condition the mapping brings about asynchronously; the bound only keeps a
/// broken mapping from hanging the suite.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn queue(name: &str, visibility: u32, redrive: Option<Redrive>) -> QueueSpec {
    QueueSpec {
        logical_id: name.into(),
        name: name.into(),
        url: format!("{}/{ACCOUNT_ID}/{name}", moto().endpoint),
        arn: format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"),
        visibility_timeout_seconds: visibility,
        message_retention_seconds: None,
        fifo: false,
        redrive,
    }
}

async fn visible_messages(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let output = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    output
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.body)
        .collect()
}

fn queue_mapping(queue: &QueueSpec, function: &str) -> QueueMappingSpec {
    QueueMappingSpec {
        logical_id: format!("{}-mapping", queue.name),
        function: function.into(),
        queue_url: queue.url.clone(),
        queue_arn: queue.arn.clone(),
        batch_size: 10,
        batching_window_seconds: 0,
        report_batch_item_failures: true,
        maximum_concurrency: None,
        filters: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_reported_messages_come_back_and_reach_the_dlq_after_max_receives() {
    let config = config().await;
    let dlq = queue(&unique("dlq"), 30, None);
    let main = queue(
        &unique("main"),
        1,
        Some(Redrive {
            dead_letter_arn: dlq.arn.clone(),
            max_receive_count: 2,
        }),
    );
    provision(&config, vec![], vec![main.clone(), dlq.clone()]).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    for body in ["ok-1", "fail-2", "ok-3"] {
        sqs.send_message()
            .queue_url(&main.url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let (function, log) = recording_function("sqs-partial", Arc::new(Faults::none()));
    let (stats, pollers) = start_queue_mapping(
        &config,
        queue_mapping(&main, "sqs-partial"),
        function.clone(),
        Arc::new(Faults::none()),
        1,
    );

    eventually("fail-2 moved to the DLQ", async || {
        visible_messages(&sqs, &dlq.url).await == ["fail-2"]
    })
    .await;
    let log_lines = received(&log);
    assert_eq!(
        log_lines.iter().filter(|l| *l == "ok-1").count(),
        1,
        "{log_lines:?}"
    );
    assert_eq!(
        log_lines.iter().filter(|l| *l == "ok-3").count(),
        1,
        "{log_lines:?}"
    );
    assert_eq!(
        log_lines.iter().filter(|l| *l == "fail-2").count(),
        2,
        "received twice, then redriven: {log_lines:?}"
    );
    assert!(visible_messages(&sqs, &main.url).await.is_empty());
    assert!(
        stats
            .failed_batches
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2
    );
    pollers.iter().for_each(|p| p.abort());
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_duplicate_fault_delivers_every_message_twice_and_deletes_it_once() {
    let config = config().await;
    let main = queue(&unique("dup"), 30, None);
    provision(&config, vec![], vec![main.clone()]).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    for body in ["m-1", "m-2"] {
        sqs.send_message()
            .queue_url(&main.url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let faults = Arc::new(Faults::new(FaultSettings {
        duplicate: 1.0,
        seed: 7,
        ..FaultSettings::default()
    }));
    let (function, log) = recording_function("sqs-dup", faults.clone());
    let (_, pollers) = start_queue_mapping(
        &config,
        queue_mapping(&main, "sqs-dup"),
        function.clone(),
        faults.clone(),
        1,
    );

    eventually("both messages seen twice", async || {
        let lines = received(&log);
        ["m-1", "m-2"]
            .iter()
            .all(|m| lines.iter().filter(|l| l == m).count() == 2)
    })
    .await;
    eventually("the queue is empty", async || {
        visible_messages(&sqs, &main.url).await.is_empty()
    })
    .await;
    assert_eq!(faults.counts().duplicates, 2);
    pollers.iter().for_each(|p| p.abort());
    function.shutdown().await;
}

fn table(name: &str) -> TableSpec {
    TableSpec {
        logical_id: name.into(),
        name: name.into(),
        arn: format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"),
        key: KeySpec {
            hash: ("pk".into(), "S".into()),
            range: None,
        },
        global_indexes: Vec::new(),
        stream_view: Some("NEW_IMAGE".into()),
        ttl_attribute: None,
    }
}

async fn put(dynamodb: &aws_sdk_dynamodb::Client, table: &str, id: &str) {
    dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(format!("ITEM#{id}")))
        .item("id", AttributeValue::S(id.into()))
        .send()
        .await
        .unwrap();
}

fn stream_mapping(
    table: &TableSpec,
    function: &str,
    failure_queue: Option<&QueueSpec>,
) -> StreamMappingSpec {
    StreamMappingSpec {
        logical_id: format!("{}-stream", table.name),
        function: function.into(),
        table_name: table.name.clone(),
        batch_size: 10,
        batching_window_seconds: 0,
        starting_position: "TRIM_HORIZON".into(),
        report_batch_item_failures: true,
        bisect_on_error: false,
        maximum_retry_attempts: 2,
        filters: vec![
            json!({"dynamodb": {"NewImage": {"id": {"S": [{"anything-but": "skip-me"}]}}}}),
        ],
        on_failure_arn: failure_queue.map(|q| q.arn.clone()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_is_delivered_in_order_retried_resumed_and_finally_handed_to_the_failure_queue() {
    let config = config().await;
    let table = table(&unique("stream"));
    let failures = queue(&unique("stream-failures"), 30, None);
    provision(&config, vec![table.clone()], vec![failures.clone()]).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    // Written before the mapping starts, so they arrive as one batch.
    for id in ["a", "error-once", "skip-me", "b", "fail-c", "d"] {
        put(&dynamodb, &table.name, id).await;
    }
    let (function, log) = recording_function("stream-fn", Arc::new(Faults::none()));
    let (_, pollers) = start_stream_mapping(
        &config,
        stream_mapping(&table, "stream-fn", Some(&failures)),
        function.clone(),
        IdleReads::after(&InvocationsEnded::default()),
    )
    .await
    .unwrap();

    let sqs = aws_sdk_sqs::Client::new(&config);
    eventually("the exhausted batch is reported", async || {
        !visible_messages(&sqs, &failures.url).await.is_empty()
    })
    .await;
    put(&dynamodb, &table.name, "e").await;
    eventually("the shard moves on", async || {
        received(&log).last().map(String::as_str) == Some("e")
    })
    .await;

    let invocations = received(&log);
    assert_eq!(
        invocations,
        [
            // The whole invocation fails on first sight of error-once: retried as is.
            "a",
            "error-once",
            "b",
            "fail-c",
            "d",
            // fail-c is reported: the retry resumes from it.
            "a",
            "error-once",
            "b",
            "fail-c",
            "d",
            "fail-c",
            "d",
            // Retries exhausted (MaximumRetryAttempts 2): handed over, then new records flow.
            "e",
        ],
        "in order, skip-me filtered out"
    );
    let report: serde_json::Value =
        serde_json::from_str(&visible_messages(&sqs, &failures.url).await[0]).unwrap();
    assert_eq!(report["DDBStreamBatchInfo"]["batchSize"], 2);
    pollers.iter().for_each(|p| p.abort());
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_naming_no_message_of_the_batch_fails_the_whole_batch() {
    let config = config().await;
    let dlq = queue(&unique("bogus-dlq"), 30, None);
    let main = queue(
        &unique("bogus"),
        1,
        Some(Redrive {
            dead_letter_arn: dlq.arn.clone(),
            max_receive_count: 2,
        }),
    );
    provision(&config, vec![], vec![main.clone(), dlq.clone()]).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    for body in ["ok-1", "bogus-id-2"] {
        sqs.send_message()
            .queue_url(&main.url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let (function, log) = recording_function("sqs-bogus", Arc::new(Faults::none()));
    let (stats, pollers) = start_queue_mapping(
        &config,
        QueueMappingSpec {
            // Gathers both messages into one batch, whatever moto returns per receive.
            batching_window_seconds: 1,
            ..queue_mapping(&main, "sqs-bogus")
        },
        function.clone(),
        Arc::new(Faults::none()),
        1,
    );

    // Nothing is deleted: both come back, until the redrive policy moves them.
    eventually("both messages moved to the DLQ", async || {
        let mut dead = visible_messages(&sqs, &dlq.url).await;
        dead.sort();
        dead == ["bogus-id-2", "ok-1"]
    })
    .await;
    let log_lines = received(&log);
    for body in ["ok-1", "bogus-id-2"] {
        assert_eq!(
            log_lines.iter().filter(|l| *l == body).count(),
            2,
            "{body} received twice, then redriven: {log_lines:?}"
        );
    }
    assert!(visible_messages(&sqs, &main.url).await.is_empty());
    assert_eq!(
        stats
            .failed_batches
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    pollers.iter().for_each(|p| p.abort());
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqs_records_carry_the_message_attributes_in_lambdas_shape() {
    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::MessageAttributeValue;

    let config = config().await;
    let main = queue(&unique("attrs"), 30, None);
    provision(&config, vec![], vec![main.clone()]).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let attribute = |data_type: &str| MessageAttributeValue::builder().data_type(data_type);
    let sent = sqs
        .send_message()
        .queue_url(&main.url)
        .message_body("with-attributes")
        .message_attributes(
            "kind",
            attribute("String").string_value("gift").build().unwrap(),
        )
        .message_attributes(
            "count",
            attribute("Number").string_value("3").build().unwrap(),
        )
        .message_attributes(
            "blob",
            attribute("Binary")
                .binary_value(Blob::new(b"\x00\x01\xff".to_vec()))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (function, log) = recording_function("sqs-attrs", Arc::new(Faults::none()));
    let (_, pollers) = start_queue_mapping(
        &config,
        queue_mapping(&main, "sqs-attrs"),
        function.clone(),
        Arc::new(Faults::none()),
        1,
    );

    eventually("the message is delivered and deleted", async || {
        !received(&log).is_empty() && visible_messages(&sqs, &main.url).await.is_empty()
    })
    .await;
    let record = &batches(&log)[0][0];
    assert_eq!(
        record["messageAttributes"],
        json!({
            "kind": {
                "stringValue": "gift",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            },
            "count": {
                "stringValue": "3",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "Number",
            },
            "blob": {
                "binaryValue": "AAH/",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "Binary",
            },
        })
    );
    let md5 = sent.md5_of_message_attributes().unwrap();
    assert_eq!(record["md5OfMessageAttributes"], md5);
    pollers.iter().for_each(|p| p.abort());
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bisecting_isolates_the_record_that_always_fails() {
    let config = config().await;
    let table = table(&unique("bisect"));
    let failures = queue(&unique("bisect-failures"), 30, None);
    provision(&config, vec![table.clone()], vec![failures.clone()]).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    // Written before the mapping starts, so they arrive as one batch.
    for id in ["a", "b", "error-always", "c", "d"] {
        put(&dynamodb, &table.name, id).await;
    }
    let (function, log) = recording_function("bisect-fn", Arc::new(Faults::none()));
    let (_, pollers) = start_stream_mapping(
        &config,
        StreamMappingSpec {
            bisect_on_error: true,
            maximum_retry_attempts: 1,
            ..stream_mapping(&table, "bisect-fn", Some(&failures))
        },
        function.clone(),
        IdleReads::after(&InvocationsEnded::default()),
    )
    .await
    .unwrap();

    let sqs = aws_sdk_sqs::Client::new(&config);
    eventually("the failing record is reported", async || {
        !visible_messages(&sqs, &failures.url).await.is_empty()
    })
    .await;
    put(&dynamodb, &table.name, "e").await;
    eventually("the shard moves on", async || {
        received(&log).last().map(String::as_str) == Some("e")
    })
    .await;

    assert_eq!(
        batch_texts(&log),
        [
            // The whole batch fails: split in two, left half first.
            vec!["a", "b", "error-always", "c", "d"],
            vec!["a", "b"],
            // The right half fails: split again.
            vec!["error-always", "c", "d"],
            // Alone, the record fails once and is retried once (MaximumRetryAttempts 1):
            // the splits were no retries.
            vec!["error-always"],
            vec!["error-always"],
            // Handed over; the rest of the shard follows in order.
            vec!["c", "d"],
            vec!["e"],
        ]
    );
    let failing = &batches(&log)[3][0];
    let sequence_number = failing["dynamodb"]["SequenceNumber"].clone();
    let reports = visible_messages(&sqs, &failures.url).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report: serde_json::Value = serde_json::from_str(&reports[0]).unwrap();
    assert_eq!(report["DDBStreamBatchInfo"]["batchSize"], 1);
    assert_eq!(
        report["DDBStreamBatchInfo"]["startSequenceNumber"],
        sequence_number
    );
    assert_eq!(
        report["DDBStreamBatchInfo"]["endSequenceNumber"],
        sequence_number
    );
    pollers.iter().for_each(|p| p.abort());
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_batching_window_gathers_records_up_to_the_batch_size() {
    let config = config().await;
    let table = table(&unique("window"));
    provision(&config, vec![table.clone()], vec![]).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    put(&dynamodb, &table.name, "w-1").await;
    let (function, log) = recording_function("window-fn", Arc::new(Faults::none()));
    let (_, pollers) = start_stream_mapping(
        &config,
        StreamMappingSpec {
            batch_size: 3,
            batching_window_seconds: 3,
            ..stream_mapping(&table, "window-fn", None)
        },
        function.clone(),
        IdleReads::after(&InvocationsEnded::default()),
    )
    .await
    .unwrap();
    // Later than a poll or two, well within the window: without it, w-1 would go alone.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for id in ["w-2", "w-3", "w-4"] {
        put(&dynamodb, &table.name, id).await;
    }

    eventually("every record is delivered", async || {
        received(&log).len() == 4
    })
    .await;
    // The first batch is full before its window ends; the last waits out its own.
    assert_eq!(batch_texts(&log), [vec!["w-1", "w-2", "w-3"], vec!["w-4"]]);
    pollers.iter().for_each(|p| p.abort());
    function.shutdown().await;
}

/// In a stack only its functions write its tables, so a poller that found its shard empty
/// reads it again once an invocation has ended, not four times a second for nothing. Here
/// the idle interval is an hour: the write can only arrive through that wake-up.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_shard_is_read_again_when_an_invocation_ends() {
    let config = config().await;
    let table = table(&unique("idle"));
    provision(&config, vec![table.clone()], vec![]).await;
    let invocations_ended = InvocationsEnded::default();
    let (function, log) =
        recording_function_in("idle-fn", Arc::new(Faults::none()), &invocations_ended);
    let mut spec = stream_mapping(&table, "idle-fn", None);
    spec.filters.clear();
    let (stats, pollers) = start_stream_mapping(
        &config,
        spec,
        function.clone(),
        IdleReads {
            invocations_ended: invocations_ended.clone(),
            at_the_latest: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let polls = || stats.polls.load(std::sync::atomic::Ordering::Relaxed);
    eventually("the empty shard is read", async || polls() >= 1).await;

    // Written from outside the stack: no invocation ends, so nobody looks.
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    put(&dynamodb, &table.name, "unseen-until-woken").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(polls(), 1, "read again with no invocation ended");
    assert!(received(&log).is_empty());

    // Any invocation of the stack's functions may have written: the shard is read.
    function
        .invoke(json!({"Records": []}).to_string().into())
        .await;
    eventually("the write is delivered", async || {
        received(&log) == ["unseen-until-woken"]
    })
    .await;
    pollers.iter().for_each(|p| p.abort());
    function.shutdown().await;
}

/// A cancelled transaction leaves no trace in the stream, and the records after it still
/// flow to a reader that was already polling (moto rolled back by swapping the table,
/// leaving readers on a stale shard; `local/moto-launch.py` rolls back in place).
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_transaction_leaves_no_record_and_the_stream_flows_on() {
    let config = config().await;
    let table = table(&unique("cancelled"));
    provision(&config, vec![table.clone()], vec![]).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let (function, log) = recording_function("cancelled-fn", Arc::new(Faults::none()));
    let mut spec = stream_mapping(&table, "cancelled-fn", None);
    spec.filters.clear();
    let (_, pollers) = start_stream_mapping(
        &config,
        spec,
        function.clone(),
        IdleReads::after(&InvocationsEnded::default()),
    )
    .await
    .unwrap();

    put(&dynamodb, &table.name, "before").await;
    eventually("the first record arrives", async || {
        received(&log) == ["before"]
    })
    .await;
    let phantom = aws_sdk_dynamodb::types::Put::builder()
        .table_name(&table.name)
        .item("pk", AttributeValue::S("ITEM#phantom".into()))
        .item("id", AttributeValue::S("phantom".into()))
        .build()
        .unwrap();
    let impossible = aws_sdk_dynamodb::types::ConditionCheck::builder()
        .table_name(&table.name)
        .key("pk", AttributeValue::S("ITEM#nothing".into()))
        .condition_expression("attribute_exists(pk)")
        .build()
        .unwrap();
    let cancelled = dynamodb
        .transact_write_items()
        .transact_items(
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .put(phantom)
                .build(),
        )
        .transact_items(
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .condition_check(impossible)
                .build(),
        )
        .send()
        .await;
    assert!(cancelled.is_err(), "the condition cannot hold");
    put(&dynamodb, &table.name, "after").await;

    eventually(
        "the record after the cancelled transaction arrives",
        async || received(&log).len() >= 2,
    )
    .await;
    assert_eq!(received(&log), ["before", "after"], "no phantom record");
    pollers.iter().for_each(|p| p.abort());
    function.shutdown().await;
}
