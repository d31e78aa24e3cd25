//! Reads the project's SAM/CloudFormation templates into a resolved [`Topology`], so that the
//! local runner creates exactly what the templates declare and local and deployed topologies
//! cannot drift.
//!
//! How it works:
//! 1. `read_tree` parses the root template and, recursively, every
//!    `AWS::Serverless::Application` whose `Location` is a local template. Each file becomes a
//!    `Stack`; YAML short tags (`!Ref`, `!Sub`, ...) are turned into their long JSON form
//!    (`{"Ref": ..}`, `{"Fn::Sub": ..}`) on the way, so the evaluator only knows one form.
//! 2. A `Loader` evaluates intrinsic functions lazily: only the properties the runner needs
//!    are evaluated, when they are needed. A `Ref` to a resource computes that resource's
//!    physical name on demand, a nested stack's parameter is evaluated in its parent when first
//!    used, and `!GetAtt App.Outputs.X` evaluates the nested output. Circular references are
//!    reported instead of overflowing the stack.
//! 3. `Loader::topology` walks every created resource twice: first what others point at
//!    (tables, queues, buses, functions, integrations, authorizers), then what points at them
//!    (rules, routes, event source mappings), so a reference can cross templates.
//!
//! Physical names and ids follow fixed local conventions (see `load`'s doc), which is what
//! lets the provisioner, the runner and the token issuer agree without talking to each other.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use serde_norway::Value as Yaml;

use crate::topology::{
    ACCOUNT_ID, BusSpec, FunctionSpec, IndexSpec, KeySpec, QueueMappingSpec, QueueSpec, REGION,
    Redrive, RouteAuth, RouteSpec, RuleSpec, RuleTarget, StreamMappingSpec, TableSpec, Topology,
};

/// How to resolve the values that only exist at run time.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// moto's endpoint, e.g. "http://127.0.0.1:4566": queue URLs are `{endpoint}/{ACCOUNT_ID}/{queue name}`.
    pub endpoint_url: String,
    /// The local API's base URL, e.g. "http://127.0.0.1:3000" (what AWS::ApiGatewayV2::Api's ApiEndpoint resolves to).
    pub api_url: String,
    /// Root template parameter overrides (e.g. Stage=dev). Defaults come from the template.
    pub parameters: BTreeMap<String, String>,
}

/// Why the templates cannot be turned into a topology. Every message names the template file
/// and, when there is one, the logical id at fault.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {}: {source}", .file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not valid YAML: {source}", .file.display())]
    Yaml {
        file: PathBuf,
        #[source]
        source: serde_norway::Error,
    },
    /// The template is wrong or incomplete (missing key, wrong type, dangling id, ...).
    #[error("{}: {logical_id}: {message}", .file.display())]
    Invalid {
        file: PathBuf,
        logical_id: String,
        message: String,
    },
    /// A `Ref`, `Fn::GetAtt` or `${...}` names something the template does not declare.
    #[error(
        "{}: {logical_id}: refers to `{target}`, which is not a parameter, pseudo parameter or resource of this template",
        .file.display()
    )]
    UnknownReference {
        file: PathBuf,
        logical_id: String,
        target: String,
    },
    /// A parameter has no Default and nobody passed a value.
    #[error(
        "{}: Parameters.{name}: no value: it has no Default and none is passed in (root template: LoadOptions.parameters; nested template: the Application's Parameters)",
        .file.display()
    )]
    MissingParameter { file: PathBuf, name: String },
    /// Valid CloudFormation that the local runner deliberately does not emulate.
    #[error("{}: {logical_id}: not supported by the local runner: {message}", .file.display())]
    Unsupported {
        file: PathBuf,
        logical_id: String,
        message: String,
    },
    #[error("{}: {logical_id}: circular reference: {chain}", .file.display())]
    Cycle {
        file: PathBuf,
        logical_id: String,
        chain: String,
    },
}

type Result<T, E = TemplateError> = std::result::Result<T, E>;

/// Reads `root_template` and the nested applications it points at, and resolves them into the
/// topology the local runner creates.
///
/// Local conventions: generated physical names are `<prefix>-<LogicalId>` (prefix `shop` for the
/// root template, the application name such as `catalog` for a nested one); the user pool's id
/// is `us-east-1_shoplocal`, its client's `shoplocalclient`, the HTTP API's `shoplocalapi`;
/// logical ids in the topology are `catalog/ProductsTable` (application name / logical id), or
/// just the logical id for the root template.
pub fn load(root_template: &Path, options: &LoadOptions) -> Result<Topology, TemplateError> {
    load_with(root_template, options, &|path| {
        std::fs::read_to_string(path)
    })
}

/// [`load`] with the file system abstracted, so tests can use in-memory templates.
fn load_with(root: &Path, options: &LoadOptions, read: &ReadFile) -> Result<Topology> {
    let loader = Loader::new(options, read_tree(root, read)?);
    loader.check_parameters()?;
    loader.topology()
}

type ReadFile = dyn Fn(&Path) -> io::Result<String>;

// ---------------------------------------------------------------------------------------------
// Resource types and local conventions.

const TABLE: &str = "AWS::DynamoDB::Table";
const QUEUE: &str = "AWS::SQS::Queue";
const BUS: &str = "AWS::Events::EventBus";
const RULE: &str = "AWS::Events::Rule";
const FUNCTION: &str = "AWS::Serverless::Function";
const APPLICATION: &str = "AWS::Serverless::Application";
const HTTP_API: &str = "AWS::ApiGatewayV2::Api";
const AUTHORIZER: &str = "AWS::ApiGatewayV2::Authorizer";
const INTEGRATION: &str = "AWS::ApiGatewayV2::Integration";
const ROUTE: &str = "AWS::ApiGatewayV2::Route";
const EVENT_SOURCE_MAPPING: &str = "AWS::Lambda::EventSourceMapping";
const USER_POOL: &str = "AWS::Cognito::UserPool";
const USER_POOL_CLIENT: &str = "AWS::Cognito::UserPoolClient";
/// What SAM creates for a function that names no `Role`.
const IAM_ROLE: &str = "AWS::IAM::Role";

/// The types the local runner turns into something; every other type is only listed in
/// `Topology::not_emulated`.
const EMULATED: &[&str] = &[
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
];

const ROOT_STACK_NAME: &str = "shop-local";
const ROOT_NAME_PREFIX: &str = "shop";
const USER_POOL_CLIENT_ID: &str = "shoplocalclient";
const HTTP_API_ID: &str = "shoplocalapi";
/// Deeper than this, a template almost certainly includes itself.
const MAX_NESTING: usize = 8;

/// The one user pool's fixed id: the local token issuer signs tokens with this issuer.
fn user_pool_id() -> String {
    format!("{REGION}_shoplocal")
}

fn table_arn(name: &str) -> String {
    format!("arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}")
}

fn stream_arn(table_arn: &str) -> String {
    format!("{table_arn}/stream/local")
}

fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}")
}

fn bus_arn(name: &str) -> String {
    format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}")
}

/// Rules on a custom bus have the bus in their ARN, as in AWS.
fn rule_arn(bus: &str, name: &str) -> String {
    match bus {
        "default" => format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{name}"),
        _ => format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{bus}/{name}"),
    }
}

fn function_arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}")
}

fn generic_arn(kind: &str, logical_id: &str) -> String {
    format!("arn:aws:local:{REGION}:{ACCOUNT_ID}:{kind}/{logical_id}")
}

/// `EventBusName` accepts a name or an ARN.
fn bus_name_of(value: &str) -> String {
    match value.split_once(":event-bus/") {
        Some((_, name)) if value.starts_with("arn:") => name.to_string(),
        _ => value.to_string(),
    }
}

/// The function ARN in an integration URI: either the ARN itself (possibly with a version or
/// alias qualifier, which is dropped) or API Gateway's
/// `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function arn}/invocations`.
fn function_arn_in_uri(uri: &str) -> String {
    let arn = match uri.split_once(":lambda:path/2015-03-31/functions/") {
        Some((_, rest)) => rest.strip_suffix("/invocations").unwrap_or(rest),
        None => uri,
    };
    arn.splitn(8, ':').take(7).collect::<Vec<_>>().join(":")
}

/// `CatalogService` → `catalog`: the application's name, used in logical ids and physical names.
fn application_name(logical_id: &str) -> String {
    logical_id
        .strip_suffix("Service")
        .filter(|name| !name.is_empty())
        .unwrap_or(logical_id)
        .to_lowercase()
}

// ---------------------------------------------------------------------------------------------
// Parsing: YAML files into stacks.

/// One template file: the root or a nested application.
struct Stack {
    file: PathBuf,
    /// `""` for the root, `catalog` for `CatalogService`, `catalog/search` one level deeper.
    path: String,
    /// Prefix of generated physical names: `shop` for the root, else the path with dashes.
    name_prefix: String,
    /// What `AWS::StackName` says.
    stack_name: String,
    /// The stack and the Application logical id this one is nested under.
    parent: Option<(usize, String)>,
    parameters: Map<String, Json>,
    conditions: Map<String, Json>,
    mappings: Map<String, Json>,
    /// In declaration order, so the topology lists things as the templates do.
    resources: Vec<Resource>,
    outputs: Map<String, Json>,
    /// Application logical id → index of its stack.
    children: HashMap<String, usize>,
}

struct Resource {
    id: String,
    kind: String,
    condition: Option<String>,
    /// Unevaluated; for functions already merged with `Globals.Function`.
    properties: Map<String, Json>,
    metadata: Json,
}

/// Where a stack sits in the tree.
struct Place {
    path: String,
    name_prefix: String,
    stack_name: String,
    parent: Option<(usize, String)>,
    depth: usize,
}

impl Stack {
    fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.iter().find(|resource| resource.id == id)
    }

    fn parse(file: &Path, text: &str, place: Place) -> Result<Stack> {
        let doc: Yaml = serde_norway::from_str(text).map_err(|source| TemplateError::Yaml {
            file: file.to_path_buf(),
            source,
        })?;
        let Yaml::Mapping(doc) = doc else {
            return Err(invalid(
                file,
                "(template)",
                "a template is a mapping of sections",
            ));
        };
        let section = |name: &str| -> Result<Map<String, Json>> {
            match doc.get(name) {
                None | Some(Yaml::Null) => Ok(Map::new()),
                Some(value) => {
                    match to_json(value).map_err(|message| invalid(file, name, message))? {
                        Json::Object(map) => Ok(map),
                        _ => Err(invalid(file, name, "this section must be a mapping")),
                    }
                }
            }
        };
        let globals = section("Globals")?;
        let function_globals = match globals.get("Function") {
            None => None,
            Some(Json::Object(globals)) => Some(globals),
            Some(_) => {
                return Err(invalid(
                    file,
                    "Globals",
                    "Globals.Function must be a mapping",
                ));
            }
        };
        let resources = match doc.get("Resources") {
            Some(Yaml::Mapping(resources)) => parse_resources(file, resources, function_globals)?,
            _ => {
                return Err(invalid(
                    file,
                    "Resources",
                    "a template needs a Resources mapping",
                ));
            }
        };
        Ok(Stack {
            file: file.to_path_buf(),
            path: place.path,
            name_prefix: place.name_prefix,
            stack_name: place.stack_name,
            parent: place.parent,
            parameters: section("Parameters")?,
            conditions: section("Conditions")?,
            mappings: section("Mappings")?,
            resources,
            outputs: section("Outputs")?,
            children: HashMap::new(),
        })
    }

    /// The nested applications and their template paths, relative to this template's directory.
    fn applications(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut seen = HashMap::new();
        let mut applications = Vec::new();
        for resource in self.resources.iter().filter(|r| r.kind == APPLICATION) {
            let name = application_name(&resource.id);
            if let Some(other) = seen.insert(name.clone(), resource.id.clone()) {
                return Err(invalid(
                    &self.file,
                    &resource.id,
                    format!("its application name `{name}` is also {other}'s; rename one of them"),
                ));
            }
            let location = match resource.properties.get("Location") {
                Some(Json::String(location)) => location,
                _ => {
                    return Err(unsupported(
                        &self.file,
                        &resource.id,
                        "Location must be the path of a local template; applications from the Serverless Application Repository or S3 cannot run locally",
                    ));
                }
            };
            let directory = self.file.parent().unwrap_or(Path::new(""));
            applications.push((resource.id.clone(), directory.join(location)));
        }
        Ok(applications)
    }

    /// Where the application `app_id` declared in this stack (at index `index`) sits.
    fn child_place(&self, index: usize, app_id: &str, depth: usize) -> Place {
        let name = application_name(app_id);
        let path = match self.path.as_str() {
            "" => name,
            parent => format!("{parent}/{name}"),
        };
        Place {
            name_prefix: path.replace('/', "-"),
            path,
            stack_name: format!("{}-{app_id}", self.stack_name),
            parent: Some((index, app_id.to_string())),
            depth,
        }
    }
}

fn parse_resources(
    file: &Path,
    resources: &serde_norway::Mapping,
    function_globals: Option<&Map<String, Json>>,
) -> Result<Vec<Resource>> {
    let mut parsed: Vec<Resource> = Vec::new();
    for (key, value) in resources {
        let Some(id) = key.as_str() else {
            return Err(invalid(
                file,
                "Resources",
                format!("logical id {key:?} is not a string"),
            ));
        };
        let body = to_json(value).map_err(|message| invalid(file, id, message))?;
        parsed.push(parse_resource(file, id, body, function_globals)?);
    }
    add_implicit_roles(&mut parsed);
    Ok(parsed)
}

fn parse_resource(
    file: &Path,
    id: &str,
    body: Json,
    function_globals: Option<&Map<String, Json>>,
) -> Result<Resource> {
    let Json::Object(mut body) = body else {
        return Err(invalid(file, id, "a resource must be a mapping"));
    };
    let kind = match body.remove("Type") {
        Some(Json::String(kind)) => kind,
        _ => return Err(invalid(file, id, "the resource has no Type")),
    };
    let condition = match body.remove("Condition") {
        None => None,
        Some(Json::String(condition)) => Some(condition),
        Some(_) => {
            return Err(invalid(
                file,
                id,
                "Condition must be the name of a condition",
            ));
        }
    };
    let mut properties = match body.remove("Properties") {
        None | Some(Json::Null) => Map::new(),
        Some(Json::Object(properties)) => properties,
        Some(_) => return Err(invalid(file, id, "Properties must be a mapping")),
    };
    if kind == FUNCTION
        && let Some(globals) = function_globals
    {
        properties = merge_globals(globals, properties);
    }
    Ok(Resource {
        id: id.to_string(),
        kind,
        condition,
        properties,
        metadata: body.remove("Metadata").unwrap_or(Json::Null),
    })
}

/// SAM's Globals rules: mappings merge key by key (so `Environment.Variables` combine), lists
/// concatenate, and anything else (scalars, intrinsic functions) is replaced by the
/// function's own value.
fn merge_globals(globals: &Map<String, Json>, mut local: Map<String, Json>) -> Map<String, Json> {
    for (key, global) in globals {
        let merged = match local.remove(key) {
            None => global.clone(),
            Some(Json::Object(own)) => match global {
                Json::Object(global)
                    if intrinsic(global).is_none() && intrinsic(&own).is_none() =>
                {
                    Json::Object(merge_globals(global, own))
                }
                _ => Json::Object(own),
            },
            Some(Json::Array(own)) => match global {
                Json::Array(global) => Json::Array(global.iter().cloned().chain(own).collect()),
                _ => Json::Array(own),
            },
            Some(own) => own,
        };
        local.insert(key.clone(), merged);
    }
    local
}

/// SAM creates `<Function>Role` for every function that names no `Role`; declaring it here
/// makes `!GetAtt MyFunctionRole.Arn` resolve and lists the role as not emulated, as deployed.
fn add_implicit_roles(resources: &mut Vec<Resource>) {
    let mut index = 0;
    while index < resources.len() {
        let resource = &resources[index];
        let role_id = format!("{}Role", resource.id);
        let needs_role = resource.kind == FUNCTION
            && !resource.properties.contains_key("Role")
            && !resources.iter().any(|other| other.id == role_id);
        if needs_role {
            let role = Resource {
                id: role_id,
                kind: IAM_ROLE.to_string(),
                condition: resource.condition.clone(),
                properties: Map::new(),
                metadata: Json::Null,
            };
            resources.insert(index + 1, role);
            index += 1;
        }
        index += 1;
    }
}

