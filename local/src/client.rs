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
