//! `docs/openapi.yaml` kept true. The document's routes must be exactly the ones the
//! running shop serves (and protected exactly where the templates protect them); then a
//! scripted flow drives every documented operation through the real gateway and checks
//! each answer against the document: a status it lists for the operation, a content type
//! it lists for that status, a body valid against that schema, the documented headers.
//! What the flow sends is checked too: only documented parameters, and a request the shop
//! accepted must be one the document accepts. An operation never answered with success,
//! or a capability never answering an error of its own, fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::support::shop::{Shop, address};
use crate::support::{eventually, repo_root};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use shop_local::client::{HttpClient, http_client, send};
use shop_local::gateway::select_route;
use shop_local::template::{LoadOptions, load};
use shop_local::topology::{RouteAuth, RouteSpec};

/// Well-formed, and the id of nothing: the shop generates ULIDs from the current time.
const UNKNOWN_ID: &str = "01JAAAAAAAAAAAAAAAAAAAAAAA";
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// The OpenAPI document, with what the checks need to read it.
struct Document {
    doc: Value,
}

/// One operation of the document.
struct Operation<'d> {
    id: String,
    method: String,
    template: String,
    tag: String,
    spec: &'d Value,
    /// Path-level and operation-level parameters, references followed.
    parameters: Vec<&'d Value>,
}

