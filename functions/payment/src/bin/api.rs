//! Payment's HTTP API Lambda.

use payment::api::{App, handle};
use payment::store::PaymentStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_api(
        |dynamodb, table| App {
            store: PaymentStore::new(dynamodb, table),
        },
        handle,
    )
    .await
}
