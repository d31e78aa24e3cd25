//! The payment provider's API key, kept in AWS Secrets Manager as `{"apiKey": "..."}`:
//! the consumer presents it, the sandbox provider checks it. Never in an environment
//! variable (anyone who can read the function's configuration would have it), never in
//! a log (its `Debug` is redacted, and errors never quote the secret).

use std::fmt;

use serde::Deserialize;

/// An API key. Compared in constant time, so a caller cannot find it out byte by byte
/// from how long a refusal takes.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `presented` is this key.
    pub fn matches(&self, presented: &str) -> bool {
        let (mine, theirs) = (self.0.as_bytes(), presented.as_bytes());
        mine.len() == theirs.len()
            && mine
                .iter()
                .zip(theirs)
                .fold(0u8, |difference, (a, b)| difference | (a ^ b))
                == 0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret {secret_id}: {cause}")]
    Unreadable { secret_id: String, cause: String },
    /// The secret exists but holds no usable key; what it holds is not repeated here.
    #[error("secret {secret_id} is not a JSON object with a non-empty string \"apiKey\"")]
    Malformed { secret_id: String },
}

/// Where the key is kept: one secret, read whenever the caller decides it must be.
#[derive(Clone)]
pub struct ApiKeySecret {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeySecret")
            .field("secret_id", &self.secret_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretValue {
    api_key: String,
}

impl ApiKeySecret {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The key the secret holds now.
    pub async fn read(&self) -> Result<ApiKey, SecretError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|error| SecretError::Unreadable {
                secret_id: self.secret_id.clone(),
                cause: aws_sdk_secretsmanager::error::DisplayErrorContext(error).to_string(),
            })?;
        let malformed = || SecretError::Malformed {
            secret_id: self.secret_id.clone(),
        };
        let text = output.secret_string().ok_or_else(malformed)?;
        // serde_json's error would quote the offending input: the secret. Drop it.
        let value: SecretValue = serde_json::from_str(text).map_err(|_| malformed())?;
        if value.api_key.trim().is_empty() {
            return Err(malformed());
        }
        Ok(ApiKey(value.api_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_matches_only_itself_and_never_shows_in_debug() {
        let key = ApiKey::new("sk_test_abc");
        assert!(key.matches("sk_test_abc"));
        assert!(!key.matches("sk_test_abd"));
        assert!(!key.matches("sk_test_ab"));
        assert!(!key.matches(""));
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
    }
}
