//! A local AWS Lambda execution environment for the functions' real binaries.
//!
//! Each function process is started as Lambda starts a `provided.al2023` runtime: a clean
//! environment with Lambda's reserved variables, and its own Runtime API server (version
//! `2018-06-01`) on `127.0.0.1:0` that it long-polls for invocations. One invocation at a time
//! per process; idle warm processes are reused, new ones are started (cold starts) up to the
//! function's concurrency limit, beyond which invocations wait for a free one. A process that
//! crashes, times out or is killed by a fault is removed, and the next invocation starts a
//! replacement.
//!
//! The kill fault ([`Faults::should_kill`]) is drawn once per invocation, when
//! [`LambdaFunction::invoke`] is called (so a function's sequence of decisions does not depend
//! on scheduling). Half of the kills land while the handler runs, a drawn few milliseconds
//! after it took the event (unless it answered first): the process is SIGKILLed wherever it
//! was, between two writes or with a provider call in flight. The other half land after the
//! handler has run: its answer arrives, is dropped, and the process is SIGKILLed. Either way
//! the invocation ends `Crashed`; whatever the handler committed stays committed and the
//! caller never learns it, as when a Lambda sandbox dies. An invocation that ends otherwise
//! before answering (a crash, a timeout, an init error) is not killed.
//!
//! The process's stdout and stderr go, line by line, to the [`LogSink`] with the function's
//! display name, together with Lambda's own `INIT_START`/`START`/`END`/`REPORT` lines. Every
//! line a process wrote before answering has reached the sink when [`LambdaFunction::invoke`]
//! returns.

mod api;
mod logs;
mod process;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};

use crate::faults::{Faults, Kill};
use api::{Answer, Event, InitState};
use process::{Process, Spawn};
pub use stats::{DurationStats, FunctionStats, InitStats};

/// Receives the function's display name and one line of its output (or of Lambda's own
/// `START`/`END`/`REPORT` lines). Called from the runtime's tasks: keep it quick.
pub type LogSink = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Lambda's init phase limit.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// An invocation whose process died before taking the event is retried on another process
/// (the event was never seen); this many processes at most.
const MAX_ATTEMPTS: usize = 2;
const ACCOUNT_ID: &str = "123456789012";
const DEFAULT_REGION: &str = "us-east-1";
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// E.g. `catalog-api` (the binary's name); prefixes its log lines.
    pub display_name: String,
    /// The physical name: `AWS_LAMBDA_FUNCTION_NAME` and the ARN.
    pub function_name: String,
    pub binary: PathBuf,
    /// The template's variables plus what the runner adds (endpoint, credentials). Lambda's
    /// reserved variables are added on top (they win); `PATH`, `TZ` and `LANG` can be
    /// overridden here; `AWS_REGION` here also sets the ARN's region.
    pub environment: BTreeMap<String, String>,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// The concurrency limit: never more processes than this.
    pub max_processes: usize,
}

/// The result of one invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub outcome: Outcome,
    /// The invoke phase: event handed to the process until its answer (or crash, or timeout);
    /// neither the wait for a free process nor the init is included. For an `InitError`, the
    /// init phase's duration. Zero when the event never reached a process (refused, or its
    /// process went before taking it): the stats then record no duration.
    pub duration: Duration,
    /// This invocation started the process that ran it.
    pub cold_start: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success(Bytes),
    /// The handler returned an error (POST .../error): Lambda's errorType/errorMessage. Also
    /// `Function.ResponseSizeTooLarge` for a response over 6 MB.
    FunctionError {
        error_type: String,
        error_message: String,
    },
    /// The process failed before it was ready (exited, or POST /runtime/init/error, or could
    /// not be started, or its init took over 10 s).
    InitError {
        error_type: String,
        error_message: String,
    },
    /// The process died during the invocation (or was killed by `shutdown`, or by the kill
    /// fault once its handler had answered: the answer is then dropped). Also an invocation
    /// refused because the function is shut down.
    Crashed {
        reason: String,
    },
    TimedOut,
}

