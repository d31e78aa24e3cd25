//! The catalog's HTTP API Lambda.

use catalog::api::{App, handle};
use catalog::store::ProductStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_api(
        |dynamodb, table| App {
            store: ProductStore::new(dynamodb, table),
        },
        handle,
    )
    .await
}
