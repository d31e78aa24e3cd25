//! Shipping's HTTP API Lambda.

use shipping::api::{App, handle};
use shipping::store::ShipmentStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_api(
        |dynamodb, table| App {
            store: ShipmentStore::new(dynamodb, table),
        },
        handle,
    )
    .await
}
