//! Ordering's event consumer Lambda, on its SQS queue.

use ordering::consumer::{CONSUMER_NAME, Handler};
use ordering::store::OrderStore;
use shop_platform::consumer::SqsConsumer;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = shop_platform::entrypoint::init().await?;
    let store = OrderStore::new(init.dynamodb.clone(), &init.table);
    shop_platform::entrypoint::serve_sqs(SqsConsumer::new(
        init.dynamodb,
        init.table,
        CONSUMER_NAME,
        Handler { store },
    ))
    .await
}
