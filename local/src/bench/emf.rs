//! The functions' CloudWatch metrics, as CloudWatch would count them: every Embedded
//! Metric Format line a function prints is summed by capability and metric name. The
//! bench reads operational counts from it (how many attempts lost a race) that no request
//! or AWS call shows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// Totals by (capability, metric name), shared between the log sink and the phases.
#[derive(Clone, Default)]
pub struct MetricTally {
    totals: Arc<Mutex<BTreeMap<(String, String), f64>>>,
}

impl MetricTally {
    /// Adds what `line` counts, if it is an EMF line; any other line is left alone, cheaply.
    pub fn observe(&self, line: &str) {
        if !line.contains("\"_aws\"") {
            return;
        }
        let Ok(document) = serde_json::from_str::<Value>(line) else {
            return;
        };
        let capability = document["Capability"].as_str().unwrap_or("").to_owned();
        let directives = document["_aws"]["CloudWatchMetrics"].as_array();
        let names = directives
            .into_iter()
            .flatten()
            .filter_map(|directive| directive["Metrics"].as_array())
            .flatten()
            .filter_map(|metric| metric["Name"].as_str());
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        for name in names {
            // EMF allows one value or an array of them.
            let value = match &document[name] {
                Value::Array(values) => values.iter().filter_map(Value::as_f64).sum(),
                other => other.as_f64().unwrap_or(0.0),
            };
            *totals
                .entry((capability.clone(), name.to_owned()))
                .or_default() += value;
        }
    }

    /// What `capability` has counted under `name` so far.
    pub fn total(&self, capability: &str, name: &str) -> f64 {
        self.totals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(capability.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_are_summed_by_capability_and_name_and_other_lines_ignored() {
        let tally = MetricTally::default();
        let line = |capability: &str, value: &str| {
            format!(
                r#"{{"_aws":{{"Timestamp":1,"CloudWatchMetrics":[{{"Namespace":"shop","Dimensions":[["Capability"]],"Metrics":[{{"Name":"ConflictsRetried","Unit":"Count"}}]}}]}},"Capability":"{capability}","ConflictsRetried":{value}}}"#
            )
        };
        tally.observe(&line("inventory", "3"));
        tally.observe(&line("inventory", "[1, 2]"));
        tally.observe(&line("ordering", "5"));
        tally.observe(
            r#"{"level":"INFO","fields":{"message":"applied after losing races","conflicts":7}}"#,
        );
        tally.observe("{\"_aws\": not json");
        assert_eq!(tally.total("inventory", "ConflictsRetried"), 6.0);
        assert_eq!(tally.total("ordering", "ConflictsRetried"), 5.0);
        assert_eq!(tally.total("payment", "ConflictsRetried"), 0.0);
    }
}
