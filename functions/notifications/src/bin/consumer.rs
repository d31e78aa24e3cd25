//! Notifications' event consumer Lambda, on its SQS queue: pushes each order update.

use notifications::consumer::{CONSUMER_NAME, Handler};
use notifications::push::ManagementApi;
use notifications::store::ConnectionStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_consumer_with(CONSUMER_NAME, async |init| {
        let endpoint = shop_platform::aws::required_env("WEBSOCKET_MANAGEMENT_URL")?;
        Ok(Handler {
            store: ConnectionStore::new(init.dynamodb.clone(), &init.table),
            push: ManagementApi::new(&init.config, &endpoint),
        })
    })
    .await
}
