//! Payment's reconciler Lambda, on a schedule: settles every payment that is due. Like the
//! consumer, it reads the provider's API key at init.

use payment::provider::{HttpProvider, RetryPolicy};
use payment::reconciler::Reconciler;
use payment::settle::{Settler, policy_from_env};
use payment::store::PaymentStore;
use shop_platform::metrics::Metrics;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_scheduled_with(
        async |init| {
            let policy = policy_from_env(&RetryPolicy::default())?;
            let secrets = aws_sdk_secretsmanager::Client::new(&init.config);
            let provider = HttpProvider::from_env(secrets).await?;
            Ok(Reconciler {
                settler: Settler {
                    store: PaymentStore::new(init.dynamodb.clone(), &init.table),
                    provider,
                    retry: RetryPolicy::default(),
                    policy,
                },
                metrics: Metrics::global(),
            })
        },
        async |reconciler, deadline| {
            reconciler.run(deadline).await?;
            Ok(())
        },
    )
    .await
}
