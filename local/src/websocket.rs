//! API Gateway's WebSocket API, emulated from the templates: clients connect to
//! `{api}/websocket/{stage}` (AWS: `wss://{apiId}.execute-api.{region}.amazonaws.com/{stage}`),
//! each route's function gets the events API Gateway sends (`$connect` with the handshake's
//! headers and query string, a client's messages on the route its selection expression
//! picks, `$disconnect`), and the functions push through the Management API at
//! `{api}/websocket/{stage}/@connections/{connectionId}` (POST, GET, DELETE), which is
//! where the SDK's `PostToConnection` goes when its endpoint is the stage's URL.
//!
//! As on AWS: a `$connect` answered with anything but 2xx refuses the handshake with that
//! status; a connection idle for 10 minutes, or open for 2 hours, is closed; a push to a
//! connection that is not open is 410 GoneException; a message over 128 KB is refused.
//! One difference: the answer of a message's route is always sent back when it has a
//! body (on AWS only on a route with a route response, which the shop's `$default` has).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::{SinkExt, StreamExt};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use crate::lambda::Outcome;
use crate::stack::Stack;
use crate::topology::{WEBSOCKET_PREFIX, WebSocketSpec};

type Body = BoxBody<Bytes, Infallible>;

/// API Gateway's quotas for WebSocket APIs.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const MAX_CONNECTION_DURATION: Duration = Duration::from_secs(2 * 60 * 60);
const MAX_MESSAGE_BYTES: usize = 128 * 1024;
const API_ID: &str = "shoplocalws";

/// The open connections, by id: what the Management API reaches.
#[derive(Default)]
pub struct Sockets {
    open: Mutex<HashMap<String, Connection>>,
}

struct Connection {
    outbound: mpsc::UnboundedSender<Outbound>,
    connected_at: chrono::DateTime<Utc>,
    last_active_at: Arc<Mutex<chrono::DateTime<Utc>>>,
    source_ip: String,
    user_agent: String,
}

enum Outbound {
    Text(String),
    Close,
}

impl Sockets {
    fn send(&self, connection_id: &str, message: Outbound) -> bool {
        let Ok(open) = self.open.lock() else {
            return false;
        };
        open.get(connection_id)
            .is_some_and(|connection| connection.outbound.send(message).is_ok())
    }

    fn remove(&self, connection_id: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(connection_id);
        }
    }
}

/// What the path names under [`WEBSOCKET_PREFIX`]: a stage to connect to, or a connection of
/// a stage's Management API.
pub enum Target<'a> {
    Stage(&'a str),
    Connection { connection_id: String },
}

pub fn target(path: &str) -> Option<Target<'_>> {
    let rest = path.strip_prefix(WEBSOCKET_PREFIX)?.strip_prefix('/')?;
    match rest.split_once("/@connections/") {
        Some((stage, id)) if !stage.is_empty() && !stage.contains('/') => {
            Some(Target::Connection {
                connection_id: percent_decode(id)?,
            })
        }
        None if !rest.is_empty() && !rest.contains('/') => Some(Target::Stage(rest)),
        _ => None,
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            at += 3;
        } else {
            decoded.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn full(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).boxed());
    *response.status_mut() = status;
    response
}

/// API Gateway's error answer (restJson1): the type in `x-amzn-ErrorType`, which the SDK
/// reads, and a message.
fn management_error(status: StatusCode, kind: &'static str, message: &str) -> Response<Body> {
    let mut response = full(status, Bytes::from(json!({"message": message}).to_string()));
    response
        .headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(kind));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Where clients connect: the WebSocket API's first stage on the local server
/// (`ws://127.0.0.1:PORT/websocket/dev`), if the templates declare one.
pub fn client_url(topology: &crate::topology::Topology, api_url: &str) -> Option<String> {
    let stage = topology.websocket.as_ref()?.stages.first()?;
    Some(format!(
        "{}/{stage}",
        crate::topology::websocket_endpoint(api_url)
    ))
}

