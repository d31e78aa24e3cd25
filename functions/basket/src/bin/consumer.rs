//! The basket's event consumer Lambda, on its SQS queue.

use basket::consumer::Handler;
use basket::store::BasketStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_consumer("basket", |dynamodb, table| Handler {
        store: BasketStore::new(dynamodb, table),
    })
    .await
}
