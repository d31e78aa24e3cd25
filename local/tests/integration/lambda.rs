//! The local Lambda environment against a real `lambda_runtime` binary: the
//! `test-function` example (built by `cargo test`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::test_function;
use bytes::Bytes;
use serde_json::{Value, json};
use shop_local::faults::{FaultSettings, Faults};
use shop_local::lambda::{
    DurationStats, FunctionConfig, Invocation, InvocationsEnded, LambdaFunction, LogSink, Outcome,
};

fn config(name: &str) -> FunctionConfig {
    FunctionConfig {
        display_name: "test-function".into(),
        function_name: name.into(),
        binary: test_function(),
        environment: BTreeMap::new(),
        timeout: Duration::from_secs(5),
        memory_mb: 128,
        max_processes: 2,
    }
}

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    fn sink(&self) -> LogSink {
        let lines = self.0.clone();
        Arc::new(move |name: &str, line: &str| {
            assert_eq!(name, "test-function");
            lines.lock().unwrap().push(line.to_owned());
        })
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn position(&self, needle: &str) -> Option<usize> {
        self.lines().iter().position(|line| line.contains(needle))
    }
}

fn start(config: FunctionConfig) -> (Arc<LambdaFunction>, Logs) {
    start_with(config, Faults::none())
}

fn start_with(config: FunctionConfig, faults: Faults) -> (Arc<LambdaFunction>, Logs) {
    let logs = Logs::default();
    let function = LambdaFunction::new(
        config,
        Arc::new(faults),
        logs.sink(),
        InvocationsEnded::default(),
    );
    (function, logs)
}

async fn invoke(function: &LambdaFunction, payload: Value) -> Invocation {
    function.invoke(Bytes::from(payload.to_string())).await
}

fn body(invocation: &Invocation) -> Value {
    match &invocation.outcome {
        Outcome::Success(body) => serde_json::from_slice(body).expect("JSON answer"),
        other => panic!("expected success, got {other:?}"),
    }
}