impl Outcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Success(_))
    }
}

impl Invocation {
    /// The JSON body Lambda's Invoke API answers for a failed invocation (sent with
    /// `X-Amz-Function-Error: Unhandled`); `None` on success.
    pub fn error_payload(&self) -> Option<serde_json::Value> {
        let (error_type, error_message) = match &self.outcome {
            Outcome::Success(_) => return None,
            Outcome::FunctionError {
                error_type,
                error_message,
            }
            | Outcome::InitError {
                error_type,
                error_message,
            } => (error_type.clone(), error_message.clone()),
            Outcome::Crashed { reason } => (
                "Runtime.ExitError".to_owned(),
                format!("RequestId: {} Error: {reason}", self.request_id),
            ),
            Outcome::TimedOut => (
                "Sandbox.Timedout".to_owned(),
                format!(
                    "RequestId: {} Error: Task timed out after {:.2} seconds",
                    self.request_id,
                    self.duration.as_secs_f64()
                ),
            ),
        };
        Some(serde_json::json!({ "errorType": error_type, "errorMessage": error_message }))
    }
}

/// Counts the invocations that have ended, across every function given it. In a local stack
/// a table changes only when a function writes to it (or the harness does, which is rare), so
/// a stream poller with nothing to read can sleep until an invocation ends instead of asking
/// moto four times a second. Each read costs moto and shop-local about 4 ms of CPU apiece:
/// seven streams read that often kept an idle stack busy.
#[derive(Clone)]
pub struct InvocationsEnded(Arc<watch::Sender<u64>>);

impl Default for InvocationsEnded {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }
}

impl InvocationsEnded {
    /// Sees every invocation that ends from now on (and has not seen any yet).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }

    fn one_more(&self) {
        self.0.send_modify(|ended| *ended = ended.wrapping_add(1));
    }
}

/// One Lambda function: its processes, their Runtime APIs, its figures.
pub struct LambdaFunction {
    inner: Arc<Inner>,
}

struct Inner {
    config: FunctionConfig,
    timeout: Duration,
    task_root: PathBuf,
    arn: String,
    faults: Arc<Faults>,
    logs: LogSink,
    ended: InvocationsEnded,
    /// One per process the function may have; an invocation holds one from the moment it
    /// starts looking for a process until its process is idle again or reaped.
    permits: Arc<Semaphore>,
    pool: Arc<Pool>,
    stats: Mutex<stats::Recorder>,
    next_seq: AtomicU64,
    /// Variables that replace the configured ones in processes started from now on.
    environment_overrides: Mutex<BTreeMap<String, String>>,
}

struct Pool {
    state: Mutex<PoolState>,
    /// Signalled whenever a process is registered or removed.
    changed: Notify,
}

