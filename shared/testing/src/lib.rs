//! Test support: a private moto emulator per test binary, and SDK clients pointed at it.
//!
//! The first test that asks for [`moto`] installs moto into the project's venv if it is
//! missing (`local/scripts/python-env`), starts it on a free loopback port and shares it
//! with the other tests of the binary; each test isolates itself by naming its own
//! resources with [`unique`]. The emulator exits with the test process: it watches its
//! stdin, which only this process holds.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

pub use aws_config::SdkConfig as Config;

pub const REGION: &str = "us-east-1";

pub struct Moto {
    pub endpoint: String,
    // Held so the emulator's stdin stays open for as long as this process lives.
    _child: Mutex<Child>,
}

/// The repository's root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The emulator of this test binary, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| start_moto().unwrap_or_else(|error| panic!("cannot start moto: {error}")))
}

fn start_moto() -> Result<Moto, String> {
    let root = workspace_root();
    let output = Command::new(root.join("local/scripts/python-env"))
        .args(["moto", "local/requirements-moto.txt"])
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("python-env: {e}"))?;
    if !output.status.success() {
        return Err(format!("python-env failed with {}", output.status));
    }
    let venv = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let mut child = Command::new(venv.join("bin/python"))
        .arg(root.join("local/moto-launch.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawn moto: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut first_line = String::new();
    BufReader::new(stdout)
        .read_line(&mut first_line)
        .map_err(|e| format!("read moto: {e}"))?;
    let port = first_line
        .strip_prefix("READY ")
        .and_then(|port| port.trim().parse::<u16>().ok())
        .ok_or_else(|| format!("moto did not start: {first_line:?}"))?;
    Ok(Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        _child: Mutex::new(child),
    })
}

/// SDK configuration for the emulator: its endpoint, dummy credentials, one region.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&moto().endpoint)
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "shop-testing",
        ))
        .load()
        .await
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        ulid::Ulid::generate().to_string().to_lowercase()
    )
}

/// Creates a table in the layout every capability uses: string keys `pk`/`sk`, and for
/// each named index `gsiN`, string keys `gsiNpk`/`gsiNsk`; a NEW_IMAGE stream if asked.
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    indexes: &[&str],
    stream: bool,
) {
    let key = |attribute: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(attribute)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attribute = |attribute: &str| {
        AttributeDefinition::builder()
            .attribute_name(attribute)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attribute("pk"))
        .attribute_definitions(attribute("sk"));
    for index in indexes {
        let (pk, sk) = (format!("{index}pk"), format!("{index}sk"));
        request = request
            .attribute_definitions(attribute(&pk))
            .attribute_definitions(attribute(&sk))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(*index)
                    .key_schema(key(&pk, KeyType::Hash))
                    .key_schema(key(&sk, KeyType::Range))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .unwrap(),
            );
    }
    if stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .unwrap(),
        );
    }
    request.send().await.unwrap();
}

/// A bus with one rule sending every event whose source starts with `shop.` to a new
/// queue, as the capabilities' subscriptions do. Returns (bus name, queue URL).
pub async fn bus_with_queue(config: &SdkConfig) -> (String, String) {
    let events = aws_sdk_eventbridge::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    let bus = unique("bus");
    events.create_event_bus().name(&bus).send().await.unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("queue"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap();
    let rule = unique("rule");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": [{"prefix": "shop."}]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    (bus, queue_url)
}

/// Receives messages until the queue has been empty for one short poll, deleting them;
/// returns their bodies as JSON.
pub async fn drain_queue(config: &SdkConfig, queue_url: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut bodies = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for message in messages {
            bodies.push(serde_json::from_str(message.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// Every record currently in a table's stream, in order, as the Lambda stream event
/// source would deliver them: a JSON `{"Records": [...]}` batch.
pub async fn stream_batch(config: &SdkConfig, table: &str) -> Value {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let streams = aws_sdk_dynamodbstreams::Client::new(config);
    let description = dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap();
    let stream_arn = description.table.unwrap().latest_stream_arn.unwrap();
    let stream = streams
        .describe_stream()
        .stream_arn(&stream_arn)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap();
    let mut records = Vec::new();
    for shard in stream.shards.unwrap_or_default() {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&stream_arn)
            .shard_id(shard.shard_id.unwrap())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(current) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .unwrap();
            let batch = page.records.unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            for record in batch {
                records.push(stream_record_json(&record, &stream_arn));
            }
            iterator = page.next_shard_iterator;
        }
    }
    serde_json::json!({ "Records": records })
}

/// The Lambda event shape of one stream record (DynamoDB JSON images).
fn stream_record_json(record: &aws_sdk_dynamodbstreams::types::Record, stream_arn: &str) -> Value {
    let change = record.dynamodb.as_ref().unwrap();
    let image = |image: Option<
        &std::collections::HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
    >| {
        image.map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| (name.clone(), attribute_json(value)))
                .collect::<serde_json::Map<_, _>>()
        })
    };
    let mut dynamodb = serde_json::json!({
        "ApproximateCreationDateTime": change.approximate_creation_date_time.map(|t| t.secs()).unwrap_or(0),
        "Keys": image(change.keys.as_ref()),
        "SequenceNumber": change.sequence_number,
        "SizeBytes": change.size_bytes.unwrap_or(0),
        "StreamViewType": "NEW_IMAGE",
    });
    if let Some(new_image) = image(change.new_image.as_ref()) {
        dynamodb["NewImage"] = Value::Object(new_image);
    }
    serde_json::json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|name| name.as_str()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

fn attribute_json(value: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    match value {
        A::S(s) => serde_json::json!({ "S": s }),
        A::N(n) => serde_json::json!({ "N": n }),
        A::Bool(b) => serde_json::json!({ "BOOL": b }),
        A::Null(_) => serde_json::json!({ "NULL": true }),
        A::M(m) => {
            serde_json::json!({ "M": m.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<serde_json::Map<_, _>>() })
        }
        A::L(l) => serde_json::json!({ "L": l.iter().map(attribute_json).collect::<Vec<_>>() }),
        A::Ss(ss) => serde_json::json!({ "SS": ss }),
        A::Ns(ns) => serde_json::json!({ "NS": ns }),
        other => panic!("attribute type not used by this project: {other:?}"),
    }
}

/// Polls `check` until it returns `Some`, for at most `timeout`: for effects that
/// happen asynchronously (a stream or queue hop), never a fixed sleep.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