/// YAML to JSON, turning CloudFormation's short tags into the long form: `!Ref X` →
/// `{"Ref": "X"}`, `!Condition X` → `{"Condition": "X"}`, `!Sub s` → `{"Fn::Sub": "s"}`.
fn to_json(value: &Yaml) -> Result<Json, String> {
    Ok(match value {
        Yaml::Null => Json::Null,
        Yaml::Bool(flag) => Json::Bool(*flag),
        Yaml::Number(number) => {
            if let Some(int) = number.as_i64() {
                Json::from(int)
            } else if let Some(int) = number.as_u64() {
                Json::from(int)
            } else {
                let float = number.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(float)
                    .map(Json::Number)
                    .ok_or_else(|| format!("{number} is not a finite number"))?
            }
        }
        Yaml::String(text) => Json::String(text.clone()),
        Yaml::Sequence(items) => Json::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, item) in mapping {
                let key = match key {
                    Yaml::String(key) => key.clone(),
                    Yaml::Number(number) => number.to_string(),
                    Yaml::Bool(flag) => flag.to_string(),
                    other => return Err(format!("mapping key {other:?} is not a scalar")),
                };
                object.insert(key, to_json(item)?);
            }
            Json::Object(object)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key = match name {
                "Ref" | "Condition" => name.to_string(),
                _ => format!("Fn::{name}"),
            };
            let mut object = Map::new();
            object.insert(key, to_json(&tagged.value)?);
            Json::Object(object)
        }
    })
}

/// The intrinsic function a mapping stands for: `{"Ref": ..}` or `{"Fn::X": ..}`.
fn intrinsic(map: &Map<String, Json>) -> Option<(&str, &Json)> {
    let mut entries = map.iter();
    let (name, argument) = entries.next()?;
    let is_intrinsic = entries.next().is_none() && (name == "Ref" || name.starts_with("Fn::"));
    is_intrinsic.then_some((name.as_str(), argument))
}

/// Reads the root template and every nested application's template, depth first.
fn read_tree(root: &Path, read: &ReadFile) -> Result<Vec<Stack>> {
    let mut stacks = Vec::new();
    let place = Place {
        path: String::new(),
        name_prefix: ROOT_NAME_PREFIX.to_string(),
        stack_name: ROOT_STACK_NAME.to_string(),
        parent: None,
        depth: 0,
    };
    read_stack(root, place, read, &mut stacks)?;
    Ok(stacks)
}

