//! Building the AWS clients once per process, from the environment.

use std::time::{Duration, Instant};

use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, HttpClientError};

/// The roots of Amazon Trust Services (Amazon Root CA 1 to 4 and Starfield Services Root
/// G2), which every AWS endpoint's certificate chains to.
const AMAZON_TRUST_SERVICES_ROOTS: &[u8] = include_bytes!("amazon-trust-services-roots.pem");

/// The shared SDK configuration. `AWS_ENDPOINT_URL` (set by shop-local and the tests to
/// point at moto) is honoured by the SDK itself, so the same code runs against AWS and
/// the emulator. Timeouts are short because every caller is a Lambda with a deadline:
/// a stuck connection must fail and be retried, not eat the invocation.
pub async fn sdk_config() -> Result<SdkConfig, HttpClientError> {
    let http_client = http_client(std::env::var("AWS_ENDPOINT_URL").ok().as_deref())?;
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        // Stalled-stream protection fails a transfer after 5 s below a minimum throughput;
        // the attempt timeout below fails any call after 3 s, first. Disabled, it saves a
        // throughput monitor and its timer on every request and response body.
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .load()
        .await)
}

/// The SDK's own HTTPS client (rustls on aws-lc-rs), trusting Amazon's roots only. Its
/// default trusts the machine's store, which rustls reads at the first connection: the
/// CA bundle (~140 certificates to parse) and, where a directory of them is found too
/// (Debian's /etc/ssl/certs: a few hundred files), every file in it; on a Debian machine
/// the largest part of a cold start's init after the DynamoDB round trip. An endpoint
/// elsewhere over HTTPS (an emulator with its own certificate) gets the machine's store
/// as well.
fn http_client(endpoint_url: Option<&str>) -> Result<SharedHttpClient, HttpClientError> {
    let trust_store = TrustStore::empty()
        .with_native_roots(needs_machine_roots(endpoint_url))
        .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS);
    let tls_context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()?;
    Ok(Builder::new()
        .tls_provider(tls::Provider::rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(tls_context)
        .build_https())
}

/// Only an HTTPS endpoint that is not AWS's may have a certificate Amazon did not sign.
fn needs_machine_roots(endpoint_url: Option<&str>) -> bool {
    endpoint_url.is_some_and(|url| url.starts_with("https://") && !is_aws_host(url))
}

fn is_aws_host(url: &str) -> bool {
    let host = url
        .trim_start_matches("https://")
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    host.ends_with(".amazonaws.com") || host.ends_with(".api.aws")
}

/// A required setting from the function's environment (its template declares it).
pub fn required_env(name: &str) -> Result<String, MissingSetting> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(MissingSetting(name.to_owned())),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set; the function's template must declare it")]
pub struct MissingSetting(pub String);

/// Opens the event bus connection (DNS, TCP, TLS) during init, when no caller waits on it,
/// instead of during the first request.
pub async fn warm_eventbridge(client: &aws_sdk_eventbridge::Client, bus: &str) {
    let started = Instant::now();
    match client.describe_event_bus().name(bus).send().await {
        Ok(_) => tracing::info!(
            bus,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "eventbridge connection warmed"
        ),
        Err(error) => {
            tracing::warn!(bus, error = %aws_sdk_eventbridge::error::DisplayErrorContext(&error), "could not warm the eventbridge connection")
        }
    }
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use super::*;

    /// The TLS provider panics on a certificate it cannot parse: it must not be ours.
    #[test]
    fn the_embedded_roots_are_the_five_amazon_trust_services_certificates() {
        let roots = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_ROOTS)
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(roots.len(), 5);
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(
                roots.iter().any(|der| der
                    .windows(name.len())
                    .any(|bytes| bytes == name.as_bytes())),
                "{name} is missing"
            );
        }
    }

    #[test]
    fn only_an_https_endpoint_outside_aws_trusts_the_machines_roots() {
        assert!(!needs_machine_roots(None));
        assert!(!needs_machine_roots(Some("http://127.0.0.1:4566")));
        assert!(!needs_machine_roots(Some(
            "https://dynamodb.eu-west-1.amazonaws.com"
        )));
        assert!(needs_machine_roots(Some("https://emulator.example:4566")));
        assert!(needs_machine_roots(Some(
            "https://amazonaws.com.attacker.example/x"
        )));
    }

    #[test]
    fn the_client_builds_with_either_trust_store() {
        assert!(http_client(None).is_ok());
        assert!(http_client(Some("https://emulator.example:4566")).is_ok());
    }
}
