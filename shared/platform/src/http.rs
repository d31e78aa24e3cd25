//! The HTTP side of a capability's API function: who is calling, what they sent, and
//! how answers are shaped. API Gateway (HTTP API, payload format 2.0) has already routed
//! the request and, on protected routes, verified the JWT.

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::pagination::{CursorKey, DEFAULT_LIMIT, MAX_LIMIT, PageRequest};
use crate::store::Table;
use crate::{FieldError, Problem};

/// The caller, from the claims API Gateway's JWT authorizer verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub is_admin: bool,
}

const ADMIN_GROUP: &str = "admin";

fn context(request: &Request) -> Option<&ApiGatewayV2httpRequestContext> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => Some(context),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// `METHOD /path/{param}` as API Gateway matched it; the function dispatches on it.
pub fn route_key(request: &Request) -> String {
    context(request)
        .and_then(|c| c.route_key.clone())
        .unwrap_or_else(|| format!("{} {}", request.method(), request.uri().path()))
}

/// The verified caller, if the route is protected and a token was presented.
pub fn identity(request: &Request) -> Option<Identity> {
    let claims = &context(request)?.authorizer.as_ref()?.jwt.as_ref()?.claims;
    let user_id = claims.get("sub").filter(|sub| !sub.is_empty())?.clone();
    let is_admin = claims
        .get("cognito:groups")
        .is_some_and(|groups| parse_groups(groups).any(|g| g == ADMIN_GROUP));
    Some(Identity { user_id, is_admin })
}

/// API Gateway hands array claims to Lambda flattened: `[admin user]`. Tokens minted
/// elsewhere may carry a JSON array or a comma-separated list; accept all three.
fn parse_groups(raw: &str) -> impl Iterator<Item = &str> {
    raw.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split([' ', ','])
        .map(|group| group.trim().trim_matches('"'))
        .filter(|group| !group.is_empty())
}

/// The caller, or 401: for routes that need someone signed in.
pub fn require_user(request: &Request) -> Result<Identity, Problem> {
    identity(request).ok_or_else(Problem::unauthorized)
}

/// The caller if they are an admin; 401 without a token, 403 without the group.
pub fn require_admin(request: &Request) -> Result<Identity, Problem> {
    let caller = require_user(request)?;
    if caller.is_admin {
        Ok(caller)
    } else {
        Err(Problem::forbidden("this operation is for the admin group"))
    }
}

/// A path parameter the route declares.
pub fn path_param(request: &Request, name: &str) -> Result<String, Problem> {
    request
        .path_parameters_ref()
        .and_then(|params| params.first(name))
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Problem::bad_request(format!("missing path parameter {name}")))
}

/// A query parameter, if present and non-empty.
pub fn query_param(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|params| params.first(name))
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// Reads `limit` and `cursor`. The cursor must be one this API gave out (signed with
/// `signing`) and hold exactly the attributes in `key_attributes` (the table's and the
/// index's keys): anything else is a 422, never a key DynamoDB would refuse.
pub fn page_request(
    request: &Request,
    signing: &CursorKey,
    key_attributes: &[&str],
) -> Result<PageRequest, Problem> {
    // Unlike other parameters, an empty `limit=` is not taken for an absent one: the
    // document promises an integer.
    let limit = match request
        .query_string_parameters_ref()
        .and_then(|params| params.first("limit"))
    {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<i32>()
            .ok()
            .filter(|limit| (1..=MAX_LIMIT).contains(limit))
            .ok_or_else(|| invalid("limit", format!("must be an integer from 1 to {MAX_LIMIT}")))?,
    };
    let after = query_param(request, "cursor")
        .map(|cursor| {
            crate::pagination::decode_cursor(signing, &cursor, key_attributes)
                .ok_or_else(|| invalid("cursor", "is not a cursor this list gave out".into()))
        })
        .transpose()?;
    Ok(PageRequest { limit, after })
}

fn invalid(field: &str, message: String) -> Problem {
    Problem::validation(vec![FieldError {
        field: field.to_owned(),
        message,
    }])
}

/// The id that follows this request into every event it causes: the caller's
/// `X-Correlation-Id` when it is sane, else API Gateway's request id.
pub fn correlation_id(request: &Request) -> String {
    let from_header = request
        .headers()
        .get("x-correlation-id")
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    match from_header {
        Some(id) => id.to_owned(),
        None => context(request)
            .and_then(|c| c.request_id.clone())
            .unwrap_or_else(shop_events::new_event_id),
    }
}

