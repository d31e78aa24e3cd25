//! Event source mappings: SAM `Events` of a function and raw
//! `AWS::Lambda::EventSourceMapping`s, from SQS queues and DynamoDB streams.

use serde_json::Value as Json;

use super::names::{function_arn, function_arn_in_uri, stream_arn};
use super::props::{Props, Scope, json_document};
use super::{Loader, Placed, Result};
use crate::topology::{QueueMappingSpec, ScheduleSpec, StreamMappingSpec, Topology, rate};

/// A function's event source before its source is looked up: a SAM `Events` entry or a raw
/// `AWS::Lambda::EventSourceMapping`, both with the latter's property names.
pub(super) struct MappingSource<'s> {
    logical_id: String,
    function: String,
    source_arn: String,
    props: Props<'s>,
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

impl Loader<'_> {
    /// The function's SAM `Events`. `DynamoDB` and `SQS` events are mappings; `Schedule`
    /// events (`rate(...)`) are kept in `schedules`. Nothing else is accepted: HTTP routes
    /// must be raw `AWS::ApiGatewayV2::Route` + `Integration` resources, because a SAM
    /// `HttpApi` (or `Api`) event can only attach to an API declared in the same template,
    /// and the shop's one API lives in the root stack while every capability is a nested
    /// stack; bus subscriptions are `AWS::Events::Rule`s targeting a queue.
    pub(super) fn function_events<'s>(
        &self,
        scope: &'s Scope<'s>,
        placed: &Placed,
        schedules: &mut Vec<ScheduleSpec>,
    ) -> Result<Vec<MappingSource<'s>>> {
        let props = self.properties(scope, placed.resource, &["Events"])?;
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
                "Schedule" => {
                    if let Some(schedule) =
                        schedule(&event, &function, format!("{}{name}", placed.id))?
                    {
                        schedules.push(schedule);
                    }
                    continue;
                }
                _ => {
                    return Err(scope.unsupported(format!(
                        "{}: event type {kind}; only DynamoDB, SQS and Schedule events are. Declare HTTP routes as \
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

    pub(super) fn raw_mapping<'s>(
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
        let props = self.properties(scope, placed.resource, &keys)?;
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
    pub(super) fn mapping(&self, source: MappingSource, topology: &mut Topology) -> Result<()> {
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

/// A SAM `Schedule` event, unless it is disabled (`Enabled: false` or `State: DISABLED`).
fn schedule(event: &Props, function: &str, logical_id: String) -> Result<Option<ScheduleSpec>> {
    let properties = event
        .object("Properties")?
        .ok_or_else(|| event.required("Properties"))?;
    let disabled = properties.bool("Enabled")? == Some(false)
        || properties.string("State")?.as_deref() == Some("DISABLED");
    if disabled {
        return Ok(None);
    }
    let expression = properties.required_string("Schedule")?;
    let every = rate(&expression).ok_or_else(|| {
        properties.invalid(
            "Schedule",
            format!("{expression:?}: only rate(...) expressions are emulated"),
        )
    })?;
    Ok(Some(ScheduleSpec {
        logical_id,
        function: function.to_owned(),
        expression,
        every,
    }))
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
        return Err(props.invalid(
            "DestinationConfig",
            "does not apply to SQS sources: failed messages go to the queue's RedrivePolicy",
        ));
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

#[cfg(test)]
mod tests {
    use crate::template::TemplateError;
    use crate::template::test_support::{ROOT, load_files, options, topology_of};

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
        let topology = topology_of(root);
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
}
