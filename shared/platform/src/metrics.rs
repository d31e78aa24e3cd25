//! Business metrics in CloudWatch's Embedded Metric Format (EMF): a count of each business
//! fact (an order placed, a payment declined, ...), written to stdout as JSON lines that
//! CloudWatch Logs turns into metrics. No API call, no extra permission.
//!
//! The contract others build alarms and dashboards on: namespace `METRICS_NAMESPACE`
//! (`shop` when unset), every metric a Count with the dimension `Capability` (the
//! function's `CAPABILITY`), plus `Reason` where a fact has one.
//!
//! A fact is counted once it is true: a consumer stages its counts on the
//! [`Transaction`](crate::transaction::Transaction) that makes the fact true and the harness
//! records them only if that transaction commits, so a redelivery (its marker already
//! written) counts nothing; an API records after its write succeeded. [`init`] installs the
//! collector, and the entrypoint [`flush`]es it after every invocation, before answering.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use ::metrics::{Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_cloudwatch_embedded::Collector;
use serde::Serialize;

use crate::aws::required_env;

/// The function's capability (`ordering`, `payment`, ...): the `Capability` dimension of
/// everything it counts. The capability's template sets it for all its functions: Lambda
/// runs every binary as `bootstrap`, so the binary's name cannot tell.
pub const CAPABILITY_VARIABLE: &str = "CAPABILITY";
/// The CloudWatch namespace; the templates set `shop-<stage>`.
pub const NAMESPACE_VARIABLE: &str = "METRICS_NAMESPACE";
/// The namespace when [`NAMESPACE_VARIABLE`] is unset.
pub const DEFAULT_NAMESPACE: &str = "shop";
/// The dimension every metric carries.
pub const CAPABILITY_DIMENSION: &str = "Capability";
/// The dimension of a fact that has a reason (why an order was cancelled, say).
pub const REASON_DIMENSION: &str = "Reason";

const METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The process's collector, once [`init`] (or [`install`]) has run.
static COLLECTOR: OnceLock<&'static Collector> = OnceLock::new();

/// One business fact to count: a metric name of the contract and, for facts that have
/// one, their reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    name: &'static str,
    reason: Option<String>,
}

impl Count {
    pub const fn of(name: &'static str) -> Self {
        Self { name, reason: None }
    }