#[derive(Default)]
struct PoolState {
    shut_down: bool,
    /// Processes being spawned, not yet in `live`.
    spawning: usize,
    /// Every process not yet reaped, by sequence number.
    live: BTreeMap<u64, Arc<Process>>,
    /// Warm processes waiting for an invocation; the most recently used last.
    idle: Vec<Arc<Process>>,
    /// Processes killed on purpose by [`LambdaFunction::retire_idle`], until reaped.
    retired: std::collections::BTreeSet<u64>,
    /// Processes numbered below this run a binary that has since been replaced
    /// ([`LambdaFunction::reload`]): they go when their invocation ends.
    stale_below: u64,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets a reaped process; whether its exit was expected (the function is shut
    /// down, or the process was retired).
    fn remove(&self, seq: u64) -> bool {
        let expected = {
            let mut state = self.lock();
            state.live.remove(&seq);
            state.idle.retain(|process| process.seq != seq);
            state.retired.remove(&seq) || state.shut_down
        };
        self.changed.notify_waiters();
        expected
    }
}

enum Acquired {
    Process {
        process: Arc<Process>,
        init: Option<Duration>,
    },
    Refused,
    InitFailed {
        error_type: String,
        error_message: String,
        duration: Duration,
    },
}

enum Run {
    Done {
        outcome: Outcome,
        timing: Timing,
    },
    /// The process went before taking the event.
    NotDelivered {
        reason: String,
    },
}

/// What a finished invocation measured, beside its outcome.
struct Timing {
    duration: Duration,
    /// Spawn to the response, for the first invocation of a process that answered one.
    first_response: Option<Duration>,
}

impl LambdaFunction {
    pub fn new(
        config: FunctionConfig,
        faults: Arc<Faults>,
        logs: LogSink,
        ended: InvocationsEnded,
    ) -> Arc<Self> {
        let region = config
            .environment
            .get("AWS_REGION")
            .map(String::as_str)
            .unwrap_or(DEFAULT_REGION);
        let arn = format!(
            "arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{}",
            config.function_name
        );
        let binary = std::path::absolute(&config.binary).unwrap_or_else(|_| config.binary.clone());
        let task_root = binary
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("/"))
            .to_owned();
        let max_processes = config.max_processes.max(1);
        let timeout = config.timeout.max(Duration::from_millis(1));
        let config = FunctionConfig {
            binary,
            max_processes,
            ..config
        };
        Arc::new(Self {
            inner: Arc::new(Inner {
                timeout,
                task_root,
                arn,
                faults,
                logs,
                ended,
                permits: Arc::new(Semaphore::new(max_processes)),
                pool: Arc::new(Pool {
                    state: Mutex::new(PoolState::default()),
                    changed: Notify::new(),
                }),
                stats: Mutex::new(stats::Recorder::default()),
                next_seq: AtomicU64::new(1),
                environment_overrides: Mutex::new(BTreeMap::new()),
                config,
            }),
        })
    }

    pub fn config(&self) -> &FunctionConfig {
        &self.inner.config
    }

    /// `arn:aws:lambda:<region>:123456789012:function:<function_name>`.
    pub fn arn(&self) -> &str {
        &self.inner.arn
    }

    /// One invocation; never panics; waits for a free process when all are busy and the
    /// limit is reached. Once it has a process the invocation runs to its end even if this
    /// future is dropped (so a process is never left half-used).
    pub async fn invoke(&self, payload: Bytes) -> Invocation {
        let request_id = new_request_id();
        // Drawn here, once per call, whatever happens next: the function's sequence of
        // decisions then follows the order of the calls, not the races after them.
        let kill = self.inner.faults.should_kill();
        let Ok(permit) = self.inner.permits.clone().acquire_owned().await else {
            return refused(request_id);
        };
        let inner = self.inner.clone();
        let id = request_id.clone();
        let ran = tokio::spawn(async move {
            let invocation = inner.clone().run(id, payload, kill, permit).await;
            inner.ended.one_more();
            invocation
        });
        match ran.await {
            Ok(invocation) => invocation,
            Err(error) => Invocation {
                request_id,
                outcome: Outcome::Crashed {
                    reason: format!("shop-local: the invocation task failed: {error}"),
                },
                duration: Duration::ZERO,
                cold_start: false,
            },
        }
    }

    pub fn stats(&self) -> FunctionStats {
        let processes = self.pids().len();
        self.inner
            .lock_stats()
            .snapshot(&self.inner.config.display_name, processes)
    }

    /// Invocations run so far: [`Self::stats`] without the percentiles' cost.
    pub fn invocation_count(&self) -> u64 {
        self.inner.lock_stats().invocations()
    }

    /// Starts the figures afresh (a measurement's baseline); processes are not touched.
    pub fn reset_stats(&self) {
        *self.inner.lock_stats() = stats::Recorder::default();
    }

    /// Sets (`Some`) or clears (`None`) an environment variable over the configured one,
    /// for processes started from now on; running processes keep theirs.
    pub fn override_environment(&self, name: &str, value: Option<String>) {
        let mut overrides = self
            .inner
            .environment_overrides
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match value {
            Some(value) => overrides.insert(name.to_owned(), value),
            None => overrides.remove(name),
        };
    }

