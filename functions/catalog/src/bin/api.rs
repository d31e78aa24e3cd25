//! The catalog's HTTP API Lambda.

use catalog::api::{App, handle};
use catalog::store::ProductStore;
use shop_platform::pagination::CursorKey;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_api_with(
        async |init| {
            Ok(App {
                cursors: CursorKey::from_env(&init.config).await?,
                store: ProductStore::new(init.dynamodb.clone(), &init.table),
            })
        },
        handle,
    )
    .await
}
