//! DynamoDB stream records in the shape Lambda hands them to a function: the Streams
//! API's records with DynamoDB-JSON images, plus `eventSourceARN` and `awsRegion`.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record};
use serde_json::{Map, Value, json};

use crate::topology::REGION;

/// One record as a Lambda stream event carries it.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let mut dynamodb = Map::new();
    if let Some(change) = &record.dynamodb {
        let created = change
            .approximate_creation_date_time
            .map(|t| t.secs())
            .unwrap_or(0);
        dynamodb.insert("ApproximateCreationDateTime".into(), json!(created));
        if let Some(keys) = &change.keys {
            dynamodb.insert("Keys".into(), image(keys));
        }
        if let Some(new_image) = &change.new_image {
            dynamodb.insert("NewImage".into(), image(new_image));
        }
        if let Some(old_image) = &change.old_image {
            dynamodb.insert("OldImage".into(), image(old_image));
        }
        dynamodb.insert("SequenceNumber".into(), json!(change.sequence_number));
        dynamodb.insert("SizeBytes".into(), json!(change.size_bytes.unwrap_or(0)));
        dynamodb.insert(
            "StreamViewType".into(),
            json!(change.stream_view_type.as_ref().map(|v| v.as_str())),
        );
    }
    json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|name| name.as_str()),
        "eventVersion": record.event_version.clone().unwrap_or_else(|| "1.1".into()),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region.clone().unwrap_or_else(|| REGION.into()),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

fn image(attributes: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        attributes
            .iter()
            .map(|(name, value)| (name.clone(), attribute(value)))
            .collect(),
    )
}

fn attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": base64_encode(b.as_ref()) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::M(m) => json!({ "M": image(m) }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(attribute).collect::<Vec<_>>() }),
        AttributeValue::Ss(ss) => json!({ "SS": ss }),
        AttributeValue::Ns(ns) => json!({ "NS": ns }),
        AttributeValue::Bs(bs) => {
            json!({ "BS": bs.iter().map(|b| base64_encode(b.as_ref())).collect::<Vec<_>>() })
        }
        _ => Value::Null,
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every record currently in a table's stream, as one Lambda batch `{"Records": [...]}`.
/// For tests and `shop-local invoke`-style replays.
pub async fn read_all(config: &aws_config::SdkConfig, table: &str) -> Result<Value, String> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let streams = aws_sdk_dynamodbstreams::Client::new(config);
    let error = |e: &dyn std::fmt::Display| e.to_string();
    let description = dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| error(&e))?;
    let stream_arn = description
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| format!("table {table} has no stream"))?;
    let stream = streams
        .describe_stream()
        .stream_arn(&stream_arn)
        .send()
        .await
        .map_err(|e| error(&e))?;
    let mut records = Vec::new();
    for shard in stream
        .stream_description
        .and_then(|d| d.shards)
        .unwrap_or_default()
    {
        let Some(shard_id) = shard.shard_id else {
            continue;
        };
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&stream_arn)
            .shard_id(shard_id)
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .map_err(|e| error(&e))?
            .shard_iterator;
        while let Some(current) = iterator {
            let page = streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .map_err(|e| error(&e))?;
            let batch = page.records.unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            records.extend(
                batch
                    .iter()
                    .map(|record| lambda_record(record, &stream_arn)),
            );
            iterator = page.next_shard_iterator;
        }
    }
    Ok(json!({ "Records": records }))
}