fn read_stack(
    file: &Path,
    place: Place,
    read: &ReadFile,
    stacks: &mut Vec<Stack>,
) -> Result<usize> {
    let text = read(file).map_err(|source| TemplateError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let depth = place.depth;
    let stack = Stack::parse(file, &text, place)?;
    let applications = stack.applications()?;
    let index = stacks.len();
    stacks.push(stack);
    for (app_id, child_file) in applications {
        if depth >= MAX_NESTING {
            return Err(invalid(
                file,
                &app_id,
                format!(
                    "applications nest more than {MAX_NESTING} deep: does a template include itself?"
                ),
            ));
        }
        let place = stacks[index].child_place(index, &app_id, depth + 1);
        let child = read_stack(&child_file, place, read, stacks)?;
        stacks[index].children.insert(app_id, child);
    }
    Ok(index)
}

fn invalid(file: &Path, logical_id: &str, message: impl Into<String>) -> TemplateError {
    TemplateError::Invalid {
        file: file.to_path_buf(),
        logical_id: logical_id.to_string(),
        message: message.into(),
    }
}

fn unsupported(file: &Path, logical_id: &str, message: impl Into<String>) -> TemplateError {
    TemplateError::Unsupported {
        file: file.to_path_buf(),
        logical_id: logical_id.to_string(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Values.

/// A scalar as CloudFormation stringifies it.
fn scalar_string(value: &Json) -> Option<String> {
    match value {
        Json::String(text) => Some(text.clone()),
        Json::Number(number) => Some(number.to_string()),
        Json::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A parameter value: scalars stringified, lists comma-joined (as nested stacks receive them).
fn parameter_string(value: &Json) -> Option<String> {
    match value {
        Json::Array(items) => items
            .iter()
            .map(scalar_string)
            .collect::<Option<Vec<_>>>()
            .map(|items| items.join(",")),
        scalar => scalar_string(scalar),
    }
}

/// Numbers often arrive as strings (every parameter is one), so both are accepted.
fn as_u32(value: &Json) -> Option<u32> {
    match value {
        Json::Number(number) => number.as_u64().and_then(|n| u32::try_from(n).ok()),
        Json::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn as_i64(value: &Json) -> Option<i64> {
    match value {
        Json::Number(number) => number.as_i64(),
        Json::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(value: &Json) -> Option<bool> {
    match value {
        Json::Bool(flag) => Some(*flag),
        Json::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Json::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// `Fn::Equals` compares strings: `!Equals [!Ref Count, 3]` holds when Count is "3".
fn loosely_equal(left: &Json, right: &Json) -> bool {
    match (scalar_string(left), scalar_string(right)) {
        (Some(left), Some(right)) => left == right,
        _ => left == right,
    }
}

/// Where evaluation happens: which stack (for Refs and the file in errors) and which logical
/// id (or `Parameters.X`, `Outputs.X`, `Conditions.X`) errors should name.
#[derive(Clone)]
struct Scope<'a> {
    stack: usize,
    file: &'a Path,
    at: String,
}

impl Scope<'_> {
    fn invalid(&self, message: impl Into<String>) -> TemplateError {
        invalid(self.file, &self.at, message)
    }

    fn unsupported(&self, message: impl Into<String>) -> TemplateError {
        unsupported(self.file, &self.at, message)
    }

    fn unknown(&self, target: &str) -> TemplateError {
        TemplateError::UnknownReference {
            file: self.file.to_path_buf(),
            logical_id: self.at.clone(),
            target: target.to_string(),
        }
    }
}

/// Evaluated properties of a resource, or a part of them, with typed getters whose errors say
/// which file, logical id and key are wrong.
struct Props<'s> {
    scope: &'s Scope<'s>,
    /// Where `map` sits in the resource's properties, e.g. `Events.Outbox.Properties`.
    path: String,
    map: Map<String, Json>,
}

impl<'s> Props<'s> {
    fn of(scope: &'s Scope<'s>, path: String, value: &Json) -> Result<Props<'s>> {
        match value {
            Json::Object(map) => Ok(Props {
                scope,
                path,
                map: map.clone(),
            }),
            other => Err(scope.invalid(format!("{path} must be a mapping, got {other}"))),
        }
    }

    fn name(&self, key: &str) -> String {
        match self.path.as_str() {
            "" => key.to_string(),
            path => format!("{path}.{key}"),
        }
    }

    fn wrong(&self, key: &str, expected: &str, got: &Json) -> TemplateError {
        self.scope
            .invalid(format!("{} must be {expected}, got {got}", self.name(key)))
    }

    fn required(&self, key: &str) -> TemplateError {
        self.scope
            .invalid(format!("{} is required", self.name(key)))
    }

    fn get(&self, key: &str) -> Option<&Json> {
        self.map.get(key)
    }

    fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn typed<T>(
        &self,
        key: &str,
        expected: &str,
        convert: fn(&Json) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(value) => convert(value)
                .map(Some)
                .ok_or_else(|| self.wrong(key, expected, value)),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>> {
        self.typed(key, "a string", scalar_string)
    }

    fn required_string(&self, key: &str) -> Result<String> {
        self.string(key)?.ok_or_else(|| self.required(key))
    }

    fn u32(&self, key: &str) -> Result<Option<u32>> {
        self.typed(key, "a non-negative integer", as_u32)
    }

    fn i64(&self, key: &str) -> Result<Option<i64>> {
        self.typed(key, "an integer", as_i64)
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "true or false", as_bool)
    }

    fn object(&self, key: &str) -> Result<Option<Props<'s>>> {
        self.map
            .get(key)
            .map(|value| Props::of(self.scope, self.name(key), value))
            .transpose()
    }

    /// A list; absent is empty.
    fn list(&self, key: &str) -> Result<&[Json]> {
        match self.map.get(key) {
            None => Ok(&[]),
            Some(Json::Array(items)) => Ok(items),
            Some(other) => Err(self.wrong(key, "a list", other)),
        }
    }

    fn objects(&self, key: &str) -> Result<Vec<Props<'s>>> {
        let name = self.name(key);
        self.list(key)?
            .iter()
            .enumerate()
            .map(|(index, item)| Props::of(self.scope, format!("{name}[{index}]"), item))
            .collect()
    }

    fn strings(&self, key: &str) -> Result<Vec<String>> {
        self.list(key)?
            .iter()
            .map(|item| {
                scalar_string(item).ok_or_else(|| self.wrong(key, "a list of strings", item))
            })
            .collect()
    }
}

/// A JSON document given as a string or (leniently) already as an object: event patterns,
/// filter patterns and redrive policies.
fn json_document(props: &Props, key: &str) -> Result<Option<Json>> {
    match props.get(key) {
        None => Ok(None),
        Some(Json::String(text)) => serde_json::from_str(text).map(Some).map_err(|error| {
            props
                .scope
                .invalid(format!("{} is not valid JSON: {error}", props.name(key)))
        }),
        Some(object @ Json::Object(_)) => Ok(Some(object.clone())),
        Some(other) => Err(props.wrong(key, "a JSON string or a mapping", other)),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

/// Evaluates intrinsic functions over the tree of stacks, lazily and with memoised parameters.
struct Loader<'o> {
    options: &'o LoadOptions,
    stacks: Vec<Stack>,
    parameter_values: RefCell<HashMap<(usize, String), Json>>,
    /// What is being evaluated right now (`catalog/ProductsTable`, `catalog/Parameters.Stage`),
    /// to report a circular reference instead of recursing forever.
    active: RefCell<Vec<String>>,
}

/// The options of an event source mapping, in `AWS::Lambda::EventSourceMapping`'s names (which
/// SAM's `Events` properties share).
const MAPPING_KEYS: &[&str] = &[
    "Enabled",
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "StartingPosition",
    "FunctionResponseTypes",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "FilterCriteria",
    "DestinationConfig",
    "ScalingConfig",
];

impl<'o> Loader<'o> {
    fn new(options: &'o LoadOptions, stacks: Vec<Stack>) -> Self {
        Loader {
            options,
            stacks,
            parameter_values: RefCell::new(HashMap::new()),
            active: RefCell::new(Vec::new()),
        }
    }

    fn scope(&self, stack: usize, at: impl Into<String>) -> Scope<'_> {
        Scope {
            stack,
            file: &self.stacks[stack].file,
            at: at.into(),
        }
    }

    /// `catalog/ProductsTable`, or `ProductsTable` in the root template.
    fn qualified(&self, stack: usize, id: &str) -> String {
        match self.stacks[stack].path.as_str() {
            "" => id.to_string(),
            path => format!("{path}/{id}"),
        }
    }

    /// The id of an API Gateway sub-resource: `auth-JwtAuthorizer`, `integ-catalog-CatalogApiIntegration`.
    fn api_resource_id(&self, kind: &str, stack: usize, id: &str) -> String {
        match self.stacks[stack].path.as_str() {
            "" => format!("{kind}-{id}"),
            path => format!("{kind}-{}-{id}", path.replace('/', "-")),
        }
    }

    /// Runs `evaluate` for `scope`, failing if `scope` is already being evaluated further up.
    fn guarded<T>(&self, scope: &Scope, evaluate: impl FnOnce() -> Result<T>) -> Result<T> {
        let key = self.qualified(scope.stack, &scope.at);
        {
            let mut active = self.active.borrow_mut();
            if let Some(start) = active.iter().position(|other| *other == key) {
                let mut chain = active[start..].to_vec();
                chain.push(key);
                return Err(TemplateError::Cycle {
                    file: scope.file.to_path_buf(),
                    logical_id: scope.at.clone(),
                    chain: chain.join(" -> "),
                });
            }
            active.push(key);
        }
        let result = evaluate();
        self.active.borrow_mut().pop();
        result
    }

    /// Evaluates every intrinsic function in `value`. `None` is `AWS::NoValue`: the caller
    /// drops the key or list element that held it.
    fn eval(&self, scope: &Scope, value: &Json) -> Result<Option<Json>> {
        match value {
            Json::Object(map) => {
                if let Some((name, argument)) = intrinsic(map) {
                    return self.intrinsic(scope, name, argument);
                }
                let mut evaluated = Map::new();
                for (key, item) in map {
                    if let Some(item) = self.eval(scope, item)? {
                        evaluated.insert(key.clone(), item);
                    }
                }
                Ok(Some(Json::Object(evaluated)))
            }
            Json::Array(items) => {
                let mut evaluated = Vec::with_capacity(items.len());
                for item in items {
                    evaluated.extend(self.eval(scope, item)?);
                }
                Ok(Some(Json::Array(evaluated)))
            }
            scalar => Ok(Some(scalar.clone())),
        }
    }

    /// `eval` where `AWS::NoValue` makes no sense, such as an intrinsic function's argument.
    fn eval_value(&self, scope: &Scope, value: &Json, what: &str) -> Result<Json> {
        self.eval(scope, value)?
            .ok_or_else(|| scope.invalid(format!("{what} cannot be AWS::NoValue")))
    }

    fn eval_string(&self, scope: &Scope, value: &Json, what: &str) -> Result<String> {
        let value = self.eval_value(scope, value, what)?;
        scalar_string(&value)
            .ok_or_else(|| scope.invalid(format!("{what} must be a string, got {value}")))
    }

    fn eval_list(&self, scope: &Scope, value: &Json, what: &str) -> Result<Vec<Json>> {
        match self.eval_value(scope, value, what)? {
            Json::Array(items) => Ok(items),
            other => Err(scope.invalid(format!("{what} must be a list, got {other}"))),
        }
    }

    fn intrinsic(&self, scope: &Scope, name: &str, argument: &Json) -> Result<Option<Json>> {
        let value = match name {
            "Ref" => return self.reference(scope, argument),
            "Fn::GetAtt" => self.get_att(scope, argument)?,
            "Fn::Sub" => Json::String(self.sub(scope, argument)?),
            "Fn::Join" => self.join(scope, argument)?,
            "Fn::Select" => self.select(scope, argument)?,
            "Fn::Split" => self.split(scope, argument)?,
            "Fn::If" => return self.fn_if(scope, argument),
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" => {
                Json::Bool(self.condition_function(scope, name, argument)?)
            }
            "Fn::FindInMap" => self.find_in_map(scope, argument)?,
            // Any AZ list works locally; three is what us-east-1 accounts usually see.
            "Fn::GetAZs" => Json::Array(
                ["a", "b", "c"]
                    .iter()
                    .map(|zone| Json::String(format!("{REGION}{zone}")))
                    .collect(),
            ),
            "Fn::ImportValue" => {
                return Err(scope.unsupported(
                    "Fn::ImportValue: there are no other stacks' exports locally; pass the value in as a parameter",
                ));
            }
            other => return Err(scope.unsupported(format!("the intrinsic function {other}"))),
        };
        Ok(Some(value))
    }

    /// The arguments of a function that takes exactly `N` of them.
    fn arguments<'j, const N: usize>(
        scope: &Scope,
        name: &str,
        argument: &'j Json,
    ) -> Result<&'j [Json; N]> {
        argument
            .as_array()
            .and_then(|items| <&[Json; N]>::try_from(items.as_slice()).ok())
            .ok_or_else(|| {
                scope.invalid(format!(
                    "{name} takes a list of {N} arguments, got {argument}"
                ))
            })
    }

    fn reference(&self, scope: &Scope, argument: &Json) -> Result<Option<Json>> {
        match argument {
            Json::String(name) => self.ref_name(scope, name),
            other => Err(scope.invalid(format!("Ref takes a name, got {other}"))),
        }
    }

    /// What `Ref name` is in `scope`'s stack: a pseudo parameter, a parameter or a resource.
    fn ref_name(&self, scope: &Scope, name: &str) -> Result<Option<Json>> {
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        if let Some(value) = self.pseudo_parameter(scope.stack, name) {
            return Ok(Some(value));
        }
        if let Some(value) = self.parameter(scope.stack, name)? {
            return Ok(Some(value));
        }
        self.attribute(scope, name, None).map(Some)
    }

    fn pseudo_parameter(&self, stack: usize, name: &str) -> Option<Json> {
        let stack_name = &self.stacks[stack].stack_name;
        let value = match name {
            "AWS::Region" => REGION.to_string(),
            "AWS::AccountId" => ACCOUNT_ID.to_string(),
            "AWS::Partition" => "aws".to_string(),
            "AWS::URLSuffix" => "amazonaws.com".to_string(),
            "AWS::StackName" => stack_name.clone(),
            "AWS::StackId" => {
                format!("arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{stack_name}/local")
            }
            "AWS::NotificationARNs" => return Some(Json::Array(Vec::new())),
            _ => return None,
        };
        Some(Json::String(value))
    }

    fn get_att(&self, scope: &Scope, argument: &Json) -> Result<Json> {
        let (id, attribute) = match argument {
            Json::String(text) => match text.split_once('.') {
                Some((id, attribute)) => (id.to_string(), attribute.to_string()),
                None => {
                    return Err(
                        scope.invalid(format!("Fn::GetAtt takes Resource.Attribute, got {text:?}"))
                    );
                }
            },
            Json::Array(parts) => match parts.as_slice() {
                [id, attribute] => (
                    self.eval_string(scope, id, "Fn::GetAtt's resource")?,
                    self.eval_string(scope, attribute, "Fn::GetAtt's attribute")?,
                ),
                _ => {
                    return Err(scope.invalid(format!(
                        "Fn::GetAtt takes [Resource, Attribute], got {argument}"
                    )));
                }
            },
            other => {
                return Err(
                    scope.invalid(format!("Fn::GetAtt takes Resource.Attribute, got {other}"))
                );
            }
        };
        self.attribute(scope, &id, Some(&attribute))
    }

    fn sub(&self, scope: &Scope, argument: &Json) -> Result<String> {
        let (text, variables) = match argument {
            Json::String(text) => (text.as_str(), Map::new()),
            Json::Array(items) => match items.as_slice() {
                [Json::String(text), variables] => {
                    match self.eval_value(scope, variables, "Fn::Sub's variables")? {
                        Json::Object(variables) => (text.as_str(), variables),
                        other => {
                            return Err(scope.invalid(format!(
                                "Fn::Sub's variables must be a mapping, got {other}"
                            )));
                        }
                    }
                }
                _ => {
                    return Err(scope.invalid(format!(
                        "Fn::Sub takes a string or [string, variables], got {argument}"
                    )));
                }
            },
            other => return Err(scope.invalid(format!("Fn::Sub takes a string, got {other}"))),
        };
        let mut output = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            output.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| scope.invalid(format!("Fn::Sub: unclosed ${{ in {text:?}")))?;
            let name = &after[..end];
            match name.strip_prefix('!') {
                // `${!Literal}` is the escape for a literal `${Literal}`.
                Some(literal) => output.push_str(&format!("${{{literal}}}")),
                None => output.push_str(&self.sub_variable(scope, name.trim(), &variables)?),
            }
            rest = &after[end + 1..];
        }
        output.push_str(rest);
        Ok(output)
    }

    /// `${Name}` in Fn::Sub: a variable of the list form, `Resource.Attribute`, or a Ref.
    fn sub_variable(
        &self,
        scope: &Scope,
        name: &str,
        variables: &Map<String, Json>,
    ) -> Result<String> {
        let value = match (variables.get(name), name.split_once('.')) {
            (Some(value), _) => value.clone(),
            (None, Some((id, attribute))) if !name.starts_with("AWS::") => {
                self.attribute(scope, id, Some(attribute))?
            }
            (None, _) => self
                .ref_name(scope, name)?
                .ok_or_else(|| scope.invalid("Fn::Sub cannot substitute ${AWS::NoValue}"))?,
        };
        scalar_string(&value).ok_or_else(|| {
            scope.invalid(format!("Fn::Sub: ${{{name}}} is not a string but {value}"))
        })
    }

    fn join(&self, scope: &Scope, argument: &Json) -> Result<Json> {
        let [delimiter, list] = Self::arguments::<2>(scope, "Fn::Join", argument)?;
        let delimiter = self.eval_string(scope, delimiter, "Fn::Join's delimiter")?;
        let parts = self
            .eval_list(scope, list, "Fn::Join's list")?
            .iter()
            .map(|part| {
                scalar_string(part)
                    .ok_or_else(|| scope.invalid(format!("Fn::Join: {part} is not a string")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Json::String(parts.join(&delimiter)))
    }

    fn select(&self, scope: &Scope, argument: &Json) -> Result<Json> {
        let [index, list] = Self::arguments::<2>(scope, "Fn::Select", argument)?;
        let index = self.eval_value(scope, index, "Fn::Select's index")?;
        let position = as_u32(&index).ok_or_else(|| {
            scope.invalid(format!(
                "Fn::Select's index must be a non-negative integer, got {index}"
            ))
        })?;
        let items = self.eval_list(scope, list, "Fn::Select's list")?;
        let count = items.len();
        items.into_iter().nth(position as usize).ok_or_else(|| {
            scope.invalid(format!(
                "Fn::Select: index {position} is out of range for a list of {count}"
            ))
        })
    }

    fn split(&self, scope: &Scope, argument: &Json) -> Result<Json> {
        let [delimiter, source] = Self::arguments::<2>(scope, "Fn::Split", argument)?;
        let delimiter = self.eval_string(scope, delimiter, "Fn::Split's delimiter")?;
        if delimiter.is_empty() {
            return Err(scope.invalid("Fn::Split's delimiter cannot be empty"));
        }
        let source = self.eval_string(scope, source, "Fn::Split's string")?;
        Ok(Json::Array(
            source
                .split(&delimiter)
                .map(|part| Json::String(part.to_string()))
                .collect(),
        ))
    }

    fn fn_if(&self, scope: &Scope, argument: &Json) -> Result<Option<Json>> {
        let [condition, when_true, when_false] = Self::arguments::<3>(scope, "Fn::If", argument)?;
        let Json::String(condition) = condition else {
            return Err(scope.invalid(format!(
                "Fn::If's first argument must be a condition name, got {condition}"
            )));
        };
        match self.condition(scope, condition)? {
            true => self.eval(scope, when_true),
            false => self.eval(scope, when_false),
        }
    }

    fn find_in_map(&self, scope: &Scope, argument: &Json) -> Result<Json> {
        let [map, top, second] = Self::arguments::<3>(scope, "Fn::FindInMap", argument)?;
        let map = self.eval_string(scope, map, "Fn::FindInMap's map name")?;
        let top = self.eval_string(scope, top, "Fn::FindInMap's top-level key")?;
        let second = self.eval_string(scope, second, "Fn::FindInMap's second-level key")?;
        self.stacks[scope.stack]
            .mappings
            .get(&map)
            .and_then(|entries| entries.get(&top))
            .and_then(|entries| entries.get(&second))
            .cloned()
            .ok_or_else(|| {
                scope.invalid(format!(
                    "Fn::FindInMap: Mappings has no {map}.{top}.{second}"
                ))
            })
    }

    /// Fn::Equals, Fn::Not, Fn::And and Fn::Or.
    fn condition_function(&self, scope: &Scope, name: &str, argument: &Json) -> Result<bool> {
        match name {
            "Fn::Equals" => {
                let [left, right] = Self::arguments::<2>(scope, name, argument)?;
                let left = self.eval_value(scope, left, "Fn::Equals' argument")?;
                let right = self.eval_value(scope, right, "Fn::Equals' argument")?;
                Ok(loosely_equal(&left, &right))
            }
            "Fn::Not" => {
                let [condition] = Self::arguments::<1>(scope, name, argument)?;
                Ok(!self.eval_condition(scope, condition)?)
            }
            _ => {
                let conditions = argument
                    .as_array()
                    .filter(|conditions| !conditions.is_empty())
                    .ok_or_else(|| {
                        scope.invalid(format!("{name} takes a list of conditions, got {argument}"))
                    })?;
                let all = name == "Fn::And";
                for condition in conditions {
                    // And stops at the first false, Or at the first true.
                    if self.eval_condition(scope, condition)? != all {
                        return Ok(!all);
                    }
                }
                Ok(all)
            }
        }
    }

    /// A condition expression: a condition function or `{"Condition": name}`.
    fn eval_condition(&self, scope: &Scope, value: &Json) -> Result<bool> {
        if let Json::Object(map) = value
            && map.len() == 1
            && let Some(Json::String(name)) = map.get("Condition")
        {
            return self.condition(scope, name);
        }
        let value = self.eval_value(scope, value, "a condition")?;
        as_bool(&value)
            .ok_or_else(|| scope.invalid(format!("a condition must be true or false, got {value}")))
    }

    /// The named condition of `scope`'s stack.
    fn condition(&self, scope: &Scope, name: &str) -> Result<bool> {
        let Some(definition) = self.stacks[scope.stack].conditions.get(name) else {
            return Err(scope.invalid(format!("there is no condition {name} in Conditions")));
        };
        let inner = self.scope(scope.stack, format!("Conditions.{name}"));
        self.guarded(&inner, || self.eval_condition(&inner, definition))
    }

    fn is_created(&self, stack: usize, resource: &Resource) -> Result<bool> {
        match &resource.condition {
            None => Ok(true),
            Some(condition) => self.condition(&self.scope(stack, resource.id.clone()), condition),
        }
    }

    // --- Parameters ---------------------------------------------------------------------------

    /// Root overrides and Application parameters must name declared parameters, as in
    /// CloudFormation: a typo would otherwise silently fall back to the default.
    fn check_parameters(&self) -> Result<()> {
        let root = &self.stacks[0];
        for name in self.options.parameters.keys() {
            if !root.parameters.contains_key(name) {
                return Err(invalid(
                    &root.file,
                    "Parameters",
                    format!("a value is given for {name}, which the template does not declare"),
                ));
            }
        }
        for (index, stack) in self.stacks.iter().enumerate() {
            let Some((parent, app_id)) = &stack.parent else {
                continue;
            };
            let parent = &self.stacks[*parent];
            let passed = match parent
                .resource(app_id)
                .and_then(|app| app.properties.get("Parameters"))
            {
                None => continue,
                Some(Json::Object(passed)) => passed,
                Some(_) => {
                    return Err(invalid(
                        &parent.file,
                        app_id,
                        "Parameters must be a mapping",
                    ));
                }
            };
            if let Some(name) = passed
                .keys()
                .find(|name| !self.stacks[index].parameters.contains_key(*name))
            {
                return Err(invalid(
                    &parent.file,
                    app_id,
                    format!(
                        "passes the parameter {name}, which {} does not declare",
                        stack.file.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The value of a declared parameter of `stack`; `None` when it declares no such parameter.
    fn parameter(&self, stack: usize, name: &str) -> Result<Option<Json>> {
        let Some(declaration) = self.stacks[stack].parameters.get(name) else {
            return Ok(None);
        };
        let key = (stack, name.to_string());
        if let Some(value) = self.parameter_values.borrow().get(&key) {
            return Ok(Some(value.clone()));
        }
        let value = self.parameter_value(stack, name, declaration)?;
        self.parameter_values
            .borrow_mut()
            .insert(key, value.clone());
        Ok(Some(value))
    }

    fn parameter_value(&self, stack: usize, name: &str, declaration: &Json) -> Result<Json> {
        let scope = self.scope(stack, format!("Parameters.{name}"));
        let declared = Props::of(&scope, scope.at.clone(), declaration)?;
        let given = match &self.stacks[stack].parent {
            None => self.options.parameters.get(name).cloned(),
            Some((parent, app_id)) => self.passed_parameter(&scope, *parent, app_id, name)?,
        };
        let default = match declared.get("Default") {
            None => None,
            Some(value) => Some(
                parameter_string(value)
                    .ok_or_else(|| declared.wrong("Default", "a string", value))?,
            ),
        };
        let Some(value) = given.or(default) else {
            return Err(TemplateError::MissingParameter {
                file: scope.file.to_path_buf(),
                name: name.to_string(),
            });
        };
        let kind = declared.string("Type")?.unwrap_or_default();
        let is_list = kind == "CommaDelimitedList" || kind.starts_with("List<");
        let values: Vec<String> = match is_list {
            // CloudFormation trims the members of a comma-delimited list.
            true => value
                .split(',')
                .map(|item| item.trim().to_string())
                .collect(),
            false => vec![value.clone()],
        };
        let allowed = declared.strings("AllowedValues")?;
        if let Some(bad) = values
            .iter()
            .find(|value| !allowed.is_empty() && !allowed.contains(value))
        {
            return Err(scope.invalid(format!(
                "{bad:?} is not one of the AllowedValues {allowed:?}"
            )));
        }
        Ok(match is_list {
            true => Json::Array(values.into_iter().map(Json::String).collect()),
            false => Json::String(value),
        })
    }

    /// What the parent's Application passes for a nested parameter, evaluated in the parent.
    fn passed_parameter(
        &self,
        scope: &Scope,
        parent: usize,
        app_id: &str,
        name: &str,
    ) -> Result<Option<String>> {
        let passed = self.stacks[parent]
            .resource(app_id)
            .and_then(|app| app.properties.get("Parameters"))
            .and_then(|parameters| parameters.get(name));
        let Some(passed) = passed else {
            return Ok(None);
        };
        let parent_scope = self.scope(parent, app_id);
        let what = format!("Parameters.{name}");
        let value = self.guarded(scope, || self.eval_value(&parent_scope, passed, &what))?;
        parameter_string(&value).map(Some).ok_or_else(|| {
            parent_scope.invalid(format!(
                "{what} must be a string or a list of strings, got {value}"
            ))
        })
    }

    // --- Resources ----------------------------------------------------------------------------

    /// `Ref` (attribute `None`) or `Fn::GetAtt` of the resource `id` in `scope`'s stack.
    fn attribute(&self, scope: &Scope, id: &str, attribute: Option<&str>) -> Result<Json> {
        let stack = scope.stack;
        let Some(resource) = self.stacks[stack].resource(id) else {
            let target = match attribute {
                None => id.to_string(),
                Some(attribute) => format!("{id}.{attribute}"),
            };
            return Err(scope.unknown(&target));
        };
        if !self.is_created(stack, resource)? {
            return Err(scope.invalid(format!(
                "refers to {id}, which is not created: its condition {} is false",
                resource.condition.as_deref().unwrap_or_default()
            )));
        }
        self.known_attribute(stack, resource, attribute)?.ok_or_else(|| {
            let attribute = attribute.unwrap_or("Ref");
            match EMULATED.contains(&resource.kind.as_str()) {
                true => scope.invalid(format!("{id} ({}) has no attribute {attribute}", resource.kind)),
                false => scope.unsupported(format!(
                    "{id} ({}) is not emulated, so only its Ref and Arn exist locally, not {attribute}",
                    resource.kind
                )),
            }
        })
    }

    /// The attribute's value, or `None` when the type has no such attribute here.
    fn known_attribute(
        &self,
        stack: usize,
        resource: &Resource,
        attribute: Option<&str>,
    ) -> Result<Option<Json>> {
        let string = |value: String| Some(Json::String(value));
        Ok(match resource.kind.as_str() {
            TABLE => {
                let name = self.physical_name(stack, resource)?;
                match attribute {
                    None => string(name),
                    Some("Arn") => string(table_arn(&name)),
                    Some("StreamArn") => string(stream_arn(&table_arn(&name))),
                    _ => None,
                }
            }
            QUEUE => {
                let name = self.physical_name(stack, resource)?;
                match attribute {
                    None | Some("QueueUrl") => string(self.queue_url(&name)),
                    Some("Arn") => string(queue_arn(&name)),
                    Some("QueueName") => string(name),
                    _ => None,
                }
            }
            BUS => {
                let name = self.physical_name(stack, resource)?;
                match attribute {
                    None | Some("Name") => string(name),
                    Some("Arn") => string(bus_arn(&name)),
                    _ => None,
                }
            }
            RULE => match attribute {
                None => string(self.physical_name(stack, resource)?),
                Some("Arn") => string(rule_arn(
                    &self.rule_bus(stack, resource)?,
                    &self.physical_name(stack, resource)?,
                )),
                _ => None,
            },
            FUNCTION => {
                let name = self.physical_name(stack, resource)?;
                match attribute {
                    None => string(name),
                    Some("Arn") => string(function_arn(&name)),
                    _ => None,
                }
            }
            USER_POOL => {
                let id = user_pool_id();
                let provider = format!("cognito-idp.{REGION}.amazonaws.com/{id}");
                match attribute {
                    None | Some("UserPoolId") => string(id),
                    Some("Arn") => string(format!(
                        "arn:aws:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/{id}"
                    )),
                    Some("ProviderName") => string(provider),
                    // As CloudFormation returns it: the issuer URL, scheme included.
                    Some("ProviderURL") => string(format!("https://{provider}")),
                    _ => None,
                }
            }
            USER_POOL_CLIENT => match attribute {
                None | Some("ClientId") => string(USER_POOL_CLIENT_ID.to_string()),
                _ => None,
            },
            HTTP_API => match attribute {
                None | Some("ApiId") => string(HTTP_API_ID.to_string()),
                Some("ApiEndpoint") => string(self.options.api_url.clone()),
                _ => None,
            },
            AUTHORIZER => match attribute {
                None | Some("AuthorizerId") => {
                    string(self.api_resource_id("auth", stack, &resource.id))
                }
                _ => None,
            },
            INTEGRATION => match attribute {
                None => string(self.api_resource_id("integ", stack, &resource.id)),
                _ => None,
            },
            APPLICATION => match attribute.map(|attribute| attribute.strip_prefix("Outputs.")) {
                None => string(generic_arn(&resource.kind, &resource.id)),
                Some(Some(output)) => self.nested_output(stack, resource, output)?,
                Some(None) => None,
            },
            _ => match attribute {
                None => string(resource.id.clone()),
                Some("Arn") => string(generic_arn(&resource.kind, &resource.id)),
                _ => None,
            },
        })
    }

    /// An output of the nested application `app`; `None` when it declares no such output.
    fn nested_output(&self, stack: usize, app: &Resource, name: &str) -> Result<Option<Json>> {
        let child = self.stacks[stack]
            .children
            .get(&app.id)
            .copied()
            .ok_or_else(|| {
                invalid(
                    &self.stacks[stack].file,
                    &app.id,
                    "the application's template was not loaded",
                )
            })?;
        match self.stacks[child].outputs.contains_key(name) {
            true => self.output(child, name).map(Some),
            false => Ok(None),
        }
    }

    fn output(&self, stack: usize, name: &str) -> Result<Json> {
        let scope = self.scope(stack, format!("Outputs.{name}"));
        let Some(output) = self.stacks[stack].outputs.get(name) else {
            return Err(scope.invalid("no such output"));
        };
        let output = Props::of(&scope, scope.at.clone(), output)?;
        if let Some(condition) = output.string("Condition")?
            && !self.condition(&scope, &condition)?
        {
            return Err(scope.invalid(format!(
                "the output is not created: its condition {condition} is false"
            )));
        }
        let value = output
            .map
            .get("Value")
            .ok_or_else(|| output.required("Value"))?;
        self.guarded(&scope, || self.eval_value(&scope, value, "Value"))
    }

    /// The resource's name in AWS (and moto): the explicit name property, else `<prefix>-<LogicalId>`.
    fn physical_name(&self, stack: usize, resource: &Resource) -> Result<String> {
        let scope = self.scope(stack, resource.id.clone());
        self.guarded(&scope, || {
            let property = match resource.kind.as_str() {
                TABLE => Some("TableName"),
                QUEUE => Some("QueueName"),
                BUS | RULE => Some("Name"),
                FUNCTION => Some("FunctionName"),
                _ => None,
            };
            let explicit = match property {
                Some(property) => self
                    .property(&scope, resource, &[property])?
                    .string(property)?,
                None => None,
            };
            let generated = format!("{}-{}", self.stacks[stack].name_prefix, resource.id);
            match resource.kind.as_str() {
                QUEUE => self.queue_name(&scope, resource, explicit, generated),
                _ => Ok(explicit.unwrap_or(generated)),
            }
        })
    }

    /// FIFO queues' names end in `.fifo`, and only theirs; a generated name gets the suffix.
    fn queue_name(
        &self,
        scope: &Scope,
        queue: &Resource,
        explicit: Option<String>,
        generated: String,
    ) -> Result<String> {
        let fifo = self
            .property(scope, queue, &["FifoQueue"])?
            .bool("FifoQueue")?
            .unwrap_or(false);
        match explicit {
            Some(name) if fifo != name.ends_with(".fifo") => Err(scope.invalid(format!(
                "QueueName {name}: a FIFO queue's name must end in .fifo, and only a FIFO queue's may"
            ))),
            Some(name) => Ok(name),
            None if fifo => Ok(format!("{generated}.fifo")),
            None => Ok(generated),
        }
    }

    fn queue_url(&self, name: &str) -> String {
        format!(
            "{}/{ACCOUNT_ID}/{name}",
            self.options.endpoint_url.trim_end_matches('/')
        )
    }

    /// The name of the bus a rule is on.
    fn rule_bus(&self, stack: usize, rule: &Resource) -> Result<String> {
        let scope = self.scope(stack, format!("{}.EventBusName", rule.id));
        self.guarded(&scope, || {
            let bus = self
                .property(&scope, rule, &["EventBusName"])?
                .string("EventBusName")?;
            Ok(bus.map_or_else(|| "default".to_string(), |bus| bus_name_of(&bus)))
        })
    }

    /// Evaluates only the given top-level properties of `resource`: the runner never needs
    /// the rest (IAM policies, alarms' dimensions, ...), and what it does not evaluate cannot
    /// fail on something only AWS knows.
    fn property<'s>(
        &self,
        scope: &'s Scope<'s>,
        resource: &Resource,
        keys: &[&str],
    ) -> Result<Props<'s>> {
        let mut map = Map::new();
        for key in keys {
            if let Some(raw) = resource.properties.get(*key)
                && let Some(value) = self.eval(scope, raw)?
            {
                map.insert(key.to_string(), value);
            }
        }
        Ok(Props {
            scope,
            path: String::new(),
            map,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The topology.

/// A created resource and where it sits.
struct Placed<'a> {
    stack: usize,
    resource: &'a Resource,
    /// `catalog/ProductsTable`.
    id: String,
}

/// What routes point at, gathered over the whole tree first: a route names an authorizer and
/// an integration by id, and the authorizer usually lives in another template.
#[derive(Default)]
struct Links<'a> {
    integrations: HashMap<String, &'a Placed<'a>>,
    authorizers: HashMap<String, &'a Placed<'a>>,
    api: Option<String>,
}

/// A function's event source before its source is looked up: a SAM `Events` entry or a raw
/// `AWS::Lambda::EventSourceMapping`, both with the latter's property names.
struct MappingSource<'s> {
    logical_id: String,
    function: String,
    source_arn: String,
    props: Props<'s>,
}

impl Loader<'_> {
    fn topology(&self) -> Result<Topology> {
        let mut placed = Vec::new();
        self.place(0, &mut placed)?;
        let mut topology = Topology::default();
        let mut links = Links::default();
        for resource in &placed {
            self.declare(resource, &mut topology, &mut links)?;
        }
        for resource in &placed {
            self.connect(resource, &mut topology, &links)?;
        }
        Ok(topology)
    }

    /// Every created resource of `stack` and its nested applications, in declaration order.
    fn place<'a>(&'a self, stack: usize, placed: &mut Vec<Placed<'a>>) -> Result<()> {
        for resource in &self.stacks[stack].resources {
            if !self.is_created(stack, resource)? {
                continue;
            }
            placed.push(Placed {
                stack,
                resource,
                id: self.qualified(stack, &resource.id),
            });
            if resource.kind == APPLICATION {
                let child = self.stacks[stack]
                    .children
                    .get(&resource.id)
                    .copied()
                    .ok_or_else(|| {
                        invalid(
                            &self.stacks[stack].file,
                            &resource.id,
                            "the application's template was not loaded",
                        )
                    })?;
                self.place(child, placed)?;
            }
        }
        Ok(())
    }

    /// First pass: what other resources point at.
    fn declare<'a>(
        &self,
        placed: &'a Placed<'a>,
        topology: &mut Topology,
        links: &mut Links<'a>,
    ) -> Result<()> {
        let scope = self.scope(placed.stack, placed.resource.id.clone());
        let stack = placed.stack;
        let id = &placed.resource.id;
        match placed.resource.kind.as_str() {
            TABLE => {
                let table = self.table(&scope, placed)?;
                unique_name(
                    &scope,
                    "table",
                    &table.name,
                    topology.tables.iter().map(|t| (&t.name, &t.logical_id)),
                )?;
                topology.tables.push(table);
            }
            QUEUE => {
                let queue = self.queue(&scope, placed)?;
                unique_name(
                    &scope,
                    "queue",
                    &queue.name,
                    topology.queues.iter().map(|q| (&q.name, &q.logical_id)),
                )?;
                topology.queues.push(queue);
            }
            BUS => {
                let name = self.physical_name(stack, placed.resource)?;
                unique_name(
                    &scope,
                    "event bus",
                    &name,
                    topology.buses.iter().map(|b| (&b.name, &b.logical_id)),
                )?;
                topology.buses.push(BusSpec {
                    logical_id: placed.id.clone(),
                    arn: bus_arn(&name),
                    name,
                });
            }
            FUNCTION => {
                let function = self.function(&scope, placed)?;
                unique_name(
                    &scope,
                    "function",
                    &function.name,
                    topology.functions.iter().map(|f| (&f.name, &f.logical_id)),
                )?;
                topology.functions.push(function);
            }
            HTTP_API => {
                // Every API would be served at the one local base URL under the one id.
                if let Some(other) = links.api.replace(placed.id.clone()) {
                    return Err(scope.unsupported(format!(
                        "a second HTTP API (the first is {other}): one API is served locally"
                    )));
                }
            }
            AUTHORIZER => {
                links
                    .authorizers
                    .insert(self.api_resource_id("auth", stack, id), placed);
            }
            INTEGRATION => {
                links
                    .integrations
                    .insert(self.api_resource_id("integ", stack, id), placed);
            }
            RULE | ROUTE | EVENT_SOURCE_MAPPING | APPLICATION => {}
            kind => topology
                .not_emulated
                .push(format!("{} ({kind})", placed.id)),
        }
        Ok(())
    }

    /// Second pass: what points at the resources of the first.
    fn connect(&self, placed: &Placed, topology: &mut Topology, links: &Links) -> Result<()> {
        let scope = self.scope(placed.stack, placed.resource.id.clone());
        match placed.resource.kind.as_str() {
            QUEUE => check_dead_letter_queue(&scope, placed, topology),
            RULE => {
                if let Some(rule) = self.rule(&scope, placed, topology)? {
                    topology.rules.push(rule);
                }
                Ok(())
            }
            ROUTE => {
                let route = self.route(&scope, placed, topology, links)?;
                if topology
                    .routes
                    .iter()
                    .any(|other| other.route_key == route.route_key)
                {
                    return Err(
                        scope.invalid(format!("RouteKey {} is declared twice", route.route_key))
                    );
                }
                topology.routes.push(route);
                Ok(())
            }
            FUNCTION => {
                for source in self.function_events(&scope, placed)? {
                    self.mapping(source, topology)?;
                }
                Ok(())
            }
            EVENT_SOURCE_MAPPING => {
                let source = self.raw_mapping(&scope, placed, topology)?;
                self.mapping(source, topology)
            }
            _ => Ok(()),
        }
    }

    fn table(&self, scope: &Scope, placed: &Placed) -> Result<TableSpec> {
        if placed
            .resource
            .properties
            .contains_key("LocalSecondaryIndexes")
        {
            return Err(
                scope.unsupported("LocalSecondaryIndexes: the topology has no field for them yet")
            );
        }
        let props = self.property(
            scope,
            placed.resource,
            &[
                "AttributeDefinitions",
                "KeySchema",
                "GlobalSecondaryIndexes",
                "StreamSpecification",
                "TimeToLiveSpecification",
            ],
        )?;
        let mut types = BTreeMap::new();
        for definition in props.objects("AttributeDefinitions")? {
            let kind = definition.required_string("AttributeType")?;
            if !["S", "N", "B"].contains(&kind.as_str()) {
                return Err(definition.wrong("AttributeType", "S, N or B", &Json::String(kind)));
            }
            types.insert(definition.required_string("AttributeName")?, kind);
        }
        let key = key_spec(&props, "KeySchema", &types)?;
        let mut global_indexes = Vec::new();
        for index in props.objects("GlobalSecondaryIndexes")? {
            global_indexes.push(index_spec(&index, &types)?);
        }
        let stream_view = match props.object("StreamSpecification")? {
            Some(stream) => Some(stream.required_string("StreamViewType")?),
            None => None,
        };
        let mut ttl_attribute = None;
        if let Some(ttl) = props.object("TimeToLiveSpecification")?
            && ttl.bool("Enabled")?.unwrap_or(false)
        {
            ttl_attribute = Some(ttl.required_string("AttributeName")?);
        }
        let name = self.physical_name(placed.stack, placed.resource)?;
        Ok(TableSpec {
            logical_id: placed.id.clone(),
            arn: table_arn(&name),
            name,
            key,
            global_indexes,
            stream_view,
            ttl_attribute,
        })
    }

    fn queue(&self, scope: &Scope, placed: &Placed) -> Result<QueueSpec> {
        let props = self.property(
            scope,
            placed.resource,
            &[
                "VisibilityTimeout",
                "MessageRetentionPeriod",
                "FifoQueue",
                "RedrivePolicy",
            ],
        )?;
        let redrive = match json_document(&props, "RedrivePolicy")? {
            None => None,
            Some(policy) => {
                let policy = Props::of(scope, props.name("RedrivePolicy"), &policy)?;
                Some(Redrive {
                    dead_letter_arn: policy.required_string("deadLetterTargetArn")?,
                    max_receive_count: policy
                        .u32("maxReceiveCount")?
                        .ok_or_else(|| policy.required("maxReceiveCount"))?,
                })
            }
        };
        let name = self.physical_name(placed.stack, placed.resource)?;
        Ok(QueueSpec {
            logical_id: placed.id.clone(),
            url: self.queue_url(&name),
            arn: queue_arn(&name),
            name,
            visibility_timeout_seconds: props.u32("VisibilityTimeout")?.unwrap_or(30),
            message_retention_seconds: props.u32("MessageRetentionPeriod")?,
            fifo: props.bool("FifoQueue")?.unwrap_or(false),
            redrive,
        })
    }

    fn function(&self, scope: &Scope, placed: &Placed) -> Result<FunctionSpec> {
        let props = self.property(
            scope,
            placed.resource,
            &[
                "Environment",
                "Timeout",
                "MemorySize",
                "ReservedConcurrentExecutions",
            ],
        )?;
        let mut environment = BTreeMap::new();
        if let Some(settings) = props.object("Environment")?
            && let Some(variables) = settings.object("Variables")?
        {
            for (name, value) in &variables.map {
                let value =
                    scalar_string(value).ok_or_else(|| variables.wrong(name, "a string", value))?;
                environment.insert(name.clone(), value);
            }
        }
        Ok(FunctionSpec {
            logical_id: placed.id.clone(),
            name: self.physical_name(placed.stack, placed.resource)?,
            binary: binary(scope, &placed.resource.metadata)?,
            environment,
            timeout_seconds: props.u32("Timeout")?.unwrap_or(3),
            memory_mb: props.u32("MemorySize")?.unwrap_or(128),
            reserved_concurrency: props.u32("ReservedConcurrentExecutions")?,
        })
    }

    /// `None` for a disabled rule: it exists in AWS but matches nothing.
    fn rule(
        &self,
        scope: &Scope,
        placed: &Placed,
        topology: &Topology,
    ) -> Result<Option<RuleSpec>> {
        let props = self.property(
            scope,
            placed.resource,
            &["State", "EventPattern", "ScheduleExpression", "Targets"],
        )?;
        if props.string("State")?.as_deref() == Some("DISABLED") {
            return Ok(None);
        }
        if props.has("ScheduleExpression") {
            return Err(scope.unsupported(
                "scheduled rules (ScheduleExpression) do not fire locally; run the target with `shop-local invoke`",
            ));
        }
        let pattern =
            json_document(&props, "EventPattern")?.ok_or_else(|| props.required("EventPattern"))?;
        let bus_name = self.rule_bus(placed.stack, placed.resource)?;
        if bus_name != "default" && !topology.buses.iter().any(|bus| bus.name == bus_name) {
            return Err(scope.invalid(format!(
                "EventBusName {bus_name} is not a bus the templates declare"
            )));
        }
        let mut targets = Vec::new();
        for target in props.objects("Targets")? {
            // These change what the target receives; ignoring them would deliver other messages
            // locally than in AWS.
            if let Some(key) = ["Input", "InputPath", "InputTransformer", "SqsParameters"]
                .into_iter()
                .find(|key| target.has(key))
            {
                return Err(scope.unsupported(format!(
                    "{}: the topology has no field for it, so targets get the event unchanged",
                    target.name(key)
                )));
            }
            targets.push(RuleTarget {
                id: target.required_string("Id")?,
                arn: target.required_string("Arn")?,
            });
        }
        let name = self.physical_name(placed.stack, placed.resource)?;
        Ok(Some(RuleSpec {
            logical_id: placed.id.clone(),
            name,
            bus_name,
            pattern,
            targets,
        }))
    }

    fn route(
        &self,
        scope: &Scope,
        placed: &Placed,
        topology: &Topology,
        links: &Links,
    ) -> Result<RouteSpec> {
        let props = self.property(
            scope,
            placed.resource,
            &[
                "ApiId",
                "RouteKey",
                "Target",
                "AuthorizationType",
                "AuthorizerId",
                "AuthorizationScopes",
            ],
        )?;
        check_api_id(&props)?;
        if props.has("AuthorizationScopes") {
            return Err(scope.unsupported("AuthorizationScopes: the topology has no field for them, so they would not be checked"));
        }
        let route_key = props.required_string("RouteKey")?;
        let (method, path) = parse_route_key(&route_key).ok_or_else(|| {
            scope.invalid(format!(
                "RouteKey {route_key:?} is not `$default` or `METHOD /path`"
            ))
        })?;
        let target = props.required_string("Target")?;
        let integration = target
            .strip_prefix("integrations/")
            .and_then(|id| links.integrations.get(id))
            .ok_or_else(|| {
                scope.invalid(format!(
                    "Target {target:?} is not `integrations/<id>` of an AWS::ApiGatewayV2::Integration in the templates"
                ))
            })?;
        let function = self.integration_function(integration, topology)?;
        let auth = match props
            .string("AuthorizationType")?
            .as_deref()
            .unwrap_or("NONE")
        {
            "NONE" => RouteAuth::None,
            "JWT" => {
                let authorizer_id = props.required_string("AuthorizerId")?;
                let authorizer = links.authorizers.get(&authorizer_id).ok_or_else(|| {
                    scope.invalid(format!(
                        "AuthorizerId {authorizer_id:?} is not the id of an AWS::ApiGatewayV2::Authorizer in the templates"
                    ))
                })?;
                self.jwt_authorizer(authorizer)?
            }
            other => {
                return Err(scope.unsupported(format!(
                    "AuthorizationType {other}: only NONE and JWT routes are emulated"
                )));
            }
        };
        Ok(RouteSpec {
            route_key,
            method,
            path,
            function,
            auth,
        })
    }

    /// The physical name of the function behind an integration.
    fn integration_function(&self, integration: &Placed, topology: &Topology) -> Result<String> {
        let scope = self.scope(integration.stack, integration.resource.id.clone());
        let props = self.property(
            &scope,
            integration.resource,
            &[
                "ApiId",
                "IntegrationType",
                "IntegrationUri",
                "PayloadFormatVersion",
            ],
        )?;
        check_api_id(&props)?;
        let kind = props.required_string("IntegrationType")?;
        if kind != "AWS_PROXY" {
            return Err(scope.unsupported(format!(
                "IntegrationType {kind}: only AWS_PROXY (Lambda proxy) integrations run locally"
            )));
        }
        let version = props.required_string("PayloadFormatVersion")?;
        if version != "2.0" {
            return Err(scope.unsupported(format!(
                "PayloadFormatVersion {version}: the local API sends 2.0 events only"
            )));
        }
        let uri = props.required_string("IntegrationUri")?;
        let arn = function_arn_in_uri(&uri);
        topology
            .functions
            .iter()
            .find(|function| function_arn(&function.name) == arn)
            .map(|function| function.name.clone())
            .ok_or_else(|| {
                scope.invalid(format!(
                    "IntegrationUri {uri} is not a function the templates declare"
                ))
            })
    }

    fn jwt_authorizer(&self, authorizer: &Placed) -> Result<RouteAuth> {
        let scope = self.scope(authorizer.stack, authorizer.resource.id.clone());
        let props = self.property(
            &scope,
            authorizer.resource,
            &["ApiId", "AuthorizerType", "JwtConfiguration"],
        )?;
        check_api_id(&props)?;
        let kind = props.required_string("AuthorizerType")?;
        if kind != "JWT" {
            return Err(scope.unsupported(format!(
                "AuthorizerType {kind}: only JWT authorizers are emulated"
            )));
        }
        let jwt = props
            .object("JwtConfiguration")?
            .ok_or_else(|| props.required("JwtConfiguration"))?;
        let audience = jwt.strings("Audience")?;
        if audience.is_empty() {
            return Err(jwt.required("Audience"));
        }
        Ok(RouteAuth::Jwt {
            issuer: jwt.required_string("Issuer")?,
            audience,
        })
    }

    /// The function's SAM `Events`. Only `DynamoDB` and `SQS` events are accepted: HTTP routes
    /// must be raw `AWS::ApiGatewayV2::Route` + `Integration` resources, because a SAM `HttpApi`
    /// (or `Api`) event can only attach to an API declared in the same template, and the shop's
    /// one API lives in the root stack while every capability is a nested stack. Other event
    /// types (`Schedule`, `EventBridgeRule`, ...) have no local emulation; bus subscriptions are
    /// `AWS::Events::Rule`s targeting a queue.
    fn function_events<'s>(
        &self,
        scope: &'s Scope<'s>,
        placed: &Placed,
    ) -> Result<Vec<MappingSource<'s>>> {
        let props = self.property(scope, placed.resource, &["Events"])?;
        let Some(events) = props.object("Events")? else {
            return Ok(Vec::new());
        };
        let function = self.physical_name(placed.stack, placed.resource)?;
        let mut sources = Vec::new();
        for (name, event) in &events.map {
            let event = Props::of(scope, events.name(name), event)?;
            let kind = event.required_string("Type")?;
            let source_key = match kind.as_str() {
                "DynamoDB" => "Stream",
                "SQS" => "Queue",
                _ => {
                    return Err(scope.unsupported(format!(
                        "{}: event type {kind}; only DynamoDB and SQS events are. Declare HTTP routes as \
                         AWS::ApiGatewayV2::Route + Integration resources against the platform's API (a SAM \
                         HttpApi/Api event cannot attach to an API in another stack), and subscribe to the bus \
                         with an AWS::Events::Rule targeting an SQS queue",
                        event.path
                    )));
                }
            };
            let properties = event
                .object("Properties")?
                .ok_or_else(|| event.required("Properties"))?;
            sources.push(MappingSource {
                logical_id: format!("{}{name}", placed.id),
                function: function.clone(),
                source_arn: properties.required_string(source_key)?,
                props: properties,
            });
        }
        Ok(sources)
    }

    fn raw_mapping<'s>(
        &self,
        scope: &'s Scope<'s>,
        placed: &Placed,
        topology: &Topology,
    ) -> Result<MappingSource<'s>> {
        let keys: Vec<&str> = ["FunctionName", "EventSourceArn"]
            .iter()
            .chain(MAPPING_KEYS)
            .copied()
            .collect();
        let props = self.property(scope, placed.resource, &keys)?;
        let function_ref = props.required_string("FunctionName")?;
        // FunctionName takes a name, an ARN or an ARN with a qualifier.
        let function = topology
            .functions
            .iter()
            .find(|function| {
                function.name == function_ref
                    || function_arn(&function.name) == function_arn_in_uri(&function_ref)
            })
            .ok_or_else(|| {
                scope.invalid(format!(
                    "FunctionName {function_ref} is not a function the templates declare"
                ))
            })?;
        Ok(MappingSource {
            logical_id: placed.id.clone(),
            function: function.name.clone(),
            source_arn: props.required_string("EventSourceArn")?,
            props,
        })
    }

    /// Adds the stream or queue mapping `source` describes, unless it is disabled.
    fn mapping(&self, source: MappingSource, topology: &mut Topology) -> Result<()> {
        if source.props.bool("Enabled")? == Some(false) {
            return Ok(());
        }
        let arn = &source.source_arn;
        if arn.starts_with("arn:aws:sqs:") {
            let mapping = queue_mapping(source, topology)?;
            topology.queue_mappings.push(mapping);
        } else if arn.starts_with("arn:aws:dynamodb:") {
            let mapping = stream_mapping(source, topology)?;
            topology.stream_mappings.push(mapping);
        } else {
            return Err(source.props.scope.unsupported(format!(
                "event source {arn}: only SQS queues and DynamoDB streams are emulated"
            )));
        }
        Ok(())
    }
}

/// A mapping from a queue. Defaults as in AWS: batches of 10, no batching window.
fn queue_mapping(source: MappingSource, topology: &Topology) -> Result<QueueMappingSpec> {
    let props = &source.props;
    let queue = topology
        .queues
        .iter()
        .find(|queue| queue.arn == source.source_arn)
        .ok_or_else(|| {
            props.scope.invalid(format!(
                "{} is not a queue the templates declare",
                source.source_arn
            ))
        })?;
    if props.has("DestinationConfig") {
        return Err(props.scope.invalid(format!(
            "{} does not apply to SQS sources: failed messages go to the queue's RedrivePolicy",
            props.name("DestinationConfig")
        )));
    }
    let maximum_concurrency = match props.object("ScalingConfig")? {
        Some(scaling) => scaling.u32("MaximumConcurrency")?,
        None => None,
    };
    Ok(QueueMappingSpec {
        queue_url: queue.url.clone(),
        queue_arn: queue.arn.clone(),
        batch_size: props.u32("BatchSize")?.unwrap_or(10),
        batching_window_seconds: props.u32("MaximumBatchingWindowInSeconds")?.unwrap_or(0),
        report_batch_item_failures: report_batch_item_failures(props)?,
        maximum_concurrency,
        filters: filters(props)?,
        logical_id: source.logical_id,
        function: source.function,
    })
}

/// A mapping from a table's stream. Defaults as in AWS: batches of 100, no batching window,
/// retries until the record expires (-1), no bisection.
fn stream_mapping(source: MappingSource, topology: &Topology) -> Result<StreamMappingSpec> {
    let props = &source.props;
    let table = topology
        .tables
        .iter()
        .find(|table| stream_arn(&table.arn) == source.source_arn)
        .ok_or_else(|| {
            props.scope.invalid(format!(
                "{} is not the StreamArn of a table the templates declare",
                source.source_arn
            ))
        })?;
    if table.stream_view.is_none() {
        return Err(props.scope.invalid(format!(
            "table {} has no StreamSpecification",
            table.logical_id
        )));
    }
    let starting_position = props.required_string("StartingPosition")?;
    if !["TRIM_HORIZON", "LATEST"].contains(&starting_position.as_str()) {
        return Err(props.scope.unsupported(format!(
            "StartingPosition {starting_position}: only TRIM_HORIZON and LATEST"
        )));
    }
    Ok(StreamMappingSpec {
        table_name: table.name.clone(),
        batch_size: props.u32("BatchSize")?.unwrap_or(100),
        batching_window_seconds: props.u32("MaximumBatchingWindowInSeconds")?.unwrap_or(0),
        starting_position,
        report_batch_item_failures: report_batch_item_failures(props)?,
        bisect_on_error: props.bool("BisectBatchOnFunctionError")?.unwrap_or(false),
        maximum_retry_attempts: props.i64("MaximumRetryAttempts")?.unwrap_or(-1),
        filters: filters(props)?,
        on_failure_arn: on_failure_destination(props, topology)?,
        logical_id: source.logical_id,
        function: source.function,
    })
}

/// `FunctionResponseTypes` has one possible value; anything else is a typo that would
/// silently turn partial batch failures off.
fn report_batch_item_failures(props: &Props) -> Result<bool> {
    match props.strings("FunctionResponseTypes")?.as_slice() {
        [] => Ok(false),
        [only] if only == "ReportBatchItemFailures" => Ok(true),
        other => Err(props.scope.invalid(format!(
            "{}: the only response type is ReportBatchItemFailures, got {other:?}",
            props.name("FunctionResponseTypes")
        ))),
    }
}

/// Routes, integrations and authorizers must belong to the one local API.
fn check_api_id(props: &Props) -> Result<()> {
    let api_id = props.required_string("ApiId")?;
    if api_id != HTTP_API_ID {
        return Err(props.scope.invalid(format!(
            "ApiId {api_id:?} is not the HTTP API the templates declare (pass the AWS::ApiGatewayV2::Api's Ref)"
        )));
    }
    Ok(())
}

/// `METHOD /path` → (method, path), methods kept as given (`ANY` included). `$default` catches
/// what no other route matches and has no method or path of its own: it is `("ANY", "$default")`.
fn parse_route_key(route_key: &str) -> Option<(String, String)> {
    if route_key == "$default" {
        return Some(("ANY".to_string(), "$default".to_string()));
    }
    let (method, path) = route_key.split_once(' ')?;
    let known = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
    ]
    .contains(&method);
    (known && path.starts_with('/') && !path.contains(' '))
        .then(|| (method.to_string(), path.to_string()))
}

/// A key schema (`KeySchema` of the table or of an index) with its attribute types.
fn key_spec(props: &Props, key: &str, types: &BTreeMap<String, String>) -> Result<KeySpec> {
    let (mut hash, mut range) = (None, None);
    for element in props.objects(key)? {
        let name = element.required_string("AttributeName")?;
        let kind = types.get(&name).cloned().ok_or_else(|| {
            element.scope.invalid(format!(
                "{}: {name} is not in AttributeDefinitions",
                element.path
            ))
        })?;
        let slot = match element.required_string("KeyType")?.as_str() {
            "HASH" => &mut hash,
            "RANGE" => &mut range,
            other => {
                return Err(element.wrong(
                    "KeyType",
                    "HASH or RANGE",
                    &Json::String(other.to_string()),
                ));
            }
        };
        if slot.replace((name, kind)).is_some() {
            return Err(props.scope.invalid(format!(
                "{} has two keys of the same KeyType",
                props.name(key)
            )));
        }
    }
    let hash = hash.ok_or_else(|| {
        props
            .scope
            .invalid(format!("{} has no HASH key", props.name(key)))
    })?;
    Ok(KeySpec { hash, range })
}

fn index_spec(index: &Props, types: &BTreeMap<String, String>) -> Result<IndexSpec> {
    let projection = index
        .object("Projection")?
        .ok_or_else(|| index.required("Projection"))?;
    Ok(IndexSpec {
        name: index.required_string("IndexName")?,
        key: key_spec(index, "KeySchema", types)?,
        projection: projection.required_string("ProjectionType")?,
        non_key_attributes: projection.strings("NonKeyAttributes")?,
    })
}

/// The cargo binary a function runs. The runner executes it directly, so only Rust functions
/// built by cargo-lambda (which name their binary in the build metadata) can run locally.
fn binary(scope: &Scope, metadata: &Json) -> Result<String> {
    match metadata.pointer("/BuildProperties/Binary") {
        Some(Json::String(binary)) if !binary.is_empty() => Ok(binary.clone()),
        Some(other) => Err(scope.invalid(format!("Metadata.BuildProperties.Binary must be a binary name, got {other}"))),
        None => match metadata.get("BuildMethod").and_then(Json::as_str) {
            Some("rust-cargolambda") => Err(scope.invalid(
                "Metadata.BuildProperties.Binary is missing: name the cargo [[bin]] this function runs",
            )),
            build_method => Err(scope.unsupported(format!(
                "only Rust functions (Metadata.BuildMethod: rust-cargolambda, with BuildProperties.Binary) run locally; \
                 this one's BuildMethod is {build_method:?}"
            ))),
        },
    }
}

/// `FilterCriteria.Filters[].Pattern`: EventBridge patterns, given as JSON strings.
fn filters(props: &Props) -> Result<Vec<Json>> {
    let Some(criteria) = props.object("FilterCriteria")? else {
        return Ok(Vec::new());
    };
    criteria
        .objects("Filters")?
        .iter()
        .map(|filter| json_document(filter, "Pattern")?.ok_or_else(|| filter.required("Pattern")))
        .collect()
}

/// `DestinationConfig.OnFailure.Destination`, which must be a queue: the runner sends failed
/// batches' descriptions there.
fn on_failure_destination(props: &Props, topology: &Topology) -> Result<Option<String>> {
    let Some(config) = props.object("DestinationConfig")? else {
        return Ok(None);
    };
    let Some(on_failure) = config.object("OnFailure")? else {
        return Ok(None);
    };
    let destination = on_failure.required_string("Destination")?;
    if !topology.queues.iter().any(|queue| queue.arn == destination) {
        return Err(props.scope.unsupported(format!(
            "{}: {destination} is not a queue the templates declare; only SQS destinations are emulated",
            on_failure.name("Destination")
        )));
    }
    Ok(Some(destination))
}

/// A queue's dead-letter queue must be declared too, and be FIFO exactly when the queue is.
fn check_dead_letter_queue(scope: &Scope, placed: &Placed, topology: &Topology) -> Result<()> {
    let Some(queue) = topology
        .queues
        .iter()
        .find(|queue| queue.logical_id == placed.id)
    else {
        return Ok(());
    };
    let Some(redrive) = &queue.redrive else {
        return Ok(());
    };
    let dead_letter = topology
        .queues
        .iter()
        .find(|other| other.arn == redrive.dead_letter_arn)
        .ok_or_else(|| {
            scope.invalid(format!(
                "RedrivePolicy.deadLetterTargetArn {} is not a queue the templates declare",
                redrive.dead_letter_arn
            ))
        })?;
    if dead_letter.fifo != queue.fifo {
        return Err(scope.invalid(format!(
            "the dead-letter queue {} must be FIFO exactly when this queue is",
            dead_letter.logical_id
        )));
    }
    Ok(())
}

/// Two resources of a kind with one physical name would be one resource in moto.
fn unique_name<'a>(
    scope: &Scope,
    what: &str,
    name: &str,
    mut existing: impl Iterator<Item = (&'a String, &'a String)>,
) -> Result<()> {
    match existing.find(|(other, _)| *other == name) {
        Some((_, other_id)) => {
            Err(scope.invalid(format!("{what} name {name} is also {other_id}'s")))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> LoadOptions {
        LoadOptions {
            endpoint_url: "http://127.0.0.1:4566".to_string(),
            api_url: "http://127.0.0.1:3000".to_string(),
            parameters: BTreeMap::new(),
        }
    }

    const ROOT: &str = "/t/template.yaml";

    /// Loads in-memory templates: `files` maps paths to contents, the first is the root.
    fn load_files(files: &[(&str, &str)], options: &LoadOptions) -> Result<Topology> {
        let files: HashMap<PathBuf, String> = files
            .iter()
            .map(|(path, text)| (PathBuf::from(path), text.to_string()))
            .collect();
        let read = move |path: &Path| {
            files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
        };
        load_with(Path::new(ROOT), options, &read)
    }

    /// Every Output of an in-memory root template (with nested `files`), evaluated.
    fn outputs_with(
        root: &str,
        nested: &[(&str, &str)],
        options: &LoadOptions,
    ) -> Result<BTreeMap<String, Json>> {
        let mut files: HashMap<PathBuf, String> = nested
            .iter()
            .map(|(path, text)| (PathBuf::from(path), text.to_string()))
            .collect();
        files.insert(PathBuf::from(ROOT), root.to_string());
        let read = move |path: &Path| {
            files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
        };
        let loader = Loader::new(options, read_tree(Path::new(ROOT), &read)?);
        loader.check_parameters()?;
        let names: Vec<String> = loader.stacks[0].outputs.keys().cloned().collect();
        names
            .into_iter()
            .map(|name| Ok((name.clone(), loader.output(0, &name)?)))
            .collect()
    }

    fn outputs(root: &str) -> BTreeMap<String, Json> {
        match outputs_with(root, &[], &options()) {
            Ok(outputs) => outputs,
            Err(error) => panic!("{error}"),
        }
    }

    fn error_of(root: &str) -> String {
        match outputs_with(root, &[], &options()) {
            Ok(outputs) => panic!("expected an error, got {outputs:?}"),
            Err(error) => error.to_string(),
        }
    }

    /// A template with one of each emulated kind, for the intrinsic-function tests.
    const BASE: &str = r#"
Parameters:
  Stage:
    Type: String
    Default: dev
  Sizes:
    Type: CommaDelimitedList
    Default: "s, m,l"
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev:
    Fn::Equals: [{Ref: Stage}, dev]
Mappings:
  StageSettings:
    dev: {Memory: 256, Zones: [x, y]}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub orders-${Stage}
  Queue:
    Type: AWS::SQS::Queue
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: bus
  Topic:
    Type: AWS::SNS::Topic
  Rule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: {source: [x]}
"#;

    fn with_outputs(outputs_yaml: &str) -> String {
        format!("{BASE}Outputs:\n{outputs_yaml}")
    }

    #[test]
    fn ref_in_both_forms_resolves_parameters_pseudo_parameters_and_resources() {
        let out = outputs(&with_outputs(
            r#"
  Short: {Value: !Ref Stage}
  Long: {Value: {Ref: Stage}}
  Region: {Value: !Ref "AWS::Region"}
  Account: {Value: {Ref: "AWS::AccountId"}}
  Partition: {Value: !Ref AWS::Partition}
  StackName: {Value: !Ref AWS::StackName}
  Suffix: {Value: !Ref AWS::URLSuffix}
  Table: {Value: !Ref Table}
  Queue: {Value: {Ref: Queue}}
  Bus: {Value: !Ref Bus}
  Topic: {Value: !Ref Topic}
  List: {Value: !Ref Sizes}
"#,
        ));
        assert_eq!(out["Short"], "dev");
        assert_eq!(out["Long"], "dev");
        assert_eq!(out["Region"], REGION);
        assert_eq!(out["Account"], ACCOUNT_ID);
        assert_eq!(out["Partition"], "aws");
        assert_eq!(out["StackName"], "shop-local");
        assert_eq!(out["Suffix"], "amazonaws.com");
        assert_eq!(out["Table"], "orders-dev");
        assert_eq!(
            out["Queue"],
            "http://127.0.0.1:4566/123456789012/shop-Queue"
        );
        assert_eq!(out["Bus"], "bus");
        assert_eq!(out["Topic"], "Topic");
        assert_eq!(out["List"], serde_json::json!(["s", "m", "l"]));
    }

    #[test]
    fn get_att_in_both_forms_and_both_argument_shapes() {
        let out = outputs(&with_outputs(
            r#"
  Dotted: {Value: !GetAtt Table.Arn}
  Listed: {Value: !GetAtt [Table, StreamArn]}
  LongDotted: {Value: {"Fn::GetAtt": Queue.Arn}}
  LongListed: {Value: {"Fn::GetAtt": [Queue, QueueName]}}
  BusArn: {Value: !GetAtt Bus.Arn}
  TopicArn: {Value: !GetAtt Topic.Arn}
  Rule: {Value: !Ref Rule}
  RuleArn: {Value: !GetAtt Rule.Arn}
"#,
        ));
        assert_eq!(
            out["Dotted"],
            "arn:aws:dynamodb:us-east-1:123456789012:table/orders-dev"
        );
        assert_eq!(
            out["Listed"],
            "arn:aws:dynamodb:us-east-1:123456789012:table/orders-dev/stream/local"
        );
        assert_eq!(
            out["LongDotted"],
            "arn:aws:sqs:us-east-1:123456789012:shop-Queue"
        );
        assert_eq!(out["LongListed"], "shop-Queue");
        assert_eq!(
            out["BusArn"],
            "arn:aws:events:us-east-1:123456789012:event-bus/bus"
        );
        assert_eq!(
            out["TopicArn"],
            "arn:aws:local:us-east-1:123456789012:AWS::SNS::Topic/Topic"
        );
        assert_eq!(out["Rule"], "shop-Rule");
        assert_eq!(
            out["RuleArn"],
            "arn:aws:events:us-east-1:123456789012:rule/bus/shop-Rule"
        );
    }

    #[test]
    fn sub_substitutes_parameters_resources_attributes_pseudo_parameters_and_escapes() {
        let out = outputs(&with_outputs(
            r#"
  Short: {Value: !Sub "${Stage}|${Table}|${Queue.QueueName}|${AWS::Region}|${!Literal}"}
  Long: {Value: {"Fn::Sub": "arn:${AWS::Partition}:x:${AWS::AccountId}:${Bus.Arn}"}}
  WithVariables:
    Value: !Sub
      - "${Name}-${Stage}-${Other}"
      - Name: !GetAtt Queue.QueueName
        Other: literal
  LongWithVariables:
    Value:
      Fn::Sub: ["${A}/${Table.Arn}", {A: {Ref: Bus}}]
"#,
        ));
        assert_eq!(
            out["Short"],
            "dev|orders-dev|shop-Queue|us-east-1|${Literal}"
        );
        assert_eq!(
            out["Long"],
            "arn:aws:x:123456789012:arn:aws:events:us-east-1:123456789012:event-bus/bus"
        );
        assert_eq!(out["WithVariables"], "shop-Queue-dev-literal");
        assert_eq!(
            out["LongWithVariables"],
            "bus/arn:aws:dynamodb:us-east-1:123456789012:table/orders-dev"
        );
    }

    #[test]
    fn join_select_split_in_both_forms() {
        let out = outputs(&with_outputs(
            r#"
  Join: {Value: !Join ["-", [a, !Ref Stage, 3]]}
  LongJoin: {Value: {"Fn::Join": [",", {Ref: Sizes}]}}
  Select: {Value: !Select [1, [x, y, z]]}
  LongSelect: {Value: {"Fn::Select": ["2", {Ref: Sizes}]}}
  Split: {Value: !Split [",", "a,b,,c"]}
  LongSplit: {Value: {"Fn::Select": [0, {"Fn::Split": ["/", !Sub "${Stage}/x"]}]}}
"#,
        ));
        assert_eq!(out["Join"], "a-dev-3");
        assert_eq!(out["LongJoin"], "s,m,l");
        assert_eq!(out["Select"], "y");
        assert_eq!(out["LongSelect"], "l");
        assert_eq!(out["Split"], serde_json::json!(["a", "b", "", "c"]));
        assert_eq!(out["LongSplit"], "dev");
    }

    #[test]
    fn conditions_drive_if_in_both_forms_with_equals_not_and_or() {
        let root = r#"
Parameters:
  Stage: {Type: String, Default: dev}
  Region: {Type: String, Default: eu}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev: {"Fn::Equals": [dev, {Ref: Stage}]}
  NotProd: !Not [!Condition IsProd]
  DevInEu: !And [!Condition IsDev, !Equals [!Ref Region, eu]]
  LongAnd: {"Fn::And": [{Condition: IsDev}, {"Fn::Not": [{Condition: IsProd}]}]}
  ProdOrEu: !Or [!Condition IsProd, !Equals [eu, !Ref Region]]
  LongOr: {"Fn::Or": [{Condition: IsProd}, {"Fn::Equals": [us, {Ref: Region}]}]}
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Prod: {Value: !If [IsProd, yes, no]}
  NotProd: {Value: !If [NotProd, yes, no]}
  DevInEu: {Value: {"Fn::If": [DevInEu, yes, no]}}
  LongAnd: {Value: !If [LongAnd, yes, no]}
  ProdOrEu: {Value: !If [ProdOrEu, yes, no]}
  LongOr: {Value: !If [LongOr, yes, no]}
  Equals: {Value: !Equals [!Ref Stage, dev]}
"#;
        let out = outputs(root);
        assert_eq!(out["Prod"], "no");
        assert_eq!(out["NotProd"], "yes");
        assert_eq!(out["DevInEu"], "yes");
        assert_eq!(out["LongAnd"], "yes");
        assert_eq!(out["ProdOrEu"], "yes");
        assert_eq!(out["LongOr"], "no");
        assert_eq!(out["Equals"], true);

        let mut prod = options();
        prod.parameters.insert("Stage".into(), "prod".into());
        let out = match outputs_with(root, &[], &prod) {
            Ok(out) => out,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(out["Prod"], "yes");
        assert_eq!(out["NotProd"], "no");
        assert_eq!(out["DevInEu"], "no");
    }

    #[test]
    fn no_value_removes_the_key_or_the_list_element() {
        let out = outputs(&with_outputs(
            r#"
  Map:
    Value:
      Kept: 1
      Dropped: !Ref AWS::NoValue
      Conditional: !If [IsProd, x, {Ref: "AWS::NoValue"}]
      List: [a, !If [IsDev, !Ref AWS::NoValue, b], c]
"#,
        ));
        assert_eq!(
            out["Map"],
            serde_json::json!({"Kept": 1, "List": ["a", "c"]})
        );
    }

    #[test]
    fn find_in_map_and_get_azs_in_both_forms() {
        let out = outputs(&with_outputs(
            r#"
  Memory: {Value: !FindInMap [StageSettings, !Ref Stage, Memory]}
  Zones: {Value: {"Fn::FindInMap": [StageSettings, dev, Zones]}}
  Azs: {Value: !GetAZs ""}
  FirstAz: {Value: {"Fn::Select": [0, {"Fn::GetAZs": {Ref: "AWS::Region"}}]}}
"#,
        ));
        assert_eq!(out["Memory"], 256);
        assert_eq!(out["Zones"], serde_json::json!(["x", "y"]));
        assert_eq!(
            out["Azs"],
            serde_json::json!(["us-east-1a", "us-east-1b", "us-east-1c"])
        );
        assert_eq!(out["FirstAz"], "us-east-1a");
        let missing = error_of(&with_outputs(
            "  X: {Value: !FindInMap [StageSettings, prod, Memory]}\n",
        ));
        assert!(
            missing.contains("Mappings has no StageSettings.prod.Memory"),
            "{missing}"
        );
    }

    #[test]
    fn unknown_references_are_errors_naming_file_logical_id_and_target() {
        let error = error_of(&with_outputs("  X: {Value: !Ref Nope}\n"));
        assert!(
            error.contains("/t/template.yaml: Outputs.X: refers to `Nope`"),
            "{error}"
        );
        let error = error_of(&with_outputs("  X: {Value: !GetAtt Nope.Arn}\n"));
        assert!(error.contains("`Nope.Arn`"), "{error}");
        let error = error_of(&with_outputs("  X: {Value: !Sub \"${Missing}\"}\n"));
        assert!(error.contains("`Missing`"), "{error}");
        let error = error_of(&with_outputs("  X: {Value: !GetAtt Table.Nope}\n"));
        assert!(
            error.contains("Table (AWS::DynamoDB::Table) has no attribute Nope"),
            "{error}"
        );
        let error = error_of(&with_outputs("  X: {Value: !ImportValue Something}\n"));
        assert!(error.contains("Fn::ImportValue"), "{error}");
    }

    #[test]
    fn parameters_take_overrides_then_defaults_and_fail_without_either() {
        let root = r#"
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Retention: {Type: Number, Default: 30}
  Required: {Type: String}
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Stage: {Value: !Ref Stage}
  Retention: {Value: !Ref Retention}
  Required: {Value: !Ref Required}
"#;
        let error = match outputs_with(root, &[], &options()) {
            Err(error @ TemplateError::MissingParameter { .. }) => error.to_string(),
            other => panic!("expected a missing parameter, got {other:?}"),
        };
        assert!(
            error.contains("/t/template.yaml: Parameters.Required: no value"),
            "{error}"
        );

        let mut given = options();
        given.parameters.insert("Required".into(), "here".into());
        given.parameters.insert("Stage".into(), "prod".into());
        let out = match outputs_with(root, &[], &given) {
            Ok(out) => out,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(out["Stage"], "prod");
        assert_eq!(out["Retention"], "30");
        assert_eq!(out["Required"], "here");

        given.parameters.insert("Stage".into(), "test".into());
        let error = outputs_with(root, &[], &given)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("\"test\" is not one of the AllowedValues"),
            "{error}"
        );

        given.parameters.insert("Typo".into(), "x".into());
        let error = outputs_with(root, &[], &given)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(error.contains("a value is given for Typo"), "{error}");
    }

    const NESTED_ROOT: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties: {Name: !Sub "shop-${Stage}"}
  BillingService:
    Type: AWS::Serverless::Application
    Properties:
      Location: billing/template.yaml
      Parameters:
        BusName: !Ref Bus
        Zones: [a, b]
Outputs:
  QueueUrl: {Value: !GetAtt BillingService.Outputs.QueueUrl}
  Echo: {Value: {"Fn::GetAtt": [BillingService, Outputs.Echo]}}
  StackName: {Value: !GetAtt BillingService.Outputs.StackName}
  Zones: {Value: !GetAtt BillingService.Outputs.Zones}
"#;

    const NESTED_BILLING: &str = r#"
Parameters:
  BusName: {Type: String}
  Zones: {Type: CommaDelimitedList}
  Unused: {Type: String, Default: fine}
Resources:
  Queue: {Type: AWS::SQS::Queue}
Outputs:
  QueueUrl: {Value: !Ref Queue}
  Echo: {Value: !Sub "${BusName}!"}
  StackName: {Value: !Ref AWS::StackName}
  Zones: {Value: !Join [";", !Ref Zones]}
"#;

    #[test]
    fn nested_outputs_resolve_with_parameters_passed_from_the_parent() {
        let out = match outputs_with(
            NESTED_ROOT,
            &[("/t/billing/template.yaml", NESTED_BILLING)],
            &options(),
        ) {
            Ok(out) => out,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(
            out["QueueUrl"],
            "http://127.0.0.1:4566/123456789012/billing-Queue"
        );
        assert_eq!(out["Echo"], "shop-dev!");
        assert_eq!(out["StackName"], "shop-local-BillingService");
        assert_eq!(out["Zones"], "a;b");
        let error = error_of(&NESTED_ROOT.replace("Outputs.Echo", "Outputs.Nope"));
        assert!(
            error.contains("cannot read template /t/billing/template.yaml"),
            "{error}"
        );
        let missing_output = outputs_with(
            &NESTED_ROOT.replace("Outputs.Echo", "Outputs.Nope"),
            &[("/t/billing/template.yaml", NESTED_BILLING)],
            &options(),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(
            missing_output.contains(
                "BillingService (AWS::Serverless::Application) has no attribute Outputs.Nope"
            ),
            "{missing_output}"
        );
    }

    #[test]
    fn nested_parameters_must_be_declared_and_given() {
        let undeclared = outputs_with(
            &NESTED_ROOT.replace("Zones: [a, b]", "Zones: [a, b]\n        Extra: x"),
            &[("/t/billing/template.yaml", NESTED_BILLING)],
            &options(),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(
            undeclared.contains("/t/template.yaml: BillingService: passes the parameter Extra"),
            "{undeclared}"
        );
        let missing = outputs_with(
            &NESTED_ROOT.replace("        Zones: [a, b]\n", ""),
            &[("/t/billing/template.yaml", NESTED_BILLING)],
            &options(),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("/t/billing/template.yaml: Parameters.Zones: no value"),
            "{missing}"
        );
    }

    #[test]
    fn circular_references_are_reported() {
        let error = error_of(
            r#"
Resources:
  A: {Type: AWS::SQS::Queue, Properties: {QueueName: !GetAtt B.QueueName}}
  B: {Type: AWS::SQS::Queue, Properties: {QueueName: !GetAtt A.QueueName}}
Outputs:
  X: {Value: !Ref A}
"#,
        );
        assert!(error.contains("circular reference: A -> B -> A"), "{error}");
    }

    #[test]
    fn resources_whose_condition_is_false_are_skipped_and_cannot_be_referenced() {
        let root = r#"
Parameters:
  Stage: {Type: String, Default: dev}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Resources:
  Kept: {Type: AWS::SQS::Queue}
  ProdOnly: {Type: AWS::SQS::Queue, Condition: IsProd}
  ProdAlarm: {Type: AWS::CloudWatch::Alarm, Condition: IsProd}
"#;
        let topology = match load_files(&[(ROOT, root)], &options()) {
            Ok(topology) => topology,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(topology.queues.len(), 1);
        assert_eq!(topology.queues[0].name, "shop-Kept");
        assert!(
            topology.not_emulated.is_empty(),
            "{:?}",
            topology.not_emulated
        );
        let error = error_of(&format!("{root}Outputs:\n  X: {{Value: !Ref ProdOnly}}\n"));
        assert!(
            error.contains(
                "refers to ProdOnly, which is not created: its condition IsProd is false"
            ),
            "{error}"
        );
    }

    #[test]
    fn physical_names_honour_explicit_names_and_the_fifo_suffix() {
        let root = r#"
Resources:
  Plain: {Type: AWS::SQS::Queue}
  Ordered: {Type: AWS::SQS::Queue, Properties: {FifoQueue: true}}
  Named: {Type: AWS::SQS::Queue, Properties: {QueueName: jobs.fifo, FifoQueue: "true"}}
  Rule:
    Type: AWS::Events::Rule
    Properties:
      Name: my-rule
      EventPattern: {source: [x]}
"#;
        let topology = match load_files(&[(ROOT, root)], &options()) {
            Ok(topology) => topology,
            Err(error) => panic!("{error}"),
        };
        let names: Vec<&str> = topology.queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["shop-Plain", "shop-Ordered.fifo", "jobs.fifo"]);
        assert_eq!(topology.rules[0].name, "my-rule");
        assert_eq!(topology.rules[0].bus_name, "default");
        let wrong = load_files(
            &[(ROOT, "Resources:\n  Q: {Type: AWS::SQS::Queue, Properties: {QueueName: jobs, FifoQueue: true}}\n")],
            &options(),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(
            wrong.contains(
                "/t/template.yaml: Q: QueueName jobs: a FIFO queue's name must end in .fifo"
            ),
            "{wrong}"
        );
    }

    #[test]
    fn functions_need_a_cargo_lambda_binary() {
        let function = |metadata: &str| {
            format!(
                "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Metadata: {metadata}\n    Properties: {{CodeUri: .}}\n"
            )
        };
        let missing = load_files(
            &[(ROOT, &function("{BuildMethod: rust-cargolambda}"))],
            &options(),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("/t/template.yaml: Fn: Metadata.BuildProperties.Binary is missing"),
            "{missing}"
        );
        let python = load_files(
            &[(ROOT, &function("{BuildMethod: python3.12}"))],
            &options(),
        )
        .map(|_| ())
        .unwrap_err()
        .to_string();
        assert!(
            python.contains("not supported by the local runner: only Rust functions"),
            "{python}"
        );
        let topology = load_files(
            &[(ROOT, &function("{BuildProperties: {Binary: fn}}"))],
            &options(),
        );
        let topology = topology.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(topology.functions[0].name, "shop-Fn");
        assert_eq!(topology.functions[0].timeout_seconds, 3);
        assert_eq!(topology.functions[0].memory_mb, 128);
        assert_eq!(topology.not_emulated, ["FnRole (AWS::IAM::Role)"]);
    }

    #[test]
    fn http_and_other_sam_events_are_rejected_with_the_reason() {
        let root = r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: fn}}
    Properties:
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: /x, Method: get}
"#;
        let error = load_files(&[(ROOT, root)], &options())
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(error, TemplateError::Unsupported { .. }),
            "{error:?}"
        );
        let error = error.to_string();
        assert!(error.contains("/t/template.yaml: Fn: not supported by the local runner: Events.Get: event type HttpApi"), "{error}");
        assert!(error.contains("AWS::ApiGatewayV2::Route"), "{error}");
    }

    #[test]
    fn globals_merge_environment_variables_key_by_key() {
        let root = r#"
Globals:
  Function:
    Timeout: 10
    MemorySize: 512
    Environment:
      Variables: {RUST_LOG: info, SHARED: global}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: fn}}
    Properties:
      FunctionName: explicit-name
      MemorySize: 256
      ReservedConcurrentExecutions: 5
      Role: arn:aws:iam::123456789012:role/x
      Environment:
        Variables: {SHARED: local, OWN: !Sub "${AWS::Region}", GONE: !Ref AWS::NoValue}
"#;
        let topology =
            load_files(&[(ROOT, root)], &options()).unwrap_or_else(|error| panic!("{error}"));
        let function = &topology.functions[0];
        assert_eq!(function.name, "explicit-name");
        assert_eq!(function.timeout_seconds, 10);
        assert_eq!(function.memory_mb, 256);
        assert_eq!(function.reserved_concurrency, Some(5));
        let environment: Vec<(&str, &str)> = function
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            environment,
            [
                ("OWN", "us-east-1"),
                ("RUST_LOG", "info"),
                ("SHARED", "local")
            ]
        );
        assert!(
            topology.not_emulated.is_empty(),
            "a function with a Role gets no implicit one"
        );
    }

    #[test]
    fn integration_uris_in_the_apigateway_form_resolve_to_the_function() {
        let root = r#"
Resources:
  Api: {Type: AWS::ApiGatewayV2::Api, Properties: {ProtocolType: HTTP}}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: fn}}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      PayloadFormatVersion: "2.0"
      IntegrationUri: !Sub "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations"
  Default:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $default
      Target: !Sub "integrations/${Integration}"
  Any:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: ANY /things/{proxy+}
      AuthorizationType: NONE
      Target: !Join ["/", [integrations, !Ref Integration]]
