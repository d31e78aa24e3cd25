//! The inventory's event consumer Lambda, on its SQS queue.

use inventory::consumer::Handler;
use inventory::store::InventoryStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_consumer("inventory", |dynamodb, table| Handler {
        store: InventoryStore::new(dynamodb, table),
    })
    .await
}
