//! What the SAM templates declare, resolved for one local run: every name, URL and ARN is
//! final, every intrinsic function evaluated. `template.rs` builds it from the templates;
//! the provisioner creates it in moto; the runner serves it.

use std::collections::BTreeMap;

use serde::Serialize;

/// The fixed identity of the local "account".
pub const ACCOUNT_ID: &str = "123456789012";
pub const REGION: &str = "us-east-1";
/// The path under the local API where function URLs are served (see [`FunctionUrlSpec`]).
pub const FUNCTION_URL_PREFIX: &str = "/_local/function-urls/";

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Topology {
    pub tables: Vec<TableSpec>,
    pub queues: Vec<QueueSpec>,
    pub buses: Vec<BusSpec>,
    pub rules: Vec<RuleSpec>,
    pub functions: Vec<FunctionSpec>,
    pub routes: Vec<RouteSpec>,
    pub stream_mappings: Vec<StreamMappingSpec>,
    pub queue_mappings: Vec<QueueMappingSpec>,
    pub schedules: Vec<ScheduleSpec>,
    pub secrets: Vec<SecretSpec>,
    pub function_urls: Vec<FunctionUrlSpec>,
    /// The HTTP API's `CorsConfiguration`, if it has one.
    pub cors: Option<CorsSpec>,
    /// The WebSocket API, if the templates declare one.
    pub websocket: Option<WebSocketSpec>,
    /// Resources present in the templates that run without local emulation (IAM, log
    /// groups, alarms, Cognito, ...), as `path/LogicalId (Type)`, for the summary.
    pub not_emulated: Vec<String>,
}

