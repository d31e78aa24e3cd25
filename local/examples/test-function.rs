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
//! - `{"Records": [...]}` (an SQS or DynamoDB stream batch, as an event source mapping
//!   sends it): appends one line per record to the file named by `RECORD_LOG` (the
//!   record's SQS body or the `NewImage.id.S` of a stream record), then answers
//!   `{"batchItemFailures": [...]}` naming each record whose text contains `fail`.
//!   A record containing `error-once` fails the whole invocation the first time it is
//!   seen (a `<RECORD_LOG>.seen-<text>` file remembers), `error-always` every time,
//!   `crash` aborts the process; one containing `bogus-id` is reported under an
//!   identifier that names no record. Each batch is appended, before its records, as
//!   one JSON line (the records as received) to `<RECORD_LOG>.batches`.
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
    if let Some(records) = payload.get("Records").and_then(Value::as_array) {
        return batch(records);
    }
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

/// A record's text and its id as the mapping reports it: SQS body and messageId, or a
/// stream record's `NewImage.id.S` and SequenceNumber.
fn record_text_and_id(record: &Value) -> (String, String) {
    match record.get("messageId") {
        Some(id) => (
            record["body"].as_str().unwrap_or("").to_owned(),
            id.as_str().unwrap_or("").to_owned(),
        ),
        None => (
            record["dynamodb"]["NewImage"]["id"]["S"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            record["dynamodb"]["SequenceNumber"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        ),
    }
}

fn batch(records: &[Value]) -> Result<Value, Diagnostic> {
    let log = std::env::var("RECORD_LOG").ok();
    let texts: Vec<(String, String)> = records.iter().map(record_text_and_id).collect();
    if let Some(log) = &log {
        use std::io::Write;
        // The batch first: a test that waits until the records are all in `RECORD_LOG`
        // then finds every batch that carried them in `<RECORD_LOG>.batches` too.
        let mut batches = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{log}.batches"))
            .map_err(|e| failure(&e))?;
        writeln!(batches, "{}", Value::from(records.to_vec())).map_err(|e| failure(&e))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| failure(&e))?;
        for (text, _) in &texts {
            writeln!(file, "{text}").map_err(|e| failure(&e))?;
        }
    }
    let mut failed = Vec::new();
    for (text, id) in &texts {
        if text.contains("crash") {
            std::process::abort();
        }
        if text.contains("error-once")
            && let Some(log) = &log
        {
            let seen = format!("{log}.seen-{text}");
            if std::fs::metadata(&seen).is_err() {
                std::fs::write(&seen, b"").map_err(|e| failure(&e))?;
                return Err(Diagnostic {
                    error_type: "TestFailure".into(),
                    error_message: format!("first sight of {text}"),
                });
            }
        }
        if text.contains("error-always") {
            return Err(Diagnostic {
                error_type: "TestFailure".into(),
                error_message: format!("{text} always fails"),
            });
        }
        if text.contains("fail") {
            failed.push(json!({ "itemIdentifier": id }));
        }
        if text.contains("bogus-id") {
            failed.push(json!({ "itemIdentifier": format!("bogus-{id}") }));
        }
    }
    Ok(json!({ "batchItemFailures": failed }))
}

fn failure(error: &dyn std::fmt::Display) -> Diagnostic {
    Diagnostic {
        error_type: "TestFailure".into(),
        error_message: error.to_string(),
    }
}