/// The Management API: `POST` sends its body to the connection, `GET` describes it,
/// `DELETE` closes it.
pub async fn management(
    stack: &Stack,
    request: Request<Incoming>,
    connection_id: &str,
) -> Response<Body> {
    let method = request.method().clone();
    let gone = || {
        management_error(
            StatusCode::GONE,
            "GoneException",
            &format!("connection {connection_id} is not open"),
        )
    };
    let answer = match method {
        Method::POST => {
            let body = match Limited::new(request.into_body(), MAX_MESSAGE_BYTES)
                .collect()
                .await
            {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return management_error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "PayloadTooLargeException",
                        "a message is at most 128 KB",
                    );
                }
            };
            let text = String::from_utf8_lossy(&body).into_owned();
            match stack.sockets.send(connection_id, Outbound::Text(text)) {
                true => full(StatusCode::OK, Bytes::new()),
                false => gone(),
            }
        }
        Method::DELETE => match stack.sockets.send(connection_id, Outbound::Close) {
            true => full(StatusCode::NO_CONTENT, Bytes::new()),
            false => gone(),
        },
        Method::GET => {
            let described = stack.sockets.open.lock().ok().and_then(|open| {
                open.get(connection_id).map(|connection| {
                    json!({
                        "connectedAt": connection.connected_at.to_rfc3339(),
                        "lastActiveAt": connection.last_active_at.lock().map(|at| at.to_rfc3339()).unwrap_or_default(),
                        "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
                    })
                })
            });
            match described {
                Some(described) => full(StatusCode::OK, Bytes::from(described.to_string())),
                None => gone(),
            }
        }
        _ => management_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadRequestException",
            "POST, GET or DELETE",
        ),
    };
    stack.log(
        "websocket",
        &format!(
            "{method} @connections/{connection_id} {}",
            answer.status().as_u16()
        ),
    );
    answer
}

/// A connection's facts, as every event of it carries them.
struct Context {
    connection_id: String,
    stage: String,
    domain_name: String,
    connected_at_ms: i64,
    source_ip: String,
    user_agent: String,
}

impl Context {
    fn request_context(&self, route_key: &str, event_type: &str) -> Map<String, Value> {
        let now = Utc::now();
        let request_id = ulid::Ulid::generate().to_string();
        let mut context = Map::new();
        for (name, value) in [
            ("routeKey", json!(route_key)),
            ("eventType", json!(event_type)),
            ("extendedRequestId", json!(request_id)),
            ("requestId", json!(request_id)),
            (
                "requestTime",
                json!(now.format("%d/%b/%Y:%H:%M:%S %z").to_string()),
            ),
            ("requestTimeEpoch", json!(now.timestamp_millis())),
            ("messageDirection", json!("IN")),
            ("stage", json!(self.stage)),
            ("connectedAt", json!(self.connected_at_ms)),
            (
                "identity",
                json!({"sourceIp": self.source_ip, "userAgent": self.user_agent}),
            ),
            ("domainName", json!(self.domain_name)),
            ("connectionId", json!(self.connection_id)),
            ("apiId", json!(API_ID)),
        ] {
            context.insert(name.to_owned(), value);
        }
        context
    }
}

/// What a route's function answered: its status and body, or `None` when the invocation
/// failed (API Gateway then answers 500, or drops the message with an error frame).
async fn invoke(
    stack: &Stack,
    websocket: &WebSocketSpec,
    route_key: &str,
    event: Value,
) -> Option<(u16, Option<String>)> {
    let route = websocket.route(route_key)?;
    let function = stack.functions.get(&route.function)?;
    let invocation = function.invoke(Bytes::from(event.to_string())).await;
    let Outcome::Success(payload) = invocation.outcome else {
        return None;
    };
    let answer: Value = serde_json::from_slice(&payload).ok()?;
    let status = answer
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|status| u16::try_from(status).ok())
        .unwrap_or(200);
    let body = answer
        .get("body")
        .and_then(Value::as_str)
        .filter(|body| !body.is_empty())
        .map(str::to_owned);
    Some((status, body))
}

