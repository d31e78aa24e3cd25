//! The inventory's HTTP API Lambda.

use inventory::api::App;
use inventory::store::InventoryStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = shop_platform::entrypoint::init().await?;
    shop_platform::entrypoint::serve_http(App {
        store: InventoryStore::new(init.dynamodb, init.table),
    })
    .await
}
