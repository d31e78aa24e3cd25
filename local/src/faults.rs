//! Faults on demand, for the reliability tests: kill a function process during an
//! invocation with probability `kill`, deliver an SQS message twice with probability
//! `duplicate`, delay deliveries by up to `max_delay`. Reproducible: one seeded generator
//! decides everything, so the same seed and the same order of decisions give the same run.

use std::sync::Mutex;
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
    state: Mutex<(fastrand::Rng, FaultCounts)>,
}

impl Faults {
    pub fn new(settings: FaultSettings) -> Self {
        Self {
            settings,
            state: Mutex::new((
                fastrand::Rng::with_seed(settings.seed),
                FaultCounts::default(),
            )),
        }
    }

    pub fn none() -> Self {
        Self::new(FaultSettings::default())
    }

    pub fn settings(&self) -> FaultSettings {
        self.settings
    }

    pub fn counts(&self) -> FaultCounts {
        self.state.lock().map(|state| state.1).unwrap_or_default()
    }

    fn decide(&self, probability: f64, count: impl FnOnce(&mut FaultCounts)) -> bool {
        if probability <= 0.0 {
            return false;
        }
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let hit = state.0.f64() < probability;
        if hit {
            count(&mut state.1);
        }
        hit
    }

    /// Whether to kill the process that is running this invocation.
    pub fn should_kill(&self) -> bool {
        self.decide(self.settings.kill, |c| c.kills += 1)
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
        let Ok(mut state) = self.state.lock() else {
            return Duration::ZERO;
        };
        state.1.delays += 1;
        self.settings.max_delay.mul_f64(state.0.f64())
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
    fn no_faults_means_none_ever() {
        let faults = Faults::none();
        assert!((0..1000).all(|_| !faults.should_kill()
            && !faults.should_duplicate()
            && faults.delay().is_zero()));
        assert_eq!(faults.counts(), FaultCounts::default());
    }
}
