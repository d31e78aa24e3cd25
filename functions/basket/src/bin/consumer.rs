//! The basket's event consumer Lambda, on its SQS queue.

use basket::consumer::Handler;
use basket::store::BasketStore;
use shop_platform::consumer::SqsConsumer;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let init = shop_platform::entrypoint::init().await?;
    let store = BasketStore::new(init.dynamodb.clone(), &init.table);
    shop_platform::entrypoint::serve_sqs(SqsConsumer::new(
        init.dynamodb,
        init.table,
        "basket",
        Handler { store },
    ))
    .await
}
