//! The end-to-end harness: starts the real `shop-local up` on a free port with its own
//! run directory and emulator, talks to it over HTTP, and stops it with a signal,
//! checking that nothing it started survives.

pub mod invariants;
pub mod shop;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;
use shop_local::client::{ApiClient, HttpClient, http_client, send};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What the root template declares, read as shop-local reads it (the endpoints are
/// placeholders: nothing is called).
pub fn project_topology() -> shop_local::topology::Topology {
    shop_local::template::load(
        &repo_root().join("template.yaml"),
        &shop_local::template::LoadOptions {
            endpoint_url: "http://127.0.0.1:1".into(),
            api_url: "http://127.0.0.1:2".into(),
            parameters: Default::default(),
        },
    )
    .unwrap()
}

/// The function binaries and the examples (`test-function`), built or brought up to date
/// once per test run (cargo is not holding its lock while tests run): `cargo test -p
/// shop-local` builds neither, and a stale binary would test yesterday's code.
pub fn build_functions() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            // With the examples, which need the dev-dependencies, cargo resolves features
            // as `cargo test --workspace` does: this build finds that one's binaries up to
            // date instead of building every dependency again with other features.
            .args(["build", "--workspace", "--bins", "--examples"])
            .current_dir(repo_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the function binaries failed");
    });
}

/// A generous bound for a stack to come up on a loaded 2-core machine; a guard against
/// hanging forever, not a performance assertion.
pub const STARTUP_LIMIT: Duration = Duration::from_secs(180);

pub struct Runner {
    pub child: Child,
    /// The stack's stdout (its own lines and every function's logs), as the reader thread
    /// drains it (a full pipe would block the stack); [`Runner::output`] keeps what it read.
    lines: Mutex<Receiver<String>>,
    read: Mutex<Vec<String>>,
    pub run_dir: PathBuf,
    pub url: String,
    http: HttpClient,
    pub api: ApiClient,
}

impl Runner {
    pub fn start(extra: &[&str]) -> Self {
        build_functions();
        let run_dir =
            std::env::temp_dir().join(format!("shop-local-e2e-{}", ulid::Ulid::generate()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_shop-local"))
            .args(["up", "--port", "0", "--no-build", "--no-seed"])
            // The reconciler's schedule every second, not every minute; the settle window
            // one charge attempt (2 s) and the sandbox's longest hold (5 s) need; and a
            // killed consumer's messages back after its timeout, not the queue's minute.
            .args([
                "--schedules-every",
                "1",
                "--parameter",
                "ChargeSettleSeconds=10",
                "--shortest-visibility-timeouts",
            ])
            .arg("--run-dir")
            .arg(&run_dir)
            .args(extra)
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("shop-local starts");
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("[stack] {line}");
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + STARTUP_LIMIT;
        let url = loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("shop-local did not become ready"));
            if let Some(rest) = line.strip_prefix("shop-local: ready at ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        Self {
            child,
            lines: Mutex::new(lines),
            read: Mutex::new(Vec::new()),
            run_dir,
            api: ApiClient::new(&url),
            url,
            http: http_client(),
        }
    }

    /// Everything the stack printed so far: its own lines and every function's log lines.
    pub fn output(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        let mut read = self.read.lock().unwrap();
        read.extend(lines.try_iter());
        read.clone()
    }

    pub fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_shop-local"))
            .args(args)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .current_dir(repo_root())
            .output()
            .unwrap()
    }

    pub fn token(&self, user: &str, admin: bool) -> String {
        let mut args = vec!["token", "--user", user];
        if admin {
            args.push("--admin");
        }
        let output = self.command(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_with_headers(method, path, token, body, &[]).await
    }

    pub async fn call_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.api
            .call(method, path, token, body.as_ref(), headers)
            .await
            .unwrap()
    }

    /// [`Self::call`], again while the answer is a 5xx: what a client does when a
    /// function died under its request (the kill fault), for requests that are safe to
    /// repeat. The bound only keeps a broken stack from looping forever.
    pub async fn call_retrying(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut attempts = 0;
        loop {
            let (status, answer) = self.call(method, path, token, body.clone()).await;
            attempts += 1;
            if status < 500 || attempts == 50 {
                return (status, answer);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A request as given (method, path with its query, headers, body), answered whole:
    /// for what the JSON helpers hide (headers, redirects, HTML).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> http::Response<Bytes> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        send(
            &self.http,
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .unwrap()
    }

    /// A request with a body sent exactly as given, malformed or not.
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url))
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = send(
            &self.http,
            request
                .body(Full::new(Bytes::from(body.to_owned())))
                .unwrap(),
        )
        .await
        .unwrap();
        (
            response.status().as_u16(),
            serde_json::from_slice(response.body()).unwrap_or(Value::Null),
        )
    }

    /// Every process the stack started that is alive now: moto and the functions'.
    pub async fn started_pids(&self) -> Vec<u32> {
        let (_, stats) = self.call("GET", "/_local/stats", None, None).await;
        let mut pids = vec![stats["processes"]["moto"].as_u64().unwrap() as u32];
        for function in stats["functions"].as_array().unwrap() {
            pids.extend(
                function["pids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p.as_u64().unwrap() as u32),
            );
        }
        pids
    }

    /// Sends the signal, waits for a clean exit and checks that nothing it started lives.
    pub fn stop_with(mut self, signal: &str, started: &[u32]) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(
            exit.success(),
            "shop-local exited with {exit} after SIG{signal}"
        );
        for pid in started {
            assert!(
                !alive(*pid),
                "process {pid} outlived the stack after SIG{signal}"
            );
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // A failing test must not leave the stack behind either.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Alive and not a zombie waiting for its parent.
/// `shop-local tail --json` on a running stack: the bus feed as a developer watches it.
pub struct Tail {
    child: Child,
    pub lines: Receiver<String>,
}

impl Tail {
    /// Returns once tail is subscribed, so no later event can pass it by.
    pub fn start(stack: &Runner) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shop-local"))
            .args(["tail", "--json", "--run-dir"])
            .arg(&stack.run_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = channel::<String>();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        // tail says it is subscribed on stderr before any event can pass.
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        assert!(first.contains("tailing"), "{first}");
        Self { child, lines }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Polls until `check` answers `Some`, for effects that cross the bus asynchronously. The
/// bound only keeps a broken saga from hanging the suite. Polls back off from 25 ms to
/// 100 ms: quick answers are seen quickly, and a hundred clients waiting on slow ones
/// do not bury the emulator (one Python process) under their polls.
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + STARTUP_LIMIT;
    let mut pause = Duration::from_millis(25);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(pause).await;
        pause = (pause * 3 / 2).min(Duration::from_millis(100));
    }
}

/// `target/debug/examples/test-function` (a real `lambda_runtime` function whose payload
/// picks its behaviour), next to this test's `target/debug/deps/`, built by
/// [`build_functions`].
pub fn test_function() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("current exe");
            let binary = exe
                .parent()
                .and_then(std::path::Path::parent)
                .expect("target/<profile>")
                .join("examples/test-function");
            build_functions();
            assert!(binary.is_file(), "no {}", binary.display());
            binary
        })
        .clone()
}
