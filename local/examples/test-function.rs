//! A real `lambda_runtime` function for the local Lambda environment's tests: the payload
//! picks the behaviour.
//!
//! - by default: echoes the payload with the invocation's context
//!   (`{"echo", "requestId", "deadlineMs", "functionArn", "traceId", "pid"}`)
//! - `{"fail": "msg"}`: returns an error (`errorType` `TestFailure`, `errorMessage` msg)
//! - `{"crash": true}`: aborts the process
//! - `{"sleepMs": n}`: sleeps n ms, then echoes
//! - `{"env": "NAME"}`: answers `{"name", "value"}` (value `null` when unset)
//! - `{"big": n}`: answers a JSON string of n `x` (n + 2 bytes)
//! - `{"log": "text"}`: prints the text on stdout and stderr, then echoes
//!
//! With `INIT_FAIL=1` in its environment it exits(1) before starting the runtime.

use std::time::Duration;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    if std::env::var("INIT_FAIL").as_deref() == Ok("1") {
        eprintln!("test-function: INIT_FAIL=1, exiting before the runtime starts");
        std::process::exit(1);
    }
    lambda_runtime::run(service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let (payload, context) = event.into_parts();
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(Diagnostic {
            error_type: "TestFailure".into(),
            error_message: message.into(),
        });
    }
    if payload.get("crash").and_then(Value::as_bool) == Some(true) {
        eprintln!("test-function: aborting");
        std::process::abort();
    }
    if let Some(text) = payload.get("log").and_then(Value::as_str) {
        println!("stdout: {text}");
        eprintln!("stderr: {text}");
    }
    if let Some(ms) = payload.get("sleepMs").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(name) = payload.get("env").and_then(Value::as_str) {
        return Ok(json!({ "name": name, "value": std::env::var(name).ok() }));
    }
    if let Some(n) = payload.get("big").and_then(Value::as_u64) {
        return Ok(Value::String("x".repeat(usize::try_from(n).unwrap_or(0))));
    }
    Ok(json!({
        "echo": payload,
        "requestId": context.request_id,
        "deadlineMs": context.deadline,
        "functionArn": context.invoked_function_arn,
        "traceId": context.xray_trace_id,
        "pid": std::process::id(),
    }))
}
