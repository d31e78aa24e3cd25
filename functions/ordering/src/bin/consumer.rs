//! Ordering's event consumer Lambda, on its SQS queue.

use ordering::consumer::{CONSUMER_NAME, Handler};
use ordering::store::OrderStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_consumer(CONSUMER_NAME, |dynamodb, table| Handler {
        store: OrderStore::new(dynamodb, table),
    })
    .await
}