"#;
        let topology =
            load_files(&[(ROOT, root)], &options()).unwrap_or_else(|error| panic!("{error}"));
        let routes: Vec<(&str, &str, &str, &str)> = topology
            .routes
            .iter()
            .map(|r| {
                (
                    r.route_key.as_str(),
                    r.method.as_str(),
                    r.path.as_str(),
                    r.function.as_str(),
                )
            })
            .collect();
        assert_eq!(
            routes,
            [
                ("$default", "ANY", "$default", "shop-Fn"),
                ("ANY /things/{proxy+}", "ANY", "/things/{proxy+}", "shop-Fn")
            ]
        );
        assert!(
            topology
                .routes
                .iter()
                .all(|route| route.auth == RouteAuth::None)
        );
        let wrong_api = root.replace(
            "ApiId: !Ref Api\n      RouteKey: $default",
            "ApiId: other\n      RouteKey: $default",
        );
        let error = load_files(&[(ROOT, &wrong_api)], &options())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/t/template.yaml: Default: ApiId \"other\" is not the HTTP API"),
            "{error}"
        );
        let iam = root.replace("AuthorizationType: NONE", "AuthorizationType: AWS_IAM");
        let error = load_files(&[(ROOT, &iam)], &options())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("Any: not supported by the local runner: AuthorizationType AWS_IAM"),
            "{error}"
        );
    }

    #[test]
    fn raw_event_source_mappings_are_supported() {
        let root = r#"
Resources:
  Jobs:
    Type: AWS::SQS::Queue
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
  Worker:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: worker}}
  FromQueue:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !GetAtt Worker.Arn
      EventSourceArn: !GetAtt Jobs.Arn
      BatchSize: 3
  FromStream:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Worker
      EventSourceArn: !GetAtt Table.StreamArn
      StartingPosition: LATEST
  Disabled:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Worker
      EventSourceArn: !GetAtt Jobs.Arn
      Enabled: false
