//! End to end: the real `shop-local up`, on a free port, running the real function
//! binaries against its own moto. Each test starts its own stack (own run directory,
//! own emulator) and checks that stopping it leaves no process behind.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use shop_local::client::{HttpClient, http_client, send};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The function binaries, built once per test run (cargo is not holding its lock while
/// tests run, so this is an ordinary incremental build).
fn build_functions() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--workspace", "--bins"])
            .current_dir(repo_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the function binaries failed");
    });
}

/// A generous bound for a stack to come up on a loaded 2-core machine; a guard against
/// hanging forever, not a performance assertion.
const STARTUP_LIMIT: Duration = Duration::from_secs(180);

struct Runner {
    child: Child,
    // Held so the reader thread keeps draining the stack's stdout (a full pipe would block it).
    _lines: Receiver<String>,
    run_dir: PathBuf,
    url: String,
    http: HttpClient,
}

impl Runner {
    fn start(extra: &[&str]) -> Self {
        build_functions();
        let run_dir =
            std::env::temp_dir().join(format!("shop-local-e2e-{}", ulid::Ulid::generate()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_shop-local"))
            .args(["up", "--port", "0", "--no-build", "--no-seed", "--run-dir"])
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
            _lines: lines,
            run_dir,
            url,
            http: http_client(),
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_shop-local"))
            .args(args)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .current_dir(repo_root())
            .output()
            .unwrap()
    }

    fn token(&self, user: &str, admin: bool) -> String {
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

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let response = send(&self.http, request.body(Full::new(body)).unwrap())
            .await
            .unwrap();
        let value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (response.status().as_u16(), value)
    }

    /// Every process the stack started that is alive now: moto and the functions'.
    async fn started_pids(&self) -> Vec<u32> {
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
    fn stop_with(mut self, signal: &str, started: &[u32]) {
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
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn product(name: &str) -> Value {
    json!({"name": name, "category": "e2e", "price": {"amount": 1500, "currency": "USD"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_works_through_the_gateway_and_sigint_stops_everything() {
    let stack = Runner::start(&[]);
    let admin = stack.token("admin-e2e", true);
    let shopper = stack.token("shopper-e2e", false);

    // The bus feed, as a developer would watch it.
    let mut tail = Command::new(env!("CARGO_BIN_EXE_shop-local"))
        .args(["tail", "--json", "--run-dir"])
        .arg(&stack.run_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tail_lines = {
        let (sender, receiver) = channel::<String>();
        let stdout = tail.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        // tail says it is subscribed on stderr before any event can pass.
        let mut stderr = BufReader::new(tail.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        assert!(first.contains("tailing"), "{first}");
        receiver
    };

    let (status, problem) = stack
        .call("POST", "/products", None, Some(product("Nope")))
        .await;
    assert_eq!(
        (status, problem["message"].clone()),
        (401, json!("Unauthorized"))
    );
    let (status, _) = stack
        .call(
            "POST",
            "/products",
            Some("not-a-token"),
            Some(product("Nope")),
        )
        .await;
    assert_eq!(status, 401);
    let (status, problem) = stack
        .call("POST", "/products", Some(&shopper), Some(product("Nope")))
        .await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["status"], 403);

    let (status, created) = stack
        .call(
            "POST",
            "/products",
            Some(&admin),
            Some(product("E2E Teapot")),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, listed) = stack
        .call("GET", "/products?category=e2e", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].clone())
            .collect::<Vec<_>>(),
        vec![json!(id)]
    );
    let (status, fetched) = stack
        .call("GET", &format!("/products/{id}"), None, None)
        .await;
    assert_eq!((status, fetched), (200, created.clone()));
    let oversized = Value::String("x".repeat(10 * 1024 * 1024));
    let (status, problem) = stack
        .call("POST", "/products", Some(&admin), Some(oversized))
        .await;
    assert_eq!(
        (status, problem["message"].clone()),
        (413, json!("Request Entity Too Large"))
    );
    let (status, missing) = stack.call("GET", "/nowhere", None, None).await;
    assert_eq!(
        (status, missing["message"].clone()),
        (404, json!("Not Found"))
    );

    // ProductCreated crosses the bus: outbox → stream → relay → EventBridge → tail.
    let deadline = Instant::now() + STARTUP_LIMIT;
    let event = loop {
        let line = tail_lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("ProductCreated on the bus");
        let event: Value = serde_json::from_str(&line).unwrap();
        if event["detail"]["data"]["productId"] == json!(id) {
            break event;
        }
    };
    assert_eq!(event["source"], "shop.catalog");
    assert_eq!(event["detail-type"], "ProductCreated");
    assert_eq!(event["detail"]["data"]["name"], "E2E Teapot");
    assert_eq!(event["detail"]["metadata"]["schemaVersion"], 1);
    let _ = tail.kill();
    let _ = tail.wait();

    let started = stack.started_pids().await;
    assert!(
        started.len() >= 3,
        "moto, the API and the relay: {started:?}"
    );
    stack.stop_with("INT", &started);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_function_gets_an_error_and_sigterm_leaves_no_process() {
    let stack = Runner::start(&["--kill-probability", "1.0"]);
    let (status, body) = stack.call("GET", "/products", None, None).await;
    assert_eq!(
        (status, body),
        (500, json!({"message": "Internal Server Error"}))
    );
    let (_, stats) = stack.call("GET", "/_local/stats", None, None).await;
    let api = stats["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["binary"] == "catalog-api")
        .unwrap()
        .clone();
    assert!(api["crashes"].as_u64().unwrap() >= 1, "{api}");
    assert_eq!(
        api["pids"],
        json!([]),
        "the killed process is gone, not left behind"
    );
    assert!(stats["faults"]["injected"]["kills"].as_u64().unwrap() >= 1);

    let started = stack.started_pids().await;
    stack.stop_with("TERM", &started);
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_runs_every_sample_event_against_its_function() {
    let stack = Runner::start(&[]);
    let mut invoked = 0;
    for capability in std::fs::read_dir(repo_root().join("events")).unwrap() {
        let capability = capability.unwrap().path();
        let name = capability
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for file in std::fs::read_dir(&capability).unwrap() {
            let file = file.unwrap().path();
            let kind = file
                .file_name()
                .unwrap()
                .to_string_lossy()
                .split('-')
                .next()
                .unwrap()
                .to_owned();
            let function = format!("{name}-{kind}");
            let output = stack.command(&["invoke", &function, "--event", file.to_str().unwrap()]);
            let printed: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
                panic!(
                    "{}: {}",
                    file.display(),
                    String::from_utf8_lossy(&output.stderr)
                )
            });
            assert!(output.status.success(), "{}: {printed}", file.display());
            assert_eq!(printed["outcome"], "success", "{}", file.display());
            assert!(printed["requestId"].is_string());
            invoked += 1;
        }
    }
    assert!(invoked >= 8, "every sample event: {invoked}");
    let output = stack.command(&[
        "invoke",
        "no-such-function",
        "--event",
        "events/catalog/api-health.json",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no function no-such-function"));
    let started = stack.started_pids().await;
    stack.stop_with("INT", &started);
}

#[test]
fn commands_without_a_running_stack_say_so() {
    let run_dir = std::env::temp_dir().join(format!("shop-local-none-{}", ulid::Ulid::generate()));
    for args in [
        vec!["tail"],
        vec![
            "invoke",
            "catalog-api",
            "--event",
            "events/catalog/api-health.json",
        ],
        vec!["token", "--user", "someone"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_shop-local"))
            .args(&args)
            .arg("--run-dir")
            .arg(&run_dir)
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("shop-local up"),
            "{args:?}"
        );
    }
}
