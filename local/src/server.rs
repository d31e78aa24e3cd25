//! The HTTP front door of a running stack: the API (API Gateway's behaviour, see
//! `gateway.rs`), the local issuer's OpenID discovery document and JWKS under
//! `/.well-known/`, the storefront and its sign-in endpoints where no route matches
//! (`web.rs`), and, under `/_local/`, the runner's own endpoints: stats, the live event
//! feed that `shop-local tail` reads, and single invocations for `shop-local invoke`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;

use crate::gateway::{
    MAX_PAYLOAD_BYTES, Matched, RequestFacts, add_cors_headers, cors_preflight, function_answer,
    gateway_answer, request_event, select_route,
};
use crate::lambda::Outcome;
use crate::stack::Stack;
use crate::topology::{FUNCTION_URL_PREFIX, RouteAuth, RouteSpec};

type Body = BoxBody<Bytes, Infallible>;

/// Lambda's limit on a synchronous invocation's event (6 MB).
const MAX_INVOKE_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

fn full(response: Response<Bytes>) -> Response<Body> {
    response.map(|bytes| Full::new(bytes).boxed())
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Bytes::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    full(response)
}

/// Serves until the task is aborted.
pub async fn serve(listener: TcpListener, stack: Arc<Stack>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of file descriptors, say: give the system a moment rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let stack = stack.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let stack = stack.clone();
                async move { Ok::<_, Infallible>(handle(&stack, request, peer).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn handle(
    stack: &Arc<Stack>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let path = request.uri().path().to_owned();
    match crate::websocket::target(&path) {
        Some(crate::websocket::Target::Stage(stage)) => {
            return crate::websocket::connect(stack, request, peer, stage).await;
        }
        Some(crate::websocket::Target::Connection { connection_id }) => {
            return crate::websocket::management(stack, request, &connection_id).await;
        }
        None => {}
    }
    if let Some(target) = path.strip_prefix(FUNCTION_URL_PREFIX) {
        let target = target.to_owned();
        return function_url(stack, request, peer, &target).await;
    }
    if let Some(local) = path.strip_prefix("/_local/") {
        return control(stack, request, local).await;
    }
    // The local issuer's keys, where a verifier outside shop-local finds them (Cognito
    // serves the same documents under its issuer URL).
    if request.method() == Method::GET {
        match path.as_str() {
            "/.well-known/openid-configuration" => {
                return json_response(
                    StatusCode::OK,
                    &stack.issuer.openid_configuration(&stack.api_url),
                );
            }
            "/.well-known/jwks.json" => {
                return json_response(StatusCode::OK, &stack.issuer.jwks());
            }
            _ => {}
        }
    }
    // API Gateway answers a preflight itself, before any route is looked at.
    if let Some(cors) = &stack.topology.cors
        && request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key("access-control-request-method")
        && let Some(origin) = header_text(&request, "origin")
    {
        let request_id = ulid::Ulid::generate().to_string().to_lowercase();
        let answer = cors_preflight(cors, &origin, &request_id);
        stack.log(
            "gateway",
            &format!(
                "OPTIONS {path} {} (preflight from {origin})",
                answer.status().as_u16()
            ),
        );
        return full(answer);
    }
    if select_route(&stack.topology.routes, request.method().as_str(), &path).is_none() {
        return web(stack, request).await;
    }
    api(stack, request, peer).await
}

fn header_text<B>(request: &Request<B>, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// What no API route takes: the storefront's files and sign-in endpoints, else the
/// gateway's own 404.
async fn web(stack: &Stack, request: Request<Incoming>) -> Response<Body> {
    /// More than any sign-in form or token request holds.
    const MAX_FORM_BYTES: usize = 64 * 1024;
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let body = if parts.method == Method::POST {
        match Limited::new(body, MAX_FORM_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        }
    } else {
        Bytes::new()
    };
    let path = parts.uri.path();
    let answer = stack
        .web
        .answer(
            &stack.issuer,
            &parts.method,
            path,
            parts.uri.query().unwrap_or(""),
            &body,
        )
        .unwrap_or_else(|| {
            let request_id = ulid::Ulid::generate().to_string().to_lowercase();
            gateway_answer(StatusCode::NOT_FOUND, "Not Found", &request_id)
        });
    stack.log(
        "web",
        &format!(
            "{} {path} {} {}ms",
            parts.method,
            answer.status().as_u16(),
            started.elapsed().as_millis()
        ),
    );
    full(answer)
}

async fn api(stack: &Stack, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let started = Instant::now();
    let request_id = ulid::Ulid::generate().to_string().to_lowercase();
    let origin = header_text(&request, "origin");
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let mut response = api_response(stack, parts, body, peer, &request_id).await;
    if let (Some(cors), Some(origin)) = (&stack.topology.cors, &origin) {
        add_cors_headers(cors, origin, &mut response);
    }
    stack.log(
        "gateway",
        &format!(
            "{method} {path} {} {}ms",
            response.status().as_u16(),
            started.elapsed().as_millis()
        ),
    );
    full(response)
}

async fn api_response(
    stack: &Stack,
    parts: http::request::Parts,
    body: Incoming,
    peer: SocketAddr,
    request_id: &str,
) -> Response<Bytes> {
    let Some(matched) = select_route(
        &stack.topology.routes,
        parts.method.as_str(),
        parts.uri.path(),
    ) else {
        return gateway_answer(StatusCode::NOT_FOUND, "Not Found", request_id);
    };
    let claims = match &matched.route.auth {
        RouteAuth::None => None,
        RouteAuth::Jwt { issuer, audience } => {
            let header = parts
                .headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match header.map(|token| stack.issuer.verify(token, issuer, audience)) {
                Some(Ok(claims)) => Some(claims),
                _ => return gateway_answer(StatusCode::UNAUTHORIZED, "Unauthorized", request_id),
            }
        }
    };
    let Ok(body) = read_body(body).await else {
        return gateway_answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request Entity Too Large",
            request_id,
        );
    };
    let facts = RequestFacts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body: &body,
        source_ip: peer.ip().to_string(),
        request_id,
        claims,
    };
    invoke_route(stack, &matched, &facts).await
}

/// A request to a function URL: `target` is `<function name>/<the function's path>`.
/// The function sees its own path, route key `$default` and no authorizer, as behind a
/// real function URL (whose payload is format 2.0 too).
async fn function_url(
    stack: &Stack,
    request: Request<Incoming>,
    peer: SocketAddr,
    target: &str,
) -> Response<Body> {
    let started = Instant::now();
    let request_id = ulid::Ulid::generate().to_string().to_lowercase();
    let (function, path) = match target.split_once('/') {
        Some((function, rest)) => (function, format!("/{rest}")),
        None => (target, "/".to_owned()),
    };
    if !stack
        .topology
        .function_urls
        .iter()
        .any(|url| url.function == function)
    {
        return full(gateway_answer(
            StatusCode::NOT_FOUND,
            "Not Found",
            &request_id,
        ));
    }
    let route = RouteSpec {
        route_key: "$default".to_owned(),
        method: "ANY".to_owned(),
        path: "/".to_owned(),
        function: function.to_owned(),
        auth: RouteAuth::None,
    };
    let matched = Matched {
        route: &route,
        path_parameters: Default::default(),
    };
    let (parts, body) = request.into_parts();
    let response = match read_body(body).await {
        Err(()) => gateway_answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request Entity Too Large",
            &request_id,
        ),
        Ok(body) => {
            let facts = RequestFacts {
                method: parts.method.as_str(),
                path: &path,
                raw_query: parts.uri.query().unwrap_or(""),
                headers: &parts.headers,
                body: &body,
                source_ip: peer.ip().to_string(),
                request_id: &request_id,
                claims: None,
            };
            invoke_route(stack, &matched, &facts).await
        }
    };
    stack.log(
        "function-url",
        &format!(
            "{} {function}{path} {} {}ms",
            parts.method,
            response.status().as_u16(),
            started.elapsed().as_millis()
        ),
    );
    full(response)
}

/// The request body, or `Err` when it is over API Gateway's limit. An oversized body is
/// still read to its end (up to a bound), so a client that sends it whole gets the 413
/// instead of a connection reset in the middle of sending.
async fn read_body(mut body: Incoming) -> Result<Bytes, ()> {
    const DRAIN_LIMIT: usize = 8 * MAX_PAYLOAD_BYTES;
    let mut collected = Vec::new();
    let mut seen = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return Err(()) };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > DRAIN_LIMIT {
            return Err(());
        }
        if seen <= MAX_PAYLOAD_BYTES {
            collected.extend_from_slice(&data);
        }
    }
    if seen > MAX_PAYLOAD_BYTES {
        Err(())
    } else {
        Ok(Bytes::from(collected))
    }
}

