//! The HTTPS client for calls to the public internet (a payment provider, an issuer's
//! JWKS): rustls on aws-lc-rs, the TLS stack the SDK already builds, trusting the Mozilla
//! root program's roots compiled in. reqwest's default, the platform verifier, reads and
//! parses every file of the machine's certificate store when the client is built, in the
//! init of every cold start.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTPS client: {0}")]
pub struct ClientError(pub String);

/// A client that gives up on a connection after `connect_timeout` and on a whole request
/// after `timeout`.
pub fn client(
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<reqwest::Client, ClientError> {
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError(e.to_string()))?;
    reqwest::Client::builder()
        .tls_certs_only(roots)
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .build()
        .map_err(|e| ClientError(e.to_string()))
}
