//! The `main` of every Lambda, written once: tracing and business metrics, the function's
//! table from its environment, clients built once per process with the connection warmed
//! during init, then the runtime loop handing each invocation to the capability's handler
//! and flushing what it counted.
//!
//! Every `main` runs tokio's current-thread runtime: a Lambda process serves one
//! invocation at a time, so the multi-thread runtime's workers would only add their start
//! (a cgroup probe and two threads, during the cold start) and a cross-thread wake-up to
//! every network event.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_http::{Body, Request, Response};
use lambda_runtime::{Error, LambdaEvent};

use crate::consumer::{EventHandler, SqsConsumer};

/// What a capability's function starts with.
pub struct Init {
    pub config: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The capability's own table (`TABLE_NAME`).
    pub table: String,
}

/// Tracing, business metrics (`CAPABILITY`, `METRICS_NAMESPACE`), `TABLE_NAME` and the
/// DynamoDB client, not yet connected (see [`Init::warm`]).
pub async fn init() -> Result<Init, Error> {
    crate::telemetry::init_tracing();
    crate::metrics::init()?;
    let table = crate::aws::required_env("TABLE_NAME")?;
    let config = crate::aws::sdk_config().await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    Ok(Init {
        config,
        dynamodb,
        table,
    })
}

impl Init {
    /// Opens the DynamoDB connection: the round trip that init spends most of its time on.
    pub async fn warm(&self) {
        crate::store::Table::new(self.dynamodb.clone(), &self.table)
            .warm()
            .await;
    }
}

/// Serves an HTTP API function until the runtime stops it: `handle` answers every request
/// to `api`, errors included (problem+json). What a request counted is flushed before its
/// answer goes back: after that, Lambda may freeze the process for good.
pub async fn serve_http<A, F, Fut>(api: A, handle: F) -> Result<(), Error>
where
    A: Sync + 'static,
    F: Fn(&'static A, Request) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Response<Body>> + Send,
{
    // The process lives as long as the handler: a 'static borrow spares every request an Arc.
    let api: &'static A = Box::leak(Box::new(api));
    lambda_http::run(lambda_http::service_fn(move |request| async move {
        let response = handle(api, request).await;
        crate::metrics::flush();
        Ok::<_, Error>(response)
    }))
    .await
}

/// Serves a WebSocket API function until the runtime stops it: `handle` answers every
/// route's event (`$connect`, `$disconnect`, `$default`) with the status API Gateway acts
/// on (a `$connect` answered with anything but 2xx refuses the connection) and, for a
/// route with a route response, the body it sends back on the connection.
pub async fn serve_websocket<A, F, Fut>(api: A, handle: F) -> Result<(), Error>
where
    A: Sync + 'static,
    F: Fn(&'static A, ApiGatewayWebsocketProxyRequest) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = ApiGatewayProxyResponse> + Send,
{
    let api: &'static A = Box::leak(Box::new(api));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
            let response = handle(api, event.payload).await;
            crate::metrics::flush();
            Ok::<_, Error>(response)
        },
    ))
    .await
}

/// The whole `main` of a WebSocket API function whose API is built on the whole [`Init`]
/// (see [`run_api_with`]).
pub async fn run_websocket_with<A, B, F, Fut>(api: B, handle: F) -> Result<(), Error>
where
    A: Sync + 'static,
    B: AsyncFnOnce(&Init) -> Result<A, Error>,
    F: Fn(&'static A, ApiGatewayWebsocketProxyRequest) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = ApiGatewayProxyResponse> + Send,
{
    let init = init().await?;
    let ((), api) = tokio::join!(init.warm(), api(&init));
    serve_websocket(api?, handle).await
}

/// Serves an SQS consumer function until the runtime stops it, flushing what each batch
/// counted before reporting it.
pub async fn serve_sqs<H: EventHandler + Send + 'static>(
    consumer: SqsConsumer<H>,
) -> Result<(), Error> {
    let consumer: &'static SqsConsumer<H> = Box::leak(Box::new(consumer));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<SqsEvent>| async move {
            let deadline = invocation_deadline(event.context.deadline);
            let response = consumer.handle_batch_until(event.payload, deadline).await;
            crate::metrics::flush();
            Ok::<SqsBatchResponse, Error>(response)
        },
    ))
    .await
}

