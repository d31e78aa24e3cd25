//! A string field of a JSON secret in AWS Secrets Manager (`{"apiKey": "..."}`,
//! `{"key": "..."}`): what a function keeps out of its environment (anyone who can read
//! its configuration would have it) and out of every log (errors never quote the secret).

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret {secret_id}: {cause}")]
    Unreadable { secret_id: String, cause: String },
    /// The secret exists but holds no usable value; what it holds is not repeated here.
    #[error("secret {secret_id} is not a JSON object with a non-empty string \"{field}\"")]
    Malformed { secret_id: String, field: String },
}

/// The non-empty string `field` of the JSON object the secret `secret_id` holds now.
pub async fn read_field(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    field: &str,
) -> Result<String, SecretError> {
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|error| SecretError::Unreadable {
            secret_id: secret_id.to_owned(),
            cause: aws_sdk_secretsmanager::error::DisplayErrorContext(error).to_string(),
        })?;
    let malformed = || SecretError::Malformed {
        secret_id: secret_id.to_owned(),
        field: field.to_owned(),
    };
    let text = output.secret_string().ok_or_else(malformed)?;
    // serde_json's error would quote the offending input: the secret. Drop it.
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| malformed())?;
    value[field]
        .as_str()
        .filter(|value| !value.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(malformed)
}
