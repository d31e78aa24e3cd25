//! The basket's HTTP API Lambda.

use basket::api::App;
use basket::store::BasketStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = shop_platform::entrypoint::init().await?;
    shop_platform::entrypoint::serve_http(App {
        store: BasketStore::new(init.dynamodb, init.table),
    })
    .await
}
