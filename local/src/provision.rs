//! Creates in moto what the topology declares: tables (keys, indexes, stream, TTL),
//! queues (visibility timeout, retention, redrive to their DLQ), buses and rules with
//! their SQS targets, secrets (a generated one gets a fresh random value per run). Nothing here is hard-coded: it all comes from the templates.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::topology::{IndexSpec, KeySpec, QueueSpec, TableSpec, Topology};

#[derive(Debug, thiserror::Error)]
#[error("cannot create {what}: {cause}")]
pub struct ProvisionError {
    pub what: String,
    pub cause: String,
}

fn failed(what: impl Into<String>) -> impl FnOnce(String) -> ProvisionError {
    let what = what.into();
    move |cause| ProvisionError { what, cause }
}

fn sdk<E: std::error::Error + 'static>(error: E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string()
}

pub async fn provision(config: &SdkConfig, topology: &Topology) -> Result<(), ProvisionError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    for table in &topology.tables {
        create_table(&dynamodb, table)
            .await
            .map_err(failed(format!("table {}", table.logical_id)))?;
    }
    let secrets = aws_sdk_secretsmanager::Client::new(config);
    for secret in &topology.secrets {
        secrets
            .create_secret()
            .name(&secret.name)
            .secret_string(secret.value.materialise())
            .send()
            .await
            .map_err(sdk)
            .map_err(failed(format!("secret {}", secret.logical_id)))?;
    }
    let sqs = aws_sdk_sqs::Client::new(config);
    // Dead-letter queues first: a redrive policy must name an existing queue.
    let (plain, redriven): (Vec<&QueueSpec>, Vec<&QueueSpec>) =
        topology.queues.iter().partition(|q| q.redrive.is_none());
    for queue in plain.into_iter().chain(redriven) {
        create_queue(&sqs, queue)
            .await
            .map_err(failed(format!("queue {}", queue.logical_id)))?;
    }
    let events = aws_sdk_eventbridge::Client::new(config);
    for bus in topology.buses.iter().filter(|bus| bus.name != "default") {
        events
            .create_event_bus()
            .name(&bus.name)
            .send()
            .await
            .map_err(sdk)
            .map_err(failed(format!("bus {}", bus.logical_id)))?;
    }
    for rule in &topology.rules {
        let what = format!("rule {}", rule.logical_id);
        events
            .put_rule()
            .name(&rule.name)
            .event_bus_name(&rule.bus_name)
            .event_pattern(rule.pattern.to_string())
            .send()
            .await
            .map_err(sdk)
            .map_err(failed(what.clone()))?;
        let targets = rule
            .targets
            .iter()
            .map(|target| {
                aws_sdk_eventbridge::types::Target::builder()
                    .id(&target.id)
                    .arn(&target.arn)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(sdk)
            .map_err(failed(what.clone()))?;
        events
            .put_targets()
            .rule(&rule.name)
            .event_bus_name(&rule.bus_name)
            .set_targets(Some(targets))
            .send()
            .await
            .map_err(sdk)
            .map_err(failed(what))?;
    }
    Ok(())
}

fn scalar(kind: &str) -> ScalarAttributeType {
    ScalarAttributeType::from(kind)
}

fn key_schema(key: &KeySpec) -> Result<Vec<KeySchemaElement>, String> {
    let mut schema = vec![
        KeySchemaElement::builder()
            .attribute_name(&key.hash.0)
            .key_type(KeyType::Hash)
            .build()
            .map_err(sdk)?,
    ];
    if let Some((name, _)) = &key.range {
        schema.push(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::Range)
                .build()
                .map_err(sdk)?,
        );
    }
    Ok(schema)
}

fn attribute_definitions(table: &TableSpec) -> Result<Vec<AttributeDefinition>, String> {
    let keys =
        std::iter::once(&table.key).chain(table.global_indexes.iter().map(|index| &index.key));
    let mut seen = std::collections::BTreeMap::new();
    for key in keys {
        for (name, kind) in std::iter::once(&key.hash).chain(key.range.as_ref()) {
            seen.entry(name.clone()).or_insert_with(|| kind.clone());
        }
    }
    seen.into_iter()
        .map(|(name, kind)| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(scalar(&kind))
                .build()
                .map_err(sdk)
        })
        .collect()
}

fn global_index(index: &IndexSpec) -> Result<GlobalSecondaryIndex, String> {
    let projection = Projection::builder()
        .projection_type(ProjectionType::from(index.projection.as_str()))
        .set_non_key_attributes(
            (!index.non_key_attributes.is_empty()).then(|| index.non_key_attributes.clone()),
        )
        .build();
    GlobalSecondaryIndex::builder()
        .index_name(&index.name)
        .set_key_schema(Some(key_schema(&index.key)?))
        .projection(projection)
        .build()
        .map_err(sdk)
}

async fn create_table(client: &aws_sdk_dynamodb::Client, table: &TableSpec) -> Result<(), String> {
    let indexes = table
        .global_indexes
        .iter()
        .map(global_index)
        .collect::<Result<Vec<_>, _>>()?;
    let stream = match &table.stream_view {
        Some(view) => Some(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()
                .map_err(sdk)?,
        ),
        None => None,
    };
    client
        .create_table()
        .table_name(&table.name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&table.key)?))
        .set_attribute_definitions(Some(attribute_definitions(table)?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .set_stream_specification(stream)
        .send()
        .await
        .map_err(sdk)?;
    if let Some(attribute) = &table.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(true)
            .build()
            .map_err(sdk)?;
        client
            .update_time_to_live()
            .table_name(&table.name)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(sdk)?;
    }
    Ok(())
}

async fn create_queue(client: &aws_sdk_sqs::Client, queue: &QueueSpec) -> Result<(), String> {
    let mut request = client.create_queue().queue_name(&queue.name).attributes(
        QueueAttributeName::VisibilityTimeout,
        queue.visibility_timeout_seconds.to_string(),
    );
    if let Some(retention) = queue.message_retention_seconds {
        request = request.attributes(
            QueueAttributeName::MessageRetentionPeriod,
            retention.to_string(),
        );
    }
    if queue.fifo {
        request = request.attributes(QueueAttributeName::FifoQueue, "true");
    }
    if let Some(redrive) = &queue.redrive {
        let policy = serde_json::json!({
            "deadLetterTargetArn": redrive.dead_letter_arn,
            "maxReceiveCount": redrive.max_receive_count.to_string(),
        });
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
    }
    let url = request
        .send()
        .await
        .map_err(sdk)?
        .queue_url
        .unwrap_or_default();
    if url != queue.url {
        return Err(format!(
            "moto gave it the URL {url}, the templates resolved {}",
            queue.url
        ));
    }
    Ok(())
}
