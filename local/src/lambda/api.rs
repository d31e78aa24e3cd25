//! The Lambda Runtime API (version `2018-06-01`) for one function process.
//!
//! Every process gets its own server on `127.0.0.1:0`, so whatever arrives on it belongs to
//! that process: the runner always knows which process holds which invocation. The runner
//! hands an [`Event`] over a channel; the process's long-polling `GET .../invocation/next`
//! takes it. The answer (`.../response` or `.../error`) goes back on the invocation's
//! oneshot. Nothing a process sends can make this code panic: unknown paths are 404, unknown
//! or already-answered request ids 400, oversized bodies 413.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};

/// Lambda's limit on a synchronous invocation's response (and error) payload.
pub(super) const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// How much of an oversized body is read and discarded, so that the process's client sees a
/// clean 413 rather than a broken pipe (which would make `lambda_runtime` exit).
const DRAIN_LIMIT: usize = 256 * 1024 * 1024;

const PREFIX: &str = "/2018-06-01/runtime/";
/// The pause after a failed `accept`, so that a persistent error (no file descriptor left)
/// does not spin the server.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// One invocation, handed to the process by its next `GET /runtime/invocation/next`.
pub(super) struct Event {
    pub request_id: String,
    pub deadline_ms: u64,
    pub trace_id: String,
    pub payload: Bytes,
    /// Fired the moment the process takes the event.
    pub delivered: oneshot::Sender<()>,
}

/// What the process answered to an invocation.
#[derive(Debug)]
pub(super) enum Answer {
    Response(Bytes),
    Error {
        error_type: String,
        error_message: String,
    },
}

/// The process's init phase, as the Runtime API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum InitState {
    Starting,
    /// The first `/next` arrived at this instant.
    Ready(Instant),
    /// `POST /runtime/init/error`.
    Failed {
        error_type: String,
        error_message: String,
    },
}

struct Current {
    request_id: String,
    answer: Option<oneshot::Sender<Answer>>,
}

/// The state behind one process's Runtime API server.
pub(super) struct RuntimeApi {
    function_arn: String,
    init: watch::Sender<InitState>,
    events: tokio::sync::Mutex<mpsc::Receiver<Event>>,
    current: Mutex<Option<Current>>,
}

impl RuntimeApi {
    /// The API state and the sender the runner hands events to (one at a time).
    pub(super) fn new(function_arn: String) -> (Arc<Self>, mpsc::Sender<Event>) {
        let (events_tx, events_rx) = mpsc::channel(1);
        let api = Self {
            function_arn,
            init: watch::Sender::new(InitState::Starting),
            events: tokio::sync::Mutex::new(events_rx),
            current: Mutex::new(None),
        };
        (Arc::new(api), events_tx)
    }

    pub(super) fn init_state(&self) -> watch::Receiver<InitState> {
        self.init.subscribe()
    }

    /// Starts accepting an answer for `request_id`; any other id is refused.
    pub(super) fn begin(&self, request_id: &str, answer: oneshot::Sender<Answer>) {
        *self.lock_current() = Some(Current {
            request_id: request_id.to_owned(),
            answer: Some(answer),
        });
    }

