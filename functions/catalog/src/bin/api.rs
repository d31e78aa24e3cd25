//! The catalog's HTTP API Lambda: builds its clients once, then serves every catalog route.

use catalog::api::{App, handle};
use catalog::store::ProductStore;
use lambda_http::{Error, service_fn};
use shop_platform::aws::{required_env, sdk_config, warm_dynamodb};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shop_platform::telemetry::init_tracing();
    let table = required_env("TABLE_NAME")?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    warm_dynamodb(&dynamodb, &table).await;
    let app = App {
        store: ProductStore::new(dynamodb, table),
    };
    let app = &app;
    lambda_http::run(service_fn(move |request| async move {
        Ok::<_, Error>(handle(app, request).await)
    }))
    .await
}
