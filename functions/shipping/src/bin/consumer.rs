//! Shipping's event consumer Lambda, on its SQS queue.

use shipping::consumer::{CONSUMER_NAME, Handler};
use shipping::store::ShipmentStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_consumer(CONSUMER_NAME, |dynamodb, table| Handler {
        store: ShipmentStore::new(dynamodb, table),
    })
    .await
}
