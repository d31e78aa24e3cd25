//! Per-function counters and latency percentiles.

use std::collections::VecDeque;
use std::time::Duration;

use super::Outcome;

/// Percentiles are computed over the most recent samples only.
const MAX_SAMPLES: usize = 10_000;

/// A function's figures since it was created. Times in milliseconds; percentiles over the
/// last 10 000 samples, 0 when there is none.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionStats {
    pub name: String,
    /// Invocations that were run (refused ones, after shutdown, are not counted).
    pub invocations: u64,
    /// Processes started for an invocation (each counts, whether its init succeeded or not).
    pub cold_starts: u64,
    /// Every outcome but `Success`.
    pub errors: u64,
    /// Spawn to the process's first `/next`, successful inits only.
    pub init_ms: InitStats,
    /// Event handed over to answer (or crash, or timeout); init not included.
    pub duration_ms: DurationStats,
    /// Spawn to the process's first `POST .../response` (an invocation that succeeded on a
    /// new process): what the first caller of a cold function waits, init included.
    pub first_response_ms: InitStats,
    /// The durations of invocations on processes that had run one before: the warm path.
    pub warm_duration_ms: DurationStats,
    /// Invocations on warm processes (the samples of `warm_duration_ms`, up to 10 000).
    pub warm_invocations: u64,
    /// Lambda's billed duration summed over the warm invocations: each rounded up to 1 ms.
    pub warm_billed_ms: u64,
    /// The same over the cold ones, whose billed duration is init plus invocation.
    pub cold_billed_ms: u64,
    /// The highest `VmHWM` seen in any of the function's processes.
    pub peak_rss_bytes: u64,
    /// Live processes now.
    pub processes: usize,
    /// `Outcome::Crashed` (fault kills included).
    pub crashes: u64,
    /// `Outcome::TimedOut`.
    pub timeouts: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct InitStats {
    pub p50: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct DurationStats {
    pub p50: f64,
    pub p99: f64,
}

#[derive(Default)]
pub(super) struct Recorder {
    invocations: u64,
    cold_starts: u64,
    errors: u64,
    crashes: u64,
    timeouts: u64,
    peak_rss_bytes: u64,
    init: Samples,
    durations: Samples,
    first_responses: Samples,
    warm: Samples,
    warm_invocations: u64,
    warm_billed_ms: u64,
    cold_billed_ms: u64,
}

/// Lambda bills each invocation's duration rounded up to the millisecond.
fn billed_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

impl Recorder {
    pub(super) fn invocations(&self) -> u64 {
        self.invocations
    }

    pub(super) fn cold_start(&mut self) {
        self.cold_starts += 1;
    }

    pub(super) fn init(&mut self, init: Duration) {
        self.init.push(init);
    }

    pub(super) fn rss(&mut self, bytes: u64) {
        self.peak_rss_bytes = self.peak_rss_bytes.max(bytes);
    }

    /// The invoke phase of an invocation that reached a process: on a warm process
    /// (`cold` is `None`), or on the one it started, with that process's init and the time
    /// from its spawn to this answer (`None` unless it answered with a response).
    pub(super) fn ran(&mut self, duration: Duration, cold: Option<(Duration, Option<Duration>)>) {
        match cold {
            None => {
                self.warm_invocations += 1;
                self.warm_billed_ms += billed_ms(duration);
                self.warm.push(duration);
            }
            Some((init, first_response)) => {
                self.cold_billed_ms += billed_ms(init + duration);
                if let Some(first_response) = first_response {
                    self.first_responses.push(first_response);
                }
            }
        }
    }

    /// One finished invocation; `duration` is `None` when it never reached the invoke phase.
    pub(super) fn invocation(&mut self, outcome: &Outcome, duration: Option<Duration>) {
        self.invocations += 1;
        match outcome {
            Outcome::Success(_) => {}
            Outcome::FunctionError { .. } | Outcome::InitError { .. } => self.errors += 1,
            Outcome::Crashed { .. } => {
                self.errors += 1;
                self.crashes += 1;
            }
            Outcome::TimedOut => {
                self.errors += 1;
                self.timeouts += 1;
            }
        }
        if let Some(duration) = duration {
            self.durations.push(duration);
        }
    }

    pub(super) fn snapshot(&self, name: &str, processes: usize) -> FunctionStats {
        FunctionStats {
            name: name.to_owned(),
            invocations: self.invocations,
            cold_starts: self.cold_starts,
            errors: self.errors,
            init_ms: InitStats {
                p50: self.init.percentile(0.50),
                max: self.init.percentile(1.0),
            },
            duration_ms: DurationStats {
                p50: self.durations.percentile(0.50),
                p99: self.durations.percentile(0.99),
            },
            first_response_ms: InitStats {
                p50: self.first_responses.percentile(0.50),
                max: self.first_responses.percentile(1.0),
            },
            warm_duration_ms: DurationStats {
                p50: self.warm.percentile(0.50),
                p99: self.warm.percentile(0.99),
            },
            warm_invocations: self.warm_invocations,
            warm_billed_ms: self.warm_billed_ms,
            cold_billed_ms: self.cold_billed_ms,
            peak_rss_bytes: self.peak_rss_bytes,
            processes,
            crashes: self.crashes,
            timeouts: self.timeouts,
        }
    }
}

#[derive(Default)]
struct Samples(VecDeque<f64>);

impl Samples {
    fn push(&mut self, sample: Duration) {
        if self.0.len() == MAX_SAMPLES {
            self.0.pop_front();
        }
        self.0.push_back(sample.as_secs_f64() * 1000.0);
    }

    /// Nearest rank, rounded to the microsecond.
    fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let mut samples: Vec<f64> = self.0.iter().copied().collect();
        (crate::percentile::nearest_rank(&mut samples, p) * 1000.0).round() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut samples = Samples::default();
        assert_eq!(samples.percentile(0.5), 0.0);
        for ms in (1..=100).rev() {
            samples.push(Duration::from_millis(ms));
        }
        assert_eq!(samples.percentile(0.5), 50.0);
        assert_eq!(samples.percentile(0.99), 99.0);
        assert_eq!(samples.percentile(1.0), 100.0);
    }

    #[test]
    fn outcomes_are_counted() {
        let mut recorder = Recorder::default();
        recorder.invocation(
            &Outcome::Success(bytes::Bytes::new()),
            Some(Duration::from_millis(2)),
        );
        recorder.invocation(&Outcome::TimedOut, Some(Duration::from_millis(4)));
        recorder.invocation(&Outcome::Crashed { reason: "x".into() }, None);
        let stats = recorder.snapshot("f", 1);
        assert_eq!(
            (
                stats.invocations,
                stats.errors,
                stats.timeouts,
                stats.crashes
            ),
            (3, 2, 1, 1)
        );
        assert_eq!(stats.duration_ms, DurationStats { p50: 2.0, p99: 4.0 });
    }

    #[test]
    fn warm_and_cold_invocations_are_told_apart_and_billed_by_the_millisecond() {
        let mut recorder = Recorder::default();
        recorder.ran(
            Duration::from_micros(1_200),
            Some((Duration::from_micros(7_500), Some(Duration::from_millis(9)))),
        );
        recorder.ran(Duration::from_micros(2_100), None);
        recorder.ran(Duration::from_micros(3_000), None);
        let stats = recorder.snapshot("f", 1);
        assert_eq!(stats.warm_invocations, 2);
        assert_eq!(stats.warm_billed_ms, 3 + 3);
        assert_eq!(stats.cold_billed_ms, 9);
        assert_eq!(stats.warm_duration_ms, DurationStats { p50: 2.1, p99: 3.0 });
        assert_eq!(stats.first_response_ms, InitStats { p50: 9.0, max: 9.0 });
    }
}
