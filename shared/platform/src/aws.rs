//! Building the AWS clients once per process, from the environment.

use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};

/// The shared SDK configuration. `AWS_ENDPOINT_URL` (set by shop-local and the tests to
/// point at moto) is honoured by the SDK itself, so the same code runs against AWS and
/// the emulator. Timeouts are short because every caller is a Lambda with a deadline:
/// a stuck connection must fail and be retried, not eat the invocation.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .load()
        .await
}

/// A required setting from the function's environment (its template declares it).
pub fn required_env(name: &str) -> Result<String, MissingSetting> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(MissingSetting(name.to_owned())),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set; the function's template must declare it")]
pub struct MissingSetting(pub String);

/// Opens the DynamoDB connection (DNS, TCP, TLS) during init, when Lambda does not bill
/// the caller's latency for it, instead of during the first request.
pub async fn warm_dynamodb(client: &aws_sdk_dynamodb::Client, table: &str) {
    let started = Instant::now();
    match client.describe_table().table_name(table).send().await {
        Ok(_) => tracing::info!(
            table,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "dynamodb connection warmed"
        ),
        Err(error) => {
            tracing::warn!(table, error = %aws_sdk_dynamodb::error::DisplayErrorContext(&error), "could not warm the dynamodb connection")
        }
    }
}

/// Same as [`warm_dynamodb`], for the event bus.
pub async fn warm_eventbridge(client: &aws_sdk_eventbridge::Client, bus: &str) {
    let started = Instant::now();
    match client.describe_event_bus().name(bus).send().await {
        Ok(_) => tracing::info!(
            bus,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "eventbridge connection warmed"
        ),
        Err(error) => {
            tracing::warn!(bus, error = %aws_sdk_eventbridge::error::DisplayErrorContext(&error), "could not warm the eventbridge connection")
        }
    }
}
