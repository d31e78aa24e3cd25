//! Notifications' WebSocket API Lambda: `$connect`, `$disconnect` and `$default`.

use std::time::Duration;

use notifications::api::{App, handle};
use notifications::store::ConnectionStore;
use shop_platform::aws::required_env;
use shop_platform::jwt::RemoteVerifier;

/// The issuer's JWKS is read once per cold start, with the init's time to spare.
const JWKS_TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shop_platform::entrypoint::run_websocket_with(
        async |init| {
            let issuer = required_env("TOKEN_ISSUER")?;
            let audience = required_env("TOKEN_AUDIENCE")?;
            let jwks_url = required_env("TOKEN_JWKS_URL")?;
            let client = shop_platform::outbound::client(JWKS_TIMEOUT, JWKS_TIMEOUT)?;
            let tokens = RemoteVerifier::fetch(client, &jwks_url, &issuer, &[audience]).await?;
            Ok(App {
                store: ConnectionStore::new(init.dynamodb.clone(), &init.table),
                tokens,
            })
        },
        handle,
    )
    .await
}
