//! Ordering's HTTP API Lambda.

use ordering::api::App;
use ordering::store::OrderStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = shop_platform::entrypoint::init().await?;
    shop_platform::entrypoint::serve_http(App {
        store: OrderStore::new(init.dynamodb, init.table),
    })
    .await
}
