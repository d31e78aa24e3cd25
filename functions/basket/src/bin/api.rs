//! The basket's HTTP API Lambda.

use basket::api::{App, handle};
use basket::store::BasketStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_api(
        |dynamodb, table| App {
            store: BasketStore::new(dynamodb, table),
        },
        handle,
    )
    .await
}
