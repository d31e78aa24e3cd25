//! The catalog's HTTP API Lambda.

use catalog::api::App;
use catalog::store::ProductStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = shop_platform::entrypoint::init().await?;
    shop_platform::entrypoint::serve_http(App {
        store: ProductStore::new(init.dynamodb, init.table),
    })
    .await
}
