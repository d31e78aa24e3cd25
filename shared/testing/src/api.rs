//! A capability's API handler called as API Gateway calls it, with the sample requests of
//! `events/<capability>/api-*.json` reshaped per case: the same files `sam local invoke`
//! and `shop-local invoke` take, so a test and a local run see the same request.

use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};

use crate::Table;

/// What a handler answered: the status, the body as JSON (`null` when empty, a string
/// when not JSON) and the response itself, for its headers.
pub type Answer = (u16, Value, Response<Body>);

/// The request the Lambda runtime makes of an API Gateway v2 event.
pub fn request(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

/// One API Gateway event through `handler`, e.g. `call(|r| handle(&app, r), event)`.
pub async fn call<F, Fut>(handler: F, event: Value) -> Answer
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let response = handler(request(&event)).await;
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap_or_else(|_| json!(text)),
        Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (response.status().as_u16(), body, response)
}

/// Asserts `answer` is the RFC 9457 problem with `status` that a rejected request gets,
/// its `errors` naming `field` if one is given. Answers the fields `errors` names when a
/// field is expected (none otherwise), for a caller that expects no other.
pub fn assert_problem(
    case: &str,
    answer: &Answer,
    status: u16,
    field: Option<&str>,
) -> Vec<String> {
    let (got, problem, response) = answer;
    assert_eq!(*got, status, "{case}: {problem}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{case}"
    );
    assert_eq!(problem["status"], status, "{case}");
    assert!(
        problem["title"].is_string() && problem["detail"].is_string(),
        "{case}: {problem}"
    );
    let Some(field) = field else {
        return Vec::new();
    };
    let fields: Vec<String> = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{case}: {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    assert!(fields.iter().any(|f| f == field), "{case}: {problem}");
    fields
}

/// A request the API must reject: what the case is, the request, the status it must get
/// and a field the problem's `errors` must name, if any.
pub type BadRequest<'a> = (&'a str, Value, u16, Option<&'a str>);

/// Sends each bad request through `call`, asserting it gets its problem
/// ([`assert_problem`]), and asserts they wrote nothing to `table` between them: a
/// rejected request must leave no half-done change behind. Answers, per case, the fields
/// its problem named.
pub async fn assert_rejected_without_writes(
    table: &Table,
    call: impl AsyncFn(Value) -> Answer,
    cases: Vec<BadRequest<'_>>,
) -> Vec<Vec<String>> {
    let before = table.item_count().await;
    let mut named = Vec::new();
    for (case, event, status, field) in cases {
        named.push(assert_problem(case, &call(event).await, status, field));
    }
    assert_eq!(
        table.item_count().await,
        before,
        "no bad request wrote anything"
    );
    named
}

/// Asks for `first`, then for `next(cursor)` while an answer carries a `nextCursor`,
/// asserting each page is a 200; answers the pages in order. A cursor that never runs out
/// is a failure of the API, so there is no page limit to hide one.
pub async fn pages(
    call: impl AsyncFn(Value) -> Answer,
    first: Value,
    next: impl Fn(&str) -> Value,
) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut event = first;
    loop {
        let (status, page, _) = call(event).await;
        assert_eq!(status, 200, "{page}");
        let cursor = page
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        pages.push(page);
        match cursor {
            Some(cursor) => event = next(&cursor),
            None => return pages,
        }
    }
}

/// What [`pages`] answered, page by page: how many items each holds and whether it carries
/// a `nextCursor`. A list whose last page is full must not point to an empty one after it.
pub fn page_shape(pages: &[Value]) -> Vec<(usize, bool)> {
    pages
        .iter()
        .map(|page| {
            let items = page["items"].as_array().map_or(0, Vec::len);
            (items, page.get("nextCursor").is_some())
        })
        .collect()
}

/// The same request about another resource: API Gateway fills the path parameter and
/// both paths from the route, so all three must agree for the handler to see a real request.
pub fn for_path_param(mut event: Value, name: &str, value: &str) -> Value {
    let route = event["routeKey"].as_str().expect("a routeKey").to_owned();
    let (_, template) = route.split_once(' ').expect("a route is `METHOD /path`");
    let placeholder = format!("{{{name}}}");
    assert!(
        template.contains(&placeholder),
        "{route} has no {placeholder}"
    );
    let path = template.replace(&placeholder, value);
    event["pathParameters"][name] = json!(value);
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event
}

