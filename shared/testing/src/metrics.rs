//! A test's own metrics recorder: what the harness or an API it drives counted (and the
//! levels a scheduled job reported), for this test alone. The process's recorder is shared by the tests a binary runs at once, so a
//! test hands [`Counts::metrics`] to what it drives instead.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ::metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use shop_platform::consumer::CONFLICTS_RETRIED;
use shop_platform::metrics::Metrics;

/// Every counter recorded, by name and labels, with the unit declared for its name; and
/// every level (gauge) set, as its last value.
#[derive(Clone, Default)]
pub struct Counts {
    counters: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
    units: Arc<Mutex<HashMap<String, Unit>>>,
    /// A level's value, as the bits of an `f64` (how the `metrics` crate keeps gauges).
    levels: Arc<Mutex<HashMap<String, Arc<AtomicU64>>>>,
}

impl Counts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Where to count, for the harness or API under test.
    pub fn metrics(&self) -> Metrics {
        Metrics::recorded_by(Arc::new(self.clone()))
    }

    /// What was counted: `Name` or `Name{Label=value,...}` to the total, counters at zero
    /// left out. Compared whole, it says what was counted and that nothing else was. The
    /// harness's [`CONFLICTS_RETRIED`] is left out too: races decide it, not the test;
    /// [`Self::conflicts_retried`] reads it.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(key, _)| key.as_str() != CONFLICTS_RETRIED)
            .map(|(key, value)| (key.clone(), value.load(Ordering::SeqCst)))
            .filter(|(_, value)| *value > 0)
            .collect()
    }

    /// How many attempts the consumer harness lost to a concurrent writer and made again.
    pub fn conflicts_retried(&self) -> u64 {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(CONFLICTS_RETRIED)
            .map_or(0, |value| value.load(Ordering::SeqCst))
    }

    /// The last value each level was set to.
    pub fn levels(&self) -> BTreeMap<String, f64> {
        self.levels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, value)| (key.clone(), f64::from_bits(value.load(Ordering::SeqCst))))
            .collect()
    }

    /// The unit declared for a metric name.
    pub fn unit(&self, name: &str) -> Option<Unit> {
        self.units
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied()
    }
}

/// A snapshot's expected value: `[("OrdersPlaced", 1)]` as a map.
pub fn expected<const N: usize>(counts: [(&str, u64); N]) -> BTreeMap<String, u64> {
    counts
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

fn spelled(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}={}", label.key(), label.value()))
        .collect();
    if labels.is_empty() {
        return key.name().to_owned();
    }
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Counts {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        if let Some(unit) = unit {
            self.units
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.as_str().to_owned(), unit);
        }
    }

    fn describe_gauge(&self, _key: KeyName, _unit: Option<Unit>, _description: SharedString) {}

    fn describe_histogram(&self, key: KeyName, _unit: Option<Unit>, _description: SharedString) {
        panic!("the shop counts business facts; histogram {key:?} was described");
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        let counter = self
            .counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(spelled(key))
            .or_default()
            .clone();
        Counter::from_arc(counter)
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        let level = self
            .levels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(spelled(key))
            .or_default()
            .clone();
        Gauge::from_arc(level)
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        panic!("the shop counts business facts; histogram {key} was recorded");
    }
}

#[cfg(test)]
mod tests {
    use shop_events::ordering::CancellationReason;
    use shop_platform::metrics::Count;

    use super::*;

    #[test]
    fn counts_are_kept_per_name_and_reason_and_per_recorder() {
        let counts = Counts::new();
        let other = Counts::new();
        let metrics = counts.metrics();
        metrics.count(&Count::of("OrdersPlaced"));
        metrics.count_all(&[
            Count::of("OrdersPlaced"),
            Count::of("OrdersCancelled").because(CancellationReason::OutOfStock),
        ]);
        other.metrics().count(&Count::of("OrdersPaid"));
        assert_eq!(
            counts.snapshot(),
            expected([
                ("OrdersCancelled{Reason=out_of_stock}", 1),
                ("OrdersPlaced", 2)
            ])
        );
        assert_eq!(counts.unit("OrdersPlaced"), Some(Unit::Count));
        assert_eq!(other.snapshot(), expected([("OrdersPaid", 1)]));
    }
}