/// Parses and validates a JSON body. Malformed JSON is a 400; a body of the wrong shape
/// or with invalid values is a 422 naming each field; bodies over `max_bytes` are a 413.
pub fn json_body<T>(request: &Request, max_bytes: usize) -> Result<T, Problem>
where
    T: DeserializeOwned + garde::Validate<Context = ()>,
{
    if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
        let is_json = content_type
            .to_str()
            .map(|value| {
                let essence = value
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(Problem::unsupported_media_type());
        }
    }
    let bytes: &[u8] = match request.body() {
        Body::Empty => return Err(Problem::bad_request("a JSON body is required")),
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => return Err(Problem::bad_request("unsupported body encoding")),
    };
    if bytes.len() > max_bytes {
        return Err(Problem::payload_too_large(max_bytes));
    }
    let value: T = parse_json(bytes)?;
    value.validate().map_err(|report| {
        Problem::validation(
            report
                .iter()
                .map(|(path, error)| FieldError {
                    field: camel_case(&path.to_string()),
                    message: error.message().to_owned(),
                })
                .collect(),
        )
    })?;
    Ok(value)
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = data_error_message(&inner);
                Problem::validation(vec![FieldError {
                    field: field_of(&path, &message),
                    message,
                }])
            }
            _ => Problem::bad_request(format!("malformed JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| Problem::bad_request(format!("malformed JSON: {error}")))?;
    Ok(value)
}

/// garde names fields as Rust spells them (`postal_code`); every body of this API is
/// camelCase (`postalCode`), and the client must see the name it sent.
fn camel_case(path: &str) -> String {
    let mut spelt = String::with_capacity(path.len());
    let mut upper_next = false;
    for c in path.chars() {
        match c {
            '_' => upper_next = true,
            c if upper_next => {
                spelt.extend(c.to_uppercase());
                upper_next = false;
            }
            c => spelt.push(c),
        }
    }
    spelt
}

/// The JSON path of the offending field. For a missing field serde points at the object
/// that lacks it; name the field itself.
fn field_of(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'));
    match missing {
        Some(name) if parent.is_empty() => name.to_owned(),
        Some(name) => format!("{parent}.{name}"),
        None => parent.to_owned(),
    }
}

/// serde's message without its trailing "at line 1 column 42", which the field path
/// already says better.
fn data_error_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// A JSON answer with the given status.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    match serde_json::to_string(body) {
        Ok(text) => {
            let mut response = Response::new(Body::Text(text));
            *response.status_mut() = status;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => Problem::internal(&error).into_response(),
    }
}

/// An answer with no body (204 and friends).
pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
}

/// Collapses a handler's outcome into the response Lambda returns: a problem is an
/// answer, not a failed invocation.
pub fn respond(outcome: Result<Response<Body>, Problem>) -> Response<Body> {
    outcome.unwrap_or_else(Problem::into_response)
}

/// Answers one request of a capability's API. `dispatch` gets the request, the route key
/// API Gateway matched and the correlation id, and serves the route. Every log line of the
/// request, down to the one that reports its status, carries the correlation id and the
/// route; the answer is a response whatever happens, errors as problem+json.
pub async fn answer<F>(request: Request, dispatch: F) -> Response<Body>
where
    F: AsyncFnOnce(&Request, &str, &str) -> Result<Response<Body>, Problem>,
{
    let correlation_id = correlation_id(&request);
    let route = route_key(&request);
    let span = tracing::info_span!("request", correlation_id = %correlation_id, route = %route);
    async {
        let response = respond(dispatch(&request, &route, &correlation_id).await);
        tracing::info!(status = response.status().as_u16(), "answered");
        response
    }
    .instrument(span)
    .await
}

/// `GET /health/<capability>`: 200 while the capability's table answers, else 503, so
/// that a probe tells a function that cannot reach its data from one that is down.
pub async fn health(capability: &str, table: &Table) -> Result<Response<Body>, Problem> {
    if table.is_reachable().await {
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({"status": "ok", "capability": capability}),
        ))
    } else {
        Err(Problem::service_unavailable(format!(
            "the {capability} table is not reachable"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_paths_are_spelt_as_the_client_sent_them() {
        assert_eq!(
            camel_case("shipping_address.postal_code"),
            "shippingAddress.postalCode"
        );
        assert_eq!(camel_case("lines[0].unit_price"), "lines[0].unitPrice");
        assert_eq!(camel_case("name"), "name");
    }

    #[test]
    fn groups_are_read_in_every_shape_a_token_carries_them() {
        assert_eq!(parse_groups("[admin]").collect::<Vec<_>>(), ["admin"]);
        assert_eq!(
            parse_groups("[user admin]").collect::<Vec<_>>(),
            ["user", "admin"]
        );
        assert_eq!(
            parse_groups(r#"["user","admin"]"#).collect::<Vec<_>>(),
            ["user", "admin"]
        );
        assert_eq!(
            parse_groups("user, admin").collect::<Vec<_>>(),
            ["user", "admin"]
        );
        assert_eq!(parse_groups("[]").count(), 0);
        assert!(!parse_groups("[administrators]").any(|g| g == ADMIN_GROUP));
    }
}