pub fn with_body(mut event: Value, body: &str) -> Value {
    event["body"] = json!(body);
    event
}

/// The same request with the claims the JWT authorizer would have passed for another token.
pub fn with_claims(mut event: Value, claims: Value) -> Value {
    event["requestContext"]["authorizer"] = json!({"jwt": {"claims": claims, "scopes": null}});
    event
}

/// The same request without a token, as it reaches a route API Gateway does not protect.
pub fn anonymous(mut event: Value) -> Value {
    if let Some(context) = event["requestContext"].as_object_mut() {
        context.remove("authorizer");
    }
    without_header(event, "authorization")
}

/// The same request with `query` (string values) as its query string, in both the forms
/// API Gateway passes.
pub fn with_query(mut event: Value, query: Value) -> Value {
    let raw = query
        .as_object()
        .expect("a query is an object")
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().expect("query values are strings")))
        .collect::<Vec<_>>()
        .join("&");
    event["queryStringParameters"] = query;
    event["rawQueryString"] = json!(raw);
    event
}

/// `name` in lower case, as API Gateway v2 passes header names.
pub fn with_header(mut event: Value, name: &str, value: &str) -> Value {
    event["headers"][name] = json!(value);
    event
}

pub fn without_header(mut event: Value, name: &str) -> Value {
    if let Some(headers) = event["headers"].as_object_mut() {
        headers.remove(name);
    }
    event
}

/// A cursor as an attacker changes it: its payload decoded, every string key attribute
/// turned into a number (`{"S": ...}` to `{"N": "1"}`), encoded again, the signature kept.
pub fn retyped_cursor(cursor: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (payload, tag) = cursor.split_once('.').unwrap_or((cursor, ""));
    let plain = URL_SAFE_NO_PAD.decode(payload).expect("a cursor's payload");
    let mut pairs: Vec<(String, serde_json::Value)> =
        serde_json::from_slice(&plain).expect("a cursor's key");
    for (_, value) in &mut pairs {
        *value = serde_json::json!({"N": "1"});
    }
    let forged = serde_json::to_vec(&pairs).expect("JSON");
    format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn a_path_parameter_moves_both_paths_wherever_the_route_puts_it() {
        let event = for_path_param(
            fixture("ordering", "api-cancel-order.json"),
            "orderId",
            "X1",
        );
        assert_eq!(event["pathParameters"]["orderId"], "X1");
        assert_eq!(event["rawPath"], "/orders/X1/cancel");
        assert_eq!(event["requestContext"]["http"]["path"], "/orders/X1/cancel");
        let parsed = request(&event);
        assert_eq!(parsed.uri().path(), "/orders/X1/cancel");
    }

    #[test]
    #[should_panic(expected = "has no {productId}")]
    fn a_path_parameter_the_route_does_not_have_is_a_mistake_in_the_test() {
        for_path_param(
            fixture("ordering", "api-cancel-order.json"),
            "productId",
            "X1",
        );
    }

    #[test]
    fn a_query_is_passed_in_both_forms_and_anonymous_drops_the_token_and_its_claims() {
        let event = with_query(
            fixture("ordering", "api-list-orders.json"),
            json!({"limit": "5", "cursor": "abc"}),
        );
        let mut raw: Vec<&str> = event["rawQueryString"]
            .as_str()
            .unwrap()
            .split('&')
            .collect();
        raw.sort();
        assert_eq!(raw, ["cursor=abc", "limit=5"]);
        assert_eq!(event["queryStringParameters"]["limit"], "5");

        let event = anonymous(event);
        assert!(event["requestContext"].get("authorizer").is_none());
        assert!(event["headers"].get("authorization").is_none());
        let signed_in = with_claims(event, json!({"sub": "u"}));
        assert_eq!(
            signed_in["requestContext"]["authorizer"]["jwt"]["claims"]["sub"],
            "u"
        );
    }
}