/// Invokes the route's function with the request and maps its outcome as API Gateway
/// does: a function error or crash is a 500, a timeout a 503.
pub async fn invoke_route(
    stack: &Stack,
    matched: &Matched<'_>,
    facts: &RequestFacts<'_>,
) -> Response<Bytes> {
    let event = request_event(matched, facts);
    let Some(function) = stack.functions.get(&matched.route.function) else {
        return gateway_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            facts.request_id,
        );
    };
    let event = event.to_string();
    if event.len() > MAX_INVOKE_PAYLOAD_BYTES {
        // Lambda refuses an event over its synchronous payload limit before any code runs.
        return gateway_answer(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request Entity Too Large",
            facts.request_id,
        );
    }
    let invocation = function.invoke(Bytes::from(event)).await;
    match invocation.outcome {
        Outcome::Success(payload) => function_answer(&payload, facts.request_id),
        // Lambda reports its own timeout as a function error, which HTTP API answers as
        // any other: a 500 (its 503 is for its own 30 s integration limit).
        _ => gateway_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            facts.request_id,
        ),
    }
}

async fn control(stack: &Stack, request: Request<Incoming>, path: &str) -> Response<Body> {
    match (request.method(), path) {
        (&Method::GET, "stats") => json_response(StatusCode::OK, &stack.stats()),
        (&Method::GET, "events") => event_feed(stack),
        (&Method::GET, "dlq") => {
            let dead_letters = operations(stack).await;
            match dead_letters.dead_letters(None).await {
                Ok(queues) => json_response(StatusCode::OK, &json!(queues)),
                Err(error) => json_response(StatusCode::BAD_GATEWAY, &json!({"message": error})),
            }
        }
        (&Method::POST, redrive)
            if redrive.starts_with("dlq/") && redrive.ends_with("/redrive") =>
        {
            let queue = &redrive["dlq/".len()..redrive.len() - "/redrive".len()];
            match operations(stack).await.redrive(queue).await {
                Ok(done) => json_response(StatusCode::OK, &json!(done)),
                Err(error) => json_response(StatusCode::NOT_FOUND, &json!({"message": error})),
            }
        }
        // What a function runs with here (the template's variables, moto's endpoint and
        // credentials), for running it outside the stack: `cargo lambda watch --env-file`.
        (&Method::GET, env) if env.starts_with("env/") => {
            let name = &env["env/".len()..];
            match stack.function_named(name) {
                Some(function) => {
                    json_response(StatusCode::OK, &json!(function.config().environment))
                }
                None => no_function(stack, name),
            }
        }
        (&Method::POST, invoke) if invoke.starts_with("invoke/") => {
            let name = &invoke["invoke/".len()..];
            let Some(function) = stack.function_named(name) else {
                return no_function(stack, name);
            };
            let Ok(collected) = Limited::new(request.into_body(), MAX_PAYLOAD_BYTES)
                .collect()
                .await
            else {
                return json_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &json!({"message": "event too large"}),
                );
            };
            let invocation = function.invoke(collected.to_bytes()).await;
            let (outcome, payload) = match (&invocation.outcome, invocation.error_payload()) {
                (Outcome::Success(bytes), _) => (
                    "success",
                    serde_json::from_slice(bytes)
                        .unwrap_or_else(|_| json!(String::from_utf8_lossy(bytes))),
                ),
                (Outcome::FunctionError { .. }, Some(error)) => ("error", error),
                (Outcome::InitError { .. }, Some(error)) => ("init-error", error),
                (Outcome::Crashed { .. }, Some(error)) => ("crashed", error),
                (_, error) => ("timed-out", error.unwrap_or_default()),
            };
            json_response(
                StatusCode::OK,
                &json!({
                    "requestId": invocation.request_id,
                    "outcome": outcome,
                    "coldStart": invocation.cold_start,
                    "durationMs": invocation.duration.as_secs_f64() * 1000.0,
                    "payload": payload,
                }),
            )
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"message": "unknown /_local endpoint"}),
        ),
    }
}

