//! The checks of API Gateway's JWT authorizer, for what has none: a WebSocket API's
//! `$connect` (browsers cannot set headers on a WebSocket, so the token comes in the query
//! string, and API Gateway's WebSocket APIs offer no JWT authorizer). shop-local's HTTP
//! gateway runs the same checks, so the two front doors cannot disagree.
//!
//! Check for check as "Controlling access to HTTP APIs with JWT authorizers" lists them:
//! the header's `kid` names a key of the issuer's JWKS and the token is signed with that
//! key, in that key's algorithm (neither `none` nor an HMAC made with a public key); `iss`
//! is the issuer; `aud`, or for an access token without one `client_id`, is an expected
//! audience; `exp` is after now, and `nbf` and `iat`, when present, before now, with no
//! leeway.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

pub type Claims = Map<String, Value>;

/// Why a token was refused. API Gateway answers 401 to all of them alike; the reason is
/// for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The token names a key the JWKS does not hold: after a key rotation, the JWKS is
    /// worth reading again.
    #[error("kid {0} is not in the JWKS")]
    UnknownKey(String),
    #[error("{0}")]
    Invalid(String),
}

fn invalid(why: impl Into<String>) -> Refused {
    Refused::Invalid(why.into())
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("JWKS at {url}: {cause}")]
    Fetch { url: String, cause: String },
    #[error("JWKS key {kid}: {cause}")]
    Key { kid: String, cause: String },
}

/// The checks, with the issuer's keys.
pub struct Verifier {
    issuer: String,
    audiences: Vec<String>,
    keys: HashMap<String, (DecodingKey, Algorithm)>,
}

impl Verifier {
    /// A verifier of `issuer`'s tokens for `audiences`, with the keys of `jwks`. A key
    /// without a `kid` can never be chosen by a token, and is left out.
    pub fn new(jwks: &JwkSet, issuer: &str, audiences: &[String]) -> Result<Self, KeysError> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let key_error = |cause: String| KeysError::Key {
                kid: kid.clone(),
                cause,
            };
            let algorithm = algorithm_of(jwk).map_err(key_error)?;
            let key = DecodingKey::from_jwk(jwk).map_err(|e| key_error(e.to_string()))?;
            keys.insert(kid, (key, algorithm));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audiences: audiences.to_vec(),
            keys,
        })
    }

    /// The token's claims, if it passes every check at `now` (seconds since the epoch).
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, Refused> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| invalid(format!("header: {e}")))?;
        let kid = header.kid.ok_or_else(|| invalid("no kid"))?;
        let (key, algorithm) = self
            .keys
            .get(&kid)
            .ok_or_else(|| Refused::UnknownKey(kid.clone()))?;
        if header.alg != *algorithm {
            return Err(invalid(format!(
                "alg {:?} is not its key's {algorithm:?}",
                header.alg
            )));
        }
        let mut validation = Validation::new(*algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss"]);
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| invalid(e.to_string()))?
            .claims;
        // jsonwebtoken reads its own clock; these two are ours, so tests can hold `now`.
        if !matches!(claims.get("exp").and_then(Value::as_i64), Some(exp) if exp > now) {
            return Err(invalid("expired"));
        }
        if let Some(iat) = claims.get("iat") {
            match iat.as_i64() {
                Some(iat) if iat <= now => {}
                _ => return Err(invalid("iat is not before now")),
            }
        }
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
            .any(|aud| self.audiences.iter().any(|expected| expected == aud))
        {
            return Err(invalid("audience not allowed"));
        }
        Ok(claims)
    }
}

