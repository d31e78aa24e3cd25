//! Reading template files into a tree of [`Stack`]s: the root template and, recursively, every
//! `AWS::Serverless::Application` whose `Location` is a local template. YAML short tags become
//! their long JSON form on the way, so evaluation only knows one form.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};
use serde_norway::Value as Yaml;

use super::names::{
    APPLICATION, FUNCTION, FUNCTION_URL, IAM_ROLE, ROOT_NAME_PREFIX, ROOT_STACK_NAME,
    application_name,
};
use super::{ReadFile, Result, TemplateError, invalid, unsupported};

/// Deeper than this, a template almost certainly includes itself.
const MAX_NESTING: usize = 8;

/// Reads the root template and every nested application's template, depth first.
pub(super) fn read_tree(root: &Path, read: &ReadFile) -> Result<Vec<Stack>> {
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

/// One template file: the root or a nested application.
pub(super) struct Stack {
    pub(super) file: PathBuf,
    /// `""` for the root, `catalog` for `CatalogService`, `catalog/search` one level deeper.
    pub(super) path: String,
    /// Prefix of generated physical names: `shop` for the root, else the path with dashes.
    pub(super) name_prefix: String,
    /// What `AWS::StackName` says.
    pub(super) stack_name: String,
    /// The stack and the Application logical id this one is nested under.
    pub(super) parent: Option<(usize, String)>,
    pub(super) parameters: Map<String, Json>,
    pub(super) conditions: Map<String, Json>,
    pub(super) mappings: Map<String, Json>,
    /// In declaration order, so the topology lists things as the templates do.
    pub(super) resources: Vec<Resource>,
    pub(super) outputs: Map<String, Json>,
    /// Application logical id → index of its stack.
    children: HashMap<String, usize>,
}

pub(super) struct Resource {
    pub(super) id: String,
    pub(super) kind: String,
    pub(super) condition: Option<String>,
    /// Unevaluated; for functions already merged with `Globals.Function`.
    pub(super) properties: Map<String, Json>,
    pub(super) metadata: Json,
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
    pub(super) fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.iter().find(|resource| resource.id == id)
    }

    /// The stack of the application `app_id` declared in this one.
    pub(super) fn child(&self, app_id: &str) -> Result<usize> {
        self.children.get(app_id).copied().ok_or_else(|| {
            invalid(
                &self.file,
                app_id,
                "the application's template was not loaded",
            )
        })
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
    add_implicit_function_urls(&mut parsed);
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

/// SAM turns a function's `FunctionUrlConfig` into `<Function>Url` (AWS::Lambda::Url);
/// declaring it here makes `!GetAtt MyFunctionUrl.FunctionUrl` resolve, as deployed.
fn add_implicit_function_urls(resources: &mut Vec<Resource>) {
    let mut index = 0;
    while index < resources.len() {
        let resource = &resources[index];
        if resource.kind == FUNCTION
            && let Some(config) = resource.properties.get("FunctionUrlConfig")
        {
            let mut properties = Map::new();
            properties.insert(
                "TargetFunctionArn".to_string(),
                serde_json::json!({"Fn::GetAtt": [resource.id, "Arn"]}),
            );
            if let Json::Object(config) = config {
                for (key, value) in config {
                    properties.insert(key.clone(), value.clone());
                }
            }
            let url = Resource {
                id: format!("{}Url", resource.id),
                kind: FUNCTION_URL.to_string(),
                condition: resource.condition.clone(),
                properties,
                metadata: Json::Null,
            };
            resources.insert(index + 1, url);
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
pub(super) fn intrinsic(map: &Map<String, Json>) -> Option<(&str, &Json)> {
    let mut entries = map.iter();
    let (name, argument) = entries.next()?;
    let is_intrinsic = entries.next().is_none() && (name == "Ref" || name.starts_with("Fn::"));
    is_intrinsic.then_some((name.as_str(), argument))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::template::test_support::{
        ROOT, expect_ok, load_files, options, outputs_with, topology_of,
    };
    use crate::template::{TemplateError, load};

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
        let topology = topology_of(root);
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
        let out = expect_ok(outputs_with(root, &nested, &options()));
        assert_eq!(
            out["Url"],
            "http://127.0.0.1:4566/123456789012/billing-invoicing-Queue#shop-local-BillingService-InvoicingService"
        );
        let mut files = vec![(ROOT, root)];
        files.extend(nested);
        let topology = expect_ok(load_files(&files, &options()));
        assert_eq!(topology.queues[0].logical_id, "billing/invoicing/Queue");
        assert_eq!(
            topology.not_emulated,
            ["billing/invoicing/Alarm (AWS::CloudWatch::Alarm)"]
        );
    }
}
