//! Faults on demand, for the reliability tests: kill a function process during an
//! invocation with probability `kill`, deliver an SQS message twice with probability
//! `duplicate`, delay deliveries by up to `max_delay`.
//!
//! Reproducible: every source of decisions (a function, a queue poller) draws from its
//! own generator, seeded from the run's seed and the source's name ([`Faults::for_source`]).
//! Concurrent sources therefore cannot reorder each other's draws: the same seed gives
//! each source the same sequence of decisions, whatever the scheduling.

use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSettings {
    pub kill: f64,
    pub duplicate: f64,
    #[serde(rename = "maxDelayMs", serialize_with = "as_millis")]
    pub max_delay: Duration,
    pub seed: u64,
}

fn as_millis<S: serde::Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u128(duration.as_millis())
}

impl Default for FaultSettings {
    fn default() -> Self {
        Self {
            kill: 0.0,
            duplicate: 0.0,
            max_delay: Duration::ZERO,
            seed: 0,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts {
    pub kills: u64,
    pub duplicates: u64,
    pub delays: u64,
}

pub struct Faults {
    settings: FaultSettings,
    generator: Mutex<fastrand::Rng>,
    /// Shared by a run's every source, for the run's totals.
    counts: Arc<Mutex<FaultCounts>>,
}

impl Faults {
    pub fn new(settings: FaultSettings) -> Self {
        Self {
            settings,
            generator: Mutex::new(fastrand::Rng::with_seed(settings.seed)),
            counts: Arc::default(),
        }
    }

    /// The decisions of one source (a function, a poller), independent of every other
    /// source's, counted in this run's totals.
    pub fn for_source(&self, source: &str) -> Arc<Faults> {
        // FNV-1a: a stable hash, so a name maps to the same stream in every run.
        let name_hash = source
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
            });
        Arc::new(Self {
            settings: self.settings,
            generator: Mutex::new(fastrand::Rng::with_seed(self.settings.seed ^ name_hash)),
            counts: self.counts.clone(),
        })
    }

    pub fn none() -> Self {
        Self::new(FaultSettings::default())
    }

    pub fn settings(&self) -> FaultSettings {
        self.settings
    }

    pub fn counts(&self) -> FaultCounts {
        self.counts.lock().map(|counts| *counts).unwrap_or_default()
    }

    fn count(&self, which: impl FnOnce(&mut FaultCounts)) {
        if let Ok(mut counts) = self.counts.lock() {
            which(&mut counts);
        }
    }

    fn decide(&self, probability: f64, which: impl FnOnce(&mut FaultCounts)) -> bool {
        if probability <= 0.0 {
            return false;
        }
        let Ok(mut generator) = self.generator.lock() else {
            return false;
        };
        let hit = generator.f64() < probability;
        drop(generator);
        if hit {
            self.count(which);
        }
        hit
    }

    /// Whether to kill the process that runs this invocation. Only the decision: the
    /// caller counts the kill with [`Faults::count_kill`] once it has really happened (an
    /// invocation that times out first is never killed).
    pub fn should_kill(&self) -> bool {
        self.decide(self.settings.kill, |_| {})
    }

    pub fn count_kill(&self) {
        self.count(|counts| counts.kills += 1);
    }

    /// Whether to deliver this SQS message a second time.
    pub fn should_duplicate(&self) -> bool {
        self.decide(self.settings.duplicate, |c| c.duplicates += 1)
    }

    /// How long to hold this delivery back.
    pub fn delay(&self) -> Duration {
        if self.settings.max_delay.is_zero() {
            return Duration::ZERO;
        }
        let Ok(mut generator) = self.generator.lock() else {
            return Duration::ZERO;
        };
        let delay = self.settings.max_delay.mul_f64(generator.f64());
        drop(generator);
        self.count(|counts| counts.delays += 1);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        let settings = FaultSettings {
            kill: 0.3,
            duplicate: 0.5,
            max_delay: Duration::from_millis(100),
            seed: 42,
        };
        let run = || {
            let faults = Faults::new(settings);
            (0..200)
                .map(|_| {
                    (
                        faults.should_kill(),
                        faults.should_duplicate(),
                        faults.delay(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
        let kills = run().iter().filter(|d| d.0).count();
        assert!((30..=90).contains(&kills), "about 30% of 200: {kills}");
    }

    #[test]
    fn sources_draw_independently_and_count_together() {
        let settings = FaultSettings {
            kill: 0.5,
            seed: 9,
            ..FaultSettings::default()
        };
        let draws = |faults: &Faults| (0..64).map(|_| faults.should_kill()).collect::<Vec<_>>();
        let run = Faults::new(settings);
        let (api, relay) = (
            run.for_source("catalog-api"),
            run.for_source("catalog-relay"),
        );
        // Interleaving the two sources differently changes neither's sequence.
        let api_first = (draws(&api), draws(&relay));
        let other = Faults::new(settings);
        let (api_again, relay_again) = (
            other.for_source("catalog-api"),
            other.for_source("catalog-relay"),
        );
        let relay_first = draws(&relay_again);
        assert_eq!(api_first, (draws(&api_again), relay_first));
        assert_ne!(
            api_first.0, api_first.1,
            "distinct sources, distinct streams"
        );
        assert_eq!(
            run.counts().kills,
            0,
            "a kill counts when it happens, not when drawn"
        );
        api.count_kill();
        relay.count_kill();
        assert_eq!(
            run.counts().kills,
            2,
            "every source counts in the run's totals"
        );
    }

    #[test]
    fn no_faults_means_none_ever() {
        let faults = Faults::none();
        assert!((0..1000).all(|_| !faults.should_kill()
            && !faults.should_duplicate()
            && faults.delay().is_zero()));
        assert_eq!(faults.counts(), FaultCounts::default());
    }
}