/// A client's handshake on `stage`: `$connect` decides, then the connection is served
/// until either side closes it.
pub async fn connect(
    stack: &Arc<Stack>,
    mut request: Request<Incoming>,
    peer: SocketAddr,
    stage: &str,
) -> Response<Body> {
    let Some(websocket) = stack
        .topology
        .websocket
        .clone()
        .filter(|websocket| websocket.stages.iter().any(|known| known == stage))
    else {
        return full(
            StatusCode::NOT_FOUND,
            Bytes::from(format!("no WebSocket API stage {stage}")),
        );
    };
    let headers = request.headers();
    let key = headers.get("sec-websocket-key").cloned();
    let upgrade = headers
        .get(http::header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"));
    let (Some(key), true, &Method::GET) = (key, upgrade, request.method()) else {
        return full(
            StatusCode::UPGRADE_REQUIRED,
            Bytes::from_static(b"a WebSocket API: connect with a WebSocket client"),
        );
    };
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in headers {
        let value = value.to_str().unwrap_or_default().to_owned();
        single.insert(name.as_str().to_owned(), json!(value));
        let entry = multi
            .entry(name.as_str().to_owned())
            .or_insert_with(|| json!([]));
        if let Value::Array(values) = entry {
            values.push(json!(value));
        }
    }
    let mut query = Map::new();
    let mut multi_query: Map<String, Value> = Map::new();
    for (name, value) in form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes()) {
        query.insert(name.to_string(), json!(value));
        let entry = multi_query
            .entry(name.to_string())
            .or_insert_with(|| json!([]));
        if let Value::Array(values) = entry {
            values.push(json!(value));
        }
    }
    let context = Context {
        connection_id: new_connection_id(),
        stage: stage.to_owned(),
        domain_name: headers
            .get(http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_owned(),
        connected_at_ms: Utc::now().timestamp_millis(),
        source_ip: peer.ip().to_string(),
        user_agent: headers
            .get(http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned(),
    };
    let event = json!({
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query) },
        "multiValueQueryStringParameters": if multi_query.is_empty() { Value::Null } else { Value::Object(multi_query) },
        "requestContext": context.request_context("$connect", "CONNECT"),
        "isBase64Encoded": false,
    });
    let status = match websocket.route("$connect") {
        // No $connect route: API Gateway lets every client in.
        None => 200,
        Some(_) => match invoke(stack, &websocket, "$connect", event).await {
            Some((status, _)) => status,
            None => 500,
        },
    };
    stack.log(
        "websocket",
        &format!("$connect {} {status}", context.connection_id),
    );
    if !(200..300).contains(&status) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return full(
            status,
            Bytes::from(status.canonical_reason().unwrap_or("").to_owned()),
        );
    }
    // Registered before the handshake completes: a push that comes while the client reads
    // the 101 waits in the channel rather than meeting 410 Gone.
    let (outbound, receiver) = mpsc::unbounded_channel();
    let last_active_at = Arc::new(Mutex::new(Utc::now()));
    if let Ok(mut open) = stack.sockets.open.lock() {
        open.insert(
            context.connection_id.clone(),
            Connection {
                outbound,
                connected_at: Utc::now(),
                last_active_at: last_active_at.clone(),
                source_ip: context.source_ip.clone(),
                user_agent: context.user_agent.clone(),
            },
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    let stack = stack.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            stack.sockets.remove(&context.connection_id);
            return;
        };
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(MAX_MESSAGE_BYTES);
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        serve(
            &stack,
            &websocket,
            socket,
            receiver,
            context,
            last_active_at,
        )
        .await;
    });
    let mut response = full(StatusCode::SWITCHING_PROTOCOLS, Bytes::new());
    let headers = response.headers_mut();
    headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert("sec-websocket-accept", accept);
    }
    response
}