/// The algorithm a key signs with: the one it names, or the one its type implies. A
/// symmetric key has no place in a JWKS: a verifier holding one would accept an HMAC made
/// by anyone who read the JWKS.
fn algorithm_of(jwk: &Jwk) -> Result<Algorithm, String> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            ref other => return Err(format!("curve {other:?} is not supported")),
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric key".into()),
        _ => return Err("a key type this verifier does not know".into()),
    };
    let named = match jwk.common.key_algorithm {
        Some(named) => Algorithm::from_str(&named.to_string()).map_err(|e| e.to_string())?,
        None => return Ok(implied),
    };
    if matches!(
        named,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err("a symmetric algorithm".into());
    }
    Ok(named)
}

/// The least time between two reads of the JWKS: a stream of tokens naming a made-up
/// `kid` must not become a stream of requests to the issuer.
const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// A [`Verifier`] on the JWKS at a URL (the issuer's `/.well-known/jwks.json`), read at
/// init and again when a token names a key it does not hold (the issuer rotated its keys).
pub struct RemoteVerifier {
    client: reqwest::Client,
    url: String,
    issuer: String,
    audiences: Vec<String>,
    current: RwLock<(std::sync::Arc<Verifier>, Instant)>,
}

impl RemoteVerifier {
    pub async fn fetch(
        client: reqwest::Client,
        url: &str,
        issuer: &str,
        audiences: &[String],
    ) -> Result<Self, KeysError> {
        let verifier = read_keys(&client, url, issuer, audiences).await?;
        Ok(Self {
            client,
            url: url.to_owned(),
            issuer: issuer.to_owned(),
            audiences: audiences.to_vec(),
            current: RwLock::new((std::sync::Arc::new(verifier), Instant::now())),
        })
    }

    pub async fn verify(&self, token: &str, now: i64) -> Result<Claims, Refused> {
        let (verifier, read_at) = self.snapshot();
        match verifier.verify(token, now) {
            Err(refused @ Refused::UnknownKey(_)) if read_at.elapsed() >= REFETCH_AT_MOST_EVERY => {
                match read_keys(&self.client, &self.url, &self.issuer, &self.audiences).await {
                    Ok(fresh) => {
                        let fresh = std::sync::Arc::new(fresh);
                        if let Ok(mut current) = self.current.write() {
                            *current = (fresh.clone(), Instant::now());
                        }
                        fresh.verify(token, now)
                    }
                    Err(error) => {
                        if let Ok(mut current) = self.current.write() {
                            current.1 = Instant::now();
                        }
                        tracing::warn!(error = %error, "cannot read the JWKS again; keeping the keys held");
                        Err(refused)
                    }
                }
            }
            outcome => outcome,
        }
    }

    fn snapshot(&self) -> (std::sync::Arc<Verifier>, Instant) {
        match self.current.read() {
            Ok(current) => (current.0.clone(), current.1),
            Err(poisoned) => {
                let current = poisoned.into_inner();
                (current.0.clone(), current.1)
            }
        }
    }
}

async fn read_keys(
    client: &reqwest::Client,
    url: &str,
    issuer: &str,
    audiences: &[String],
) -> Result<Verifier, KeysError> {
    let fetch_error = |cause: String| KeysError::Fetch {
        url: url.to_owned(),
        cause,
    };
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| fetch_error(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fetch_error(format!("answered {}", response.status())));
    }
    let jwks: JwkSet = response
        .json()
        .await
        .map_err(|e| fetch_error(e.to_string()))?;
    Verifier::new(&jwks, issuer, audiences)
}

/// What checks a token: a [`Verifier`] on keys in hand (tests), or a [`RemoteVerifier`]
/// on the issuer's JWKS (a Lambda).
pub trait TokenCheck: Sync {
    fn check(&self, token: &str, now: i64) -> impl Future<Output = Result<Claims, Refused>> + Send;
}

impl TokenCheck for Verifier {
    async fn check(&self, token: &str, now: i64) -> Result<Claims, Refused> {
        self.verify(token, now)
    }
}

impl TokenCheck for RemoteVerifier {
    async fn check(&self, token: &str, now: i64) -> Result<Claims, Refused> {
        self.verify(token, now).await
    }
}
