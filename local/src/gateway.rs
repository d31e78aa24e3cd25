//! API Gateway (HTTP API, payload format 2.0), locally: route selection with path
//! parameters, the JWT authorizer, the request event a function receives, and the
//! mapping of its answer back to HTTP. The HTTP server itself is in `server.rs`.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::topology::{ACCOUNT_ID, CorsSpec, RouteSpec};

/// The payload limit of API Gateway HTTP APIs.
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;
pub const API_ID: &str = "shoplocalapi";

/// A route chosen for a request, with the values of its path parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched<'a> {
    pub route: &'a RouteSpec,
    pub path_parameters: BTreeMap<String, String>,
}

/// Chooses the route as API Gateway does: the most specific path wins (literal segments
/// over `{param}` over `{proxy+}`), a method-specific route beats `ANY`, and `$default`
/// takes what nothing else matches.
pub fn select_route<'a>(routes: &'a [RouteSpec], method: &str, path: &str) -> Option<Matched<'a>> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<((usize, usize, bool), Matched<'a>)> = None;
    for route in routes {
        if route.route_key == "$default" {
            continue;
        }
        if route.method != "ANY" && !route.method.eq_ignore_ascii_case(method) {
            continue;
        }
        let Some((parameters, literals, greedy)) = match_path(&route.path, &segments) else {
            continue;
        };
        let rank = (literals, usize::from(!greedy), route.method != "ANY");
        if best.as_ref().is_none_or(|(best_rank, _)| rank > *best_rank) {
            best = Some((
                rank,
                Matched {
                    route,
                    path_parameters: parameters,
                },
            ));
        }
    }
    best.map(|(_, matched)| matched).or_else(|| {
        routes
            .iter()
            .find(|r| r.route_key == "$default")
            .map(|route| Matched {
                route,
                path_parameters: BTreeMap::new(),
            })
    })
}

/// Path parameters, how many literal segments matched, and whether a greedy one did.
fn match_path(
    template: &str,
    segments: &[&str],
) -> Option<(BTreeMap<String, String>, usize, bool)> {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let mut parameters = BTreeMap::new();
    let mut literals = 0;
    for (index, part) in parts.iter().enumerate() {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            let rest = segments
                .get(index..)
                .filter(|rest| !rest.is_empty() && !rest[0].is_empty())?;
            parameters.insert(name.to_owned(), rest.join("/"));
            return Some((parameters, literals, true));
        }
        let segment = *segments.get(index)?;
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if segment.is_empty() {
                return None;
            }
            parameters.insert(name.to_owned(), percent_decode(segment));
        } else if *part == segment {
            literals += 1;
        } else {
            return None;
        }
    }
    (parts.len() == segments.len()).then_some((parameters, literals, false))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the gateway knows about a request besides its route.
pub struct RequestFacts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub source_ip: String,
    pub request_id: &'a str,
    /// Verified JWT claims, on protected routes.
    pub claims: Option<BTreeMap<String, String>>,
}

/// The payload format 2.0 event for a request.
pub fn request_event(matched: &Matched<'_>, facts: &RequestFacts<'_>) -> Value {
    let mut headers = Map::new();
    let mut cookies = Vec::new();
    for name in facts.headers.keys() {
        let values: Vec<&str> = facts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if name == http::header::COOKIE {
            cookies.extend(
                values
                    .iter()
                    .flat_map(|v| v.split(';'))
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
        } else {
            headers.insert(name.as_str().to_owned(), json!(values.join(",")));
        }
    }
    let mut query = Map::new();
    for pair in facts.raw_query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (key, value) = (form_decode(key), form_decode(value));
        match query.get_mut(&key) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&value);
            }
            _ => {
                query.insert(key, json!(value));
            }
        }
    }
    let now = Utc::now();
    let host = facts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let mut context = json!({
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": host,
        "domainPrefix": host.split('.').next().unwrap_or(""),
        "http": {
            "method": facts.method,
            "path": facts.path,
            "protocol": "HTTP/1.1",
            "sourceIp": facts.source_ip,
            "userAgent": facts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or(""),
        },
        "requestId": facts.request_id,
        "routeKey": matched.route.route_key,
        "stage": "$default",
        "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
        "timeEpoch": now.timestamp_millis(),
    });
    if let Some(claims) = &facts.claims {
        let scopes: Option<Vec<&str>> = claims.get("scope").map(|s| s.split(' ').collect());
        context["authorizer"] = json!({"jwt": {"claims": claims, "scopes": scopes}});
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": matched.route.route_key,
        "rawPath": facts.path,
        "rawQueryString": facts.raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !matched.path_parameters.is_empty() {
        event["pathParameters"] = json!(matched.path_parameters);
    }
    if !facts.body.is_empty() {
        let content_type = facts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        match std::str::from_utf8(facts.body) {
            Ok(text) if is_textual(content_type) => event["body"] = json!(text),
            _ => {
                event["body"] = json!(BASE64.encode(facts.body));
                event["isBase64Encoded"] = json!(true);
            }
        }
    }
    event
}

