//! The local token issuer: plays Cognito's part. It signs ES256 access tokens shaped like
//! Cognito's (`sub`, `client_id`, `token_use`, `cognito:groups`, ...) for the user pool
//! and app client the templates' `!Ref UserPool` / `!Ref UserPoolClient` resolve to
//! locally, and checks them as API Gateway's JWT authorizer does. Its key lives in the
//! run directory, so tokens printed by `shop-local token` work with the running stack.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use crate::topology::REGION;

/// What `!Ref UserPool` resolves to locally.
pub const LOCAL_USER_POOL_ID: &str = "us-east-1_shoplocal";
/// What `!Ref UserPoolClient` resolves to locally.
pub const LOCAL_CLIENT_ID: &str = "shoplocalclient";
const KEY_FILE: &str = "issuer-key.pk8";
const KEY_ID: &str = "shop-local-1";

/// The `iss` of every local token; the root template's authorizer expects this.
pub fn issuer_url() -> String {
    format!("https://cognito-idp.{REGION}.amazonaws.com/{LOCAL_USER_POOL_ID}")
}

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("issuer key {path}: {cause}")]
    Key { path: String, cause: String },
    #[error("cannot sign a token: {0}")]
    Sign(String),
}

/// Why a token was refused; API Gateway answers 401 to all of them alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

pub struct Issuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Issuer {
    /// The issuer whose key is in `dir`, creating the key on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, IssuerError> {
        let path = dir.join(KEY_FILE);
        let key_error = |cause: String| IssuerError::Key {
            path: path.display().to_string(),
            cause,
        };
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(_) => {
                let document = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|e| key_error(e.to_string()))?;
                std::fs::create_dir_all(dir).map_err(|e| key_error(e.to_string()))?;
                write_private(&path, document.as_ref()).map_err(|e| key_error(e.to_string()))?;
                document.as_ref().to_vec()
            }
        };
        Self::from_pkcs8(&pkcs8).map_err(key_error)
    }

    /// The issuer of an existing key; for commands that must not create one.
    pub fn load(dir: &Path) -> Result<Self, IssuerError> {
        let path = dir.join(KEY_FILE);
        let pkcs8 = std::fs::read(&path).map_err(|e| IssuerError::Key {
            path: path.display().to_string(),
            cause: format!("{e} (is `shop-local up` running with this --run-dir?)"),
        })?;
        Self::from_pkcs8(&pkcs8).map_err(|cause| IssuerError::Key {
            path: path.display().to_string(),
            cause,
        })
    }

    fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            encoding: EncodingKey::from_ec_der(pkcs8),
            decoding: DecodingKey::from_ec_der(pair.public_key().as_ref()),
        })
    }

    /// A Cognito-style access token for `user`, in the `admin` group if asked.
    pub fn token(
        &self,
        user: &str,
        admin: bool,
        valid_for: Duration,
    ) -> Result<String, IssuerError> {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "sub": user,
            "username": user,
            "iss": issuer_url(),
            "client_id": LOCAL_CLIENT_ID,
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": now,
            "iat": now,
            "exp": i64::try_from(valid_for.as_secs()).ok().and_then(|secs| now.checked_add(secs)).unwrap_or(i64::MAX),
            "jti": ulid::Ulid::generate().to_string(),
        });
        if admin {
            claims["cognito:groups"] = json!(["admin"]);
        }
        self.sign(&claims)
    }

    /// Signs arbitrary claims; tests use it for expired or foreign tokens.
    pub fn sign(&self, claims: &Value) -> Result<String, IssuerError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(KEY_ID.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| IssuerError::Sign(e.to_string()))
    }

    /// API Gateway's JWT authorizer: signature, `iss`, `aud` (or `client_id` for access
    /// tokens) in `audience`, `exp` and `nbf`. Returns the claims as API Gateway hands them
    /// to Lambda: every value a string, arrays flattened to `[a b]`.
    pub fn verify(
        &self,
        authorization: &str,
        issuer: &str,
        audience: &[String],
    ) -> Result<BTreeMap<String, String>, Refused> {
        let token = authorization
            .strip_prefix("Bearer ")
            .unwrap_or(authorization)
            .trim();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(
            token,
            &self.decoding,
            &validation,
        )
        .map_err(|e| Refused(e.to_string()))?;
        let claims = data.claims;
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.as_str()],
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
            _ => claims
                .get("client_id")
                .and_then(Value::as_str)
                .into_iter()
                .collect(),
        };
        if !audiences
            .iter()
            .any(|aud| audience.iter().any(|expected| expected == aud))
        {
            return Err(Refused("audience not allowed".into()));
        }
        Ok(claims
            .into_iter()
            .map(|(name, value)| (name, claim_string(&value)))
            .collect())
    }
}

fn claim_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(claim_string).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> (Issuer, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("shop-local-issuer-{}", ulid::Ulid::generate()));
        (Issuer::load_or_create(&dir).unwrap(), dir)
    }

    fn audience() -> Vec<String> {
        vec![LOCAL_CLIENT_ID.to_owned()]
    }

    #[test]
    fn a_token_verifies_with_flattened_groups_and_survives_a_reload() {
        let (issuer, dir) = issuer();
        let token = issuer
            .token("alice", true, Duration::from_secs(60))
            .unwrap();
        let claims = issuer
            .verify(&format!("Bearer {token}"), &issuer_url(), &audience())
            .unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["cognito:groups"], "[admin]");
        let reloaded = Issuer::load(&dir).unwrap();
        assert!(
            reloaded.verify(&token, &issuer_url(), &audience()).is_ok(),
            "same key after a restart"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn what_api_gateway_refuses_is_refused() {
        let (issuer, dir) = issuer();
        let (other, other_dir) = self::issuer();
        let now = chrono::Utc::now().timestamp();
        let base =
            json!({"sub": "u", "iss": issuer_url(), "client_id": LOCAL_CLIENT_ID, "exp": now + 60});
        let with = |key: &str, value: Value| {
            let mut claims = base.clone();
            claims[key] = value;
            issuer.sign(&claims).unwrap()
        };
        let refused = [
            ("expired", with("exp", json!(now - 1))),
            ("not yet valid", with("nbf", json!(now + 60))),
            ("other issuer", with("iss", json!("https://evil.example"))),
            ("other client", with("client_id", json!("someone-else"))),
            ("other audience", with("aud", json!("someone-else"))),
            ("other key", other.sign(&base).unwrap()),
            ("garbage", "not.a.token".to_owned()),
        ];
        for (case, token) in refused {
            assert!(
                issuer.verify(&token, &issuer_url(), &audience()).is_err(),
                "{case}"
            );
        }
        assert!(
            issuer
                .verify(
                    &with("aud", json!(LOCAL_CLIENT_ID)),
                    &issuer_url(),
                    &audience()
                )
                .is_ok(),
            "id token"
        );
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(other_dir).unwrap();
    }
}