/// A DynamoDB attribute type: "S", "N" or "B".
pub type AttributeType = String;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySpec {
    pub hash: (String, AttributeType),
    pub range: Option<(String, AttributeType)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexSpec {
    pub name: String,
    pub key: KeySpec,
    /// "ALL", "KEYS_ONLY" or "INCLUDE".
    pub projection: String,
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableSpec {
    /// Where it is declared: `catalog/ProductsTable` (nested application / logical id),
    /// or just `EventBus` for the root template.
    pub logical_id: String,
    pub name: String,
    pub arn: String,
    pub key: KeySpec,
    pub global_indexes: Vec<IndexSpec>,
    /// The stream view type ("NEW_IMAGE", ...) when the table has a stream.
    pub stream_view: Option<String>,
    pub ttl_attribute: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueSpec {
    pub logical_id: String,
    pub name: String,
    pub url: String,
    pub arn: String,
    pub visibility_timeout_seconds: u32,
    pub message_retention_seconds: Option<u32>,
    pub fifo: bool,
    pub redrive: Option<Redrive>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redrive {
    pub dead_letter_arn: String,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BusSpec {
    pub logical_id: String,
    pub name: String,
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSpec {
    pub logical_id: String,
    pub name: String,
    pub bus_name: String,
    /// The EventBridge event pattern, as JSON.
    pub pattern: serde_json::Value,
    pub targets: Vec<RuleTarget>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleTarget {
    pub id: String,
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// The physical function name (what AWS_LAMBDA_FUNCTION_NAME says).
    pub name: String,
    /// The cargo binary (`Metadata.BuildProperties.Binary`): how people name it locally.
    pub binary: String,
    pub environment: BTreeMap<String, String>,
    pub timeout_seconds: u32,
    pub memory_mb: u32,
    /// `ReservedConcurrentExecutions`, when the template sets it.
    pub reserved_concurrency: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum RouteAuth {
    None,
    /// API Gateway's JWT authorizer: the token's `iss` must equal `issuer`, and its
    /// `aud` (or, for Cognito access tokens, `client_id`) one of `audience`.
    Jwt {
        issuer: String,
        audience: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteSpec {
    /// `GET /products/{productId}`, exactly as in the template.
    pub route_key: String,
    pub method: String,
    pub path: String,
    /// The physical name of the function behind the route's integration.
    pub function: String,
    pub auth: RouteAuth,
}

/// A WebSocket API (`ProtocolType: WEBSOCKET`), served under [`WEBSOCKET_PREFIX`]: clients
/// connect to `{prefix}/{stage}`, and the Management API is `{prefix}/{stage}/@connections`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebSocketSpec {
    /// `$request.body.action`, say: the field of a client's JSON message naming its route.
    pub route_selection_expression: String,
    pub routes: Vec<WebSocketRouteSpec>,
    /// The stages (`AWS::ApiGatewayV2::Stage`'s `StageName`) clients may connect to.
    pub stages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebSocketRouteSpec {
    /// `$connect`, `$disconnect`, `$default` or an action's name.
    pub route_key: String,
    /// The physical name of the function behind the route's integration.
    pub function: String,
}

impl WebSocketSpec {
    pub fn route(&self, route_key: &str) -> Option<&WebSocketRouteSpec> {
        self.routes
            .iter()
            .find(|route| route.route_key == route_key)
    }

    /// The route a client's message takes: the one its selection expression names, else
    /// `$default` (API Gateway's rule; a message no route takes is dropped with an error).
    pub fn route_for_message(&self, body: &str) -> Option<&WebSocketRouteSpec> {
        let selected = self
            .route_selection_expression
            .strip_prefix("$request.body.")
            .and_then(|path| {
                let message: serde_json::Value = serde_json::from_str(body).ok()?;
                let mut value = &message;
                for field in path.split('.') {
                    value = value.get(field)?;
                }
                value.as_str().map(str::to_owned)
            });
        selected
            .and_then(|key| self.route(&key))
            .filter(|route| !route.route_key.starts_with('$'))
            .or_else(|| self.route("$default"))
    }
}

/// Where the local server serves a WebSocket API.
pub const WEBSOCKET_PREFIX: &str = "/websocket";

/// What a WebSocket API's `ApiEndpoint` is locally: the local server's, under
/// [`WEBSOCKET_PREFIX`], in the `ws` scheme (AWS's is `wss://{apiId}.execute-api...`);
/// clients connect to it followed by `/{stage}`.
pub fn websocket_endpoint(api_url: &str) -> String {
    let base = api_url.trim_end_matches('/');
    let base = match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => base.to_owned(),
    };
    format!("{base}{WEBSOCKET_PREFIX}")
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamMappingSpec {
    pub logical_id: String,
    pub function: String,
    pub table_name: String,
    pub batch_size: u32,
    pub batching_window_seconds: u32,
    /// "TRIM_HORIZON" or "LATEST".
    pub starting_position: String,
    pub report_batch_item_failures: bool,
    pub bisect_on_error: bool,
    /// -1 for "until the record expires".
    pub maximum_retry_attempts: i64,
    /// Filter patterns (EventBridge pattern syntax) from `FilterCriteria.Filters[].Pattern`.
    pub filters: Vec<serde_json::Value>,
    pub on_failure_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueMappingSpec {
    pub logical_id: String,
    pub function: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: u32,
    pub batching_window_seconds: u32,
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency`, when set.
    pub maximum_concurrency: Option<u32>,
    pub filters: Vec<serde_json::Value>,
}

impl QueueMappingSpec {
    /// Pollers receiving for this mapping at once: its `MaximumConcurrency`, else two.
    pub fn pollers(&self) -> usize {
        self.maximum_concurrency.map_or(2, |n| n as usize)
    }
}

impl Topology {
    /// SQS long polls the stack keeps open at every moment: one per poller.
    pub fn long_polls(&self) -> usize {
        self.queue_mappings
            .iter()
            .map(QueueMappingSpec::pollers)
            .sum()
    }

    /// Gives each queue a function consumes the shortest visibility timeout AWS accepts for
    /// that mapping, the function's timeout, so that a batch whose invocation failed comes
    /// back as soon as it could on AWS. Answers (queue, before, after) for each change.
    pub fn shorten_visibility_timeouts(&mut self) -> Vec<(String, u32, u32)> {
        let mut changed = Vec::new();
        for mapping in &self.queue_mappings {
            let Some(function) = self.functions.iter().find(|f| f.name == mapping.function) else {
                continue;
            };
            let Some(queue) = self.queues.iter_mut().find(|q| q.arn == mapping.queue_arn) else {
                continue;
            };
            let before = queue.visibility_timeout_seconds;
            if function.timeout_seconds < before {
                queue.visibility_timeout_seconds = function.timeout_seconds;
                changed.push((queue.logical_id.clone(), before, function.timeout_seconds));
            }
        }
        changed
    }
}

/// A function invoked on a schedule (a SAM `Schedule` event: an EventBridge rule with a
/// `rate(...)` expression), with the event EventBridge sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleSpec {
    pub logical_id: String,
    /// The physical name of the function.
    pub function: String,
    /// As written: `rate(1 minute)`.
    pub expression: String,
    /// What the expression means.
    #[serde(serialize_with = "seconds")]
    pub every: std::time::Duration,
}

fn seconds<S: serde::Serializer>(
    duration: &std::time::Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_secs())
}

/// What a `rate(...)` schedule expression means; `None` for anything else (a `cron(...)`,
/// a unit that does not agree with its value).
pub fn rate(expression: &str) -> Option<std::time::Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (value, unit) = inner.trim().split_once(' ')?;
    let value: u64 = value.parse().ok()?;
    let seconds = match (value, unit.trim()) {
        (1, "minute") => 60,
        (1, "hour") => 3_600,
        (1, "day") => 86_400,
        (n, "minutes") if n > 1 => n * 60,
        (n, "hours") if n > 1 => n * 3_600,
        (n, "days") if n > 1 => n * 86_400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(seconds))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretSpec {
    pub logical_id: String,
    /// What `Ref` gives locally. CloudFormation gives the ARN, which ends in a suffix moto
    /// chooses; GetSecretValue takes either, so code reading `SecretId` works with both.
    pub name: String,
    pub value: SecretValue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SecretValue {
    /// `SecretString`, as written.
    Literal(String),
    /// `GenerateSecretString`: a random password of `length` letters and digits, stored
    /// under `key` in the JSON object `template` when a key is given.
    Generated {
        template: Option<String>,
        key: Option<String>,
        length: u32,
    },
}

/// A function's URL (SAM `FunctionUrlConfig`, AuthType NONE), served by the local API at
/// `url`: `{api}/_local/function-urls/{function}/`, so it is known before anything listens.
/// Requests reach the function as payload format 2.0 with route key `$default`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionUrlSpec {
    pub logical_id: String,
    /// The physical name of the function.
    pub function: String,
    pub url: String,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::rate;

    #[test]
    fn rate_expressions_read_as_eventbridge_reads_them() {
        assert_eq!(rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(rate("rate(5 minutes)"), Some(Duration::from_secs(300)));
        assert_eq!(rate("rate(2 hours)"), Some(Duration::from_secs(7_200)));
        assert_eq!(rate("rate(1 day)"), Some(Duration::from_secs(86_400)));
        // EventBridge refuses a plural for 1 and a singular for more.
        for refused in [
            "rate(1 minutes)",
            "rate(5 minute)",
            "rate(0 minutes)",
            "cron(0 * * * ? *)",
            "rate()",
            "rate(x minutes)",
        ] {
            assert_eq!(rate(refused), None, "{refused}");
        }
    }
}

/// An HTTP API's CORS configuration, as API Gateway applies it: it answers preflights
/// itself and adds the headers to what integrations answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CorsSpec {
    /// Origins as configured: exact (`https://example.com`), `*`, or a scheme with `*`
    /// (`https://*`).
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u32>,
    pub allow_credentials: bool,
}
