//! End to end: the real `shop-local up`, on a free port, running the real function
//! binaries against its own moto. Each test starts its own stack (own run directory,
//! own emulator) and checks that stopping it leaves no process behind.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Instant;

use serde_json::{Value, json};
use support::{Runner, STARTUP_LIMIT, repo_root};

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
