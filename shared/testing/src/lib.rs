//! Test support: a private moto emulator per test binary, and SDK clients pointed at it.
//!
//! The first test that asks for [`moto`] installs moto into the project's venv if it is
//! missing, starts it on a free loopback port (shop-local's emulator module, the same
//! code `shop-local up` uses) and shares it with the other tests of the binary; each test
//! isolates itself by naming its own resources with [`unique`].
//!
//! What the capabilities' handler tests share sits in modules: [`Table`] (a capability's
//! table, what it holds), [`api`] (calling an HTTP handler with a sample request),
//! [`sqs`] (consumer batches, redelivered and republished), [`outbox`] (what a capability
//! recorded, and what the relay makes of it), [`samples`] (the files of `events/`),
//! [`secrets`] (a function's credentials in moto), [`serve`] (a handler on loopback
//! HTTP, as a Function URL serves it) and [`metrics`] (a test's own metrics recorder).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use shop_local::emulator::Moto;

pub mod api;
pub mod metrics;
pub mod outbox;
pub mod samples;
pub mod secrets;
pub mod serve;
pub mod sqs;
mod table;

pub use aws_config::SdkConfig as Config;
pub use samples::fixture;
pub use table::{Item, Table};

pub const REGION: &str = "us-east-1";

/// The repository's root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The emulator of this test binary, started on first use. It is never dropped: it
/// exits with the test process, when its stdin closes.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| Moto::start(&workspace_root()).unwrap_or_else(|error| panic!("{error}")))
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
    shop_local::streams::read_all(config, table).await.unwrap()
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
