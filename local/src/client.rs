//! How the commands reach a running stack: its run file, and plain HTTP to its
//! `/_local/` endpoints.

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::stack::RUN_FILE;

/// The API URL of the stack running with this run directory.
pub fn running_stack(run_dir: &Path) -> Result<String, String> {
    let path = run_dir.join(RUN_FILE);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        format!(
            "no running stack found ({} is missing): start one with `shop-local up`",
            path.display()
        )
    })?;
    let run: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    run["apiUrl"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{} has no apiUrl", path.display()))
}

pub type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request and collects the whole answer.
pub async fn send(
    client: &HttpClient,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<Bytes>, String> {
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(http::Response::from_parts(parts, bytes))
}

/// One call to the running stack's `/_local/{path}`: its JSON answer, or the message of an
/// answer that is not a success.
pub async fn call_local(
    run_dir: &Path,
    method: http::Method,
    path: &str,
    body: Bytes,
) -> Result<Value, String> {
    let api_url = running_stack(run_dir)?;
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{api_url}/_local/{path}"))
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let response = send(&http_client(), request).await?;
    let answer: Value =
        serde_json::from_slice(response.body()).map_err(|e| format!("/_local/{path}: {e}"))?;
    if !response.status().is_success() {
        return Err(answer["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("/_local/{path} answered {}", response.status())));
    }
    Ok(answer)
}

/// A client of the shop's HTTP API, as a front end is: JSON in and out, a bearer token.
#[derive(Clone)]
pub struct ApiClient {
    http: HttpClient,
    base_url: String,
}

impl ApiClient {
    pub fn new(base_url: &str) -> Self {
        Self {
            http: http_client(),
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The status and the JSON answer (`Null` when the body is not JSON); `Err` only when
    /// no answer came back.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Value), String> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let response = send(&self.http, request)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        Ok((response.status().as_u16(), value))
    }
}
