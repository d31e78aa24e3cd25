//! Typed access to evaluated properties, with errors that name the file, the logical id and
//! the key at fault.

use std::fmt::Display;
use std::path::Path;

use serde_json::{Map, Value as Json};

use super::document::Resource;
use super::{Loader, Result, TemplateError, invalid, unsupported};

/// A scalar as CloudFormation stringifies it.
pub(super) fn scalar_string(value: &Json) -> Option<String> {
    match value {
        Json::String(text) => Some(text.clone()),
        Json::Number(number) => Some(number.to_string()),
        Json::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Numbers often arrive as strings (every parameter is one), so both are accepted.
pub(super) fn as_u32(value: &Json) -> Option<u32> {
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

pub(super) fn as_bool(value: &Json) -> Option<bool> {
    match value {
        Json::Bool(flag) => Some(*flag),
        Json::String(text) if text.eq_ignore_ascii_case("true") => Some(true),
        Json::String(text) if text.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Where evaluation happens: which stack (for Refs and the file in errors) and which logical
/// id (or `Parameters.X`, `Outputs.X`, `Conditions.X`) errors should name.
#[derive(Clone)]
pub(super) struct Scope<'a> {
    pub(super) stack: usize,
    pub(super) file: &'a Path,
    pub(super) at: String,
}

impl Scope<'_> {
    pub(super) fn invalid(&self, message: impl Into<String>) -> TemplateError {
        invalid(self.file, &self.at, message)
    }

    pub(super) fn unsupported(&self, message: impl Into<String>) -> TemplateError {
        unsupported(self.file, &self.at, message)
    }

    pub(super) fn unknown(&self, target: &str) -> TemplateError {
        TemplateError::UnknownReference {
            file: self.file.to_path_buf(),
            logical_id: self.at.clone(),
            target: target.to_string(),
        }
    }
}

/// Evaluated properties of a resource, or a part of them, with typed getters whose errors say
/// which file, logical id and key are wrong.
pub(super) struct Props<'s> {
    pub(super) scope: &'s Scope<'s>,
    /// Where `map` sits in the resource's properties, e.g. `Events.Outbox.Properties`.
    pub(super) path: String,
    pub(super) map: Map<String, Json>,
}

impl<'s> Props<'s> {
    pub(super) fn of(scope: &'s Scope<'s>, path: String, value: &Json) -> Result<Props<'s>> {
        match value {
            Json::Object(map) => Ok(Props {
                scope,
                path,
                map: map.clone(),
            }),
            other => Err(scope.invalid(format!("{path} must be a mapping, got {other}"))),
        }
    }

    pub(super) fn name(&self, key: &str) -> String {
        match self.path.as_str() {
            "" => key.to_string(),
            path => format!("{path}.{key}"),
        }
    }

    /// `problem` follows the key's full name: `Events.Outbox.Properties.Queue is required`.
    pub(super) fn invalid(&self, key: &str, problem: impl Display) -> TemplateError {
        self.scope.invalid(format!("{} {problem}", self.name(key)))
    }

    pub(super) fn wrong(&self, key: &str, expected: &str, got: &Json) -> TemplateError {
        self.invalid(key, format_args!("must be {expected}, got {got}"))
    }

    pub(super) fn required(&self, key: &str) -> TemplateError {
        self.invalid(key, "is required")
    }

    pub(super) fn get(&self, key: &str) -> Option<&Json> {
        self.map.get(key)
    }

    pub(super) fn has(&self, key: &str) -> bool {
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

    pub(super) fn string(&self, key: &str) -> Result<Option<String>> {
        self.typed(key, "a string", scalar_string)
    }

    pub(super) fn required_string(&self, key: &str) -> Result<String> {
        self.string(key)?.ok_or_else(|| self.required(key))
    }

    pub(super) fn u32(&self, key: &str) -> Result<Option<u32>> {
        self.typed(key, "a non-negative integer", as_u32)
    }

    pub(super) fn i64(&self, key: &str) -> Result<Option<i64>> {
        self.typed(key, "an integer", as_i64)
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "true or false", as_bool)
    }

    pub(super) fn object(&self, key: &str) -> Result<Option<Props<'s>>> {
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

    pub(super) fn objects(&self, key: &str) -> Result<Vec<Props<'s>>> {
        let name = self.name(key);
        self.list(key)?
            .iter()
            .enumerate()
            .map(|(index, item)| Props::of(self.scope, format!("{name}[{index}]"), item))
            .collect()
    }

    pub(super) fn strings(&self, key: &str) -> Result<Vec<String>> {
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
pub(super) fn json_document(props: &Props, key: &str) -> Result<Option<Json>> {
    match props.get(key) {
        None => Ok(None),
        Some(Json::String(text)) => serde_json::from_str(text)
            .map(Some)
            .map_err(|error| props.invalid(key, format_args!("is not valid JSON: {error}"))),
        Some(object @ Json::Object(_)) => Ok(Some(object.clone())),
        Some(other) => Err(props.wrong(key, "a JSON string or a mapping", other)),
    }
}

impl Loader<'_> {
    /// Evaluates only the given top-level properties of `resource`: the runner never needs
    /// the rest (IAM policies, alarms' dimensions, ...), and what it does not evaluate cannot
    /// fail on something only AWS knows.
    pub(super) fn properties<'s>(
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
