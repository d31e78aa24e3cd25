//! The local token issuer: plays Cognito's part. It signs ES256 access tokens shaped like
//! Cognito's (`sub`, `client_id`, `token_use`, `cognito:groups`, ...) for the user pool
//! and app client the templates' `!Ref UserPool` / `!Ref UserPoolClient` resolve to
//! locally, and checks them as API Gateway's JWT authorizer does. Its key lives in the
//! run directory, so tokens printed by `shop-local token` work with the running stack.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
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
    /// The public key as an uncompressed SEC1 point, for the JWKS.
    public_point: Vec<u8>,
    /// The verifier of each (issuer, audience) a route names, built once: every request
    /// through the gateway is checked, and the keys do not change while the stack runs.
    verifiers: Mutex<HashMap<RouteAudience, Arc<shop_platform::jwt::Verifier>>>,
}

/// The issuer and the audience a route's authorizer expects.
type RouteAudience = (String, Vec<String>);

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
            public_point: pair.public_key().as_ref().to_vec(),
            verifiers: Mutex::new(HashMap::new()),
        })
    }

    /// The issuer's public keys as a JWKS (RFC 7517), what `jwks_uri` serves: one P-256
    /// key, under the `kid` every token names.
    pub fn jwks(&self) -> Value {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // An uncompressed SEC1 point: 0x04, then x and y, 32 bytes each.
        let point = &self.public_point;
        let (x, y) = point
            .get(1..)
            .unwrap_or_default()
            .split_at(point.len().saturating_sub(1) / 2);
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": KEY_ID,
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]})
    }

    /// The OpenID Connect discovery document of the local issuer, served beside its JWKS
    /// under `base_url` (the running stack's API).
    pub fn openid_configuration(&self, base_url: &str) -> Value {
        json!({
            "issuer": issuer_url(),
            "jwks_uri": format!("{base_url}/.well-known/jwks.json"),
            "id_token_signing_alg_values_supported": ["ES256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["code"],
            "token_endpoint_auth_methods_supported": ["none"],
        })
    }

    /// A Cognito-style access token for `user`, in the `admin` group if asked.
    pub fn token(
        &self,
        user: &str,
        admin: bool,
        valid_for: Duration,
    ) -> Result<String, IssuerError> {
        self.sign_for(
            user,
            admin,
            valid_for,
            json!({
                "username": user,
                "client_id": LOCAL_CLIENT_ID,
                "token_use": "access",
                "scope": "aws.cognito.signin.user.admin",
                "jti": ulid::Ulid::generate().to_string(),
            }),
        )
    }

    /// A Cognito-style ID token for `user`: who signed in, for the app (the API takes the
    /// access token).
    pub fn id_token(
        &self,
        user: &str,
        admin: bool,
        valid_for: Duration,
    ) -> Result<String, IssuerError> {
        self.sign_for(
            user,
            admin,
            valid_for,
            json!({
                "cognito:username": user,
                "aud": LOCAL_CLIENT_ID,
                "token_use": "id",
            }),
        )
    }

    /// Signs `claims` with what every token for `user` carries: subject, issuer, times and
    /// groups.
    fn sign_for(
        &self,
        user: &str,
        admin: bool,
        valid_for: Duration,
        mut claims: Value,
    ) -> Result<String, IssuerError> {
        let now = chrono::Utc::now().timestamp();
        let expires = i64::try_from(valid_for.as_secs())
            .ok()
            .and_then(|secs| now.checked_add(secs))
            .unwrap_or(i64::MAX);
        claims["sub"] = json!(user);
        claims["iss"] = json!(issuer_url());
        claims["auth_time"] = json!(now);
        claims["iat"] = json!(now);
        claims["exp"] = json!(expires);
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

    /// API Gateway's JWT authorizer, check for check as its guide documents them
    /// (`shop_platform::jwt`, the code the WebSocket API's `$connect` runs too), on the
    /// token after a `Bearer` scheme (in any case) if there is one, against this issuer's
    /// JWKS. Returns the claims as API Gateway hands them to Lambda: every value a string,
    /// arrays flattened to `[a b]`.
    pub fn verify(
        &self,
        authorization: &str,
        issuer: &str,
        audience: &[String],
    ) -> Result<BTreeMap<String, String>, Refused> {
        let token = bearer_token(authorization);
        let verifier = self.verifier(issuer, audience)?;
        let claims = verifier
            .verify(token, chrono::Utc::now().timestamp())
            .map_err(|refused| Refused(refused.to_string()))?;
        Ok(claims
            .into_iter()
            .map(|(name, value)| (name, claim_string(&value)))
            .collect())
    }
}

impl Issuer {
    fn verifier(
        &self,
        issuer: &str,
        audience: &[String],
    ) -> Result<Arc<shop_platform::jwt::Verifier>, Refused> {
        let key = (issuer.to_owned(), audience.to_vec());
        let mut verifiers = self
            .verifiers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(verifier) = verifiers.get(&key) {
            return Ok(verifier.clone());
        }
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(self.jwks())
            .map_err(|e| Refused(format!("the issuer's own JWKS: {e}")))?;
        let verifier = Arc::new(
            shop_platform::jwt::Verifier::new(&jwks, issuer, audience)
                .map_err(|e| Refused(e.to_string()))?,
        );
        verifiers.insert(key, verifier.clone());
        Ok(verifier)
    }
}

/// Tokens API Gateway's authorizer must refuse, each forged or broken one way, by name:
/// what the attack suites (the unit tests below, and the gateway's in `tests/e2e.rs`) send.
/// `other` is an issuer with another key.
pub fn forged_tokens(issuer: &Issuer, other: &Issuer) -> Vec<(&'static str, String)> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = chrono::Utc::now().timestamp();
    let base = json!({"sub": "mallory", "iss": issuer_url(), "client_id": LOCAL_CLIENT_ID,
                      "token_use": "access", "iat": now, "exp": now + 300});
    let with = |key: &str, value: Value| {
        let mut claims = base.clone();
        claims[key] = value;
        issuer.sign(&claims).unwrap_or_default()
    };
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let valid = issuer.sign(&base).unwrap_or_default();
    let signature = valid.rsplit('.').next().unwrap_or_default().to_owned();
    let header_of = |token: &str| token.split('.').next().unwrap_or_default().to_owned();
    // The same signature over other claims.
    let tampered = |change: &dyn Fn(&mut Value)| {
        let mut claims = base.clone();
        change(&mut claims);
        format!("{}.{}.{signature}", header_of(&valid), encode(&claims))
    };
    let signed_with = |header: Header, claims: &Value, key: &EncodingKey| {
        jsonwebtoken::encode(&header, claims, key).unwrap_or_default()
    };
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some(KEY_ID.to_owned());
    let hs256_token = EncodingKey::from_secret(&issuer.public_point)
        .map(|key| signed_with(hs256, &base, &key))
        .unwrap_or_default();
    let mut unknown_kid = Header::new(Algorithm::ES256);
    unknown_kid.kid = Some("not-in-the-jwks".to_owned());
    let no_kid = Header::new(Algorithm::ES256);
    vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                encode(&json!({"alg": "none", "typ": "JWT", "kid": KEY_ID})),
                encode(&base)
            ),
        ),
        ("HS256 keyed with the public key", hs256_token),
        (
            "tampered payload",
            tampered(&|claims| claims["sub"] = json!("alice")),
        ),
        (
            "forged groups",
            tampered(&|claims| claims["cognito:groups"] = json!(["admin"])),
        ),
        ("expired", with("exp", json!(now - 1))),
        ("nbf in the future", with("nbf", json!(now + 60))),
        ("iat in the future", with("iat", json!(now + 60))),
        (
            "wrong iss",
            with(
                "iss",
                json!("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"),
            ),
        ),
        ("wrong aud", with("aud", json!("another-app"))),
        ("wrong client_id", with("client_id", json!("another-app"))),
        (
            "unknown kid",
            signed_with(unknown_kid, &base, &issuer.encoding),
        ),
        ("missing kid", signed_with(no_kid, &base, &issuer.encoding)),
        ("another key", other.sign(&base).unwrap_or_default()),
        ("no exp", {
            let mut claims = base.clone();
            claims.as_object_mut().map(|c| c.remove("exp"));
            issuer.sign(&claims).unwrap_or_default()
        }),
        ("garbage", "not.a.token".to_owned()),
    ]
}