fn pid_of(invocation: &Invocation) -> u32 {
    body(invocation)["pid"].as_u64().expect("pid") as u32
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Polls `/proc` until the process is gone (reaped), up to `within`.
async fn gone_within(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echo_round_trip_carries_the_invocation_context() {
    let (function, logs) = start(config("shop-echo"));
    let before = epoch_ms();
    let invocation = invoke(&function, json!({ "hello": "world" })).await;
    let answer = body(&invocation);
    assert_eq!(answer["echo"], json!({ "hello": "world" }));
    assert_eq!(answer["requestId"], invocation.request_id);
    assert_eq!(
        answer["functionArn"],
        "arn:aws:lambda:us-east-1:123456789012:function:shop-echo"
    );
    assert!(
        answer["traceId"].as_str().unwrap().starts_with("Root=1-"),
        "{answer}"
    );
    let deadline = answer["deadlineMs"].as_u64().unwrap();
    assert!(
        deadline >= before + 5000 && deadline <= epoch_ms() + 5000,
        "deadline {deadline}, before {before}"
    );
    assert!(invocation.cold_start);
    assert_eq!(invocation.request_id.len(), 36);

    let start = logs
        .position(&format!("START RequestId: {}", invocation.request_id))
        .expect("START");
    let end = logs
        .position(&format!("END RequestId: {}", invocation.request_id))
        .expect("END");
    let report = logs
        .position(&format!("REPORT RequestId: {}", invocation.request_id))
        .expect("REPORT");
    assert!(start < end && end < report);
    assert!(
        logs.lines()[report].contains("Init Duration: "),
        "{:?}",
        logs.lines()[report]
    );
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_function_prints_before_answering_is_logged_before_invoke_returns() {
    let (function, logs) = start(config("shop-logs"));
    let invocation = invoke(&function, json!({ "log": "hello logs" })).await;
    assert!(invocation.outcome.is_success());
    // No waiting: the lines are there when invoke returns, between START and END.
    let start = logs.position("START RequestId").unwrap();
    let stdout = logs
        .position("stdout: hello logs")
        .expect("the stdout line");
    let stderr = logs
        .position("stderr: hello logs")
        .expect("the stderr line");
    let end = logs.position("END RequestId").unwrap();
    assert!(
        start < stdout && start < stderr && stdout < end && stderr < end,
        "{:#?}",
        logs.lines()
    );
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_process_is_reused() {
    let (function, _logs) = start(config("shop-warm"));
    let first = invoke(&function, json!({})).await;
    let second = invoke(&function, json!({})).await;
    assert!(first.cold_start);
    assert!(!second.cold_start);
    assert_eq!(pid_of(&first), pid_of(&second));
    assert_eq!(function.pids(), [pid_of(&first)]);
    assert_eq!(function.stats().cold_starts, 1);
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_replaces_idle_processes_at_once_and_busy_ones_once_they_answer() {
    let (function, logs) = start(config("shop-reload"));
    let (first, second) = tokio::join!(
        invoke(&function, json!({ "sleepMs": 200 })),
        invoke(&function, json!({ "sleepMs": 200 }))
    );
    let warm = BTreeSet::from([pid_of(&first), pid_of(&second)]);
    assert_eq!(warm.len(), 2, "two processes are warm");

    let busy = tokio::spawn({
        let function = function.clone();
        async move { invoke(&function, json!({ "log": "begun", "sleepMs": 1500 })).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while logs.position("begun").is_none() {
        assert!(Instant::now() < deadline, "the busy invocation never began");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    function.reload().await;

    let busy = busy.await.unwrap();
    let busy_pid = pid_of(&busy);
    assert!(
        warm.contains(&busy_pid),
        "the invocation under way ends on its process"
    );
    let idle_pid = *warm.iter().find(|pid| **pid != busy_pid).unwrap();
    assert!(!alive(idle_pid), "the idle process went with the reload");
    assert!(
        gone_within(busy_pid, Duration::from_secs(5)).await,
        "the busy process went once it answered"
    );

    let next = invoke(&function, json!({})).await;
    assert!(next.cold_start);
    assert!(!warm.contains(&pid_of(&next)));
    let after = invoke(&function, json!({})).await;
    assert!(!after.cold_start, "the new process stays warm");
    assert_eq!(pid_of(&after), pid_of(&next));
    assert!(
        logs.lines().iter().all(|line| !line.contains("exited")),
        "a reload is not a crash: {:#?}",
        logs.lines()
    );
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_rebuilds_on_a_saved_source_and_reloads_only_the_functions_it_changed() {
    let root = std::env::temp_dir().join(format!("shop-watch-{}", ulid::Ulid::generate()));
    let source = root.join("functions/catalog/src/api.rs");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    std::fs::write(&source, "// v1").unwrap();
    let bin = root.join("target/debug");
    std::fs::create_dir_all(&bin).unwrap();
    let mut functions = BTreeMap::new();
    let mut logs = BTreeMap::new();
    for name in ["changed", "unchanged"] {
        std::fs::copy(test_function(), bin.join(name)).unwrap();
        let (function, function_logs) = start(FunctionConfig {
            binary: bin.join(name),
            ..config(name)
        });
        functions.insert(name.to_owned(), function);
        logs.insert(name, function_logs);
    }
    let warm = |name: &str| {
        let function = functions[name].clone();
        async move { pid_of(&invoke(&function, json!({})).await) }
    };
    let (changed_pid, unchanged_pid) = (warm("changed").await, warm("unchanged").await);

    // The build cargo would do: a new file renamed over the binary (a running executable
    // cannot be written), for the one function the change reaches; the second build fails.
    let builds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let said = Logs::default();
    let watching = tokio::spawn(shop_local::watch::watch(
        functions.clone(),
        root.clone(),
        {
            let (builds, bin) = (builds.clone(), bin.clone());
            move || {
                let (builds, bin) = (builds.clone(), bin.clone());
                async move {
                    if builds.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                        return Err("cargo build failed (exit status: 101)".to_owned());
                    }
                    std::fs::copy(test_function(), bin.join("changed.new")).unwrap();
                    std::fs::rename(bin.join("changed.new"), bin.join("changed")).unwrap();
                    Ok(())
                }
            }
        },
        {
            let sink = said.sink();
            move |line: &str| sink("test-function", line)
        },
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&source, "// v2").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while said.position("reloaded").is_none() {
        assert!(Instant::now() < deadline, "no reload: {:#?}", said.lines());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        said.position("reloaded changed:").is_some(),
        "{:#?}",
        said.lines()
    );
    assert!(!alive(changed_pid), "the changed function's process went");
    let reloaded = invoke(&functions["changed"], json!({})).await;
    assert!(reloaded.cold_start);
    let untouched = invoke(&functions["unchanged"], json!({})).await;
    assert!(!untouched.cold_start, "the other function stays warm");
    assert_eq!(pid_of(&untouched), unchanged_pid);

    std::fs::write(&source, "// v3, which does not compile").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while said
        .position("keep running their previous binaries")
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "no failed build: {:#?}",
            said.lines()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after_failure = invoke(&functions["changed"], json!({})).await;
    assert!(!after_failure.cold_start, "a failed build reloads nothing");
    assert_eq!(pid_of(&after_failure), pid_of(&reloaded));

    watching.abort();
    for function in functions.values() {
        function.shutdown().await;
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_is_a_function_error_and_the_process_stays() {
    let (function, _logs) = start(config("shop-fail"));
    let first = invoke(&function, json!({})).await;
    let failed = invoke(&function, json!({ "fail": "no such product" })).await;
    assert_eq!(
        failed.outcome,
        Outcome::FunctionError {
            error_type: "TestFailure".into(),
            error_message: "no such product".into()
        }
    );
    assert_eq!(
        failed.error_payload(),
        Some(json!({ "errorType": "TestFailure", "errorMessage": "no such product" }))
    );
    let after = invoke(&function, json!({})).await;
    assert!(!after.cold_start);
    assert_eq!(pid_of(&after), pid_of(&first));
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_reported_and_the_next_invocation_gets_a_new_process() {
    let (function, logs) = start(config("shop-crash"));
    let first = invoke(&function, json!({})).await;
    let old_pid = pid_of(&first);
    let crashed = invoke(&function, json!({ "crash": true })).await;
    match &crashed.outcome {
        Outcome::Crashed { reason } => assert!(reason.contains("signal: 6"), "{reason}"),
        other => panic!("expected a crash, got {other:?}"),
    }
    assert!(!crashed.cold_start);
    assert!(
        !alive(old_pid),
        "the crashed process is reaped before invoke returns"
    );
    assert!(function.pids().is_empty());
    assert!(
        logs.position("test-function: aborting").is_some(),
        "its last words are logged"
    );
    assert!(logs.position("Runtime.ExitError").is_some());

    let next = invoke(&function, json!({})).await;
    assert!(next.cold_start);
    assert_ne!(pid_of(&next), old_pid);
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_process() {
    let (function, logs) = start(FunctionConfig {
        timeout: Duration::from_millis(500),
        ..config("shop-timeout")
    });
    let warm = invoke(&function, json!({})).await;
    let pid = pid_of(&warm);
    let started = Instant::now();
    let timed_out = invoke(&function, json!({ "sleepMs": 20_000 })).await;
    assert_eq!(timed_out.outcome, Outcome::TimedOut);
    assert!(
        timed_out.duration >= Duration::from_millis(500),
        "{:?}",
        timed_out.duration
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(!alive(pid), "killed and reaped before invoke returns");
    assert!(function.pids().is_empty());
    assert!(
        logs.position("Task timed out after 0.50 seconds").is_some(),
        "{:#?}",
        logs.lines()
    );
    let error = timed_out.error_payload().unwrap();
    assert_eq!(error["errorType"], "Sandbox.Timedout");
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_failure_is_an_init_error() {
    let mut config = config("shop-init-fail");
    config.environment.insert("INIT_FAIL".into(), "1".into());
    let (function, logs) = start(config);
    let invocation = invoke(&function, json!({})).await;
    match &invocation.outcome {
        Outcome::InitError {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "Runtime.ExitError");
            assert!(error_message.contains("exit status: 1"), "{error_message}");
        }
        other => panic!("expected an init error, got {other:?}"),
    }
    assert!(invocation.cold_start);
    assert!(function.pids().is_empty());
    assert!(
        logs.position("INIT_FAIL=1, exiting").is_some(),
        "{:#?}",
        logs.lines()
    );
    let stats = function.stats();
    assert_eq!(
        (
            stats.invocations,
            stats.errors,
            stats.cold_starts,
            stats.crashes
        ),
        (1, 1, 1, 0)
    );
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_binary_is_an_init_error() {
    let config = FunctionConfig {
        binary: "/nonexistent/bootstrap".into(),
        ..config("shop-missing")
    };
    let (function, _logs) = start(config);
    let invocation = invoke(&function, json!({})).await;
    assert!(
        matches!(&invocation.outcome, Outcome::InitError { error_type, .. } if error_type == "Runtime.InvalidEntrypoint"),
        "{invocation:?}"
    );
    assert!(function.pids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_limited_to_max_processes() {
    let (function, _logs) = start(config("shop-concurrency"));
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let function = function.clone();
        let watching = watching.clone();
        tokio::spawn(async move {
            let mut most = 0;
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(function.pids().len());
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            most
        })
    };
    let started = Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let function = function.clone();
            tokio::spawn(async move { invoke(&function, json!({ "sleepMs": 300 })).await })
        })
        .collect();
    let mut pids = BTreeSet::new();
    for call in calls {
        let invocation = call.await.unwrap();
        pids.insert(pid_of(&invocation));
    }
    let elapsed = started.elapsed();
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.await.unwrap();
    assert!(most <= 2, "{most} processes at once");
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(
        elapsed >= Duration::from_millis(600),
        "two rounds of 300 ms: {elapsed:?}"
    );
    let stats = function.stats();
    assert_eq!(
        (stats.invocations, stats.cold_starts, stats.errors),
        (4, 2, 0)
    );
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_is_lambdas_and_the_configured_one_only() {
    assert!(std::env::var_os("HOME").is_some() || std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let mut config = config("shop-env");
    config
        .environment
        .insert("TABLE_NAME".into(), "products".into());
    let (function, _logs) = start(config);
    let env =
        async |name: &str| body(&invoke(&function, json!({ "env": name })).await)["value"].clone();
    assert_eq!(env("HOME").await, Value::Null);
    assert_eq!(env("CARGO_MANIFEST_DIR").await, Value::Null);
    assert_eq!(env("TABLE_NAME").await, "products");
    assert_eq!(env("AWS_LAMBDA_FUNCTION_NAME").await, "shop-env");
    assert_eq!(env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").await, "128");
    assert_eq!(env("AWS_LAMBDA_FUNCTION_VERSION").await, "$LATEST");
    assert_eq!(
        env("AWS_LAMBDA_LOG_GROUP_NAME").await,
        "/aws/lambda/shop-env"
    );
    assert!(
        env("AWS_LAMBDA_LOG_STREAM_NAME")
            .await
            .as_str()
            .unwrap()
            .contains("[$LATEST]")
    );
    assert_eq!(env("AWS_EXECUTION_ENV").await, "AWS_Lambda_rust");
    assert_eq!(env("_HANDLER").await, "bootstrap");
    assert!(
        env("AWS_LAMBDA_RUNTIME_API")
            .await
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let task_root = env("LAMBDA_TASK_ROOT").await;
    assert_eq!(
        Path::new(task_root.as_str().unwrap()),
        test_function().parent().unwrap()
    );
    assert!(env("PATH").await.is_string());
    function.shutdown().await;
}

/// The pids of the processes started so far, from their `INIT_START` lines, oldest first.
fn started_pids(logs: &Logs) -> Vec<u32> {
    logs.lines()
        .iter()
        .filter_map(|line| {
            let (_, pid) = line.strip_prefix("INIT_START ")?.rsplit_once("pid ")?;
            pid.strip_suffix(')')?.parse().ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_fault_lands_after_the_handler_has_answered() {
    let faults = Arc::new(Faults::new(FaultSettings {
        kill: 1.0,
        kill_during: 0.0,
        ..FaultSettings::default()
    }));
    let logs = Logs::default();
    let function = LambdaFunction::new(
        config("shop-fault"),
        faults.clone(),
        logs.sink(),
        InvocationsEnded::default(),
    );
    let invocation = invoke(
        &function,
        json!({ "log": "effect committed", "sleepMs": 300 }),
    )
    .await;
    match &invocation.outcome {
        Outcome::Crashed { reason } => assert!(reason.contains("fault injection"), "{reason}"),
        other => panic!("expected a crash, got {other:?}"),
    }
    // The handler ran to its end: its line, its 300 ms, its answer (dropped).
    assert!(
        invocation.duration >= Duration::from_millis(300),
        "killed before the handler was done: {:?}",
        invocation.duration
    );
    let stdout = logs
        .position("stdout: effect committed")
        .expect("the handler's line");
    let end = logs
        .position(&format!("END RequestId: {}", invocation.request_id))
        .expect("END");
    assert!(stdout < end, "{:#?}", logs.lines());
    assert!(
        logs.lines()[end + 1].contains("Status: error"),
        "{:#?}",
        logs.lines()
    );
    let pids = started_pids(&logs);
    assert_eq!(pids.len(), 1, "{:#?}", logs.lines());
    assert!(!alive(pids[0]), "killed and reaped before invoke returns");
    assert!(function.pids().is_empty());
    assert_eq!(faults.counts().kills, 1);

    // The next invocation starts a fresh process (killed in its turn: probability 1).
    let next = invoke(&function, json!({ "log": "second" })).await;
    assert!(next.cold_start);
    assert!(
        matches!(&next.outcome, Outcome::Crashed { reason } if reason.contains("fault injection")),
        "{next:?}"
    );
    assert!(logs.position("stdout: second").is_some());
    let pids = started_pids(&logs);
    assert_eq!(pids.len(), 2, "{:#?}", logs.lines());
    assert_ne!(pids[0], pids[1]);
    assert!(!alive(pids[1]));
    let stats = function.stats();
    assert_eq!(
        (stats.invocations, stats.cold_starts, stats.crashes),
        (2, 2, 2)
    );
    assert_eq!(faults.counts().kills, 2);
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_fault_can_strike_while_the_handler_runs() {
    let faults = Arc::new(Faults::new(FaultSettings {
        kill: 1.0,
        kill_during: 1.0,
        ..FaultSettings::default()
    }));
    let logs = Logs::default();
    let function = LambdaFunction::new(
        config("shop-fault-during"),
        faults.clone(),
        logs.sink(),
        InvocationsEnded::default(),
    );
    // The handler logs, then sleeps past every drawn moment: it is struck mid-way.
    let invocation = invoke(&function, json!({ "log": "begun", "sleepMs": 2000 })).await;
    match &invocation.outcome {
        Outcome::Crashed { reason } => {
            assert!(reason.contains("while its handler ran"), "{reason}")
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    assert!(
        invocation.duration < Duration::from_millis(2000),
        "struck before the handler was done: {:?}",
        invocation.duration
    );
    assert!(
        logs.position("stdout: too late").is_none(),
        "{:#?}",
        logs.lines()
    );
    let pids = started_pids(&logs);
    assert!(!alive(pids[0]), "killed and reaped before invoke returns");
    assert_eq!(
        (faults.counts().kills, faults.counts().kills_before_answer),
        (1, 1)
    );
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_never_reached_a_process_records_no_duration() {
    let (function, logs) = start(FunctionConfig {
        max_processes: 1,
        ..config("shop-undelivered")
    });
    let first = invoke(&function, json!({})).await;
    let pid = pid_of(&first);
    // Frozen, then cut off from its Runtime API: it can neither take an event nor exit.
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(stopped.success());
    function.close_runtime_apis();
    let waiting = {
        let function = function.clone();
        tokio::spawn(async move { invoke(&function, json!({})).await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while logs
        .lines()
        .iter()
        .filter(|line| line.starts_with("START"))
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "{:#?}", logs.lines());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The process goes, the event still untaken.
    function.shutdown().await;
    let undelivered = waiting.await.unwrap();
    assert!(
        matches!(undelivered.outcome, Outcome::Crashed { .. }),
        "{undelivered:?}"
    );
    let stats = function.stats();
    assert_eq!((stats.invocations, stats.crashes), (2, 1));
    let first_ms = (first.duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    if undelivered.duration.is_zero() {
        // The event never left the runtime: only the first invocation had an invoke
        // phase, so both percentiles are its duration (no 0 ms sample drags them down).
        assert_eq!(
            stats.duration_ms,
            DurationStats {
                p50: first_ms,
                p99: first_ms
            }
        );
    } else {
        // The process had already asked for its next event when it was frozen, so the
        // event was handed over: a real (killed) invoke phase, recorded as such.
        assert!(
            stats.duration_ms.p99 >= stats.duration_ms.p50 && stats.duration_ms.p50 > 0.0,
            "{:?}",
            stats.duration_ms
        );
    }
}

/// Set in the child process that [`a_failing_accept_does_not_spin`] runs itself in.
const FD_EXHAUSTION_CHILD: &str = "SHOP_LOCAL_TEST_FD_EXHAUSTION_CHILD";

/// The process's CPU time so far (user and system), in clock ticks.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The fields after the command's closing parenthesis; utime and stime are the 12th and
    // 13th of them.
    let (_, rest) = stat.rsplit_once(')').expect("stat's shape");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_accept_does_not_spin() {
    if std::env::var_os(FD_EXHAUSTION_CHILD).is_none() {
        // Running out of file descriptors hits the whole process: this test runs alone, in a
        // child process of its own with a low limit.
        let exe = std::env::current_exe().expect("current exe");
        // The test's name as libtest knows it: its module path without the crate's name.
        let module = module_path!()
            .split_once("::")
            .map_or("", |(_, module)| module);
        let name = format!("{module}::a_failing_accept_does_not_spin");
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -n 256 && exec "$0" "$@""#)
            .arg(exe)
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(FD_EXHAUSTION_CHILD, "1")
            .output()
            .await
            .expect("run the child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{}\n{stdout}\n{stderr}",
            output.status
        );
        return;
    }

    let (function, _logs) = start(config("shop-accept"));
    let runtime_api =
        body(&invoke(&function, json!({ "env": "AWS_LAMBDA_RUNTIME_API" })).await)["value"]
            .as_str()
            .expect("AWS_LAMBDA_RUNTIME_API")
            .to_owned();
    let before = cpu_ticks();
    // Every free descriptor taken but one, which the client's end of a new connection takes:
    // the Runtime API server's accept then has none (EMFILE), the connection stays queued.
    let mut hoard = Vec::new();
    let exhausted = loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => hoard.push(file),
            Err(error) => break error,
        }
    };
    assert_eq!(exhausted.raw_os_error(), Some(24), "EMFILE: {exhausted}");
    hoard.pop();
    let client = std::net::TcpStream::connect(&runtime_api).expect("connect");
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(hoard);
    let spent = cpu_ticks() - before;
    // A spinning accept loop burns a whole core: about 100 ticks (of 10 ms) in that second.
    assert!(spent < 30, "{spent} ticks of CPU while accept was failing");

    // With descriptors back, the queued connection is served.
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut client = client;
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client
            .write_all(b"GET /nope HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = client.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer:?}");
    assert!(invoke(&function, json!({})).await.outcome.is_success());
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_kills_every_process_and_refuses_new_invocations() {
    let (function, logs) = start(config("shop-shutdown"));
    let warm: Vec<_> = (0..2)
        .map(|_| {
            let function = function.clone();
            tokio::spawn(async move { invoke(&function, json!({ "sleepMs": 100 })).await })
        })
        .collect();
    for call in warm {
        assert!(call.await.unwrap().outcome.is_success());
    }
    let pids = function.pids();
    assert_eq!(pids.len(), 2);
    let in_flight = {
        let function = function.clone();
        tokio::spawn(async move { invoke(&function, json!({ "sleepMs": 20_000 })).await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while logs
        .lines()
        .iter()
        .filter(|line| line.starts_with("START"))
        .count()
        < 3
    {
        assert!(
            Instant::now() < deadline,
            "the third invocation never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let started = Instant::now();
    function.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for pid in &pids {
        assert!(!alive(*pid), "process {pid} is still there");
    }
    assert!(function.pids().is_empty());
    assert_eq!(function.stats().processes, 0);
    let in_flight = in_flight.await.unwrap();
    assert!(
        matches!(in_flight.outcome, Outcome::Crashed { .. }),
        "{in_flight:?}"
    );
    let refused = invoke(&function, json!({})).await;
    assert!(
        matches!(&refused.outcome, Outcome::Crashed { reason } if reason.contains("shut down")),
        "{refused:?}"
    );
    assert!(function.pids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_whose_runtime_api_disappears_exits_by_itself() {
    let (function, logs) = start(config("shop-orphan"));
    let pid = pid_of(&invoke(&function, json!({})).await);
    function.close_runtime_apis();
    // A bound on "eventually", not a timing claim: a loaded 2-core CI machine once took
    // more than 5 s to schedule the exit.
    assert!(
        gone_within(pid, Duration::from_secs(30)).await,
        "process {pid} still running"
    );
    assert!(function.pids().is_empty());
    // It exited on its own (lambda_runtime's failed /next), not by a signal.
    let deadline = Instant::now() + Duration::from_secs(10);
    while logs.position("exited: exit status: 1").is_none() {
        assert!(Instant::now() < deadline, "{:#?}", logs.lines());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The next invocation simply gets a new process.
    let next = invoke(&function, json!({})).await;
    assert!(next.cold_start && next.outcome.is_success(), "{next:?}");
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_invoke_still_completes_and_frees_its_process() {
    let (function, _logs) = start(FunctionConfig {
        max_processes: 1,
        ..config("shop-dropped")
    });
    let pid = pid_of(&invoke(&function, json!({})).await);
    let dropped = tokio::time::timeout(
        Duration::from_millis(50),
        invoke(&function, json!({ "sleepMs": 300 })),
    )
    .await;
    assert!(dropped.is_err(), "the caller gave up");
    // The only process is reused once the abandoned invocation is done with it.
    let next = invoke(&function, json!({})).await;
    assert!(!next.cold_start);
    assert_eq!(pid_of(&next), pid);
    let stats = function.stats();
    assert_eq!(
        (stats.invocations, stats.cold_starts, stats.errors),
        (3, 1, 0)
    );
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_response_is_a_function_error() {
    let (function, _logs) = start(config("shop-big"));
    let fits = invoke(&function, json!({ "big": 6 * 1024 * 1024 - 2 })).await;
    assert!(
        matches!(&fits.outcome, Outcome::Success(body) if body.len() == 6 * 1024 * 1024),
        "exactly 6 MB fits"
    );
    let too_big = invoke(&function, json!({ "big": 7_000_000 })).await;
    match &too_big.outcome {
        Outcome::FunctionError { error_type, .. } => {
            assert_eq!(error_type, "Function.ResponseSizeTooLarge")
        }
        other => panic!(
            "expected a size error, got {:?}",
            std::mem::discriminant(other)
        ),
    }
    // The process survives its refused answer, as on Lambda.
    let after = invoke(&function, json!({})).await;
    assert!(!after.cold_start);
    assert_eq!(function.stats().cold_starts, 1);
    function.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stats_count_what_happened() {
    let (function, _logs) = start(FunctionConfig {
        timeout: Duration::from_millis(500),
        ..config("shop-stats")
    });
    assert!(invoke(&function, json!({})).await.outcome.is_success());
    assert!(invoke(&function, json!({})).await.outcome.is_success());
    assert!(matches!(
        invoke(&function, json!({ "fail": "x" })).await.outcome,
        Outcome::FunctionError { .. }
    ));
    assert!(matches!(
        invoke(&function, json!({ "crash": true })).await.outcome,
        Outcome::Crashed { .. }
    ));
    assert_eq!(
        invoke(&function, json!({ "sleepMs": 5000 })).await.outcome,
        Outcome::TimedOut
    );
    assert!(invoke(&function, json!({})).await.outcome.is_success());
    let stats = function.stats();
    assert_eq!(stats.name, "test-function");
    assert_eq!(stats.invocations, 6);
    assert_eq!(stats.errors, 3);
    assert_eq!(stats.crashes, 1);
    assert_eq!(stats.timeouts, 1);
    // First call, after the crash, after the timeout.
    assert_eq!(stats.cold_starts, 3);
    assert_eq!(stats.processes, 1);
    assert!(
        stats.peak_rss_bytes > 1024 * 1024,
        "{}",
        stats.peak_rss_bytes
    );
    assert!(
        stats.init_ms.p50 > 0.0 && stats.init_ms.max >= stats.init_ms.p50,
        "{:?}",
        stats.init_ms
    );
    assert!(
        stats.duration_ms.p50 > 0.0 && stats.duration_ms.p99 >= 500.0,
        "{:?}",
        stats.duration_ms
    );
    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["initMs"].as_object().unwrap().len(), 2);
    function.shutdown().await;
}

/// Cold start and warm invoke overhead for the example function. Prints the figures
/// (`cargo test -p shop-local --test integration lambda::measure -- --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_cold_start_and_warm_overhead() {
    let (function, _logs) = start(config("shop-measure"));
    let mut round_trips = Vec::new();
    let first = invoke(&function, json!({})).await;
    assert!(first.cold_start);
    for _ in 0..100 {
        let started = Instant::now();
        let invocation = invoke(&function, json!({ "n": 1 })).await;
        round_trips.push(started.elapsed());
        assert!(!invocation.cold_start && invocation.outcome.is_success());
    }
    round_trips.sort();
    let stats = function.stats();
    let p50 = round_trips[49];
    let p99 = round_trips[98];
    println!(
        "init: {:.2} ms; warm invoke() round trip over 100: p50 {:.3} ms, p99 {:.3} ms; invoke phase p50 {:.3} ms; peak RSS {} KiB",
        stats.init_ms.max,
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        stats.duration_ms.p50,
        stats.peak_rss_bytes / 1024
    );
    assert!(p50 < Duration::from_millis(100), "{p50:?}");
    function.shutdown().await;
}
