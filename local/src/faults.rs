//! Faults on demand, for the reliability tests: kill a function process during an
//! invocation with probability `kill` (the share `kill_during` of them while its handler
//! runs, before any answer, the others as its answer arrives, which is then dropped), deliver an SQS
//! message twice with probability `duplicate`, delay deliveries by up to `max_delay`.
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
    /// Of the kills, the share that strikes while the handler runs (the rest as its
    /// answer arrives).
    pub kill_during: f64,
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
            kill_during: 0.5,
            duplicate: 0.0,
            max_delay: Duration::ZERO,
            seed: 0,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultCounts {
    pub kills: u64,
    /// Of the kills, those that struck while the handler ran, before it answered.
    pub kills_before_answer: u64,
    pub duplicates: u64,
    pub delays: u64,
}

/// When a drawn kill strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// As the handler's answer arrives: what it did is done, the caller never hears.
    AfterAnswer,
    /// This long after the handler got the event, if it has not answered by then: it
    /// dies half-way through whatever it was doing.
    During(Duration),
}

/// The longest a kill during an invocation waits after the handover: local handlers take
/// a few to some tens of milliseconds (a DynamoDB call is 2-5 ms), so a draw up to this
/// lands before, between or after their calls.
const LONGEST_KILL_DELAY: Duration = Duration::from_millis(60);

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

    /// Whether (and when) to kill the process that runs this invocation. Only the
    /// decision: the caller counts the kill with [`Faults::count_kill`] once it has really
    /// happened (an invocation that times out first is never killed).
    pub fn should_kill(&self) -> Option<Kill> {
        if !self.decide(self.settings.kill, |_| {}) {
            return None;
        }
        let Ok(mut generator) = self.generator.lock() else {
            return Some(Kill::AfterAnswer);
        };
        Some(if generator.f64() < self.settings.kill_during {
            Kill::During(LONGEST_KILL_DELAY.mul_f64(generator.f64()))
        } else {
            Kill::AfterAnswer
        })
    }

    /// A kill that happened; `before_answer` when it struck while the handler ran.
    pub fn count_kill(&self, before_answer: bool) {
        self.count(|counts| {
            counts.kills += 1;
            if before_answer {
                counts.kills_before_answer += 1;
            }
        });
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
            kill_during: 0.5,
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
        let kills: Vec<Kill> = run().iter().filter_map(|d| d.0).collect();
        assert!(
            (30..=90).contains(&kills.len()),
            "about 30% of 200: {}",
            kills.len()
        );
        let during = kills
            .iter()
            .filter(|k| matches!(k, Kill::During(_)))
            .count();
        assert!(during > 0 && during < kills.len(), "both kinds: {kills:?}");
        assert!(kills.iter().all(|k| match k {
            Kill::During(after) => *after <= LONGEST_KILL_DELAY,
            Kill::AfterAnswer => true,
        }));
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
        api.count_kill(true);
        relay.count_kill(false);
        assert_eq!(
            (run.counts().kills, run.counts().kills_before_answer),
            (2, 1),
            "every source counts in the run's totals"
        );
    }

    #[test]
    fn no_faults_means_none_ever() {
        let faults = Faults::none();
        assert!((0..1000).all(|_| faults.should_kill().is_none()
            && !faults.should_duplicate()
            && faults.delay().is_zero()));
        assert_eq!(faults.counts(), FaultCounts::default());
    }
}
