//! The floor of every function: lambda_runtime's loop (`next`, then the response) around
//! a handler that does nothing. No logging, as in the other baselines: they measure what
//! the crates cost, not what a function chooses to log.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({"statusCode": 200, "body": "{}"}))
    }))
    .await
}
