//! A lambda_http handler served over real HTTP on loopback, as a Lambda Function URL
//! serves it: for a function that another one calls over the network (a provider's
//! stand-in), so the caller's HTTP client, timeouts and all, is tested for real.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::{Body, Request, RequestExt, Response};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A handler being served; it stops listening when dropped.
pub struct Served {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub url: String,
    accepting: JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Serves `handler` on 127.0.0.1 at a free port until the answer is dropped. Each request
/// reaches it as lambda_http builds it from a Function URL event (method, path, query,
/// headers, body), and its response goes back as it is.
///
/// Each request runs in a task of its own, so a client that gives up (a timeout) does not
/// cancel it: a Lambda invocation runs to its end whether or not its caller is still
/// waiting, and that is what leaves a timed-out request's effect behind.
pub async fn serve<H, Fut>(handler: H) -> Served
where
    H: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("a free loopback port");
    let address = listener.local_addr().expect("a bound address");
    let accepting = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let handler = handler.clone();
                    async move {
                        let request = into_lambda_request(request).await;
                        let response = match tokio::spawn(handler(request)).await {
                            Ok(response) => response,
                            Err(panicked) => {
                                let mut response = Response::new(Body::Text(format!(
                                    "handler failed: {panicked}"
                                )));
                                *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                                response
                            }
                        };
                        Ok::<_, Infallible>(into_hyper_response(response))
                    }
                });
                // A connection the client drops is its business; the server goes on.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Served {
        url: format!("http://{address}"),
        accepting,
    }
}

async fn into_lambda_request(request: hyper::Request<Incoming>) -> Request {
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(_) => Body::Binary(bytes.to_vec()),
        }
    };
    let query: QueryMap = parts.uri.query().unwrap_or("").parse().unwrap_or_default();
    Request::from_parts(parts, body).with_query_string_parameters(query)
}

fn into_hyper_response(response: Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn echo(request: Request) -> Response<Body> {
        let query = request
            .query_string_parameters_ref()
            .and_then(|q| q.first("q"))
            .unwrap_or("")
            .to_owned();
        let body = match request.body() {
            Body::Text(text) => text.clone(),
            _ => String::new(),
        };
        if query == "slow" {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut response = Response::new(Body::Text(format!(
            "{} {} q={query} body={body}",
            request.method(),
            request.uri().path()
        )));
        *response.status_mut() = hyper::StatusCode::CREATED;
        response
            .headers_mut()
            .insert("x-served", "yes".parse().unwrap());
        response
    }

    async fn send(url: &str, body: &str) -> (u16, String, Option<String>) {
        let uri: hyper::Uri = url.parse().unwrap();
        let host = uri.authority().unwrap().to_string();
        let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = hyper::Request::post(uri.path_and_query().unwrap().as_str())
            .header("host", host)
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let header = response
            .headers()
            .get("x-served")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap(), header)
    }

    #[tokio::test]
    async fn a_request_reaches_the_handler_whole_and_its_answer_comes_back_whole() {
        let served = serve(echo).await;
        let (status, body, header) = send(&format!("{}/v1/things?q=x", served.url), "hello").await;
        assert_eq!(status, 201);
        assert_eq!(body, "POST /v1/things q=x body=hello");
        assert_eq!(header.as_deref(), Some("yes"));
    }

    #[tokio::test]
    async fn a_dropped_server_stops_listening() {
        let served = serve(echo).await;
        let address = served.url.trim_start_matches("http://").to_owned();
        drop(served);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(tokio::net::TcpStream::connect(address).await.is_err());
    }
}