fn form_decode(text: &str) -> String {
    percent_decode(&text.replace('+', " "))
}

fn is_textual(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.is_empty()
        || essence.starts_with("text/")
        || essence.ends_with("json")
        || essence.ends_with("xml")
        || essence == "application/x-www-form-urlencoded"
        || essence == "application/javascript"
}

/// An answer in API Gateway's own words (`{"message": ...}`), for what it decides itself.
pub fn gateway_answer(status: StatusCode, message: &str, request_id: &str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(json!({ "message": message }).to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("apigw-requestid", id);
    }
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// Maps a function's answer to HTTP as payload format 2.0 does: an object with
/// `statusCode` is a full response; anything else is a 200 JSON body.
pub fn function_answer(payload: &[u8], request_id: &str) -> Response<Bytes> {
    let Ok(value) = serde_json::from_slice::<Value>(payload) else {
        return gateway_answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            request_id,
        );
    };
    let structured = value.as_object().filter(|o| o.contains_key("statusCode"));
    let Some(object) = structured else {
        let mut response = Response::new(Bytes::from(value.to_string()));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        add_request_id(&mut response, request_id);
        return response;
    };
    let status = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|code| StatusCode::from_u16(code as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match object.get("body") {
        Some(Value::String(text))
            if object.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) =>
        {
            match BASE64.decode(text) {
                Ok(bytes) => Bytes::from(bytes),
                Err(_) => {
                    return gateway_answer(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal Server Error",
                        request_id,
                    );
                }
            }
        }
        Some(Value::String(text)) => Bytes::from(text.clone()),
        Some(Value::Null) | None => Bytes::new(),
        Some(other) => Bytes::from(other.to_string()),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(Value::Object(single)) = object.get("headers") {
        for (name, value) in single {
            append_header(headers, name, value);
        }
    }
    if let Some(Value::Object(multi)) = object.get("multiValueHeaders") {
        for (name, values) in multi {
            for value in values.as_array().into_iter().flatten() {
                append_header(headers, name, value);
            }
        }
    }
    for cookie in object
        .get("cookies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        append_header(headers, "set-cookie", cookie);
    }
    add_request_id(&mut response, request_id);
    response
}

fn append_header(headers: &mut HeaderMap, name: &str, value: &Value) {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(&text),
    ) {
        headers.append(name, value);
    }
}

fn add_request_id(response: &mut Response<Bytes>, request_id: &str) {
    if let Ok(id) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("apigw-requestid", id);
    }
}

/// The `Access-Control-Allow-Origin` API Gateway gives `origin` under `cors`: the origin
/// itself when an entry names it (exactly, or as `scheme://*`), `*` for a `*` entry
/// without credentials; `None` when the origin is not allowed.
pub fn cors_allowed_origin(cors: &CorsSpec, origin: &str) -> Option<String> {
    let origin_lower = origin.to_ascii_lowercase();
    cors.allow_origins.iter().find_map(|allowed| {
        let allowed = allowed.to_ascii_lowercase();
        if allowed == "*" {
            Some(if cors.allow_credentials {
                origin.to_owned()
            } else {
                "*".to_owned()
            })
        } else if let Some(scheme) = allowed.strip_suffix("://*") {
            origin_lower
                .strip_prefix(scheme)
                .is_some_and(|rest| rest.starts_with("://") && rest.len() > 3)
                .then(|| origin.to_owned())
        } else {
            (allowed == origin_lower).then(|| origin.to_owned())
        }
    })
}

