//! Payment's outbox relay Lambda, on the payments table's stream.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::relay::run().await
}
