//! Ordering's HTTP API Lambda.

use ordering::api::{App, handle};
use ordering::store::OrderStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_api(
        |dynamodb, table| App {
            store: OrderStore::new(dynamodb, table),
        },
        handle,
    )
    .await
}
