//! The inventory's HTTP API Lambda.

use inventory::api::{App, handle};
use inventory::store::InventoryStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_api(
        |dynamodb, table| App {
            store: InventoryStore::new(dynamodb, table),
        },
        handle,
    )
    .await
}
