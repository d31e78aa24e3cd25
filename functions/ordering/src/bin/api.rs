//! Ordering's HTTP API Lambda.

use ordering::api::{App, handle};
use ordering::store::OrderStore;
use shop_platform::metrics::Metrics;
use shop_platform::pagination::CursorKey;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_api_with(
        async |init| {
            Ok(App {
                cursors: CursorKey::from_env(&init.config).await?,
                store: OrderStore::new(init.dynamodb.clone(), &init.table),
                metrics: Metrics::global(),
            })
        },
        handle,
    )
    .await
}