/// API Gateway's connection ids: 16 base64 characters, the last one `=`.
fn new_connection_id() -> String {
    use base64::Engine;
    let bytes: [u8; 10] = std::array::from_fn(|_| fastrand::u8(..));
    let mut id = base64::engine::general_purpose::STANDARD.encode(bytes);
    id.truncate(15);
    id.push('=');
    id
}

async fn serve<S>(
    stack: &Stack,
    websocket: &WebSocketSpec,
    mut socket: WebSocketStream<S>,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
    context: Context,
    last_active_at: Arc<Mutex<chrono::DateTime<Utc>>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let closes_at = tokio::time::Instant::now() + MAX_CONNECTION_DURATION;
    let mut idle_until = tokio::time::Instant::now() + IDLE_TIMEOUT;
    let (status, reason) = loop {
        tokio::select! {
            frame = socket.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.as_ref().map_or(1005, |frame| u16::from(frame.code));
                        break (code, "Client-side close frame status code".to_owned());
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => break (1006, format!("Connection lost: {error}")),
                    None => break (1006, "Connection lost".to_owned()),
                };
                idle_until = tokio::time::Instant::now() + IDLE_TIMEOUT;
                if let Ok(mut at) = last_active_at.lock() {
                    *at = Utc::now();
                }
                let Some(route) = websocket.route_for_message(&text) else {
                    let _ = socket.send(Message::text(json!({"message": "Forbidden", "connectionId": context.connection_id}).to_string())).await;
                    continue;
                };
                let mut request_context = context.request_context(&route.route_key, "MESSAGE");
                request_context.insert("messageId".to_owned(), json!(ulid::Ulid::generate().to_string()));
                let event = json!({
                    "requestContext": request_context,
                    "body": text,
                    "isBase64Encoded": false,
                });
                let route_key = route.route_key.clone();
                match invoke(stack, websocket, &route_key, event).await {
                    Some((_, Some(body))) => {
                        if socket.send(Message::text(body)).await.is_err() {
                            break (1006, "Connection lost".to_owned());
                        }
                    }
                    Some((_, None)) => {}
                    None => {
                        let _ = socket.send(Message::text(json!({"message": "Internal server error", "connectionId": context.connection_id}).to_string())).await;
                    }
                }
            }
            message = outbound.recv() => match message {
                Some(Outbound::Text(text)) => {
                    if socket.send(Message::text(text)).await.is_err() {
                        break (1006, "Connection lost".to_owned());
                    }
                }
                Some(Outbound::Close) | None => {
                    let _ = socket.close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() })).await;
                    break (1000, "Connection closed by the Management API".to_owned());
                }
            },
            () = tokio::time::sleep_until(idle_until) => {
                let _ = socket.close(Some(CloseFrame { code: CloseCode::Away, reason: "Going away".into() })).await;
                break (1001, "Going away (idle timeout)".to_owned());
            }
            () = tokio::time::sleep_until(closes_at) => {
                let _ = socket.close(Some(CloseFrame { code: CloseCode::Away, reason: "Going away".into() })).await;
                break (1001, "Going away (maximum connection duration)".to_owned());
            }
        }
    };
    stack.sockets.remove(&context.connection_id);
    let mut request_context = context.request_context("$disconnect", "DISCONNECT");
    request_context.insert("disconnectStatusCode".to_owned(), json!(status));
    request_context.insert("disconnectReason".to_owned(), json!(reason));
    let event = json!({
        "headers": {"Host": context.domain_name},
        "multiValueHeaders": {"Host": [context.domain_name]},
        "requestContext": request_context,
        "isBase64Encoded": false,
    });
    let answered = match websocket.route("$disconnect") {
        Some(_) => invoke(stack, websocket, "$disconnect", event)
            .await
            .map_or(500, |(status, _)| status),
        None => 200,
    };
    stack.log(
        "websocket",
        &format!(
            "$disconnect {} ({status}) {answered}",
            context.connection_id
        ),
    );
}