"#;
        let topology =
            load_files(&[(ROOT, root)], &options()).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(topology.queue_mappings.len(), 1);
        let queue_mapping = &topology.queue_mappings[0];
        assert_eq!(queue_mapping.logical_id, "FromQueue");
        assert_eq!(queue_mapping.function, "shop-Worker");
        assert_eq!(queue_mapping.batch_size, 3);
        assert_eq!(
            queue_mapping.queue_url,
            "http://127.0.0.1:4566/123456789012/shop-Jobs"
        );
        assert_eq!(topology.stream_mappings.len(), 1);
        let stream = &topology.stream_mappings[0];
        assert_eq!(stream.table_name, "shop-Table");
        assert_eq!(stream.starting_position, "LATEST");
        assert_eq!(
            (
                stream.batch_size,
                stream.batching_window_seconds,
                stream.maximum_retry_attempts
            ),
            (100, 0, -1)
        );
        assert!(!stream.report_batch_item_failures && !stream.bisect_on_error);
        assert_eq!(topology.tables[0].key.range, None);
    }

    #[test]
    fn invalid_yaml_and_missing_files_name_the_file() {
        let error = load_files(&[(ROOT, "Resources: [unclosed")], &options())
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(error, TemplateError::Yaml { .. }), "{error:?}");
        assert!(
            error
                .to_string()
                .starts_with("/t/template.yaml is not valid YAML"),
            "{error}"
        );
        let error = load(Path::new("/nonexistent/template.yaml"), &options())
            .map(|_| ())
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot read template /nonexistent/template.yaml"),
            "{error}"
        );
    }

    // --- The project's real templates -------------------------------------------------------

    fn project_topology() -> Topology {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        load(&root, &options()).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn the_project_templates_give_the_catalog_topology() {
        let topology = project_topology();

        assert_eq!(topology.tables.len(), 1);
        let table = &topology.tables[0];
        assert_eq!(table.logical_id, "catalog/ProductsTable");
        assert_eq!(table.name, "catalog-ProductsTable");
        assert_eq!(
            table.arn,
            "arn:aws:dynamodb:us-east-1:123456789012:table/catalog-ProductsTable"
        );
        assert_eq!(table.key.hash, ("pk".to_string(), "S".to_string()));
        assert_eq!(table.key.range, Some(("sk".to_string(), "S".to_string())));
        let indexes: Vec<(&str, &str, &str, &str)> = table
            .global_indexes
            .iter()
            .map(|i| {
                (
                    i.name.as_str(),
                    i.key.hash.0.as_str(),
                    i.key.range.as_ref().map_or("", |r| r.0.as_str()),
                    i.projection.as_str(),
                )
            })
            .collect();
        assert_eq!(
            indexes,
            [
                ("gsi1", "gsi1pk", "gsi1sk", "ALL"),
                ("gsi2", "gsi2pk", "gsi2sk", "ALL")
            ]
        );
        assert_eq!(table.stream_view.as_deref(), Some("NEW_IMAGE"));
        assert_eq!(table.ttl_attribute.as_deref(), Some("expiresAt"));

        assert_eq!(
            topology.buses,
            [BusSpec {
                logical_id: "EventBus".into(),
                name: "shop-dev".into(),
                arn: "arn:aws:events:us-east-1:123456789012:event-bus/shop-dev".into(),
            }]
        );

        let names: Vec<&str> = topology.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["catalog-CatalogApiFunction", "catalog-CatalogRelayFunction"]
        );
        let api = &topology.functions[0];
        assert_eq!(api.logical_id, "catalog/CatalogApiFunction");
        assert_eq!(api.binary, "catalog-api");
        assert_eq!(
            api.environment.get("TABLE_NAME").map(String::as_str),
            Some("catalog-ProductsTable")
        );
        assert_eq!(
            api.environment.get("RUST_LOG").map(String::as_str),
            Some("info")
        );
        assert_eq!(
            (api.timeout_seconds, api.memory_mb, api.reserved_concurrency),
            (10, 128, None)
        );
        let relay = &topology.functions[1];
        assert_eq!(relay.binary, "catalog-relay");
        assert_eq!(
            relay.environment.get("EVENT_BUS_NAME").map(String::as_str),
            Some("shop-dev")
        );
        assert_eq!(
            relay.environment.get("RUST_LOG").map(String::as_str),
            Some("info")
        );

        let jwt = RouteAuth::Jwt {
            issuer: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_shoplocal".into(),
            audience: vec!["shoplocalclient".into()],
        };
        let routes: Vec<(&str, &RouteAuth)> = topology
            .routes
            .iter()
            .map(|r| (r.route_key.as_str(), &r.auth))
            .collect();
        assert_eq!(
            routes,
            [
                ("GET /products", &RouteAuth::None),
                ("GET /products/{productId}", &RouteAuth::None),
                ("POST /products", &jwt),
                ("PUT /products/{productId}", &jwt),
                ("DELETE /products/{productId}", &jwt),
                ("GET /health/catalog", &RouteAuth::None),
            ]
        );
        assert!(
            topology
                .routes
                .iter()
                .all(|r| r.function == "catalog-CatalogApiFunction")
        );
        assert_eq!(
            (
                topology.routes[3].method.as_str(),
                topology.routes[3].path.as_str()
            ),
            ("PUT", "/products/{productId}")
        );

        assert_eq!(topology.queues.len(), 1);
        let failures = &topology.queues[0];
        assert_eq!(failures.logical_id, "catalog/RelayFailureQueue");
        assert_eq!(failures.name, "catalog-RelayFailureQueue");
        assert_eq!(
            failures.url,
            "http://127.0.0.1:4566/123456789012/catalog-RelayFailureQueue"
        );
        assert_eq!(failures.message_retention_seconds, Some(1_209_600));
        assert_eq!(
            (
                failures.visibility_timeout_seconds,
                failures.fifo,
                &failures.redrive
            ),
            (30, false, &None)
        );

        assert_eq!(
            topology.stream_mappings,
            [StreamMappingSpec {
                logical_id: "catalog/CatalogRelayFunctionOutbox".into(),
                function: "catalog-CatalogRelayFunction".into(),
                table_name: "catalog-ProductsTable".into(),
                batch_size: 100,
                batching_window_seconds: 1,
                starting_position: "TRIM_HORIZON".into(),
                report_batch_item_failures: true,
                bisect_on_error: true,
                maximum_retry_attempts: 1000,
                filters: vec![serde_json::json!(
                    {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"pk": {"S": [{"prefix": "OUTBOX#"}]}}}}
                )],
                on_failure_arn: Some(failures.arn.clone()),
            }]
        );
        assert!(topology.queue_mappings.is_empty() && topology.rules.is_empty());

        for expected in [
            "UserPool (AWS::Cognito::UserPool)",
            "UserPoolClient (AWS::Cognito::UserPoolClient)",
            "AdminGroup (AWS::Cognito::UserPoolGroup)",
            "HttpApiAccessLogs (AWS::Logs::LogGroup)",
            "HttpApiStage (AWS::ApiGatewayV2::Stage)",
            "catalog/CatalogApiFunctionRole (AWS::IAM::Role)",
            "catalog/CatalogRelayFunctionRole (AWS::IAM::Role)",
            "catalog/CatalogApiInvokePermission (AWS::Lambda::Permission)",
            "catalog/RelayFailureAlarm (AWS::CloudWatch::Alarm)",
            "catalog/CatalogApiFunctionLogGroup (AWS::Logs::LogGroup)",
            "catalog/CatalogRelayFunctionLogGroup (AWS::Logs::LogGroup)",
        ] {
            assert!(
                topology.not_emulated.iter().any(|e| e == expected),
                "{expected} in {:?}",
                topology.not_emulated
            );
        }
        assert_eq!(
            topology.not_emulated.len(),
            11,
            "{:?}",
            topology.not_emulated
        );
        for emulated in EMULATED {
            assert!(
                !topology
                    .not_emulated
                    .iter()
                    .any(|e| e.ends_with(&format!("({emulated})"))),
                "{emulated} is emulated"
            );
        }
    }

    #[test]
    fn the_project_templates_honour_the_stage_parameter() {
        let mut prod = options();
        prod.parameters.insert("Stage".into(), "prod".into());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let topology = load(&root, &prod).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(topology.buses[0].name, "shop-prod");
        assert_eq!(
            topology.functions[1].environment["EVENT_BUS_NAME"],
            "shop-prod"
        );
    }

    // --- The fixture: a nested capability with queues, a DLQ, rules and an SQS consumer ------

    #[test]
    fn the_fixture_gives_queues_rules_and_queue_mappings() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/templates/root.yaml");
        let topology = load(&root, &options()).unwrap_or_else(|error| panic!("{error}"));
        let arn = |name: &str| format!("arn:aws:sqs:us-east-1:123456789012:{name}");
        let url = |name: &str| format!("http://127.0.0.1:4566/123456789012/{name}");

        assert_eq!(
            topology.queues,
            [
                QueueSpec {
                    logical_id: "AuditQueue".into(),
                    name: "shop-AuditQueue".into(),
                    url: url("shop-AuditQueue"),
                    arn: arn("shop-AuditQueue"),
                    visibility_timeout_seconds: 30,
                    message_retention_seconds: None,
                    fifo: false,
                    redrive: None,
                },
                QueueSpec {
                    logical_id: "ordering/OrderEventsQueue".into(),
                    name: "ordering-OrderEventsQueue".into(),
                    url: url("ordering-OrderEventsQueue"),
                    arn: arn("ordering-OrderEventsQueue"),
                    visibility_timeout_seconds: 60,
                    message_retention_seconds: Some(345_600),
                    fifo: false,
                    redrive: Some(Redrive {
                        dead_letter_arn: arn("ordering-OrderEventsDLQ"),
                        max_receive_count: 5,
                    }),
                },
                QueueSpec {
                    logical_id: "ordering/OrderEventsDLQ".into(),
                    name: "ordering-OrderEventsDLQ".into(),
                    url: url("ordering-OrderEventsDLQ"),
                    arn: arn("ordering-OrderEventsDLQ"),
                    visibility_timeout_seconds: 30,
                    message_retention_seconds: Some(1_209_600),
                    fifo: false,
                    redrive: None,
                },
                QueueSpec {
                    logical_id: "ordering/PaymentsQueue".into(),
                    name: "ordering-dev-payments.fifo".into(),
                    url: url("ordering-dev-payments.fifo"),
                    arn: arn("ordering-dev-payments.fifo"),
                    visibility_timeout_seconds: 30,
                    message_retention_seconds: None,
                    fifo: true,
                    redrive: Some(Redrive {
                        dead_letter_arn: arn("ordering-PaymentsDLQ.fifo"),
                        max_receive_count: 3,
                    }),
                },
                QueueSpec {
                    logical_id: "ordering/PaymentsDLQ".into(),
                    name: "ordering-PaymentsDLQ.fifo".into(),
                    url: url("ordering-PaymentsDLQ.fifo"),
                    arn: arn("ordering-PaymentsDLQ.fifo"),
                    visibility_timeout_seconds: 30,
                    message_retention_seconds: None,
                    fifo: true,
                    redrive: None,
                },
            ]
        );

        assert_eq!(
            topology.rules,
            [
                RuleSpec {
                    logical_id: "AuditRule".into(),
                    name: "shop-AuditRule".into(),
                    bus_name: "shop-dev".into(),
                    pattern: serde_json::json!({"source": [{"prefix": "shop."}]}),
                    targets: vec![
                        RuleTarget {
                            id: "audit".into(),
                            arn: arn("shop-AuditQueue"),
                        },
                        RuleTarget {
                            id: "orders".into(),
                            arn: arn("ordering-OrderEventsQueue"),
                        },
                    ],
                },
                RuleSpec {
                    logical_id: "ordering/ProductEventsRule".into(),
                    name: "ordering-dev-product-events".into(),
                    bus_name: "shop-dev".into(),
                    pattern: serde_json::json!({
                        "source": ["shop.catalog"],
                        "detail-type": ["ProductCreated", "ProductDeleted"]
                    }),
                    targets: vec![RuleTarget {
                        id: "order-events".into(),
                        arn: arn("ordering-OrderEventsQueue"),
                    }],
                },
                RuleSpec {
                    logical_id: "ordering/PaymentEventsRule".into(),
                    name: "ordering-PaymentEventsRule".into(),
                    bus_name: "shop-dev".into(),
                    pattern: serde_json::json!({"source": ["shop.payments"]}),
                    targets: vec![RuleTarget {
                        id: "payments".into(),
                        arn: arn("ordering-OrderEventsQueue"),
                    }],
                },
            ]
        );

        assert_eq!(
            topology.queue_mappings,
            [
                QueueMappingSpec {
                    logical_id: "ordering/OrderEventsFunctionProductEvents".into(),
                    function: "ordering-OrderEventsFunction".into(),
                    queue_url: url("ordering-OrderEventsQueue"),
                    queue_arn: arn("ordering-OrderEventsQueue"),
                    batch_size: 5,
                    batching_window_seconds: 2,
                    report_batch_item_failures: true,
                    maximum_concurrency: Some(4),
                    filters: vec![serde_json::json!({"body": {"detail-type": ["ProductCreated"]}})],
                },
                QueueMappingSpec {
                    logical_id: "ordering/PaymentsMapping".into(),
                    function: "ordering-OrderEventsFunction".into(),
                    queue_url: url("ordering-dev-payments.fifo"),
                    queue_arn: arn("ordering-dev-payments.fifo"),
                    batch_size: 10,
                    batching_window_seconds: 0,
                    report_batch_item_failures: false,
                    maximum_concurrency: None,
                    filters: vec![],
                },
            ]
        );

        let functions: Vec<(&str, &str, u32)> = topology
            .functions
            .iter()
            .map(|f| (f.name.as_str(), f.binary.as_str(), f.timeout_seconds))
            .collect();
        assert_eq!(
            functions,
            [
                ("ordering-OrderEventsFunction", "ordering-events", 20),
                ("ordering-dev-api", "ordering-api", 20)
            ]
        );
        assert_eq!(
            topology.functions[0].environment["QUEUE_URL"],
            url("ordering-OrderEventsQueue")
        );
        assert_eq!(topology.functions[0].environment["STAGE"], "dev");

        assert_eq!(
            topology.routes,
            [RouteSpec {
                route_key: "POST /orders".into(),
                method: "POST".into(),
                path: "/orders".into(),
                function: "ordering-dev-api".into(),
                auth: RouteAuth::Jwt {
                    issuer: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_shoplocal"
                        .into(),
                    audience: vec!["shoplocalclient".into()],
                },
            }]
        );
        assert!(topology.stream_mappings.is_empty());
        assert_eq!(topology.tables.len(), 0);
        assert_eq!(
            topology.not_emulated,
            [
                "UserPool (AWS::Cognito::UserPool)",
                "UserPoolClient (AWS::Cognito::UserPoolClient)",
                "ordering/OrderEventsQueuePolicy (AWS::SQS::QueuePolicy)",
                "ordering/OrderEventsFunctionRole (AWS::IAM::Role)",
                "ordering/ApiFunctionRole (AWS::IAM::Role)",
                "ordering/DlqAlarm (AWS::CloudWatch::Alarm)",
            ]
        );
    }

    #[test]
    fn applications_nest_more_than_one_level() {
        let root = r#"
Resources:
  BillingService:
    Type: AWS::Serverless::Application
    Properties: {Location: billing/template.yaml}
Outputs:
  Url: {Value: !GetAtt BillingService.Outputs.Url}
"#;
        let billing = r#"
Resources:
  InvoicingService:
    Type: AWS::Serverless::Application
    Properties: {Location: ../invoicing.yaml}
Outputs:
  Url: {Value: !GetAtt InvoicingService.Outputs.Url}
"#;
        let invoicing = r#"
Resources:
  Queue: {Type: AWS::SQS::Queue}
  Alarm: {Type: AWS::CloudWatch::Alarm}
Outputs:
  Url: {Value: !Sub "${Queue}#${AWS::StackName}"}
"#;
        let nested = [
            ("/t/billing/template.yaml", billing),
            ("/t/billing/../invoicing.yaml", invoicing),
        ];
        let out = outputs_with(root, &nested, &options()).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            out["Url"],
            "http://127.0.0.1:4566/123456789012/billing-invoicing-Queue#shop-local-BillingService-InvoicingService"
        );
        let mut files = vec![(ROOT, root)];
        files.extend(nested);
        let topology = load_files(&files, &options()).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(topology.queues[0].logical_id, "billing/invoicing/Queue");
        assert_eq!(
            topology.not_emulated,
            ["billing/invoicing/Alarm (AWS::CloudWatch::Alarm)"]
        );
    }

    #[test]
    fn what_cannot_run_locally_is_rejected_naming_the_resource() {
        const TABLE: &str = "  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
";
        const QUEUE: &str = "  Queue: {Type: AWS::SQS::Queue}\n";
        let function = |events: &str| {
            format!(
                "  Fn:
    Type: AWS::Serverless::Function
    Metadata: {{BuildProperties: {{Binary: fn}}}}
    Properties:
      Events:
        Source:
{events}"
            )
        };
        let cases = [
            (
                format!("{TABLE}      LocalSecondaryIndexes: []\n"),
                "Table: not supported by the local runner: LocalSecondaryIndexes",
            ),
            (
                TABLE.replace("KeyType: HASH}]", "KeyType: HASH}, {AttributeName: sk, KeyType: RANGE}]"),
                "Table: KeySchema[1]: sk is not in AttributeDefinitions",
            ),
            (
                format!(
                    "{TABLE}{}",
                    function("          Type: DynamoDB\n          Properties: {Stream: !GetAtt Table.StreamArn, StartingPosition: LATEST}\n")
                ),
                "Fn: table Table has no StreamSpecification",
            ),
            (
                format!(
                    "{TABLE}      StreamSpecification: {{StreamViewType: KEYS_ONLY}}\n{}",
                    function("          Type: DynamoDB\n          Properties: {Stream: !GetAtt Table.StreamArn}\n")
                ),
                "Fn: Events.Source.Properties.StartingPosition is required",
            ),
            (
                format!(
                    "{QUEUE}{}",
                    function("          Type: SQS\n          Properties: {Queue: !GetAtt Queue.Arn, FunctionResponseTypes: [Other]}\n")
                ),
                "Fn: Events.Source.Properties.FunctionResponseTypes: the only response type is ReportBatchItemFailures",
            ),
            (
                format!(
                    "{QUEUE}{}",
                    function("          Type: SQS\n          Properties:\n            Queue: !GetAtt Queue.Arn\n            FilterCriteria: {Filters: [{Pattern: '{nope'}]}\n")
                ),
                "Fn: Events.Source.Properties.FilterCriteria.Filters[0].Pattern is not valid JSON",
            ),
            (
                format!(
                    "{TABLE}      StreamSpecification: {{StreamViewType: KEYS_ONLY}}\n  Topic: {{Type: AWS::SNS::Topic}}\n{}",
                    function("          Type: DynamoDB\n          Properties:\n            Stream: !GetAtt Table.StreamArn\n            StartingPosition: LATEST\n            DestinationConfig: {OnFailure: {Destination: !Ref Topic}}\n")
                ),
                "only SQS destinations are emulated",
            ),
            (
                "  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      RedrivePolicy: {deadLetterTargetArn: arn:aws:sqs:us-east-1:123456789012:elsewhere, maxReceiveCount: 3}\n".to_string(),
                "Queue: RedrivePolicy.deadLetterTargetArn arn:aws:sqs:us-east-1:123456789012:elsewhere is not a queue the templates declare",
            ),
            (
                "  A: {Type: AWS::SQS::Queue, Properties: {QueueName: same}}\n  B: {Type: AWS::SQS::Queue, Properties: {QueueName: same}}\n".to_string(),
                "B: queue name same is also A's",
            ),
            (
                "  Rule:\n    Type: AWS::Events::Rule\n    Properties: {EventBusName: other, EventPattern: {source: [x]}}\n".to_string(),
                "Rule: EventBusName other is not a bus the templates declare",
            ),
            (
                "  Rule:\n    Type: AWS::Events::Rule\n    Properties: {ScheduleExpression: rate(1 hour)}\n".to_string(),
                "Rule: not supported by the local runner: scheduled rules",
            ),
            (
                format!(
                    "{QUEUE}  Rule:\n    Type: AWS::Events::Rule\n    Properties:\n      EventPattern: {{source: [x]}}\n      Targets: [{{Id: q, Arn: !GetAtt Queue.Arn, InputPath: $.detail}}]\n"
                ),
                "Rule: not supported by the local runner: Targets[0].InputPath",
            ),
            (
                format!("{QUEUE}  Api: {{Type: AWS::ApiGatewayV2::Api}}\n  Other: {{Type: AWS::ApiGatewayV2::Api}}\n"),
                "Other: not supported by the local runner: a second HTTP API (the first is Api)",
            ),
            (
                "  App:\n    Type: AWS::Serverless::Application\n    Properties: {Location: {ApplicationId: x, SemanticVersion: 1.0.0}}\n".to_string(),
                "App: not supported by the local runner: Location must be the path of a local template",
            ),
        ];
        for (resources, expected) in cases {
            let template = format!("Resources:\n{resources}");
            let error = match load_files(&[(ROOT, &template)], &options()) {
                Ok(topology) => panic!("expected {expected:?} from\n{template}\ngot {topology:?}"),
                Err(error) => error.to_string(),
            };
            assert!(
                error.starts_with("/t/template.yaml: ") && error.contains(expected),
                "expected {expected:?} from\n{template}\ngot {error}"
            );
        }
    }
}