impl<'d> Operation<'d> {
    fn route_key(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.template)
    }

    /// The role names of its security requirements; `None` when it is public.
    fn security(&self, document: &'d Document) -> Option<BTreeSet<String>> {
        let requirements = self
            .spec
            .get("security")
            .unwrap_or(&document.doc["security"]);
        let requirements = requirements.as_array()?;
        let mut roles = BTreeSet::new();
        let mut any = false;
        for requirement in requirements {
            for scopes in requirement.as_object().into_iter().flat_map(|r| r.values()) {
                any = true;
                roles.extend(
                    scopes
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_owned),
                );
            }
        }
        any.then_some(roles)
    }

    fn parameter(&self, location: &str, name: &str) -> Option<&'d Value> {
        self.parameters.iter().copied().find(|p| {
            p["in"] == location
                && p["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }
}

impl Document {
    fn read() -> Self {
        let path = repo_root().join("docs/openapi.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let doc = serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
        Self { doc }
    }

    /// `value`, or what its `$ref` (a pointer into this document) names, followed to the end.
    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            value = reference
                .strip_prefix('#')
                .and_then(|pointer| self.doc.pointer(pointer))
                .unwrap_or_else(|| panic!("$ref {reference} names nothing in the document"));
        }
        value
    }

    fn operations(&self) -> Vec<Operation<'_>> {
        let mut operations = Vec::new();
        let paths = self.doc["paths"]
            .as_object()
            .expect("the document has paths");
        for (template, item) in paths {
            let shared: Vec<&Value> = item["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| self.resolve(p))
                .collect();
            for method in METHODS {
                let Some(spec) = item.get(method) else {
                    continue;
                };
                let mut parameters: Vec<&Value> = spec["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| self.resolve(p))
                    .collect();
                parameters.extend(shared.iter().copied());
                operations.push(Operation {
                    id: spec["operationId"].as_str().unwrap_or_default().to_owned(),
                    method: method.to_owned(),
                    template: template.clone(),
                    tag: spec["tags"][0].as_str().unwrap_or_default().to_owned(),
                    spec,
                    parameters,
                });
            }
        }
        operations
    }

    fn operation(&self, route_key: &str) -> Operation<'_> {
        self.operations()
            .into_iter()
            .find(|o| o.route_key() == route_key)
            .unwrap_or_else(|| panic!("{route_key} is not in the document"))
    }

    /// The document's operations as API Gateway routes, so a request finds its operation
    /// the way the gateway finds its route.
    fn as_routes(&self) -> Vec<RouteSpec> {
        self.operations()
            .iter()
            .map(|o| RouteSpec {
                route_key: o.route_key(),
                method: o.method.to_uppercase(),
                path: o.template.clone(),
                function: o.id.clone(),
                auth: RouteAuth::None,
            })
            .collect()
    }

    /// Why `instance` does not match `schema` (empty when it does). `schema`'s references
    /// into `#/components` resolve against this document.
    fn schema_errors(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let mut root = schema.clone();
        if let Some(object) = root.as_object_mut() {
            object.insert("components".into(), self.doc["components"].clone());
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("a schema of the document does not compile: {e}"));
        validator
            .iter_errors(instance)
            .map(|error| format!("{error} (at `{}`)", error.instance_path()))
            .collect()
    }

    fn request_schema<'a>(&'a self, operation: &Operation<'a>) -> Option<&'a Value> {
        let body = self.resolve(operation.spec.get("requestBody")?);
        body["content"]["application/json"].get("schema")
    }
}

/// Who sends a request.
#[derive(Clone, Copy)]
enum Caller<'a> {
    Anonymous,
    Customer(&'a str),
    Admin(&'a str),
}

struct Request<'a> {
    method: String,
    path: String,
    caller: Caller<'a>,
    headers: Vec<(&'static str, String)>,
    /// Content type and text, sent as given.
    body: Option<(&'static str, String)>,
}

impl<'a> Request<'a> {
    fn new(method: &str, path: impl Into<String>, caller: Caller<'a>) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            path: path.into(),
            caller,
            headers: Vec::new(),
            body: None,
        }
    }

    fn get(path: impl Into<String>, caller: Caller<'a>) -> Self {
        Self::new("GET", path, caller)
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some(("application/json", body.to_string()));
        self
    }

    fn raw(mut self, content_type: &'static str, text: impl Into<String>) -> Self {
        self.body = Some((content_type, text.into()));
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

struct Answer {
    status: u16,
    body: Value,
}

/// The document checked against a running shop: every exchange goes through
/// [`Contract::send`], which fails the test at the first disagreement, naming it.
struct Contract {
    document: Document,
    routes: Vec<RouteSpec>,
    url: String,
    http: HttpClient,
    /// Statuses seen per operation id.
    seen: Mutex<BTreeMap<String, BTreeSet<u16>>>,
}

impl Contract {
    fn new(document: Document, url: &str) -> Self {
        let routes = document.as_routes();
        Self {
            document,
            routes,
            url: url.to_owned(),
            http: http_client(),
            seen: Mutex::new(BTreeMap::new()),
        }
    }

    async fn send(&self, request: Request<'_>) -> Answer {
        let (path, query) = match request.path.split_once('?') {
            Some((path, query)) => (path, query),
            None => (request.path.as_str(), ""),
        };
        let route = select_route(&self.routes, &request.method, path)
            .unwrap_or_else(|| panic!("{} {path} is not in the document", request.method));
        let operation = self.document.operation(&route.route.route_key);
        let what = format!("{} {} ({})", request.method, request.path, operation.id);

        let mut http_request = http::Request::builder()
            .method(request.method.as_str())
            .uri(format!("{}{}", self.url, request.path));
        if let Caller::Customer(token) | Caller::Admin(token) = request.caller {
            http_request = http_request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in &request.headers {
            http_request = http_request.header(*name, value);
        }
        let body = match &request.body {
            Some((content_type, text)) => {
                http_request = http_request.header("content-type", *content_type);
                Bytes::from(text.clone())
            }
            None => Bytes::new(),
        };
        let response = send(&self.http, http_request.body(Full::new(body)).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
        let status = response.status().as_u16();
        let text = String::from_utf8_lossy(response.body()).into_owned();
        let what = format!("{what} answered {status} {text}");

        self.check_request(&operation, &request, query, status, &what);
        self.check_security(&operation, request.caller, status, &what);
        let body = self.check_response(&operation, &response, &what);
        self.seen
            .lock()
            .unwrap()
            .entry(operation.id.clone())
            .or_default()
            .insert(status);
        Answer { status, body }
    }

    /// What was sent is what the document describes; when the shop took it (2xx), the
    /// document must take it too.
    fn check_request(
        &self,
        operation: &Operation<'_>,
        request: &Request<'_>,
        query: &str,
        status: u16,
        what: &str,
    ) {
        let accepted = (200..300).contains(&status);
        let pairs: Vec<(&str, &str)> = query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .collect();
        for (name, value) in &pairs {
            let parameter = operation
                .parameter("query", name)
                .unwrap_or_else(|| panic!("{what}: query parameter `{name}` is not documented"));
            if accepted {
                self.check_parameter(parameter, value, what);
            }
        }
        for (name, value) in &request.headers {
            let parameter = operation
                .parameter("header", name)
                .unwrap_or_else(|| panic!("{what}: request header `{name}` is not documented"));
            if accepted {
                self.check_parameter(parameter, value, what);
            }
        }
        if accepted {
            let path = request.path.split('?').next().unwrap_or_default();
            let matched = select_route(&self.routes, &request.method, path).unwrap();
            for (name, value) in &matched.path_parameters {
                let parameter = operation
                    .parameter("path", name)
                    .unwrap_or_else(|| panic!("{what}: path parameter `{name}` is not documented"));
                self.check_parameter(parameter, value, what);
            }
            for parameter in &operation.parameters {
                let name = parameter["name"].as_str().unwrap_or_default();
                let sent = match parameter["in"].as_str() {
                    Some("query") => pairs.iter().any(|(n, _)| *n == name),
                    Some("header") => request
                        .headers
                        .iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case(name)),
                    _ => true,
                };
                assert!(
                    sent || parameter["required"] != true,
                    "{what}: accepted without the required parameter `{name}`"
                );
            }
        }
        match (self.document.request_schema(operation), &request.body) {
            (None, Some(_)) => panic!("{what}: sent a body, but the operation documents none"),
            (Some(schema), Some((_, text))) if accepted => {
                let body: Value = serde_json::from_str(text).unwrap();
                let errors = self.document.schema_errors(schema, &body);
                assert!(
                    errors.is_empty(),
                    "{what}: the shop accepted a body the document refuses: {errors:#?}"
                );
            }
            (Some(_), None) if accepted => {
                let required =
                    self.document.resolve(&operation.spec["requestBody"])["required"] == true;
                assert!(!required, "{what}: accepted without its required body");
            }
            _ => {}
        }
    }

    /// A parameter's value against its schema; integers are sent as text, so they are
    /// read as numbers where the schema says so.
    fn check_parameter(&self, parameter: &Value, value: &str, what: &str) {
        let schema = self.document.resolve(&parameter["schema"]);
        let value = match (schema["type"].as_str(), value.parse::<i64>()) {
            (Some("integer"), Ok(number)) => json!(number),
            _ => json!(value),
        };
        let errors = self.document.schema_errors(&parameter["schema"], &value);
        assert!(
            errors.is_empty(),
            "{what}: parameter `{}` = {value} was accepted but the document refuses it: {errors:#?}",
            parameter["name"]
        );
    }

    /// The document's security requirements, as the answers show them: a token is needed
    /// exactly where it says, and only the admin role is ever refused with 403.
    fn check_security(
        &self,
        operation: &Operation<'_>,
        caller: Caller<'_>,
        status: u16,
        what: &str,
    ) {
        match (operation.security(&self.document), caller) {
            (None, _) => assert!(
                status != 401 && status != 403,
                "{what}: the document says the operation is public"
            ),
            (Some(_), Caller::Anonymous) => assert_eq!(
                status, 401,
                "{what}: the document says the operation needs a token"
            ),
            (Some(roles), Caller::Customer(_)) if roles.contains("admin") => assert_eq!(
                status, 403,
                "{what}: the document says the operation is for admins"
            ),
            (Some(_), _) => assert!(
                status != 401 && status != 403,
                "{what}: a valid token of a caller the document allows was refused"
            ),
        }
    }

    /// The answer against the document: its status, headers, content type and body.
    fn check_response(
        &self,
        operation: &Operation<'_>,
        response: &http::Response<Bytes>,
        what: &str,
    ) -> Value {
        let status = response.status().as_u16();
        let responses = &operation.spec["responses"];
        let Some(documented) = responses.get(status.to_string()) else {
            let listed: Vec<&String> = responses
                .as_object()
                .map(|r| r.keys().collect())
                .unwrap_or_default();
            panic!("{what}: the document lists only {listed:?} for this operation");
        };
        let documented = self.document.resolve(documented);

        for (name, header) in documented["headers"].as_object().into_iter().flatten() {
            let header = self.document.resolve(header);
            match response.headers().get(name.as_str()) {
                None => assert!(
                    header["required"] != true,
                    "{what}: no `{name}` header, which the document requires"
                ),
                Some(value) => {
                    let value = json!(value.to_str().unwrap_or_default());
                    let errors = self.document.schema_errors(&header["schema"], &value);
                    assert!(
                        errors.is_empty(),
                        "{what}: header `{name}` = {value} does not match the document: {errors:#?}"
                    );
                }
            }
        }

        let content = documented["content"].as_object().filter(|c| !c.is_empty());
        let Some(content) = content else {
            assert!(
                response.body().is_empty(),
                "{what}: a body where the document says there is none"
            );
            return Value::Null;
        };
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let Some(media) = content.get(&content_type) else {
            let listed: Vec<&String> = content.keys().collect();
            panic!("{what}: content type `{content_type}`, the document lists {listed:?}");
        };
        let body: Value = serde_json::from_slice(response.body())
            .unwrap_or_else(|e| panic!("{what}: the body is not JSON: {e}"));
        let errors = self.document.schema_errors(&media["schema"], &body);
        assert!(
            errors.is_empty(),
            "{what}: the body does not match the document's `{content_type}` schema: {errors:#?}"
        );
        if content_type == "application/problem+json" {
            assert_eq!(
                body["status"], status,
                "{what}: the problem's status is not the answer's"
            );
        }
        body
    }

    /// The document refuses this body for the operation, as the shop did.
    fn assert_document_refuses(&self, route_key: &str, body: &Value) {
        let operation = self.document.operation(route_key);
        let schema = self
            .document
            .request_schema(&operation)
            .unwrap_or_else(|| panic!("{route_key} documents no body"));
        assert!(
            !self.document.schema_errors(schema, body).is_empty(),
            "{route_key}: the shop refused {body} with a 422, but the document's schema takes it"
        );
    }

    /// Fails unless every operation answered a success and every capability answered at
    /// least one error of its own (not the authorizer's 401 nor the admin check's 403);
    /// prints what each operation answered, beside what the document lists.
    fn assert_everything_exercised(&self) {
        let seen = self.seen.lock().unwrap();
        let mut missing = Vec::new();
        let mut handler_errors: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
        println!("\noperation                 documented                      exercised");
        for operation in self.document.operations() {
            let statuses = seen.get(&operation.id).cloned().unwrap_or_default();
            let documented: Vec<&String> = operation.spec["responses"]
                .as_object()
                .map(|r| r.keys().collect())
                .unwrap_or_default();
            println!(
                "{:<25} {:<31} {:?}",
                operation.id,
                documented
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                statuses
            );
            if !statuses.iter().any(|s| (200..300).contains(s)) {
                missing.push(format!(
                    "{} ({}) never answered with success",
                    operation.route_key(),
                    operation.id
                ));
            }
            handler_errors
                .entry(operation.tag.clone())
                .or_default()
                .extend(
                    statuses
                        .iter()
                        .filter(|s| (400..500).contains(*s) && **s != 401 && **s != 403),
                );
        }
        for (tag, errors) in &handler_errors {
            if errors.is_empty() {
                missing.push(format!("{tag} never answered an error of its own"));
            }
        }
        assert!(missing.is_empty(), "not exercised: {missing:#?}");
    }
}

/// `POST /basket/checkout`, under `key` when there is one.
fn checkout<'a>(caller: Caller<'a>, key: Option<&str>, body: Value) -> Request<'a> {
    let request = Request::new("POST", "/basket/checkout", caller).json(body);
    match key {
        Some(key) => request.header("idempotency-key", key),
        None => request,
    }
}

/// `template` with every `{parameter}` replaced by `value`.
fn fill(template: &str, value: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                value
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The routes the running shop serves: its gateway routes exactly the topology that
/// shop-local reads from the templates, which this reads the same way.
fn served_routes(api_url: &str) -> Vec<RouteSpec> {
    // moto's endpoint only spells queue URLs, which routes do not use.
    let options = LoadOptions {
        endpoint_url: "http://127.0.0.1:1".into(),
        api_url: api_url.into(),
        parameters: BTreeMap::new(),
    };
    load(&repo_root().join("template.yaml"), &options)
        .unwrap_or_else(|e| panic!("the templates do not load: {e}"))
        .routes
}

/// Both directions of a set difference, for a failure message a person can act on.
fn difference(documented: &BTreeSet<String>, served: &BTreeSet<String>) -> String {
    let only_documented: Vec<&String> = documented.difference(served).collect();
    let only_served: Vec<&String> = served.difference(documented).collect();
    format!(
        "documented but not served: {only_documented:#?}\nserved but not documented: {only_served:#?}"
    )
}

/// The document on its own: sound references, one operation id each, a capability tag
/// and a summary on every operation, path parameters declared, and every example valid
/// against its schema. Needs no running shop.
#[test]
fn the_document_is_sound() {
    let document = Document::read();
    assert_eq!(document.doc["openapi"], "3.1.0");
    let capabilities: BTreeSet<&str> = document.doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();

    let mut references = Vec::new();
    collect_references(&document.doc, &mut references);
    for reference in &references {
        let target = reference
            .strip_prefix('#')
            .and_then(|p| document.doc.pointer(p));
        assert!(target.is_some(), "$ref {reference} names nothing");
    }

    let mut ids = BTreeSet::new();
    for operation in document.operations() {
        let key = operation.route_key();
        assert!(
            ids.insert(operation.id.clone()),
            "{key}: operationId {} twice",
            operation.id
        );
        assert!(!operation.id.is_empty(), "{key}: no operationId");
        assert!(
            capabilities.contains(operation.tag.as_str()),
            "{key}: tag {:?}",
            operation.tag
        );
        assert!(operation.spec["summary"].is_string(), "{key}: no summary");
        assert!(
            operation.spec["responses"].is_object(),
            "{key}: no responses"
        );
        for segment in operation.template.split('/') {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                assert!(
                    operation.parameter("path", name).is_some(),
                    "{key}: path parameter {name} is not declared"
                );
            }
        }
    }

    let mut examples = Vec::new();
    collect_examples(&document.doc, "", &mut examples);
    assert!(!examples.is_empty());
    for (at, schema, example) in &examples {
        let errors = document.schema_errors(schema, example);
        assert!(
            errors.is_empty(),
            "the example at {at} is not valid: {errors:#?}"
        );
    }
}

fn collect_references(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
                into.push(reference.to_owned());
            }
            object.values().for_each(|v| collect_references(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, into)),
        _ => {}
    }
}

/// (where, schema, example): media types' and parameters' `example`, and schemas' `examples`.
fn collect_examples(value: &Value, at: &str, into: &mut Vec<(String, Value, Value)>) {
    let Value::Object(object) = value else {
        if let Value::Array(items) = value {
            for (index, item) in items.iter().enumerate() {
                collect_examples(item, &format!("{at}/{index}"), into);
            }
        }
        return;
    };
    if let (Some(schema), Some(example)) = (object.get("schema"), object.get("example")) {
        into.push((at.to_owned(), schema.clone(), example.clone()));
    }
    if let Some(examples) = object.get("examples").and_then(Value::as_array) {
        let mut schema = value.clone();
        if let Some(schema) = schema.as_object_mut() {
            schema.remove("examples");
        }
        for example in examples {
            into.push((at.to_owned(), schema.clone(), example.clone()));
        }
    }
    for (key, child) in object {
        collect_examples(child, &format!("{at}/{key}"), into);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_is_what_the_shop_serves_and_answers() {
    let shop = Shop::start(&[]);
    let stack = &shop.stack;
    let contract = Contract::new(Document::read(), &stack.url);
    let admin = Caller::Admin(&shop.admin);
    let ada_token = stack.token("openapi-ada", false);
    let bob_token = stack.token("openapi-bob", false);
    let ada = Caller::Customer(&ada_token);
    let bob = Caller::Customer(&bob_token);
    let anonymous = Caller::Anonymous;

    // The routes: the document's, the running shop's, and who may call them.
    let served = served_routes(&stack.url);
    let served_keys: BTreeSet<String> = served.iter().map(|r| r.route_key.clone()).collect();
    let documented_keys: BTreeSet<String> = contract
        .document
        .operations()
        .iter()
        .map(Operation::route_key)
        .collect();
    assert!(
        documented_keys == served_keys,
        "docs/openapi.yaml and the running shop disagree on the routes:\n{}",
        difference(&documented_keys, &served_keys)
    );
    for route in &served {
        let operation = contract.document.operation(&route.route_key);
        let protected = matches!(route.auth, RouteAuth::Jwt { .. });
        assert_eq!(
            operation.security(&contract.document).is_some(),
            protected,
            "{}: the template {} a token, the document says otherwise",
            route.route_key,
            if protected {
                "requires"
            } else {
                "does not require"
            }
        );
    }
    // Every served route, called without a token, answers as documented: from its
    // function, or from the authorizer where one is needed; never the gateway's
    // "no such route" (a 404 in API Gateway's words, which no operation lists).
    for route in &served {
        let path = fill(&route.path, UNKNOWN_ID);
        contract
            .send(Request::new(&route.method, path, anonymous))
            .await;
    }
    // A customer's token on every admin operation is refused (check_security says 403).
    for operation in contract.document.operations() {
        if operation
            .security(&contract.document)
            .is_some_and(|roles| roles.contains("admin"))
        {
            let path = fill(&operation.template, UNKNOWN_ID);
            contract
                .send(Request::new(&operation.method, path, ada))
                .await;
        }
    }

    // Health, per capability.
    for capability in [
        "catalog",
        "inventory",
        "basket",
        "ordering",
        "payment",
        "shipping",
    ] {
        let answer = contract
            .send(Request::get(format!("/health/{capability}"), anonymous))
            .await;
        assert_eq!(answer.status, 200);
    }

    // Catalog: an admin creates, lists, replaces and deletes.
    let lamp_body = json!({"name": "OpenAPI Lamp", "description": "Brass.",
        "category": "openapi-lighting", "price": {"amount": 4500, "currency": "USD"},
        "imageUrl": "https://img.example.com/lamp.jpg"});
    let created = contract
        .send(
            Request::new("POST", "/products", admin)
                .json(lamp_body.clone())
                .header("x-correlation-id", "openapi-create-lamp"),
        )
        .await;
    assert_eq!(created.status, 201);
    let lamp = created.body["id"].as_str().unwrap().to_owned();
    let mut kitchen = Vec::new();
    for name in ["OpenAPI Mug", "OpenAPI Doomed Pan"] {
        let body = json!({"name": name, "category": "openapi-kitchen",
            "price": {"amount": 1200, "currency": "USD"}});
        let created = contract
            .send(Request::new("POST", "/products", admin).json(body))
            .await;
        assert_eq!(created.status, 201);
        kitchen.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let (mug, doomed) = (kitchen[0].clone(), kitchen[1].clone());

    let malformed = contract
        .send(Request::new("POST", "/products", admin).raw("application/json", "{\"name\": "))
        .await;
    assert_eq!(malformed.status, 400);
    let free = json!({"name": "Free", "category": "x", "price": {"amount": 0, "currency": "USD"}});
    let invalid = contract
        .send(Request::new("POST", "/products", admin).json(free.clone()))
        .await;
    assert_eq!(invalid.status, 422);
    contract.assert_document_refuses("POST /products", &free);
    let not_json = contract
        .send(Request::new("POST", "/products", admin).raw("text/plain", "a lamp"))
        .await;
    assert_eq!(not_json.status, 415);
    let huge = json!({"name": "Huge", "category": "x", "description": "x".repeat(17 * 1024),
        "price": {"amount": 1, "currency": "USD"}});
    let too_large = contract
        .send(Request::new("POST", "/products", admin).json(huge))
        .await;
    assert_eq!(too_large.status, 413);

    let first_page = contract
        .send(Request::get(
            "/products?category=openapi-kitchen&limit=1",
            anonymous,
        ))
        .await;
    assert_eq!(first_page.status, 200);
    let cursor = first_page.body["nextCursor"]
        .as_str()
        .expect("two kitchen products, one per page")
        .to_owned();
    let second_page = contract
        .send(Request::get(
            format!("/products?category=openapi-kitchen&limit=1&cursor={cursor}"),
            anonymous,
        ))
        .await;
    assert_eq!(second_page.status, 200);
    let foreign_cursor = contract
        .send(Request::get(
            format!("/products?category=openapi-lighting&cursor={cursor}"),
            anonymous,
        ))
        .await;
    assert_eq!(foreign_cursor.status, 400);
    let bad_limit = contract
        .send(Request::get("/products?limit=0", anonymous))
        .await;
    assert_eq!(bad_limit.status, 422);
    assert_eq!(
        contract
            .send(Request::get("/products", anonymous))
            .await
            .status,
        200
    );

    let product = contract
        .send(Request::get(format!("/products/{lamp}"), anonymous))
        .await;
    assert_eq!(product.status, 200);
    let unknown = contract
        .send(Request::get(format!("/products/{UNKNOWN_ID}"), anonymous))
        .await;
    assert_eq!(unknown.status, 404);
    let mut repriced = lamp_body.clone();
    repriced["price"]["amount"] = json!(4900);
    let replaced = contract
        .send(Request::new("PUT", format!("/products/{lamp}"), admin).json(repriced.clone()))
        .await;
    assert_eq!(
        (replaced.status, &replaced.body["version"]),
        (200, &json!(2))
    );
    let replace_unknown = contract
        .send(Request::new("PUT", format!("/products/{UNKNOWN_ID}"), admin).json(repriced))
        .await;
    assert_eq!(replace_unknown.status, 404);
    let deleted = contract
        .send(Request::new("DELETE", format!("/products/{doomed}"), admin))
        .await;
    assert_eq!(deleted.status, 204);
    let deleted_again = contract
        .send(Request::new("DELETE", format!("/products/{doomed}"), admin))
        .await;
    assert_eq!(deleted_again.status, 404);

    // Inventory: an admin stocks the products.
    for (product, available) in [(&lamp, 10), (&mug, 5)] {
        let stock = contract
            .send(
                Request::new("PUT", format!("/inventory/{product}"), admin)
                    .json(json!({"available": available})),
            )
            .await;
        assert_eq!(stock.status, 200);
    }
    for refused in [
        json!({"available": -1}),
        json!({"available": 1, "reserved": 3}),
        json!({"available": 1, "shards": 0}),
        json!({"available": 1, "shards": 33}),
    ] {
        let answer = contract
            .send(Request::new("PUT", format!("/inventory/{lamp}"), admin).json(refused.clone()))
            .await;
        assert_eq!(answer.status, 422);
        contract.assert_document_refuses("PUT /inventory/{productId}", &refused);
    }
    let stock = contract
        .send(Request::get(format!("/inventory/{lamp}"), admin))
        .await;
    assert_eq!(stock.status, 200);
    let never_stocked = contract
        .send(Request::get(format!("/inventory/{UNKNOWN_ID}"), admin))
        .await;
    assert_eq!(never_stocked.status, 404);
    // Once ProductDeleted has reached inventory, the deleted product cannot be stocked.
    eventually("inventory refuses to stock a deleted product", async || {
        let answer = contract
            .send(
                Request::new("PUT", format!("/inventory/{doomed}"), admin)
                    .json(json!({"available": 1})),
            )
            .await;
        (answer.status == 409).then_some(())
    })
    .await;

    // Basket: ada fills hers; bob's stays empty.
    assert_eq!(
        contract.send(Request::get("/basket", ada)).await.status,
        200
    );
    for (product, quantity) in [(&lamp, 2), (&mug, 1)] {
        eventually("the basket knows the product", async || {
            let answer = contract
                .send(
                    Request::new("PUT", format!("/basket/items/{product}"), ada)
                        .json(json!({"quantity": quantity})),
                )
                .await;
            (answer.status == 200).then_some(())
        })
        .await;
    }
    let removed = contract
        .send(Request::new("DELETE", format!("/basket/items/{mug}"), ada))
        .await;
    assert_eq!(removed.status, 200);
    let none = json!({"quantity": 0});
    let zero = contract
        .send(Request::new("PUT", format!("/basket/items/{lamp}"), ada).json(none.clone()))
        .await;
    assert_eq!(zero.status, 422);
    contract.assert_document_refuses("PUT /basket/items/{productId}", &none);
    let unknown_item = contract
        .send(
            Request::new("PUT", format!("/basket/items/{UNKNOWN_ID}"), ada)
                .json(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(unknown_item.status, 404);

    let visa = json!({"shippingAddress": address(), "paymentToken": "tok_visa"});
    let no_key = contract.send(checkout(ada, None, visa.clone())).await;
    assert_eq!(no_key.status, 400);
    let short_key = contract
        .send(checkout(ada, Some("short"), visa.clone()))
        .await;
    assert_eq!(short_key.status, 400);
    let mut nowhere = visa.clone();
    nowhere["shippingAddress"]["country"] = json!("XX");
    let bad_country = contract
        .send(checkout(ada, Some("openapi-bad-country"), nowhere))
        .await;
    assert_eq!(bad_country.status, 422);
    let empty = contract
        .send(checkout(bob, Some("openapi-bob-empty"), visa.clone()))
        .await;
    assert_eq!(empty.status, 422);
    let placed = contract
        .send(checkout(ada, Some("openapi-ada-order-1"), visa.clone()))
        .await;
    assert_eq!(placed.status, 202);
    let paid_order = placed.body["orderId"].as_str().unwrap().to_owned();
    let replayed = contract
        .send(checkout(ada, Some("openapi-ada-order-1"), visa.clone()))
        .await;
    assert_eq!(replayed.body["orderId"], placed.body["orderId"]);

    // Ordering: the order settles; only its owner (and admins) see it.
    let settled = |order: String| {
        let contract = &contract;
        async move {
            eventually("the order settles", async || {
                let answer = contract
                    .send(Request::get(format!("/orders/{order}"), ada))
                    .await;
                let status = answer.body["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                (answer.status == 200 && crate::support::shop::is_settled(&status))
                    .then_some(status)
            })
            .await
        }
    };
    assert_eq!(settled(paid_order.clone()).await, "paid");
    let strangers = contract
        .send(Request::get(format!("/orders/{paid_order}"), bob))
        .await;
    assert_eq!(strangers.status, 404);
    let admins = contract
        .send(Request::get(format!("/orders/{paid_order}"), admin))
        .await;
    assert_eq!(admins.status, 200);
    let strangers_cancel = contract
        .send(Request::new(
            "POST",
            format!("/orders/{paid_order}/cancel"),
            bob,
        ))
        .await;
    assert_eq!(strangers_cancel.status, 404);

    // Payment.
    let payment = contract
        .send(Request::get(format!("/payments/{paid_order}"), admin))
        .await;
    assert_eq!(
        (payment.status, &payment.body["status"]),
        (200, &json!("succeeded"))
    );
    let no_payment = contract
        .send(Request::get(format!("/payments/{UNKNOWN_ID}"), admin))
        .await;
    assert_eq!(no_payment.status, 404);

    // Shipping: the admin's work list, dispatch and delivery.
    eventually("the shipment is prepared", async || {
        let answer = contract
            .send(Request::get(format!("/shipments/{paid_order}"), admin))
            .await;
        (answer.status == 200).then_some(())
    })
    .await;
    let pending = contract
        .send(Request::get("/shipments?status=pending&limit=50", admin))
        .await;
    assert_eq!(pending.status, 200);
    for bad in ["/shipments", "/shipments?status=lost"] {
        assert_eq!(contract.send(Request::get(bad, admin)).await.status, 422);
    }
    let step =
        |order: &str, step: &str| Request::new("POST", format!("/shipments/{order}/{step}"), admin);
    assert_eq!(
        contract.send(step(&paid_order, "deliver")).await.status,
        409
    );
    assert_eq!(
        contract.send(step(&paid_order, "dispatch")).await.status,
        200
    );
    assert_eq!(
        contract.send(step(UNKNOWN_ID, "dispatch")).await.status,
        404
    );
    eventually("the order ships", async || {
        let answer = contract
            .send(Request::get(format!("/orders/{paid_order}"), ada))
            .await;
        (answer.body["status"] == "shipped").then_some(())
    })
    .await;
    let too_late = contract
        .send(Request::new(
            "POST",
            format!("/orders/{paid_order}/cancel"),
            ada,
        ))
        .await;
    assert_eq!(too_late.status, 409);
    assert_eq!(
        contract.send(step(&paid_order, "deliver")).await.status,
        200
    );
    let delivered = contract
        .send(Request::get("/shipments?status=delivered", admin))
        .await;
    assert_eq!(delivered.status, 200);

    // A cancellation after payment: 202, then 200; refunded, shipment cancelled.
    eventually("the lamp goes into the basket again", async || {
        let answer = contract
            .send(
                Request::new("PUT", format!("/basket/items/{lamp}"), ada)
                    .json(json!({"quantity": 1})),
            )
            .await;
        (answer.status == 200).then_some(())
    })
    .await;
    let placed = contract
        .send(checkout(ada, Some("openapi-ada-order-2"), visa.clone()))
        .await;
    let cancelled_order = placed.body["orderId"].as_str().unwrap().to_owned();
    assert_eq!(settled(cancelled_order.clone()).await, "paid");
    let cancel = Request::new("POST", format!("/orders/{cancelled_order}/cancel"), ada);
    assert_eq!(contract.send(cancel).await.status, 202);
    let cancel = Request::new("POST", format!("/orders/{cancelled_order}/cancel"), ada);
    assert_eq!(contract.send(cancel).await.status, 200);
    eventually("the payment is refunded", async || {
        let answer = contract
            .send(Request::get(format!("/payments/{cancelled_order}"), admin))
            .await;
        (answer.body["status"] == "refunded").then_some(())
    })
    .await;
    eventually("the shipment is cancelled", async || {
        let answer = contract
            .send(Request::get(format!("/shipments/{cancelled_order}"), admin))
            .await;
        (answer.body["status"] == "cancelled").then_some(())
    })
    .await;
    let cancelled = contract
        .send(Request::get("/shipments?status=cancelled&limit=1", admin))
        .await;
    assert_eq!(cancelled.status, 200);

    // A declined card: a failed payment, an order cancelled for it.
    eventually("the mug goes into the basket", async || {
        let answer = contract
            .send(
                Request::new("PUT", format!("/basket/items/{mug}"), ada)
                    .json(json!({"quantity": 1})),
            )
            .await;
        (answer.status == 200).then_some(())
    })
    .await;
    let declined = json!({"shippingAddress": address(), "paymentToken": "tok_decline_openapi"});
    let placed = contract
        .send(checkout(ada, Some("openapi-ada-order-3"), declined))
        .await;
    let declined_order = placed.body["orderId"].as_str().unwrap().to_owned();
    assert_eq!(settled(declined_order.clone()).await, "cancelled");
    let failed = contract
        .send(Request::get(format!("/payments/{declined_order}"), admin))
        .await;
    assert_eq!(
        (
            failed.status,
            &failed.body["status"],
            &failed.body["reason"]
        ),
        (200, &json!("failed"), &json!("declined"))
    );

    // Ada's three orders, two to a page.
    let page = contract.send(Request::get("/orders?limit=2", ada)).await;
    assert_eq!(page.status, 200);
    let cursor = page.body["nextCursor"]
        .as_str()
        .expect("three orders, two per page");
    let rest = contract
        .send(Request::get(
            format!("/orders?limit=2&cursor={cursor}"),
            ada,
        ))
        .await;
    assert_eq!(rest.status, 200);
    let bad_limit = contract.send(Request::get("/orders?limit=101", ada)).await;
    assert_eq!(bad_limit.status, 422);
    assert_eq!(
        contract.send(Request::get("/basket", ada)).await.status,
        200
    );

    contract.assert_everything_exercised();
    let started = stack.started_pids().await;
    shop.stack.stop_with("INT", &started);
}
