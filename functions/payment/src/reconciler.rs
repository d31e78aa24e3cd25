//! The reconciler: a scheduled function that settles every payment whose money is not yet
//! what its order is owed (DESIGN §5: work that must finish never waits on a person).
//! Each run reads the payments that are due from the unsettled index, takes one look at
//! each ([`crate::settle`]), and writes what it came to, conditionally on the version it
//! read: a consumer or another run that got there first wins, and this one moves on.
//! A payment stays on the list, looked at after growing pauses, until the provider's own
//! answer settles it; then it leaves the list and costs nothing more.
//!
//! Every run reports two levels (CloudWatch, through the same EMF output as the counts):
//! how many payments were due, and how long the oldest of them has been unsettled, which
//! the template's alarm watches.

use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use shop_platform::metrics::Metrics;
use shop_platform::store::TableError;
use shop_platform::transaction::{CommitError, Transaction};

use crate::provider::PaymentProvider;
use crate::settle::{Look, Settler};

/// Due payments read per run: far more than a healthy shop ever has unsettled, and few
/// enough to look at well within the function's timeout.
pub const DUE_PER_RUN: i32 = 100;
/// Payments looked at at once; each look is one or two provider calls.
const CONCURRENT_LOOKS: usize = 4;
/// No look is started with less time than this left before the deadline: a lookup and a
/// refund under the retry policy, and the write.
const LOOK_TIME: Duration = Duration::from_secs(10);

/// The level the alarm watches: how long the oldest due payment has been unsettled.
pub const OLDEST_UNSETTLED: &str = "OldestUnsettledPaymentSeconds";
/// How many payments were due for a look.
pub const UNSETTLED_DUE: &str = "UnsettledPaymentsDue";

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    pub due: usize,
    pub settled: usize,
    pub still_unsettled: usize,
    /// Changed by someone else between the read and the write; looked at next run.
    pub lost_races: usize,
    /// Not looked at: the run's time was up.
    pub left_for_next_run: usize,
    pub oldest_unsettled: Duration,
}

pub struct Reconciler<P> {
    pub settler: Settler<P>,
    pub metrics: Metrics,
}

/// What one payment's look came to.
enum Outcome {
    Settled,
    Unsettled(Duration),
    LostRace,
    Skipped,
}

impl<P: PaymentProvider> Reconciler<P> {
    /// Settles what is due, until `deadline` comes near.
    pub async fn run(&self, deadline: Instant) -> Result<Run, TableError> {
        let ids = self.settler.store.due(Utc::now(), DUE_PER_RUN).await?;
        let mut run = Run {
            due: ids.len(),
            ..Run::default()
        };
        let outcomes: Vec<Option<Result<Outcome, TableError>>> = futures::stream::iter(ids)
            .map(|order_id| async move {
                if Instant::now() + LOOK_TIME > deadline {
                    return None;
                }
                Some(self.settle(&order_id).await)
            })
            .buffer_unordered(CONCURRENT_LOOKS)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                None => run.left_for_next_run += 1,
                Some(Ok(Outcome::Settled)) => run.settled += 1,
                Some(Ok(Outcome::Unsettled(age))) => {
                    run.still_unsettled += 1;
                    run.oldest_unsettled = run.oldest_unsettled.max(age);
                }
                Some(Ok(Outcome::LostRace)) => run.lost_races += 1,
                Some(Ok(Outcome::Skipped)) => {}
                Some(Err(error)) => {
                    tracing::error!(error = %error, "could not settle a payment; it stays due");
                    run.left_for_next_run += 1;
                }
            }
        }
        self.metrics.gauge(UNSETTLED_DUE, run.due as f64);
        self.metrics
            .gauge(OLDEST_UNSETTLED, run.oldest_unsettled.as_secs_f64());
        tracing::info!(
            due = run.due,
            settled = run.settled,
            still_unsettled = run.still_unsettled,
            lost_races = run.lost_races,
            left_for_next_run = run.left_for_next_run,
            oldest_unsettled_s = run.oldest_unsettled.as_secs(),
            "reconciled"
        );
        Ok(run)
    }

    async fn settle(&self, order_id: &str) -> Result<Outcome, TableError> {
        let now = Utc::now();
        // The index lags the table: what it lists is read again before anything is decided.
        let Some(payment) = self.settler.store.get(order_id).await? else {
            return Ok(Outcome::Skipped);
        };
        let due = payment
            .next_check_at
            .as_deref()
            .is_some_and(|at| at <= shop_events::timestamp(now).as_str());
        if !due {
            return Ok(Outcome::Skipped);
        }
        let mut transaction = Transaction::new(self.settler.store.table().name());
        let correlation_id = format!("reconcile-{order_id}");
        let look = self
            .settler
            .look(&payment, payment.version, &correlation_id, &mut transaction)
            .await?;
        let facts = transaction.counts().to_vec();
        match transaction
            .commit(self.settler.store.table().client())
            .await
        {
            Ok(()) => {}
            Err(CommitError::ConditionFailed { .. } | CommitError::TransactionConflict) => {
                tracing::info!(
                    order_id,
                    "the payment changed meanwhile; it is looked at next run"
                );
                return Ok(Outcome::LostRace);
            }
            Err(other) => return Err(other.into()),
        }
        self.metrics.count_all(&facts);
        Ok(match look {
            Look::AlreadySettled | Look::Settled => Outcome::Settled,
            Look::Later => Outcome::Unsettled(payment.unsettled_for(now).unwrap_or_default()),
        })
    }
}