    /// Kills the idle processes and waits until they are reaped, so that the next
    /// invocation starts a new process: a cold start on demand. Busy processes stay.
    pub async fn retire_idle(&self) {
        let idle = {
            let mut pool = self.inner.pool.lock();
            let idle = std::mem::take(&mut pool.idle);
            for process in &idle {
                pool.retired.insert(process.seq);
            }
            idle
        };
        for process in idle {
            process.kill().await;
        }
    }

    /// Takes up the binary as it is on disk now, as a deployment does: idle processes are
    /// killed at once, busy ones as soon as their invocation ends, and the next invocation
    /// starts a new process (a cold start) from the new binary.
    pub async fn reload(&self) {
        self.inner.pool.lock().stale_below = self.inner.next_seq.load(Ordering::SeqCst);
        self.retire_idle().await;
    }

    /// The live processes' CPU time when they had answered their first invocation, by
    /// pid (those that have answered one).
    pub fn cold_cpu(&self) -> HashMap<u32, Duration> {
        let pool = self.inner.pool.lock();
        pool.live
            .values()
            .filter_map(|process| Some((process.pid, *process.cold_cpu.get()?)))
            .collect()
    }

    /// The live processes' pids, oldest first.
    pub fn pids(&self) -> Vec<u32> {
        let pool = self.inner.pool.lock();
        pool.live
            .values()
            .filter(|process| !process.has_exited())
            .map(|process| process.pid)
            .collect()
    }

    /// Kills every process (SIGKILL), waits until they are reaped, and refuses new
    /// invocations (they end `Crashed` at once). Invocations in flight end `Crashed`.
    pub async fn shutdown(&self) {
        let pool = &self.inner.pool;
        self.inner.permits.close();
        {
            let mut state = pool.lock();
            state.shut_down = true;
            state.idle.clear();
        }
        let give_up = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let changed = pool.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let (processes, spawning) = {
                let state = pool.lock();
                (
                    state.live.values().cloned().collect::<Vec<_>>(),
                    state.spawning,
                )
            };
            if processes.is_empty() && spawning == 0 {
                break;
            }
            for process in &processes {
                process.start_kill();
            }
            if tokio::time::Instant::now() >= give_up {
                let pids: Vec<u32> = processes.iter().map(|process| process.pid).collect();
                self.inner.log(&format!(
                    "shop-local: shutdown gave up waiting for processes {pids:?}"
                ));
                break;
            }
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// Closes every process's Runtime API server and its connections, leaving the processes
    /// running, as if the runner had died. For tests: a `lambda_runtime` process then exits
    /// by itself on its failed `/next`.
    #[doc(hidden)]
    pub fn close_runtime_apis(&self) {
        for process in self.inner.pool.lock().live.values() {
            process.close_runtime_api();
        }
    }
}

impl Drop for LambdaFunction {
    /// A safety net: `shutdown` is the orderly way. The processes are killed; their waiter
    /// tasks reap them while the runtime lives.
    fn drop(&mut self) {
        let mut state = self.inner.pool.lock();
        state.shut_down = true;
        state.idle.clear();
        for process in state.live.values() {
            process.start_kill();
        }
    }
}

impl Inner {
    fn lock_stats(&self) -> MutexGuard<'_, stats::Recorder> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, line: &str) {
        (self.logs)(&self.config.display_name, line);
    }

