//! lambda_http around a handler that does nothing: the runtime's loop plus the API Gateway
//! event parsed into an `http::Request` and the response serialised back.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_request: Request| async {
        Ok::<_, Error>(ok()?)
    }))
    .await
}

fn ok() -> Result<Response<Body>, lambda_http::http::Error> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from("{}"))
}
