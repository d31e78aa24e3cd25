//! lambda_http and one DynamoDB GetItem per request, through the project's own SDK
//! configuration (`shop_platform::aws::sdk_config`) and the shared store's probe read, so
//! the SDK is set up exactly as in the shop's functions. The least any handler that makes
//! one AWS call can cost.

use bench_baselines::answer;
use lambda_http::{Error, Request, service_fn};
use shop_platform::aws::{required_env, sdk_config};
use shop_platform::store::Table;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let config = sdk_config().await?;
    let table: &'static Table = Box::leak(Box::new(Table::new(
        aws_sdk_dynamodb::Client::new(&config),
        required_env("TABLE_NAME")?,
    )));
    lambda_http::run(service_fn(move |_request: Request| async move {
        table.probe().await?;
        answer()
    }))
    .await
}