/// The token of an `Authorization` header: after a `Bearer` scheme in any case (RFC 9110
/// makes the scheme case-insensitive), or the whole value when it names no scheme.
fn bearer_token(authorization: &str) -> &str {
    let value = authorization.trim();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => value,
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
    use jsonwebtoken::{DecodingKey, Validation};

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
    fn a_bearer_scheme_is_read_in_any_case_and_a_bare_token_as_it_is() {
        let (issuer, dir) = issuer();
        let token = issuer.token("bob", false, Duration::from_secs(60)).unwrap();
        for header in [
            format!("Bearer {token}"),
            format!("bearer {token}"),
            format!("BEARER  {token}"),
            token.clone(),
        ] {
            assert!(
                issuer.verify(&header, &issuer_url(), &audience()).is_ok(),
                "{header}"
            );
        }
        assert!(
            issuer
                .verify(&format!("Basic {token}"), &issuer_url(), &audience())
                .is_err()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_id_token_with_its_aud_is_accepted() {
        let (issuer, dir) = issuer();
        let now = chrono::Utc::now().timestamp();
        let token = issuer
            .sign(&json!({"sub": "u", "iss": issuer_url(), "aud": LOCAL_CLIENT_ID, "iat": now, "exp": now + 60}))
            .unwrap();
        assert!(issuer.verify(&token, &issuer_url(), &audience()).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_jwks_holds_the_key_every_token_names() {
        use base64::Engine;
        let (issuer, dir) = issuer();
        let jwks = issuer.jwks();
        let key = &jwks["keys"][0];
        assert_eq!(
            (
                key["kty"].as_str(),
                key["crv"].as_str(),
                key["kid"].as_str()
            ),
            (Some("EC"), Some("P-256"), Some(KEY_ID))
        );
        // The JWK verifies a token, as an outside verifier would use it.
        let decoding =
            DecodingKey::from_ec_components(key["x"].as_str().unwrap(), key["y"].as_str().unwrap())
                .unwrap();
        let token = issuer
            .token("carol", false, Duration::from_secs(60))
            .unwrap();
        let mut validation = Validation::new(Algorithm::ES256);
        validation.validate_aud = false;
        assert!(jsonwebtoken::decode::<Value>(&token, &decoding, &validation).is_ok());
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(key["x"].as_str().unwrap())
            .unwrap();
        assert_eq!(x.len(), 32);
        let discovery = issuer.openid_configuration("http://127.0.0.1:3000");
        assert_eq!(discovery["issuer"], issuer_url());
        assert_eq!(
            discovery["jwks_uri"],
            "http://127.0.0.1:3000/.well-known/jwks.json"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// One test per attack of the suite, so a failure names it.
    macro_rules! refused {
        ($($test:ident: $attack:literal),+ $(,)?) => {$(
            #[test]
            fn $test() {
                let (issuer, dir) = issuer();
                let (other, other_dir) = self::issuer();
                let (_, token) = forged_tokens(&issuer, &other)
                    .into_iter()
                    .find(|(name, _)| *name == $attack)
                    .expect("the suite has this attack");
                let refused = issuer.verify(&format!("Bearer {token}"), &issuer_url(), &audience());
                assert!(refused.is_err(), "{}: accepted", $attack);
                std::fs::remove_dir_all(dir).unwrap();
                std::fs::remove_dir_all(other_dir).unwrap();
            }
        )+};
    }

    refused!(
        alg_none_is_refused: "alg none",
        hs256_keyed_with_the_public_key_is_refused: "HS256 keyed with the public key",
        a_tampered_payload_is_refused: "tampered payload",
        forged_groups_are_refused: "forged groups",
        an_expired_token_is_refused: "expired",
        nbf_in_the_future_is_refused: "nbf in the future",
        iat_in_the_future_is_refused: "iat in the future",
        a_wrong_iss_is_refused: "wrong iss",
        a_wrong_aud_is_refused: "wrong aud",
        a_wrong_client_id_is_refused: "wrong client_id",
        an_unknown_kid_is_refused: "unknown kid",
        a_missing_kid_is_refused: "missing kid",
        another_key_is_refused: "another key",
        a_token_without_exp_is_refused: "no exp",
        garbage_is_refused: "garbage",
    );

    #[test]
    fn the_suite_is_whole() {
        let (issuer, dir) = issuer();
        let (other, other_dir) = self::issuer();
        assert_eq!(forged_tokens(&issuer, &other).len(), 15);
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(other_dir).unwrap();
    }
}