/// API Gateway's own answer to a preflight (an OPTIONS with `Origin` and
/// `Access-Control-Request-Method`), whatever the routes: 204, with the configuration's
/// headers when the origin is allowed and none when it is not.
pub fn cors_preflight(cors: &CorsSpec, origin: &str, request_id: &str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("apigw-requestid", id);
    }
    let Some(allowed) = cors_allowed_origin(cors, origin) else {
        return response;
    };
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("access-control-allow-origin", allowed);
    if !cors.allow_methods.is_empty() {
        set("access-control-allow-methods", cors.allow_methods.join(","));
    }
    if !cors.allow_headers.is_empty() {
        set(
            "access-control-allow-headers",
            cors.allow_headers.join(",").to_ascii_lowercase(),
        );
    }
    if let Some(age) = cors.max_age {
        set("access-control-max-age", age.to_string());
    }
    if cors.allow_credentials {
        set("access-control-allow-credentials", "true".to_owned());
    }
    response
}

/// The CORS headers API Gateway adds to an answer for a request from `origin`.
pub fn add_cors_headers(cors: &CorsSpec, origin: &str, response: &mut Response<Bytes>) {
    let Some(allowed) = cors_allowed_origin(cors, origin) else {
        return;
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&allowed) {
        headers.insert("access-control-allow-origin", value);
    }
    if !cors.expose_headers.is_empty()
        && let Ok(value) = HeaderValue::from_str(&cors.expose_headers.join(","))
    {
        headers.insert("access-control-expose-headers", value);
    }
    if cors.allow_credentials {
        headers.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::RouteAuth;

    fn route(key: &str) -> RouteSpec {
        let (method, path) = key.split_once(' ').unwrap_or((key, ""));
        RouteSpec {
            route_key: key.into(),
            method: method.into(),
            path: path.into(),
            function: "f".into(),
            auth: RouteAuth::None,
        }
    }

    fn chosen(
        routes: &[RouteSpec],
        method: &str,
        path: &str,
    ) -> Option<(String, BTreeMap<String, String>)> {
        select_route(routes, method, path).map(|m| (m.route.route_key.clone(), m.path_parameters))
    }

    #[test]
    fn the_most_specific_route_wins_and_parameters_are_extracted() {
        let routes = [
            route("GET /products"),
            route("GET /products/{productId}"),
            route("GET /products/featured"),
            route("ANY /files/{proxy+}"),
            route("POST /files/{proxy+}"),
        ];
        assert_eq!(
            chosen(&routes, "GET", "/products").unwrap().0,
            "GET /products"
        );
        let (key, params) = chosen(&routes, "GET", "/products/01J%20X").unwrap();
        assert_eq!(key, "GET /products/{productId}");
        assert_eq!(params["productId"], "01J X");
        assert_eq!(
            chosen(&routes, "GET", "/products/featured").unwrap().0,
            "GET /products/featured"
        );
        assert_eq!(
            chosen(&routes, "DELETE", "/files/a/b").unwrap().1["proxy"],
            "a/b"
        );
        assert_eq!(
            chosen(&routes, "POST", "/files/a").unwrap().0,
            "POST /files/{proxy+}"
        );
        assert!(chosen(&routes, "POST", "/products/1").is_none());
        assert!(chosen(&routes, "GET", "/products/1/extra").is_none());
        assert!(chosen(&routes, "GET", "/files/").is_none());
        let with_default = [route("GET /a"), route("$default")];
        assert_eq!(chosen(&with_default, "PUT", "/zzz").unwrap().0, "$default");
    }

    #[test]
    fn the_event_carries_what_a_lambda_http_function_reads() {
        let routes = [route("GET /products/{productId}")];
        let matched = select_route(&routes, "GET", "/products/p1").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:3000"));
        headers.insert("cookie", HeaderValue::from_static("a=1; b=2"));
        headers.append("x-multi", HeaderValue::from_static("1"));
        headers.append("x-multi", HeaderValue::from_static("2"));
        let facts = RequestFacts {
            method: "GET",
            path: "/products/p1",
            raw_query: "tag=a&tag=b&q=two+words",
            headers: &headers,
            body: &[0xff, 0x00],
            source_ip: "127.0.0.1".into(),
            request_id: "req-1",
            claims: Some(BTreeMap::from([("sub".into(), "u1".into())])),
        };
        let event = request_event(&matched, &facts);
        assert_eq!(event["pathParameters"]["productId"], "p1");
        assert_eq!(
            event["queryStringParameters"],
            json!({"tag": "a,b", "q": "two words"})
        );
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["headers"]["x-multi"], "1,2");
        assert_eq!(
            event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"],
            "u1"
        );
        assert_eq!(event["isBase64Encoded"], true);
        let request = serde_json::from_value::<Value>(event).unwrap();
        assert_eq!(
            request["requestContext"]["routeKey"],
            "GET /products/{productId}"
        );
    }

    #[test]
    fn answers_map_back_to_http() {
        let full = json!({"statusCode": 201, "headers": {"location": "/p/1"}, "cookies": ["s=1"], "body": "{}", "isBase64Encoded": false});
        let response = function_answer(full.to_string().as_bytes(), "r");
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["location"], "/p/1");
        assert_eq!(response.headers()["set-cookie"], "s=1");
        let binary =
            json!({"statusCode": 200, "body": BASE64.encode([1u8, 2, 3]), "isBase64Encoded": true});
        assert_eq!(
            function_answer(binary.to_string().as_bytes(), "r")
                .body()
                .as_ref(),
            &[1, 2, 3]
        );
        let bare = function_answer(br#"{"hello": "world"}"#, "r");
        assert_eq!(
            (
                bare.status(),
                bare.headers()["content-type"].to_str().unwrap()
            ),
            (StatusCode::OK, "application/json")
        );
        assert_eq!(function_answer(b"not json", "r").status(), 500);
    }

    fn storefront_cors() -> CorsSpec {
        CorsSpec {
            allow_origins: vec!["https://d111.cloudfront.net".into()],
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["Authorization".into(), "Idempotency-Key".into()],
            expose_headers: vec!["Location".into()],
            max_age: Some(600),
            allow_credentials: false,
        }
    }

    #[test]
    fn a_preflight_from_the_storefront_is_answered_with_the_configuration() {
        let answer = cors_preflight(&storefront_cors(), "https://d111.cloudfront.net", "r1");
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        let headers = answer.headers();
        assert_eq!(
            headers["access-control-allow-origin"],
            "https://d111.cloudfront.net"
        );
        assert_eq!(headers["access-control-allow-methods"], "GET,POST");
        assert_eq!(
            headers["access-control-allow-headers"],
            "authorization,idempotency-key"
        );
        assert_eq!(headers["access-control-max-age"], "600");
        assert!(headers.get("access-control-allow-credentials").is_none());
    }

    #[test]
    fn another_origin_gets_no_cors_headers_at_all() {
        for origin in [
            "https://evil.example",
            "http://d111.cloudfront.net",
            "https://d111.cloudfront.net.evil.example",
        ] {
            let answer = cors_preflight(&storefront_cors(), origin, "r1");
            assert_eq!(answer.status(), StatusCode::NO_CONTENT, "{origin}");
            assert!(
                answer
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none(),
                "{origin}"
            );
            let mut response = Response::new(Bytes::new());
            add_cors_headers(&storefront_cors(), origin, &mut response);
            assert!(response.headers().is_empty(), "{origin}");
        }
    }

    #[test]
    fn wildcards_allow_what_api_gateway_documents() {
        let any = CorsSpec {
            allow_origins: vec!["*".into()],
            ..storefront_cors()
        };
        assert_eq!(
            cors_allowed_origin(&any, "https://x.example").as_deref(),
            Some("*")
        );
        let https = CorsSpec {
            allow_origins: vec!["https://*".into()],
            ..storefront_cors()
        };
        assert_eq!(
            cors_allowed_origin(&https, "https://x.example").as_deref(),
            Some("https://x.example")
        );
        assert_eq!(cors_allowed_origin(&https, "http://x.example"), None);
        let mut response = Response::new(Bytes::new());
        add_cors_headers(
            &storefront_cors(),
            "https://d111.cloudfront.net",
            &mut response,
        );
        assert_eq!(
            response.headers()["access-control-expose-headers"],
            "Location"
        );
    }
}
