//! The floor under a handler that makes one AWS call. The shop's `GET
//! /products/{productId}` (catalog-api: one GetItem) is measured beside three reference
//! functions of `local/baselines` that strip it down layer by layer: lambda_runtime's
//! loop alone, lambda_http alone, and lambda_http with one GetItem through the project's
//! SDK configuration and nothing else. All four get the same API Gateway event, one
//! invocation after the other on one warm process, so the differences are the layers'
//! own CPU: what the runtime costs, what the SDK's call costs, what the shop's handler
//! adds on top (routing, its log line and metrics, the item's decoding and JSON).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::report::{FloorFigures, round};
use super::{cpu_spent, processes_cpu, processes_peak_rss};
use crate::gateway::{Matched, RequestFacts, request_event, select_route};
use crate::lambda::{FunctionConfig, InvocationsEnded, LambdaFunction, LogSink, Outcome};
use crate::stack::Stack;

/// The reference functions, lightest first: binary and what it is.
pub const BASELINES: [(&str, &str); 3] = [
    (
        "baseline-runtime",
        "lambda_runtime, a handler doing nothing",
    ),
    ("baseline-http", "lambda_http, a handler doing nothing"),
    (
        "baseline-getitem",
        "lambda_http, one DynamoDB GetItem, nothing else",
    ),
];

/// Invocations before the counted ones: the process started and every connection open.
const WARM_UP: usize = 20;

/// Measures the baselines and catalog-api, `invocations` each; the baselines run beside
/// the stack's functions, from the same directory, with catalog-api's environment (its
/// table, the emulator's endpoint and credentials).
pub async fn run(
    stack: &Stack,
    product_id: &str,
    invocations: usize,
    logs: LogSink,
) -> Result<Vec<FloorFigures>, String> {
    let path = format!("/products/{product_id}");
    let matched = select_route(&stack.topology.routes, "GET", &path)
        .ok_or_else(|| format!("no route for GET {path}"))?;
    let catalog = stack
        .functions
        .get(&matched.route.function)
        .ok_or_else(|| format!("no function {}", matched.route.function))?;
    let event = get_product_event(&matched, &path)?;
    let bin_dir = catalog
        .config()
        .binary
        .parent()
        .unwrap_or(Path::new("."))
        .to_owned();

    let mut figures = Vec::new();
    for (binary, description) in BASELINES {
        let path = bin_dir.join(binary);
        if !path.is_file() {
            return Err(format!(
                "{} is missing: build the baselines (cargo build --release -p bench-baselines)",
                path.display()
            ));
        }
        let baseline = LambdaFunction::new(
            FunctionConfig {
                display_name: binary.to_owned(),
                function_name: format!("bench-{binary}"),
                binary: path,
                environment: catalog.config().environment.clone(),
                timeout: Duration::from_secs(10),
                memory_mb: 128,
                max_processes: 1,
            },
            stack.faults.for_source(binary),
            logs.clone(),
            InvocationsEnded::default(),
        );
        let measured = measure(&baseline, binary, description, &event, invocations).await;
        baseline.shutdown().await;
        figures.push(measured);
    }
    // The shop's own function last, on one process: its idle ones retired first, so that
    // every counted invocation lands on the process the warm-up started.
    catalog.retire_idle().await;
    figures.push(
        measure(
            catalog,
            "catalog-api",
            "the shop's GET /products/{productId}: one GetItem",
            &event,
            invocations,
        )
        .await,
    );
    Ok(figures)
}

/// The event the gateway hands catalog-api for `GET /products/{id}`, with the headers a
/// plain HTTP client sends.
fn get_product_event(matched: &Matched<'_>, path: &str) -> Result<Bytes, String> {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::HOST,
        http::HeaderValue::from_static("127.0.0.1"),
    );
    headers.insert(
        http::header::USER_AGENT,
        http::HeaderValue::from_static("shop-local-bench"),
    );
    headers.insert(http::header::ACCEPT, http::HeaderValue::from_static("*/*"));
    let event = request_event(
        matched,
        &RequestFacts {
            method: "GET",
            path,
            raw_query: "",
            headers: &headers,
            body: &[],
            source_ip: "127.0.0.1".to_owned(),
            request_id: "bench-floor",
            claims: None,
        },
    );
    serde_json::to_vec(&event)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

async fn measure(
    function: &LambdaFunction,
    name: &str,
    description: &str,
    event: &Bytes,
    invocations: usize,
) -> FloorFigures {
    let mut errors = 0;
    for _ in 0..WARM_UP {
        if !answered_ok(function, event).await {
            errors += 1;
        }
    }
    let before = processes_cpu(function);
    for _ in 0..invocations {
        if !answered_ok(function, event).await {
            errors += 1;
        }
    }
    // A process started during the counted invocations (one crashed) counts from its
    // first answer, as in the load's figures.
    let spent = cpu_spent(
        &processes_cpu(function),
        Some(&before),
        Some(&function.cold_cpu()),
    );
    FloorFigures {
        name: name.to_owned(),
        description: description.to_owned(),
        binary_bytes: std::fs::metadata(&function.config().binary).map_or(0, |m| m.len()),
        cpu_ms_per_invocation: if invocations == 0 {
            0.0
        } else {
            round(spent.as_secs_f64() * 1000.0 / invocations as f64)
        },
        max_rss_bytes: processes_peak_rss(function),
        invocations: invocations as u64,
        errors,
    }
}

/// The invocation succeeded and its answer is an HTTP 200 (API Gateway's payload 2.0).
async fn answered_ok(function: &LambdaFunction, event: &Bytes) -> bool {
    match function.invoke(event.clone()).await.outcome {
        Outcome::Success(payload) => serde_json::from_slice::<Value>(&payload)
            .is_ok_and(|answer| answer["statusCode"] == 200),
        _ => false,
    }
}