    /// The invocation is over, whatever happened: late answers are refused.
    pub(super) fn end(&self) {
        *self.lock_current() = None;
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Current>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return json_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("no such path: {path}"),
            );
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let method = request.method().clone();
        match (method, segments.as_slice()) {
            (Method::GET, ["invocation", "next"]) => self.next().await,
            (Method::POST, ["invocation", id, "response"]) => self.response(id, request).await,
            (Method::POST, ["invocation", id, "error"]) => self.error(id, request).await,
            (Method::POST, ["init", "error"]) => self.init_error(request).await,
            (
                _,
                ["invocation", "next"]
                | ["invocation", _, "response" | "error"]
                | ["init", "error"],
            ) => json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                &format!("wrong method for {path}"),
            ),
            _ => json_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("no such path: {path}"),
            ),
        }
    }

    async fn next(&self) -> Response<Full<Bytes>> {
        let now = Instant::now();
        self.init.send_if_modified(|state| {
            let starting = *state == InitState::Starting;
            if starting {
                *state = InitState::Ready(now);
            }
            starting
        });
        let mut events = self.events.lock().await;
        let Some(event) = events.recv().await else {
            // The runner is tearing this process down: keep the long poll open until the
            // connection goes.
            return std::future::pending().await;
        };
        drop(events);
        // No await between taking the event and reporting it taken.
        let _ = event.delivered.send(());

        let mut response = Response::new(Full::new(event.payload));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let mut put = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        };
        put("lambda-runtime-aws-request-id", &event.request_id);
        put("lambda-runtime-deadline-ms", &event.deadline_ms.to_string());
        put("lambda-runtime-invoked-function-arn", &self.function_arn);
        put("lambda-runtime-trace-id", &event.trace_id);
        response
    }

    /// The answer channel for `id`, taken so that a second answer is refused even while the
    /// first one's body is still being read.
    fn take_answer(&self, id: &str) -> Result<oneshot::Sender<Answer>, Refusal> {
        let mut current = self.lock_current();
        match current.as_mut() {
            Some(current) if current.request_id == id => {
                current.answer.take().ok_or(Refusal::Answered)
            }
            _ => Err(Refusal::Unknown),
        }
    }

    async fn response(&self, id: &str, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let answer = match self.take_answer(id) {
            Ok(answer) => answer,
            Err(refusal) => return refusal.response(id),
        };
        let streaming = request
            .headers()
            .get("lambda-runtime-function-response-mode")
            .is_some_and(|mode| mode.as_bytes().eq_ignore_ascii_case(b"streaming"));
        match read_body(request.into_body(), MAX_RESPONSE_BYTES).await {
            Body::Complete(_) if streaming => {
                let _ = answer.send(Answer::Error {
                    error_type: "Runtime.StreamingNotSupported".into(),
                    error_message: "shop-local does not support response streaming".into(),
                });
                json_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidResponseMode",
                    "response streaming is not supported",
                )
            }
            Body::Complete(body) => {
                let _ = answer.send(Answer::Response(body));
                accepted()
            }
            Body::TooLarge => {
                let _ = answer.send(too_large());
                json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    &format!("response payload exceeds the maximum of {MAX_RESPONSE_BYTES} bytes"),
                )
            }
            // The connection broke mid-body: the process is most likely going; leave the
            // outcome to its exit or the timeout.
            Body::Broken => {
                json_error(StatusCode::BAD_REQUEST, "InvalidRequest", "incomplete body")
            }
        }
    }

    async fn error(&self, id: &str, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let answer = match self.take_answer(id) {
            Ok(answer) => answer,
            Err(refusal) => return refusal.response(id),
        };
        let header_type = error_type_header(&request);
        match read_body(request.into_body(), MAX_RESPONSE_BYTES).await {
            Body::Complete(body) => {
                let (error_type, error_message) = parse_error(&body, header_type);
                let _ = answer.send(Answer::Error {
                    error_type,
                    error_message,
                });
                accepted()
            }
            Body::TooLarge => {
                let _ = answer.send(too_large());
                json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLarge",
                    "error payload too large",
                )
            }
            Body::Broken => {
                json_error(StatusCode::BAD_REQUEST, "InvalidRequest", "incomplete body")
            }
        }
    }

    async fn init_error(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let header_type = error_type_header(&request);
        let (error_type, error_message) = match read_body(request.into_body(), MAX_RESPONSE_BYTES)
            .await
        {
            Body::Complete(body) => parse_error(&body, header_type),
            Body::TooLarge => (
                "Runtime.InitError".to_owned(),
                "init error payload too large".to_owned(),
            ),
            Body::Broken => {
                return json_error(StatusCode::BAD_REQUEST, "InvalidRequest", "incomplete body");
            }
        };
        let failed = InitState::Failed {
            error_type,
            error_message,
        };
        let accepted_now = self.init.send_if_modified(|state| {
            let starting = *state == InitState::Starting;
            if starting {
                *state = failed;
            }
            starting
        });
        if accepted_now {
            accepted()
        } else {
            json_error(
                StatusCode::FORBIDDEN,
                "InvalidStateTransition",
                "init/error is only accepted during init",
            )
        }
    }
}

