//! Lambda and AWS plumbing, written once for every capability: client construction (the
//! SDK's, and the HTTPS client to the internet), tracing, problem+json errors, JWT
//! verification, request parsing and validation, cursor pagination, the capability's
//! table, the transactional outbox, the outbox relay, the SQS consumer harness, and
//! business metrics (CloudWatch EMF).

pub mod aws;
pub mod consumer;
pub mod entrypoint;
pub mod http;
pub mod jwt;
pub mod metrics;
pub mod outbound;
pub mod outbox;
pub mod pagination;
pub mod problem;
pub mod relay;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod transaction;
pub mod validate;

pub use problem::{FieldError, Problem};

/// The modules from the bottom up: each may use only the modules before it, so the crate
/// reads as layers (clients, then the table and its transactions, then HTTP and the
/// harnesses) and a change low down never has to reason about what sits on top.
#[cfg(test)]
const LAYERS: &[(&str, &str)] = &[
    ("problem", include_str!("problem.rs")),
    ("validate", include_str!("validate.rs")),
    ("telemetry", include_str!("telemetry.rs")),
    ("aws", include_str!("aws.rs")),
    ("outbound", include_str!("outbound.rs")),
    ("jwt", include_str!("jwt.rs")),
    ("secret", include_str!("secret.rs")),
    ("metrics", include_str!("metrics.rs")),
    ("outbox", include_str!("outbox.rs")),
    ("pagination", include_str!("pagination.rs")),
    ("transaction", include_str!("transaction.rs")),
    ("store", include_str!("store.rs")),
    ("http", include_str!("http.rs")),
    ("consumer", include_str!("consumer.rs")),
    ("relay", include_str!("relay.rs")),
    ("entrypoint", include_str!("entrypoint.rs")),
];

#[cfg(test)]
mod tests {
    use super::LAYERS;

    #[test]
    fn every_module_uses_only_the_layers_below_it() {
        let names: Vec<&str> = LAYERS.iter().map(|(name, _)| *name).collect();
        let declared: Vec<&str> = include_str!("lib.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("pub mod "))
            .map(|name| name.trim_end_matches(';'))
            .collect();
        let mut sorted_names = names.clone();
        sorted_names.sort_unstable();
        let mut sorted_declared = declared.clone();
        sorted_declared.sort_unstable();
        assert_eq!(sorted_names, sorted_declared, "every module has its layer");
        let mut upward = Vec::new();
        for (position, (module, source)) in LAYERS.iter().enumerate() {
            // Doc links may point anywhere; code may not.
            let code: String = source
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for (above, _) in &LAYERS[position + 1..] {
                if code.contains(&format!("crate::{above}::"))
                    || code.contains(&format!("crate::{above}}}"))
                {
                    upward.push(format!("{module} uses {above}"));
                }
            }
        }
        assert!(upward.is_empty(), "upward uses: {upward:?}");
    }
}