    /// The fact counted under the `Reason` dimension, spelled as the events spell it (its
    /// serde name: `out_of_stock`, `provider_unavailable`), so dashboards filter on the
    /// words the events carry. A dimension makes one metric per value: only for reasons
    /// from a closed set (an enum), never for ids.
    pub fn because(self, reason: impl Serialize) -> Self {
        let spelling = match serde_json::to_value(&reason) {
            Ok(serde_json::Value::String(spelling)) => spelling,
            other => {
                // A programming error (a reason that is not a unit enum variant); the
                // count still goes out, under a value that says what went wrong.
                tracing::error!(metric = self.name, reason = ?other, "a metric's reason does not spell as a string");
                "unspellable".to_owned()
            }
        };
        Self {
            reason: Some(spelling),
            ..self
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    fn key(&self) -> Key {
        match &self.reason {
            None => Key::from_static_name(self.name),
            Some(reason) => Key::from_parts(
                self.name,
                vec![Label::new(REASON_DIMENSION, reason.clone())],
            ),
        }
    }
}

/// Where counts go: the process's recorder (the EMF collector [`init`] installs; nothing
/// is kept before it is), or a recorder of a test's own. The `metrics` recorder is global
/// to the process and a test binary runs its tests at once, so each test hands its own
/// recorder to the harness or API it drives and sees only its own counts.
#[derive(Clone, Default)]
pub struct Metrics {
    own: Option<Arc<dyn Recorder + Send + Sync>>,
}

impl Metrics {
    /// The process's recorder: what every function uses.
    pub fn global() -> Self {
        Self::default()
    }

    /// Counts go to `recorder` instead of the process's.
    pub fn recorded_by(recorder: Arc<dyn Recorder + Send + Sync>) -> Self {
        Self {
            own: Some(recorder),
        }
    }

    /// Counts `fact` once. Call it only after the write that makes the fact true.
    pub fn count(&self, fact: &Count) {
        self.count_all(std::slice::from_ref(fact));
    }

    /// Sets the level `name` measures now (how many are waiting, how old the oldest is):
    /// what a flush writes is the last level set since the one before.
    pub fn gauge(&self, name: &'static str, value: f64) {
        let key = Key::from_static_name(name);
        match &self.own {
            Some(recorder) => recorder.register_gauge(&key, &METADATA).set(value),
            None => ::metrics::with_recorder(|recorder| {
                recorder.register_gauge(&key, &METADATA).set(value)
            }),
        }
    }

    /// Counts each fact once.
    pub fn count_all(&self, facts: &[Count]) {
        if facts.is_empty() {
            return;
        }
        match &self.own {
            Some(recorder) => record(recorder.as_ref(), facts),
            None => ::metrics::with_recorder(|recorder| record(recorder, facts)),
        }
    }
}

fn record(recorder: &dyn Recorder, facts: &[Count]) {
    for fact in facts {
        // The unit is declared per name (the collector keeps it beside the counters); it
        // costs a map insert, and keeps every name a Count without a list to maintain.
        recorder.describe_counter(
            KeyName::from_const_str(fact.name),
            Some(Unit::Count),
            SharedString::const_str(""),
        );
        recorder
            .register_counter(&fact.key(), &METADATA)
            .increment(1);
    }
}

/// Installs the EMF collector as the process's recorder, for the capability `CAPABILITY`
/// names, in the namespace `METRICS_NAMESPACE` names. Without `CAPABILITY` the init fails
/// (in shop-local too, which reads the same templates), rather than count without the
/// dimension every alarm filters on. Calling it twice is harmless.
pub fn init() -> Result<(), lambda_runtime::Error> {
    let capability = required_env(CAPABILITY_VARIABLE)?;
    let namespace = namespace(std::env::var(NAMESPACE_VARIABLE).ok());
    install(&namespace, &capability)
}

/// [`init`] with its settings given: the collector for `capability` in `namespace`.
pub fn install(namespace: &str, capability: &str) -> Result<(), lambda_runtime::Error> {
    if COLLECTOR.get().is_some() {
        return Ok(());
    }
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(namespace.to_owned())
        .with_dimension(CAPABILITY_DIMENSION, capability.to_owned())
        .init()
        .map_err(|error| format!("cannot install the metrics collector: {error}"))?;
    let _ = COLLECTOR.set(collector);
    Ok(())
}

/// The namespace `METRICS_NAMESPACE` names, or [`DEFAULT_NAMESPACE`].
fn namespace(setting: Option<String>) -> String {
    setting
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
}

/// Writes what was counted since the last flush to stdout and starts counting afresh.
/// Nothing when nothing was counted, or before [`init`].
pub fn flush() {
    // Not locked for the serialising: stdout's `write_all` holds its lock for the one write.
    if let Err(error) = flush_to(&mut std::io::stdout()) {
        tracing::error!(error = %error, "could not write the metrics; they are lost");
    }
}

/// [`flush`] to `writer`. The collector writes one EMF document per set of dimensions
/// (one line each) in many small writes: they are gathered first and handed over in one
/// write, so that no log line of another thread lands inside a document.
pub fn flush_to(writer: &mut impl Write) -> std::io::Result<()> {
    let Some(collector) = COLLECTOR.get() else {
        return Ok(());
    };
    let mut documents = Vec::new();
    collector.flush(&mut documents)?;
    if documents.is_empty() {
        return Ok(());
    }
    writer.write_all(&documents)?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_is_the_setting_or_shop() {
        assert_eq!(namespace(Some("shop-prod".into())), "shop-prod");
        assert_eq!(namespace(Some(" shop-dev ".into())), "shop-dev");
        assert_eq!(namespace(Some("  ".into())), "shop");
        assert_eq!(namespace(None), "shop");
    }

    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Why {
        OutOfStock,
    }

    #[test]
    fn a_reason_is_spelled_as_serde_spells_it() {
        let count = Count::of("OrdersCancelled").because(Why::OutOfStock);
        assert_eq!(count.name(), "OrdersCancelled");
        assert_eq!(count.reason(), Some("out_of_stock"));
        assert_eq!(Count::of("OrdersPlaced").reason(), None);
        assert_eq!(
            Count::of("X")
                .because(serde_json::json!({"id": 1}))
                .reason(),
            Some("unspellable"),
            "never a value of an open set"
        );
    }
}