/// Serves `api` on `listener` until the returned handle is aborted; aborting also closes
/// every open connection (their tasks live in the server task's `JoinSet`).
pub(super) fn serve(api: Arc<RuntimeApi>, listener: TcpListener) -> AbortHandle {
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of file descriptors, most likely: the pending connection stays
                        // queued and the next accept would fail at once. Let it breathe.
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let api = api.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let api = api.clone();
                            async move { Ok::<_, Infallible>(api.handle(request).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    task.abort_handle()
}

/// Why an answer is refused.
enum Refusal {
    Unknown,
    Answered,
}

impl Refusal {
    fn response(self, id: &str) -> Response<Full<Bytes>> {
        match self {
            Refusal::Unknown => json_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestID",
                &format!("unknown request id: {id}"),
            ),
            Refusal::Answered => json_error(
                StatusCode::BAD_REQUEST,
                "InvalidStateTransition",
                &format!("invocation {id} has already been answered"),
            ),
        }
    }
}

enum Body {
    Complete(Bytes),
    TooLarge,
    Broken,
}

/// Reads at most `limit` bytes; past that, reads and discards (up to [`DRAIN_LIMIT`]) so the
/// client can finish sending and read the 413.
async fn read_body(mut body: Incoming, limit: usize) -> Body {
    let mut buffer = BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Body::Broken;
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total <= limit {
            buffer.extend_from_slice(&data);
        } else {
            buffer.clear();
            if total > DRAIN_LIMIT {
                return Body::TooLarge;
            }
        }
    }
    if total > limit {
        Body::TooLarge
    } else {
        Body::Complete(buffer.freeze())
    }
}

fn too_large() -> Answer {
    Answer::Error {
        error_type: "Function.ResponseSizeTooLarge".into(),
        error_message: format!(
            "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
        ),
    }
}

