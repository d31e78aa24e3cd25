//! Payment's event consumer Lambda, on its SQS queue. Its init reads the provider's API
//! key from Secrets Manager; without it the function fails to start rather than charge
//! nothing.

use payment::consumer::{CONSUMER_NAME, Handler};
use payment::provider::{HttpProvider, RetryPolicy};
use payment::settle::policy_from_env;
use payment::store::PaymentStore;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_consumer_with(CONSUMER_NAME, async |init| {
        let policy = policy_from_env(&RetryPolicy::default())?;
        let secrets = aws_sdk_secretsmanager::Client::new(&init.config);
        let provider = HttpProvider::from_env(secrets).await?;
        Ok(Handler::new(
            PaymentStore::new(init.dynamodb.clone(), &init.table),
            provider,
            policy,
        ))
    })
    .await
}
