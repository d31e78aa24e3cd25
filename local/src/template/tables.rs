//! DynamoDB tables.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::names::table_arn;
use super::props::{Props, Scope};
use super::{Loader, Placed, Result};
use crate::topology::{IndexSpec, KeySpec, TableSpec};

impl Loader<'_> {
    pub(super) fn table(&self, scope: &Scope, placed: &Placed) -> Result<TableSpec> {
        if placed
            .resource
            .properties
            .contains_key("LocalSecondaryIndexes")
        {
            return Err(
                scope.unsupported("LocalSecondaryIndexes: the topology has no field for them yet")
            );
        }
        let props = self.properties(
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
            return Err(props.invalid(key, "has two keys of the same KeyType"));
        }
    }
    let hash = hash.ok_or_else(|| props.invalid(key, "has no HASH key"))?;
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
