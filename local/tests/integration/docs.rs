//! `docs/events.md`, the event catalog, generated: each event's detail-type, source,
//! description and fields from its checked-in JSON Schema (`shared/events/schemas/`), and
//! who consumes it from the EventBridge rules of the SAM templates, read by shop-local's
//! own template reader. This test regenerates the catalog and fails, with a diff, when the
//! committed file differs; `UPDATE_DOCS=1 cargo test -p shop-local --test integration docs::` rewrites
//! it (review the diff).
//!
//! A test rather than a `shop-local` subcommand: the catalog is a document kept true the
//! way the schemas themselves are (`UPDATE_SCHEMAS=1` in shop-events), and the runner
//! need not ship a documentation generator.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::Path;

use crate::support::repo_root;
use serde_json::{Map, Value, json};
use shop_local::pattern::matches;
use shop_local::template::{LoadOptions, load};
use shop_local::topology::Topology;

const CATALOG: &str = "docs/events.md";
const SCHEMAS: &str = "shared/events/schemas";
/// The only keys a rule routes on by sender and name; any other key filters on content.
const ROUTING_KEYS: [&str; 2] = ["source", "detail-type"];

/// One event, as its schema file describes it.
struct Event {
    detail_type: String,
    source: String,
    version: String,
    file: String,
    schema: Value,
}

impl Event {
    fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let schema: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let at = path.display();
        let detail_type = schema["title"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: no title (the detail-type)"))
            .to_owned();
        // shop-events writes "... (source shop.<capability>, schema version N)."
        let description = schema["description"].as_str().unwrap_or_default();
        let source = description
            .split_once("(source ")
            .and_then(|(_, rest)| rest.split_once(','))
            .map(|(source, _)| source.to_owned())
            .unwrap_or_else(|| panic!("{at}: the description names no source"));
        let version = schema["$id"]
            .as_str()
            .and_then(|id| id.rsplit_once(":v"))
            .map(|(_, version)| version.to_owned())
            .unwrap_or_else(|| panic!("{at}: the $id names no version"));
        let file = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            detail_type,
            source,
            version,
            file,
            schema,
        }
    }

    fn definition(&self, reference: &str) -> &Value {
        reference
            .strip_prefix('#')
            .and_then(|pointer| self.schema.pointer(pointer))
            .unwrap_or_else(|| panic!("{}: $ref {reference} names nothing", self.file))
    }

    /// `value`, or the definition its `$ref` names.
    fn resolved<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => self.definition(reference),
            None => value,
        }
    }

    fn data(&self) -> &Value {
        self.resolved(&self.schema["properties"]["data"])
    }

    fn capability(&self) -> &str {
        self.source.strip_prefix("shop.").unwrap_or(&self.source)
    }
}

