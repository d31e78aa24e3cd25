//! Reads the project's SAM/CloudFormation templates into a resolved [`Topology`], so that the
//! local runner creates exactly what the templates declare and local and deployed topologies
//! cannot drift.
//!
//! How it works:
//! 1. `document.rs` parses the root template and, recursively, every
//!    `AWS::Serverless::Application` whose `Location` is a local template. Each file becomes a
//!    `Stack`; YAML short tags (`!Ref`, `!Sub`, ...) are turned into their long JSON form
//!    (`{"Ref": ..}`, `{"Fn::Sub": ..}`) on the way, so the evaluator only knows one form.
//! 2. A `Loader` evaluates intrinsic functions lazily (`intrinsics.rs`, `parameters.rs`,
//!    `attributes.rs`): only the properties the runner needs are evaluated, when they are
//!    needed. A `Ref` to a resource computes that resource's physical name on demand, a nested
//!    stack's parameter is evaluated in its parent when first used, and
//!    `!GetAtt App.Outputs.X` evaluates the nested output. Circular references are reported
//!    instead of overflowing the stack.
//! 3. `Loader::topology` (here) walks every created resource twice: first what others point at
//!    (tables, queues, buses, functions, integrations, authorizers), then what points at them
//!    (rules, routes, event source mappings), so a reference can cross templates. Each resource
//!    family has its own file: `tables.rs`, `messaging.rs`, `functions.rs`, `event_sources.rs`
//!    and `api.rs`.
//!
//! Physical names and ids follow fixed local conventions (`names.rs`, and see `load`'s doc),
//! which is what lets the provisioner, the runner and the token issuer agree without talking to
//! each other.

mod api;
mod attributes;
mod document;
mod event_sources;
mod functions;
mod intrinsics;
mod messaging;
mod names;
mod parameters;
mod props;
mod secrets;
mod tables;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use self::document::{Resource, Stack, read_tree};
use self::messaging::check_dead_letter_queue;
use self::names::{
    API_STAGE, APPLICATION, AUTHORIZER, BUS, EVENT_SOURCE_MAPPING, FUNCTION, FUNCTION_URL,
    HTTP_API, INTEGRATION, QUEUE, ROUTE, RULE, SECRET, TABLE, is_websocket,
};
use self::props::Scope;
use crate::topology::Topology;

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

/// Evaluates intrinsic functions over the tree of stacks, lazily and with memoised parameters.
struct Loader<'o> {
    options: &'o LoadOptions,
    stacks: Vec<Stack>,
    parameter_values: RefCell<HashMap<(usize, String), Json>>,
    /// What is being evaluated right now (`catalog/ProductsTable`, `catalog/Parameters.Stage`),
    /// to report a circular reference instead of recursing forever.
    active: RefCell<Vec<String>>,
}

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

    fn scope_of(&self, placed: &Placed) -> Scope<'_> {
        self.scope(placed.stack, placed.resource.id.clone())
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
}

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
    websocket_api: Option<String>,
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
                self.place(self.stacks[stack].child(&resource.id)?, placed)?;
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
        let scope = self.scope_of(placed);
        let api_resource_id = |kind| self.api_resource_id(kind, placed.stack, &placed.resource.id);
        match placed.resource.kind.as_str() {
            TABLE => push_unique(
                &scope,
                "table",
                &mut topology.tables,
                self.table(&scope, placed)?,
                |table| (&table.name, &table.logical_id),
            )?,
            QUEUE => push_unique(
                &scope,
                "queue",
                &mut topology.queues,
                self.queue(&scope, placed)?,
                |queue| (&queue.name, &queue.logical_id),
            )?,
            BUS => push_unique(
                &scope,
                "event bus",
                &mut topology.buses,
                self.bus(placed)?,
                |bus| (&bus.name, &bus.logical_id),
            )?,
            FUNCTION => push_unique(
                &scope,
                "function",
                &mut topology.functions,
                self.function(&scope, placed)?,
                |function| (&function.name, &function.logical_id),
            )?,
            SECRET => push_unique(
                &scope,
                "secret",
                &mut topology.secrets,
                self.secret(&scope, placed)?,
                |secret| (&secret.name, &secret.logical_id),
            )?,
            FUNCTION_URL => topology
                .function_urls
                .push(self.function_url(&scope, placed)?),
            HTTP_API if is_websocket(placed.resource) => {
                // Served under one local path with one id, as the HTTP API is.
                if let Some(other) = links.websocket_api.replace(placed.id.clone()) {
                    return Err(scope.unsupported(format!(
                        "a second WebSocket API (the first is {other}): one is served locally"
                    )));
                }
                topology.websocket = Some(self.websocket_api(&scope, placed)?);
            }
            HTTP_API => {
                // Every API would be served at the one local base URL under the one id.
                if let Some(other) = links.api.replace(placed.id.clone()) {
                    return Err(scope.unsupported(format!(
                        "a second HTTP API (the first is {other}): one API is served locally"
                    )));
                }
                topology.cors = self.cors(&scope, placed)?;
            }
            AUTHORIZER => {
                links.authorizers.insert(api_resource_id("auth"), placed);
            }
            INTEGRATION => {
                links.integrations.insert(api_resource_id("integ"), placed);
            }
            RULE | ROUTE | EVENT_SOURCE_MAPPING | APPLICATION => {}
            API_STAGE => {}
            kind => topology
                .not_emulated
                .push(format!("{} ({kind})", placed.id)),
        }
        Ok(())
    }

    /// Second pass: what points at the resources of the first.
    fn connect(&self, placed: &Placed, topology: &mut Topology, links: &Links) -> Result<()> {
        let scope = self.scope_of(placed);
        match placed.resource.kind.as_str() {
            QUEUE => check_dead_letter_queue(&scope, placed, topology),
            RULE => {
                if let Some(rule) = self.rule(&scope, placed, topology)? {
                    topology.rules.push(rule);
                }
                Ok(())
            }
            API_STAGE => {
                let Some(stage) = self.websocket_stage(&scope, placed)? else {
                    topology
                        .not_emulated
                        .push(format!("{} ({API_STAGE})", placed.id));
                    return Ok(());
                };
                if let Some(websocket) = topology.websocket.as_mut() {
                    websocket.stages.push(stage);
                }
                Ok(())
            }
            ROUTE if self.is_websocket_route(&scope, placed)? => {
                let route = self.websocket_route(&scope, placed, topology, links)?;
                let Some(websocket) = topology.websocket.as_mut() else {
                    return Err(scope.invalid("a WebSocket route without its API"));
                };
                if websocket.route(&route.route_key).is_some() {
                    return Err(
                        scope.invalid(format!("RouteKey {} is declared twice", route.route_key))
                    );
                }
                websocket.routes.push(route);
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
                for source in self.function_events(&scope, placed, &mut topology.schedules)? {
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
}

/// Two resources of a kind with one physical name would be one resource in moto.
fn push_unique<T>(
    scope: &Scope,
    what: &str,
    list: &mut Vec<T>,
    item: T,
    name_and_id: impl Fn(&T) -> (&String, &String),
) -> Result<()> {
    let (name, _) = name_and_id(&item);
    if let Some((_, other_id)) = list
        .iter()
        .map(&name_and_id)
        .find(|(other, _)| *other == name)
    {
        return Err(scope.invalid(format!("{what} name {name} is also {other_id}'s")));
    }
    list.push(item);
    Ok(())
}
