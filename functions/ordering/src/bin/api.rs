//! Ordering's HTTP API Lambda.

use ordering::api::{App, handle};
use ordering::store::OrderStore;
use shop_platform::metrics::Metrics;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_api(
        |dynamodb, table| App {
            store: OrderStore::new(dynamodb, table),
            metrics: Metrics::global(),
        },
        handle,
    )
    .await
}