/// Serves a scheduled function (an EventBridge schedule's invocations) until the runtime
/// stops it: `run` does the job within the invocation's deadline; a failed job fails the
/// invocation, which Lambda reports (and the schedule's next tick tries again).
pub async fn serve_scheduled<J, F, Fut>(job: J, run: F) -> Result<(), Error>
where
    J: Sync + 'static,
    F: Fn(&'static J, Instant) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
{
    let job: &'static J = Box::leak(Box::new(job));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let outcome = run(job, invocation_deadline(event.context.deadline)).await;
            crate::metrics::flush();
            outcome.map(|()| serde_json::Value::Null)
        },
    ))
    .await
}

/// The whole `main` of a scheduled function whose job is built on the whole [`Init`]
/// (see [`run_api_with`]).
pub async fn run_scheduled_with<J, B, F, Fut>(job: B, run: F) -> Result<(), Error>
where
    J: Sync + 'static,
    B: AsyncFnOnce(&Init) -> Result<J, Error>,
    F: Fn(&'static J, Instant) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<(), Error>> + Send,
{
    let init = init().await?;
    let ((), job) = tokio::join!(init.warm(), job(&init));
    serve_scheduled(job?, run).await
}

/// The invocation's deadline (Lambda's, in milliseconds since the epoch) as an instant of
/// this process's clock.
pub fn invocation_deadline(deadline_epoch_ms: u64) -> Instant {
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
}

/// The whole `main` of an API function: `api` builds the capability's API on the
/// DynamoDB client and its table's name, and `handle` answers each request to it.
pub async fn run_api<A, F, Fut>(
    api: impl FnOnce(aws_sdk_dynamodb::Client, String) -> A,
    handle: F,
) -> Result<(), Error>
where
    A: Sync + 'static,
    F: Fn(&'static A, Request) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Response<Body>> + Send,
{
    run_api_with(
        async |init: &Init| Ok(api(init.dynamodb.clone(), init.table.clone())),
        handle,
    )
    .await
}

/// The whole `main` of a consumer function: `handler` is built on the DynamoDB client and
/// the capability's table, where the harness also keeps the processed markers of
/// `consumer_name`, so that an effect and its marker commit together.
pub async fn run_consumer<H: EventHandler + Send + 'static>(
    consumer_name: &str,
    handler: impl FnOnce(aws_sdk_dynamodb::Client, &str) -> H,
) -> Result<(), Error> {
    run_consumer_with(consumer_name, async |init: &Init| {
        Ok(handler(init.dynamodb.clone(), &init.table))
    })
    .await
}

/// The whole `main` of an API function that needs more than its table: `api` gets the
/// whole [`Init`] (the SDK configuration included, for other clients) and may take its
/// time building (reading a secret, say) or fail, which fails the init and lets Lambda
/// report it instead of serving with half a configuration.
pub async fn run_api_with<A, B, F, Fut>(api: B, handle: F) -> Result<(), Error>
where
    A: Sync + 'static,
    B: AsyncFnOnce(&Init) -> Result<A, Error>,
    F: Fn(&'static A, Request) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Response<Body>> + Send,
{
    let init = init().await?;
    // What the capability builds (a secret to read, say) overlaps the warm-up's round trip.
    let ((), api) = tokio::join!(init.warm(), api(&init));
    serve_http(api?, handle).await
}

/// The whole `main` of a consumer function whose handler needs more than the DynamoDB
/// client and its table: `handler` gets the whole [`Init`] and may be built
/// asynchronously, or fail the init (see [`run_api_with`]). The harness keeps the
/// processed markers of `consumer_name` in the capability's table, as [`run_consumer`]'s
/// does.
pub async fn run_consumer_with<H, B>(consumer_name: &str, handler: B) -> Result<(), Error>
where
    H: EventHandler + Send + 'static,
    B: AsyncFnOnce(&Init) -> Result<H, Error>,
{
    let init = init().await?;
    let ((), handler) = tokio::join!(init.warm(), handler(&init));
    let handler = handler?;
    serve_sqs(SqsConsumer::new(
        init.dynamodb,
        init.table,
        consumer_name,
        handler,
    ))
    .await
}