    async fn run(
        self: Arc<Self>,
        request_id: String,
        payload: Bytes,
        kill: Option<Kill>,
        _permit: OwnedSemaphorePermit,
    ) -> Invocation {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (process, init) = match self.acquire().await {
                Acquired::Process { process, init } => (process, init),
                Acquired::Refused => return refused(request_id),
                Acquired::InitFailed {
                    error_type,
                    error_message,
                    duration,
                } => {
                    self.log(&format!(
                        "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: error\tError Type: {error_type}",
                        duration.as_secs_f64() * 1000.0
                    ));
                    self.log(&format!("RequestId: {request_id} Error: {error_message}"));
                    self.log(&error_type);
                    let outcome = Outcome::InitError {
                        error_type,
                        error_message,
                    };
                    self.lock_stats().invocation(&outcome, None);
                    return Invocation {
                        request_id,
                        outcome,
                        duration,
                        cold_start: true,
                    };
                }
            };
            match self
                .run_on(&process, &request_id, &payload, init, kill)
                .await
            {
                Run::Done {
                    outcome,
                    timing:
                        Timing {
                            duration,
                            first_response,
                        },
                } => {
                    {
                        let mut stats = self.lock_stats();
                        stats.invocation(&outcome, Some(duration));
                        stats.ran(duration, init.map(|init| (init, first_response)));
                    }
                    return Invocation {
                        request_id,
                        outcome,
                        duration,
                        cold_start: init.is_some(),
                    };
                }
                Run::NotDelivered { reason }
                    if attempt >= MAX_ATTEMPTS || self.pool.lock().shut_down =>
                {
                    let outcome = Outcome::Crashed { reason };
                    // The invoke phase never began: no duration to record.
                    self.lock_stats().invocation(&outcome, None);
                    return Invocation {
                        request_id,
                        outcome,
                        duration: Duration::ZERO,
                        cold_start: init.is_some(),
                    };
                }
                Run::NotDelivered { .. } => {}
            }
        }
    }

    /// An idle warm process, or a new one (the caller holds a permit, so there is room).
    async fn acquire(&self) -> Acquired {
        {
            let mut pool = self.pool.lock();
            if pool.shut_down {
                return Acquired::Refused;
            }
            while let Some(process) = pool.idle.pop() {
                if !process.has_exited() {
                    return Acquired::Process {
                        process,
                        init: None,
                    };
                }
            }
            pool.spawning += 1;
        }
        self.cold_start().await
    }

    fn environment(&self) -> BTreeMap<String, String> {
        let config = &self.config;
        let mut env = BTreeMap::new();
        let path = std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned());
        env.insert("PATH".to_owned(), path);
        env.insert("TZ".to_owned(), ":UTC".to_owned());
        env.insert("LANG".to_owned(), "en_US.UTF-8".to_owned());
        env.insert("AWS_REGION".to_owned(), DEFAULT_REGION.to_owned());
        env.insert("AWS_DEFAULT_REGION".to_owned(), DEFAULT_REGION.to_owned());
        env.extend(
            config
                .environment
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        );
        env.extend(
            self.environment_overrides
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        );
        let task_root = self.task_root.to_string_lossy().into_owned();
        let stream = format!(
            "{}/[$LATEST]{:032x}",
            chrono::Utc::now().format("%Y/%m/%d"),
            fastrand::u128(..)
        );
        for (name, value) in [
            ("AWS_LAMBDA_FUNCTION_NAME", config.function_name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                config.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", config.function_name),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", stream),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_rust".to_owned()),
            ("_HANDLER", "bootstrap".to_owned()),
            ("LAMBDA_TASK_ROOT", task_root.clone()),
            ("LAMBDA_RUNTIME_DIR", task_root),
        ] {
            env.insert(name.to_owned(), value);
        }
        env
    }

    async fn cold_start(&self) -> Acquired {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        self.lock_stats().cold_start();
        let name = self.config.display_name.clone();
        let sink = self.logs.clone();
        let log: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |line: &str| sink(&name, line));
        let on_exit = {
            let pool = self.pool.clone();
            let log = log.clone();
            Box::new(move |status: &str| {
                // Every exit is logged but the expected ones, at shutdown.
                if !pool.remove(seq) {
                    log(&format!("shop-local: process #{seq} exited: {status}"));
                }
            })
        };
        let started = Instant::now();
        let spawned = Process::start(Spawn {
            seq,
            binary: &self.config.binary,
            task_root: &self.task_root,
            env: self.environment(),
            function_arn: self.arn.clone(),
            log,
            on_exit,
        })
        .await;
        let (process, shut_down) = {
            let mut pool = self.pool.lock();
            pool.spawning -= 1;
            let shut_down = pool.shut_down;
            if let Ok(process) = &spawned {
                // Its waiter marks it exited before removing it: if it has not, the removal
                // is still to come and will find it.
                if !process.has_exited() {
                    pool.live.insert(seq, process.clone());
                }
            }
            (spawned, shut_down)
        };
        self.pool.changed.notify_waiters();
        let process = match process {
            Ok(process) => process,
            Err(error) => {
                return Acquired::InitFailed {
                    error_type: "Runtime.InvalidEntrypoint".to_owned(),
                    error_message: format!(
                        "cannot start {}: {error}",
                        self.config.binary.display()
                    ),
                    duration: started.elapsed(),
                };
            }
        };
        if shut_down {
            process.kill().await;
            return Acquired::Refused;
        }
        self.log(&format!(
            "INIT_START Runtime Version: provided:al2023 (shop-local, pid {})",
            process.pid
        ));

        enum Init {
            Ready(Instant),
            Failed(String, String),
            Exited(String),
            TimedOut,
        }
        let mut init_state = process.api.init_state();
        let init = tokio::select! {
            biased;
            state = async { init_state.wait_for(|state| *state != InitState::Starting).await.map(|state| state.clone()) } => match state {
                Ok(InitState::Ready(at)) => Init::Ready(at),
                Ok(InitState::Failed { error_type, error_message }) => Init::Failed(error_type, error_message),
                Ok(InitState::Starting) | Err(_) => Init::Exited(process.exited().await),
            },
            status = process.exited() => Init::Exited(status),
            () = tokio::time::sleep(INIT_TIMEOUT) => Init::TimedOut,
        };
        let failure = match init {
            Init::Ready(at) => {
                let init = at.saturating_duration_since(process.spawned_at);
                self.lock_stats().init(init);
                return Acquired::Process {
                    process,
                    init: Some(init),
                };
            }
            Init::Failed(error_type, error_message) => {
                process.kill().await;
                (error_type, error_message)
            }
            Init::Exited(status) => (
                "Runtime.ExitError".to_owned(),
                format!("Runtime exited with error: {status}"),
            ),
            Init::TimedOut => {
                process.kill().await;
                (
                    "Sandbox.Timedout".to_owned(),
                    format!(
                        "Init phase timed out after {:.2} seconds",
                        INIT_TIMEOUT.as_secs_f64()
                    ),
                )
            }
        };
        process.flush_logs().await;
        Acquired::InitFailed {
            error_type: failure.0,
            error_message: failure.1,
            duration: started.elapsed(),
        }
    }

    /// Runs the invocation on `process` and leaves the process idle (if it is fit) or dead.
    /// With `kill`, the process is SIGKILLed as its answer arrives (the answer dropped), or
    /// while it runs.
    async fn run_on(
        &self,
        process: &Arc<Process>,
        request_id: &str,
        payload: &Bytes,
        init: Option<Duration>,
        kill: Option<Kill>,
    ) -> Run {
        let (answer_tx, mut answer_rx) = oneshot::channel();
        let (delivered_tx, delivered_rx) = oneshot::channel();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let deadline_ms =
            epoch_ms().saturating_add(u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX));
        process.api.begin(request_id, answer_tx);
        self.log(&format!("START RequestId: {request_id} Version: $LATEST"));
        let started = Instant::now();
        let event = Event {
            request_id: request_id.to_owned(),
            deadline_ms,
            trace_id: new_trace_id(),
            payload: payload.clone(),
            delivered: delivered_tx,
        };
        if process.events.try_send(event).is_err() {
            // Cannot happen with an idle process (its queue is empty); do not reuse it.
            process.api.end();
            let status = process.kill().await;
            return Run::NotDelivered {
                reason: format!("Runtime exited with error: {status}"),
            };
        }

        let exited = process.exited();
        tokio::pin!(exited);

        enum Phase {
            Answered(Answer),
            Exited(String),
            TimedOut,
            /// The kill fault struck: as the answer arrived (it is dropped), or before.
            Killed {
                before_answer: bool,
            },
        }
        enum Handover {
            Taken,
            Dropped,
            Exited(String),
            TimedOut,
        }
        let handover = tokio::select! {
            biased;
            taken = delivered_rx => if taken.is_ok() { Handover::Taken } else { Handover::Dropped },
            status = &mut exited => Handover::Exited(status),
            () = tokio::time::sleep_until(deadline) => Handover::TimedOut,
        };
        let phase = match handover {
            // The event was dropped untaken: the process is going.
            Handover::Dropped => {
                process.api.end();
                return Run::NotDelivered {
                    reason: format!("Runtime exited with error: {}", exited.await),
                };
            }
            Handover::Exited(status) => {
                process.api.end();
                return Run::NotDelivered {
                    reason: format!("Runtime exited with error: {status}"),
                };
            }
            Handover::TimedOut => Phase::TimedOut,
            Handover::Taken => {
                let mut answer_open = true;
                let strike = match kill {
                    Some(Kill::During(after)) => Some(tokio::time::Instant::now() + after),
                    _ => None,
                };
                loop {
                    tokio::select! {
                        biased;
                        answer = &mut answer_rx, if answer_open => match answer {
                            Ok(_) if kill.is_some() => break Phase::Killed { before_answer: false },
                            Ok(answer) => break Phase::Answered(answer),
                            // The answer's connection broke: the exit or the deadline decides.
                            Err(_) => answer_open = false,
                        },
                        status = &mut exited => break Phase::Exited(status),
                        () = tokio::time::sleep_until(deadline) => break Phase::TimedOut,
                        () = async {
                            match strike {
                                Some(at) => tokio::time::sleep_until(at).await,
                                None => std::future::pending().await,
                            }
                        } => break Phase::Killed { before_answer: true },
                    }
                }
            }
        };
        let answered_at = Instant::now();
        let duration = answered_at.saturating_duration_since(started);
        process.api.end();
        // Read here, where the answer has just arrived: the first response of a cold process.
        let first_response = (init.is_some()
            && matches!(phase, Phase::Answered(Answer::Response(_))))
        .then(|| answered_at.saturating_duration_since(process.spawned_at));
        if first_response.is_some() {
            process.note_cold_cpu();
        }

        let (outcome, rss) = match phase {
            Phase::Answered(answer) => {
                // The process is alive: both at once.
                let (rss, ()) = tokio::join!(process.peak_rss(), process.flush_logs());
                let outcome = match answer {
                    Answer::Response(body) => Outcome::Success(body),
                    Answer::Error {
                        error_type,
                        error_message,
                    } => Outcome::FunctionError {
                        error_type,
                        error_message,
                    },
                };
                (outcome, rss)
            }
            Phase::Exited(status) => {
                let reason = if self.pool.lock().shut_down {
                    format!("the function was shut down ({status})")
                } else {
                    format!("Runtime exited with error: {status}")
                };
                process.flush_logs().await;
                (Outcome::Crashed { reason }, None)
            }
            Phase::TimedOut => {
                let rss = process.peak_rss().await;
                process.kill().await;
                process.flush_logs().await;
                (Outcome::TimedOut, rss)
            }
            Phase::Killed { before_answer } => {
                // Alive until now: what it wrote so far is logged first.
                let (rss, ()) = tokio::join!(process.peak_rss(), process.flush_logs());
                let status = process.kill().await;
                self.faults.count_kill(before_answer);
                let reason = if before_answer {
                    format!("killed by fault injection while its handler ran ({status})")
                } else {
                    format!("killed by fault injection after its handler answered ({status})")
                };
                (Outcome::Crashed { reason }, rss)
            }
        };
        self.report(request_id, &outcome, duration, init, rss);
        if matches!(outcome, Outcome::Success(_) | Outcome::FunctionError { .. }) {
            self.release(process);
        }
        Run::Done {
            outcome,
            timing: Timing {
                duration,
                first_response,
            },
        }
    }

    /// Back to the idle list, unless it has gone, the function is shutting down, or its
    /// binary has been replaced since it started.
    fn release(&self, process: &Arc<Process>) {
        let mut pool = self.pool.lock();
        if pool.shut_down || process.has_exited() || !pool.live.contains_key(&process.seq) {
            return;
        }
        if process.seq < pool.stale_below {
            pool.retired.insert(process.seq);
            process.start_kill();
        } else {
            pool.idle.push(process.clone());
        }
    }

    /// Lambda's closing lines for an invocation.
    fn report(
        &self,
        request_id: &str,
        outcome: &Outcome,
        duration: Duration,
        init: Option<Duration>,
        rss: Option<u64>,
    ) {
        if let Some(rss) = rss {
            self.lock_stats().rss(rss);
        }
        match outcome {
            Outcome::Crashed { reason } => {
                self.log(&format!("RequestId: {request_id} Error: {reason}"));
                self.log("Runtime.ExitError");
            }
            Outcome::TimedOut => self.log(&format!(
                "{} {request_id} Task timed out after {:.2} seconds",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                self.timeout.as_secs_f64()
            )),
            Outcome::Success(_) | Outcome::FunctionError { .. } | Outcome::InitError { .. } => {}
        }
        self.log(&format!("END RequestId: {request_id}"));
        let millis = duration.as_secs_f64() * 1000.0;
        let mut report = format!(
            "REPORT RequestId: {request_id}\tDuration: {millis:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            millis.ceil().max(1.0),
            self.config.memory_mb,
            rss.map_or(0, |bytes| bytes.div_ceil(1024 * 1024)),
        );
        if let Some(init) = init {
            report.push_str(&format!(
                "\tInit Duration: {:.2} ms",
                init.as_secs_f64() * 1000.0
            ));
        }
        if matches!(outcome, Outcome::TimedOut) {
            report.push_str("\tStatus: timeout");
        } else if matches!(outcome, Outcome::Crashed { .. }) {
            report.push_str("\tStatus: error\tError Type: Runtime.ExitError");
        }
        self.log(&report);
    }
}

