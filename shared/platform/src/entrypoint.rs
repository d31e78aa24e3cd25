//! The `main` of every Lambda, written once: tracing, the function's table from its
//! environment, clients built once per process with the connection warmed during init,
//! then the runtime loop handing each invocation to the capability's handler.

use aws_config::SdkConfig;
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

/// Tracing, `TABLE_NAME`, the DynamoDB client, and a warm connection to it.
pub async fn init() -> Result<Init, Error> {
    crate::telemetry::init_tracing();
    let table = crate::aws::required_env("TABLE_NAME")?;
    let config = crate::aws::sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    crate::aws::warm_dynamodb(&dynamodb, &table).await;
    Ok(Init {
        config,
        dynamodb,
        table,
    })
}

/// A capability's HTTP API: answers every request, errors included (problem+json).
pub trait HttpApi: Sync + 'static {
    fn handle(&self, request: Request) -> impl Future<Output = Response<Body>> + Send;
}

/// Serves an HTTP API function until the runtime stops it.
pub async fn serve_http<A: HttpApi>(api: A) -> Result<(), Error> {
    // The process lives as long as the handler: a 'static borrow spares every request an Arc.
    let api: &'static A = Box::leak(Box::new(api));
    lambda_http::run(lambda_http::service_fn(move |request| async move {
        Ok::<_, Error>(api.handle(request).await)
    }))
    .await
}

/// Serves an SQS consumer function until the runtime stops it.
pub async fn serve_sqs<H: EventHandler + Send + 'static>(
    consumer: SqsConsumer<H>,
) -> Result<(), Error> {
    let consumer: &'static SqsConsumer<H> = Box::leak(Box::new(consumer));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<SqsEvent>| async move {
            Ok::<SqsBatchResponse, Error>(consumer.handle_batch(event.payload).await)
        },
    ))
    .await
}
