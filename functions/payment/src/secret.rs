//! The payment provider's API key, kept in AWS Secrets Manager as `{"apiKey": "..."}`:
//! the consumer presents it, the sandbox provider checks it. Never in an environment
//! variable (anyone who can read the function's configuration would have it), never in
//! a log (its `Debug` is redacted, and errors never quote the secret).

use std::fmt;

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

pub use shop_platform::secret::SecretError;

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
        shop_platform::secret::read_field(&self.client, &self.secret_id, "apiKey")
            .await
            .map(ApiKey)
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