fn no_function(stack: &Stack, name: &str) -> Response<Body> {
    let known: Vec<&str> = stack
        .topology
        .functions
        .iter()
        .map(|f| f.binary.as_str())
        .collect();
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"message": format!("no function {name}; known: {}", known.join(", "))}),
    )
}

/// The dead-letter tools of `shop-local dlq`, on the stack's own view of itself.
async fn operations(stack: &Stack) -> crate::dead_letters::Stack {
    crate::dead_letters::Stack::new(
        stack.stats(),
        crate::stack::sdk_config(&stack.moto_endpoint).await,
    )
}

/// Newline-delimited JSON, one line per event that crosses a bus, for as long as the
/// client stays connected.
fn event_feed(stack: &Stack) -> Response<Body> {
    let mut events = stack.events.subscribe();
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(16);
    tokio::spawn(async move {
        // An immediate first chunk lets the client know it is subscribed.
        if sender
            .send(Frame::data(Bytes::from_static(b"\n")))
            .await
            .is_err()
        {
            return;
        }
        loop {
            match events.recv().await {
                Ok(event) => {
                    if sender
                        .send(Frame::data(Bytes::from(format!("{event}\n"))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    // Say so: a reader that fell behind must not think it saw everything.
                    let notice = format!("{}\n", serde_json::json!({ "dropped": missed }));
                    if sender.send(Frame::data(Bytes::from(notice))).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let mut response = Response::new(body.boxed());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-ndjson"),
    );
    response
}