fn refused(request_id: String) -> Invocation {
    Invocation {
        request_id,
        outcome: Outcome::Crashed {
            reason: "the function is shut down: invocation refused".to_owned(),
        },
        duration: Duration::ZERO,
        cold_start: false,
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// A random (version 4) UUID, as Lambda's request ids are.
fn new_request_id() -> String {
    let bits = fastrand::u128(..);
    let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// An X-Ray trace header, as Lambda passes one (not sampled).
fn new_trace_id() -> String {
    let seconds = epoch_ms() / 1000;
    format!(
        "Root=1-{seconds:08x}-{:024x};Parent={:016x};Sampled=0",
        fastrand::u128(..) >> 32,
        fastrand::u64(..)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids() {
        for _ in 0..100 {
            let id = new_request_id();
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(
                parts.iter().map(|part| part.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{id}"
            );
            assert!(parts[2].starts_with('4'), "{id}");
            assert!(
                matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "{id}"
            );
        }
        assert_ne!(new_request_id(), new_request_id());
    }

    #[test]
    fn trace_ids_have_lambdas_shape() {
        let trace = new_trace_id();
        let root = trace.strip_prefix("Root=1-").unwrap();
        let (time, rest) = root.split_once('-').unwrap();
        assert_eq!(time.len(), 8);
        assert_eq!(rest.split_once(';').unwrap().0.len(), 24);
        assert!(trace.ends_with(";Sampled=0"));
    }
}
