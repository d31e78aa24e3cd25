//! The inventory's event consumer Lambda, on its SQS queue.

use inventory::consumer::Handler;
use inventory::store::InventoryStore;
use shop_platform::consumer::SqsConsumer;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = shop_platform::entrypoint::init().await?;
    let store = InventoryStore::new(init.dynamodb.clone(), &init.table);
    shop_platform::entrypoint::serve_sqs(SqsConsumer::new(
        init.dynamodb,
        init.table,
        "inventory",
        Handler { store },
    ))
    .await
}
