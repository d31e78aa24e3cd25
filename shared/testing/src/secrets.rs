//! Secrets in the test binary's moto, as a template's AWS::SecretsManager::Secret holds
//! them for a function that reads its credentials at init.

use aws_config::SdkConfig;

use crate::unique;

/// Creates a secret (named for one test) holding `secret_string`; answers its ARN, which
/// is what a template's `!Ref` of a secret hands a function.
pub async fn create_secret(config: &SdkConfig, prefix: &str, secret_string: &str) -> String {
    aws_sdk_secretsmanager::Client::new(config)
        .create_secret()
        .name(unique(prefix))
        .secret_string(secret_string)
        .send()
        .await
        .expect("moto creates the secret")
        .arn
        .expect("a created secret has an ARN")
}

/// Replaces the secret's value, as a rotation does: whoever read it before holds a stale
/// copy.
pub async fn rotate_secret(config: &SdkConfig, secret_id: &str, secret_string: &str) {
    aws_sdk_secretsmanager::Client::new(config)
        .put_secret_value()
        .secret_id(secret_id)
        .secret_string(secret_string)
        .send()
        .await
        .expect("moto stores the new value");
}