fn error_type_header(request: &Request<Incoming>) -> Option<String> {
    request
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// Lambda's `{errorMessage, errorType}`, read leniently: a body that is not that JSON becomes
/// the message, the header (or `Unhandled`) the type.
fn parse_error(body: &[u8], header_type: Option<String>) -> (String, String) {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|json| json.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let error_type = field("errorType")
        .or(header_type)
        .unwrap_or_else(|| "Unhandled".to_owned());
    let error_message = match (field("errorMessage"), &json) {
        (Some(message), _) => message,
        (None, Some(serde_json::Value::Object(_))) => String::new(),
        (None, _) => String::from_utf8_lossy(body).into_owned(),
    };
    (error_type, error_message)
}

fn accepted() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)));
    *response.status_mut() = StatusCode::ACCEPTED;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn json_error(status: StatusCode, error_type: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    //! The protocol edges a real `lambda_runtime` never exercises, over raw HTTP/1.1.

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn start() -> (Arc<RuntimeApi>, mpsc::Sender<Event>, String, AbortHandle) {
        let (api, events) =
            RuntimeApi::new("arn:aws:lambda:us-east-1:123456789012:function:f".into());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = serve(api.clone(), listener);
        (api, events, address, server)
    }

    /// One request on its own connection; returns the status and the body.
    async fn call(address: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        let mut stream = TcpStream::connect(address).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // A server that answers early may reset the rest of a large body: that is fine here.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    fn event(id: &str) -> (Event, oneshot::Receiver<()>) {
        let (delivered, taken) = oneshot::channel();
        let event = Event {
            request_id: id.into(),
            deadline_ms: 1,
            trace_id: "Root=1-0-0".into(),
            payload: Bytes::from_static(b"{\"a\":1}"),
            delivered,
        };
        (event, taken)
    }

    #[tokio::test]
    async fn next_marks_ready_and_delivers_with_headers() {
        let (api, events, address, _server) = start().await;
        assert_eq!(*api.init_state().borrow(), InitState::Starting);
        let (event, taken) = event("req-1");
        events.send(event).await.unwrap();
        let (status, body) =
            call(&address, "GET", "/2018-06-01/runtime/invocation/next", b"").await;
        assert_eq!((status, body.as_str()), (200, "{\"a\":1}"));
        assert!(taken.await.is_ok());
        assert!(matches!(*api.init_state().borrow(), InitState::Ready(_)));
    }

    #[tokio::test]
    async fn answers_are_accepted_once_and_only_for_the_current_id() {
        let (api, _events, address, _server) = start().await;
        let (answer_tx, answer_rx) = oneshot::channel();
        api.begin("req-1", answer_tx);
        let unknown = call(
            &address,
            "POST",
            "/2018-06-01/runtime/invocation/other/response",
            b"1",
        )
        .await;
        assert_eq!(unknown.0, 400, "{unknown:?}");
        assert!(unknown.1.contains("InvalidRequestID"));
        let first = call(
            &address,
            "POST",
            "/2018-06-01/runtime/invocation/req-1/response",
            b"42",
        )
        .await;
        assert_eq!(first.0, 202);
        let second = call(
            &address,
            "POST",
            "/2018-06-01/runtime/invocation/req-1/error",
            b"{}",
        )
        .await;
        assert_eq!(second.0, 400);
        assert!(matches!(answer_rx.await, Ok(Answer::Response(body)) if body == "42"));
        api.end();
        let late = call(
            &address,
            "POST",
            "/2018-06-01/runtime/invocation/req-1/response",
            b"1",
        )
        .await;
        assert_eq!(late.0, 400);
    }

    #[tokio::test]
    async fn errors_are_read_leniently() {
        let (api, _events, address, _server) = start().await;
        for (body, expected) in [
            (&br#"{"errorType":"T","errorMessage":"m"}"#[..], ("T", "m")),
            (&b"not json"[..], ("Unhandled", "not json")),
            (&b"[1]"[..], ("Unhandled", "[1]")),
            (&b"\xff\xfe"[..], ("Unhandled", "\u{fffd}\u{fffd}")),
        ] {
            let (answer_tx, answer_rx) = oneshot::channel();
            api.begin("r", answer_tx);
            assert_eq!(
                call(
                    &address,
                    "POST",
                    "/2018-06-01/runtime/invocation/r/error",
                    body
                )
                .await
                .0,
                202
            );
            match answer_rx.await {
                Ok(Answer::Error {
                    error_type,
                    error_message,
                }) => {
                    assert_eq!((error_type.as_str(), error_message.as_str()), expected)
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_oversized_response_is_413_and_a_size_error() {
        let (api, _events, address, _server) = start().await;
        let (answer_tx, answer_rx) = oneshot::channel();
        api.begin("r", answer_tx);
        let body = vec![b'x'; MAX_RESPONSE_BYTES + 1];
        let (status, _) = call(
            &address,
            "POST",
            "/2018-06-01/runtime/invocation/r/response",
            &body,
        )
        .await;
        assert_eq!(status, 413);
        assert!(
            matches!(answer_rx.await, Ok(Answer::Error { error_type, .. }) if error_type == "Function.ResponseSizeTooLarge")
        );
    }

    #[tokio::test]
    async fn init_error_only_during_init_and_bad_paths_are_refused() {
        let (api, events, address, _server) = start().await;
        let body = br#"{"errorType":"Boom","errorMessage":"no config"}"#;
        assert_eq!(
            call(&address, "POST", "/2018-06-01/runtime/init/error", body)
                .await
                .0,
            202
        );
        assert_eq!(
            *api.init_state().borrow(),
            InitState::Failed {
                error_type: "Boom".into(),
                error_message: "no config".into()
            }
        );
        assert_eq!(
            call(&address, "POST", "/2018-06-01/runtime/init/error", body)
                .await
                .0,
            403
        );
        assert_eq!(
            call(&address, "GET", "/2018-06-01/runtime/nothing", b"")
                .await
                .0,
            404
        );
        assert_eq!(call(&address, "GET", "/", b"").await.0, 404);
        assert_eq!(
            call(&address, "POST", "/2018-06-01/runtime/invocation/next", b"")
                .await
                .0,
            405
        );
        assert_eq!(
            call(
                &address,
                "GET",
                "/2018-06-01/runtime/invocation/x/response",
                b""
            )
            .await
            .0,
            405
        );
        // A broken request line does not take the server down.
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(b"\x00\x01garbage\r\n\r\n").await.unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
        drop(events);
        assert_eq!(call(&address, "GET", "/nope", b"").await.0, 404);
    }
}
