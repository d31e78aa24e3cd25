//! The sandbox payment provider's Lambda, behind its Function URL: its ledger is
//! `TABLE_NAME`, the API key it accepts is in the secret `SECRET_ID`.

use payment::sandbox::{Sandbox, handle};
use payment::secret::ApiKeySecret;
use shop_platform::store::Table;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_api_with(
        async |init| {
            let secret_id = shop_platform::aws::required_env("SECRET_ID")?;
            let secret =
                ApiKeySecret::new(aws_sdk_secretsmanager::Client::new(&init.config), secret_id);
            let ledger = Table::new(init.dynamodb.clone(), &init.table);
            Ok(Sandbox::new(ledger, secret).await?)
        },
        handle,
    )
    .await
}
