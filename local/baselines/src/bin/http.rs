//! lambda_http around a handler that does nothing: the runtime's loop plus the API Gateway
//! event parsed into an `http::Request` and the response serialised back.

use bench_baselines::answer;
use lambda_http::{Error, Request, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_request: Request| async { answer() })).await
}