/// Every event, by publisher, then by detail-type.
fn events(root: &Path) -> Vec<Event> {
    let paths: Vec<_> = std::fs::read_dir(root.join(SCHEMAS))
        .unwrap_or_else(|e| panic!("cannot list {SCHEMAS}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    let mut events: Vec<Event> = paths.iter().map(|path| Event::read(path)).collect();
    events.sort_by(|a, b| (&a.source, &a.detail_type).cmp(&(&b.source, &b.detail_type)));
    events
}

/// Who receives an event: a capability, through one of its rules, into its consumer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Consumer {
    capability: String,
    function: String,
    rule: String,
    /// The pattern's keys other than `source` and `detail-type`, when it has any.
    filter: Option<String>,
}

fn topology(root: &Path) -> Topology {
    // The endpoints only spell queue URLs and the API's address; rules, queues and
    // mappings name each other the same whatever they are.
    let options = LoadOptions {
        endpoint_url: "http://127.0.0.1:4566".into(),
        api_url: "http://127.0.0.1:3000".into(),
        parameters: BTreeMap::new(),
    };
    load(&root.join("template.yaml"), &options)
        .unwrap_or_else(|e| panic!("the templates do not load: {e}"))
}

/// The rules whose pattern lets this source and detail-type through, followed to the
/// function their queue triggers.
fn consumers(topology: &Topology, event: &Event) -> Vec<Consumer> {
    let probe = json!({"source": event.source, "detail-type": event.detail_type});
    let mut found = BTreeSet::new();
    for rule in &topology.rules {
        let Some(pattern) = rule.pattern.as_object() else {
            continue;
        };
        let (routing, content): (Map<String, Value>, Map<String, Value>) = pattern
            .clone()
            .into_iter()
            .partition(|(key, _)| ROUTING_KEYS.contains(&key.as_str()));
        if !matches(&Value::Object(routing), &probe) {
            continue;
        }
        let capability = rule
            .logical_id
            .split_once('/')
            .map(|(application, _)| application.to_owned())
            .unwrap_or_else(|| "the platform".to_owned());
        let rule_name = rule
            .logical_id
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        for target in &rule.targets {
            let functions: Vec<String> = topology
                .queue_mappings
                .iter()
                .filter(|mapping| mapping.queue_arn == target.arn)
                .filter_map(|mapping| {
                    topology
                        .functions
                        .iter()
                        .find(|f| f.name == mapping.function)
                        .map(|f| f.binary.clone())
                })
                .collect();
            let functions = if functions.is_empty() {
                vec![format!("target {}", target.id)]
            } else {
                functions
            };
            for function in functions {
                found.insert(Consumer {
                    capability: capability.clone(),
                    function,
                    rule: rule_name.clone(),
                    filter: (!content.is_empty())
                        .then(|| Value::Object(content.clone()).to_string()),
                });
            }
        }
    }
    found.into_iter().collect()
}

/// A description on one line, as a table cell holds it.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// A property's type in words: `string`, `integer (uint64)`, `string or null`, `Money`,
/// `array of OrderLine`, `"declined" | "provider_unavailable"`.
fn type_of(event: &Event, property: &Value) -> String {
    if let Some(reference) = property.get("$ref").and_then(Value::as_str) {
        let definition = event.definition(reference);
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return match definition.get("enum").and_then(Value::as_array) {
            Some(values) => format!("{name}: {}", enumeration(values)),
            None => name.to_owned(),
        };
    }
    if let Some(values) = property.get("enum").and_then(Value::as_array) {
        return enumeration(values);
    }
    let types: Vec<String> = match &property["type"] {
        Value::String(single) => vec![single.clone()],
        Value::Array(several) => several
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => vec!["any".to_owned()],
    };
    let types: Vec<String> = types
        .into_iter()
        .map(|kind| match kind.as_str() {
            "array" => format!("array of {}", type_of(event, &property["items"])),
            _ => match property["format"].as_str() {
                Some(format) => format!("{kind} ({format})"),
                None => kind,
            },
        })
        .collect();
    types.join(" or ")
}

fn enumeration(values: &[Value]) -> String {
    values
        .iter()
        .map(|value| format!("`{}`", value.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(" \\| ")
}

/// The rows of a field table: every property of `object`, then, under `prefix.`, those of
/// the objects it holds (`lines[].productId` for the items of an array). Required fields
/// come in the order the type declares them (the schema's `required` keeps it), optional
/// ones after.
fn field_rows(event: &Event, object: &Value, prefix: &str, rows: &mut Vec<[String; 4]>) {
    let Some(properties) = object["properties"].as_object() else {
        return;
    };
    let required: Vec<&str> = object["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut names: Vec<&str> = required
        .iter()
        .copied()
        .filter(|name| properties.contains_key(*name))
        .collect();
    names.extend(
        properties
            .keys()
            .map(String::as_str)
            .filter(|name| !required.contains(name)),
    );
    for name in names {
        let property = &properties[name];
        let path = format!("{prefix}{name}");
        let resolved = event.resolved(property);
        let description = property["description"]
            .as_str()
            .or_else(|| resolved["description"].as_str())
            .unwrap_or_default();
        rows.push([
            format!("`{path}`"),
            type_of(event, property),
            if required.contains(&name) {
                "yes"
            } else {
                "no"
            }
            .to_owned(),
            one_line(description),
        ]);
        if resolved["properties"].is_object() {
            field_rows(event, resolved, &format!("{path}."), rows);
        }
        if resolved["type"] == "array" {
            let items = event.resolved(&resolved["items"]);
            if items["properties"].is_object() {
                field_rows(event, items, &format!("{path}[]."), rows);
            }
        }
    }
}

fn table(out: &mut String, rows: &[[String; 4]]) {
    out.push_str("| field | type | required | description |\n|---|---|---|---|\n");
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

fn anchor(name: &str) -> String {
    name.to_lowercase()
}

/// The whole catalog, from the schemas and the templates under `root`.
fn generate(root: &Path) -> String {
    let events = events(root);
    assert!(!events.is_empty(), "no schema under {SCHEMAS}");
    let topology = topology(root);

    let mut out = String::new();
    out.push_str(
        "# Event catalog\n\n\
         <!-- Generated by local/tests/integration/docs.rs from shared/events/schemas/*.json and the \
         EventBridge rules of the SAM templates. Do not edit by hand: run \
         `UPDATE_DOCS=1 cargo test -p shop-local --test integration docs::`. -->\n\n\
         Every event crosses the one EventBridge bus with `source` `shop.<capability>` (the \
         capability that publishes it, from its outbox, through its relay) and the event's \
         name as `detail-type`. Each consuming capability has one rule on the bus that sends \
         what it consumes to its own SQS queue, which triggers its consumer function. The \
         contract of each event is its JSON Schema, generated from the Rust type in \
         `shared/events` and checked against it by that crate's tests.\n\n",
    );

    // The envelope: the same in every schema, or the catalog cannot describe it once.
    let first = &events[0];
    for event in &events {
        assert_eq!(
            event.schema["$defs"]["EventMetadata"], first.schema["$defs"]["EventMetadata"],
            "{}: its metadata differs from {}'s; the envelope is shared",
            event.file, first.file
        );
        assert_eq!(
            event.schema["required"], first.schema["required"],
            "{}: its envelope differs from {}'s",
            event.file, first.file
        );
    }
    out.push_str(
        "## The envelope\n\n\
         The EventBridge `detail` of every event is `{\"metadata\": {...}, \"data\": {...}}`. \
         Consumers deduplicate on `metadata.eventId`, which is fixed when the event is \
         recorded (EventBridge's own `id` changes when a publish is retried).\n\n",
    );
    let mut envelope = first.schema.clone();
    envelope["properties"]["data"] = json!({
        "type": "object",
        "description": "The event's own fields: see each event below."
    });
    let mut rows = Vec::new();
    field_rows(first, &envelope, "", &mut rows);
    table(&mut out, &rows);

    out.push_str("\n## Events\n\n| event | source | consumed by |\n|---|---|---|\n");
    let mut consumed_by = BTreeMap::new();
    for event in &events {
        let consumers = consumers(&topology, event);
        let names: BTreeSet<&str> = consumers.iter().map(|c| c.capability.as_str()).collect();
        let _ = writeln!(
            out,
            "| [{}](#{}) | `{}` | {} |",
            event.detail_type,
            anchor(&event.detail_type),
            event.source,
            if names.is_empty() {
                "–".to_owned()
            } else {
                names.into_iter().collect::<Vec<_>>().join(", ")
            }
        );
        consumed_by.insert(event.detail_type.clone(), consumers);
    }

    for event in &events {
        let data = event.data();
        let description = data["description"]
            .as_str()
            .map(one_line)
            .unwrap_or_else(|| {
                "_No description: its Rust type in `shared/events` has no doc comment._".to_owned()
            });
        let _ = write!(
            out,
            "\n### {}\n\n{description}\n\n\
             - detail-type: `{}`\n\
             - source: `{}` (published by {})\n\
             - schema version: {}\n\
             - schema: [`{SCHEMAS}/{}`](../{SCHEMAS}/{})\n",
            event.detail_type,
            event.detail_type,
            event.source,
            event.capability(),
            event.version,
            event.file,
            event.file,
        );
        let consumers = &consumed_by[&event.detail_type];
        if consumers.is_empty() {
            out.push_str("- consumed by: no capability subscribes to it\n");
        } else {
            out.push_str("- consumed by:\n");
            for consumer in consumers {
                let _ = write!(
                    out,
                    "  - {} (`{}`, rule `{}`)",
                    consumer.capability, consumer.function, consumer.rule
                );
                if let Some(filter) = &consumer.filter {
                    let _ = write!(out, ", only events matching `{filter}`");
                }
                out.push('\n');
            }
        }
        out.push('\n');
        let mut rows = Vec::new();
        field_rows(event, data, "", &mut rows);
        table(&mut out, &rows);
    }
    out
}

/// The lines that differ, `-` committed and `+` generated, with their line numbers, from
/// a longest common subsequence of lines.
fn diff(committed: &str, generated: &str) -> String {
    let old: Vec<&str> = committed.lines().collect();
    let new: Vec<&str> = generated.lines().collect();
    let mut common = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i][j] = if old[i] == new[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            i += 1;
            j += 1;
        } else if i < old.len() && (j == new.len() || common[i + 1][j] >= common[i][j + 1]) {
            let _ = writeln!(out, "-{:>5} {}", i + 1, old[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+{:>5} {}", j + 1, new[j]);
            j += 1;
        }
    }
    out
}

#[test]
fn the_event_catalog_is_generated_from_the_schemas_and_the_templates() {
    let root = repo_root();
    let generated = generate(&root);
    let path = root.join(CATALOG);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{CATALOG} is not what the schemas and templates say; run \
         `UPDATE_DOCS=1 cargo test -p shop-local --test integration docs::` and review.\n{}",
        diff(&committed, &generated)
    );
}

#[test]
fn every_event_is_documented_and_every_subscription_is_to_a_real_event() {
    let root = repo_root();
    let events = events(&root);
    assert_eq!(events.len(), 21, "DESIGN §2 has twenty-one events");
    let published: BTreeSet<(&str, &str)> = events
        .iter()
        .map(|e| (e.source.as_str(), e.detail_type.as_str()))
        .collect();
    // A rule naming a detail-type nobody publishes (a typo) would subscribe to nothing,
    // and the catalog would not show it: catch it here.
    for rule in &topology(&root).rules {
        let names = rule.pattern["detail-type"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for name in names.iter().filter_map(Value::as_str) {
            assert!(
                published
                    .iter()
                    .any(|(_, detail_type)| *detail_type == name),
                "rule {} subscribes to {name}, which no schema describes",
                rule.logical_id
            );
        }
    }
    let catalog = generate(&root);
    for event in &events {
        assert!(
            catalog.contains(&format!("\n### {}\n", event.detail_type)),
            "{} has no section",
            event.detail_type
        );
    }
}

#[test]
fn the_diff_names_the_lines_that_changed() {
    let shown = diff("a\nb\nc\n", "a\nB\nc\nd\n");
    assert_eq!(shown, "-    2 b\n+    2 B\n+    4 d\n");
}
