//! The resource types the loader knows, and the local conventions for ids, names and ARNs.
//! They are fixed rather than generated so that what the templates resolve to is what the
//! provisioner, the runner and the token issuer expect, without them talking to each other.

use crate::topology::{ACCOUNT_ID, FUNCTION_URL_PREFIX, REGION, WEBSOCKET_PREFIX};

pub(super) const TABLE: &str = "AWS::DynamoDB::Table";
pub(super) const QUEUE: &str = "AWS::SQS::Queue";
pub(super) const BUS: &str = "AWS::Events::EventBus";
pub(super) const RULE: &str = "AWS::Events::Rule";
pub(super) const FUNCTION: &str = "AWS::Serverless::Function";
pub(super) const APPLICATION: &str = "AWS::Serverless::Application";
pub(super) const HTTP_API: &str = "AWS::ApiGatewayV2::Api";
pub(super) const AUTHORIZER: &str = "AWS::ApiGatewayV2::Authorizer";
pub(super) const INTEGRATION: &str = "AWS::ApiGatewayV2::Integration";
pub(super) const ROUTE: &str = "AWS::ApiGatewayV2::Route";
/// Only a WebSocket API's stage means something locally (the path clients connect to);
/// the HTTP API is served at its `$default` stage's root.
pub(super) const API_STAGE: &str = "AWS::ApiGatewayV2::Stage";
pub(super) const EVENT_SOURCE_MAPPING: &str = "AWS::Lambda::EventSourceMapping";
pub(super) const USER_POOL: &str = "AWS::Cognito::UserPool";
pub(super) const USER_POOL_CLIENT: &str = "AWS::Cognito::UserPoolClient";
pub(super) const SECRET: &str = "AWS::SecretsManager::Secret";
/// What SAM creates for a function's `FunctionUrlConfig`, as `<Function>Url`.
pub(super) const FUNCTION_URL: &str = "AWS::Lambda::Url";
/// What SAM creates for a function that names no `Role`.
pub(super) const IAM_ROLE: &str = "AWS::IAM::Role";
/// Not emulated, but its `Ref` is an ARN, not a name: see `known_attribute`.
pub(super) const TOPIC: &str = "AWS::SNS::Topic";
/// Not emulated: shop-local serves the storefront itself, so the distribution's domain is
/// the local server's host (see `known_attribute`).
pub(super) const DISTRIBUTION: &str = "AWS::CloudFront::Distribution";

/// The types the local runner turns into something; every other type is only listed in
/// `Topology::not_emulated`.
pub(super) const EMULATED: &[&str] = &[
    TABLE,
    QUEUE,
    BUS,
    RULE,
    FUNCTION,
    APPLICATION,
    HTTP_API,
    AUTHORIZER,
    INTEGRATION,
    ROUTE,
    EVENT_SOURCE_MAPPING,
    SECRET,
    FUNCTION_URL,
];

pub(super) const ROOT_STACK_NAME: &str = "shop-local";
pub(super) const ROOT_NAME_PREFIX: &str = "shop";
pub(super) const USER_POOL_CLIENT_ID: &str = "shoplocalclient";
pub(super) const HTTP_API_ID: &str = "shoplocalapi";
pub(super) const WEBSOCKET_API_ID: &str = "shoplocalws";

/// The one user pool's fixed id: the local token issuer signs tokens with this issuer.
pub(super) fn user_pool_id() -> String {
    format!("{REGION}_shoplocal")
}

/// Where the local gateway serves a function's URL: a path of the API's own listener, so
/// that the URL is known before anything listens. The function sees the rest of the path,
/// as behind a real function URL.
pub(super) fn function_url(api_url: &str, function_name: &str) -> String {
    format!(
        "{}{FUNCTION_URL_PREFIX}{function_name}/",
        api_url.trim_end_matches('/')
    )
}

/// Whether an `AWS::ApiGatewayV2::Api` is a WebSocket API rather than an HTTP API. The
/// protocol cannot change after creation, so templates write it as a literal.
pub(super) fn is_websocket(resource: &super::document::Resource) -> bool {
    resource
        .properties
        .get("ProtocolType")
        .and_then(|value| value.as_str())
        == Some("WEBSOCKET")
}

/// An AWS endpoint a function's environment names, where it is served locally: the
/// WebSocket API's Management API (`https://{apiId}.execute-api.{region}.{suffix}/{stage}`,
/// built with `!Sub` because no attribute gives it) and the user pool's JWKS
/// (`{issuer}/.well-known/...`, which the local issuer serves under the local API). Any
/// other value is left as it is: the issuer URL itself, above all, is what tokens carry.
pub(super) fn local_endpoint(value: &str, api_url: &str) -> String {
    let api_url = api_url.trim_end_matches('/');
    let management = format!("https://{WEBSOCKET_API_ID}.execute-api.{REGION}.amazonaws.com");
    if let Some(rest) = value.strip_prefix(&management) {
        return format!("{api_url}{WEBSOCKET_PREFIX}{rest}");
    }
    let jwks = format!(
        "https://cognito-idp.{REGION}.amazonaws.com/{}/.well-known/",
        user_pool_id()
    );
    if let Some(rest) = value.strip_prefix(&jwks) {
        return format!("{api_url}/.well-known/{rest}");
    }
    value.to_owned()
}

pub(super) fn table_arn(name: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}")
}

pub(super) fn stream_arn(table_arn: &str) -> String {
    format!("{table_arn}/stream/local")
}

pub(super) fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}")
}

pub(super) fn bus_arn(name: &str) -> String {
    format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}")
}

/// Rules on a custom bus have the bus in their ARN, as in AWS.
pub(super) fn rule_arn(bus: &str, name: &str) -> String {
    match bus {
        "default" => format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{name}"),
        _ => format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{bus}/{name}"),
    }
}

pub(super) fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}")
}

pub(super) fn generic_arn(kind: &str, logical_id: &str) -> String {
    format!("arn:aws:local:{REGION}:{ACCOUNT_ID}:{kind}/{logical_id}")
}

/// `EventBusName` accepts a name or an ARN.
pub(super) fn bus_name_of(value: &str) -> String {
    match value.split_once(":event-bus/") {
        Some((_, name)) if value.starts_with("arn:") => name.to_string(),
        _ => value.to_string(),
    }
}

/// The function ARN in an integration URI: either the ARN itself (possibly with a version or
/// alias qualifier, which is dropped) or API Gateway's
/// `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function arn}/invocations`.
pub(super) fn function_arn_in_uri(uri: &str) -> String {
    let arn = match uri.split_once(":lambda:path/2015-03-31/functions/") {
        Some((_, rest)) => rest.strip_suffix("/invocations").unwrap_or(rest),
        None => uri,
    };
    arn.splitn(8, ':').take(7).collect::<Vec<_>>().join(":")
}

/// `CatalogService` → `catalog`: the application's name, used in logical ids and physical names.
pub(super) fn application_name(logical_id: &str) -> String {
    logical_id
        .strip_suffix("Service")
        .filter(|name| !name.is_empty())
        .unwrap_or(logical_id)
        .to_lowercase()
}
