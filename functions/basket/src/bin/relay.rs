//! The basket's outbox relay Lambda, on the basket table's stream.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::relay::run().await
}
