//! What `Ref` and `Fn::GetAtt` give for a resource: physical names, ARNs, URLs, fixed local
//! ids and nested applications' outputs.

use serde_json::Value as Json;

use super::document::Resource;
use super::names::{
    APPLICATION, AUTHORIZER, BUS, DISTRIBUTION, EMULATED, FUNCTION, FUNCTION_URL, HTTP_API,
    HTTP_API_ID, INTEGRATION, QUEUE, RULE, SECRET, TABLE, TOPIC, USER_POOL, USER_POOL_CLIENT,
    USER_POOL_CLIENT_ID, WEBSOCKET_API_ID, bus_arn, bus_name_of, function_arn, function_url,
    generic_arn, is_websocket, queue_arn, rule_arn, stream_arn, table_arn, user_pool_id,
};
use super::props::{Props, Scope};
use super::{Loader, Result};
use crate::topology::{ACCOUNT_ID, REGION};

impl Loader<'_> {
    /// `Ref` (attribute `None`) or `Fn::GetAtt` of the resource `id` in `scope`'s stack.
    pub(super) fn attribute(
        &self,
        scope: &Scope,
        id: &str,
        attribute: Option<&str>,
    ) -> Result<Json> {
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
            SECRET => match attribute {
                None | Some("Id") => string(self.physical_name(stack, resource)?),
                _ => None,
            },
            FUNCTION_URL => {
                let function = self.url_target(stack, resource)?;
                match attribute {
                    Some("FunctionUrl") => string(function_url(&self.options.api_url, &function)),
                    Some("FunctionArn") => string(function_arn(&function)),
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
            HTTP_API if is_websocket(resource) => match attribute {
                None | Some("ApiId") => string(WEBSOCKET_API_ID.to_string()),
                Some("ApiEndpoint") => {
                    string(crate::topology::websocket_endpoint(&self.options.api_url))
                }
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
            // CloudFormation's Ref of a topic is its ARN, and that is what the templates pass
            // on (the root gives every capability `AlarmTopicArn: !Ref AlarmTopic` for its
            // alarms' actions): the placeholder ARN its GetAtt gives, so both agree.
            TOPIC => match attribute {
                None | Some("Arn") | Some("TopicArn") => {
                    string(generic_arn(&resource.kind, &resource.id))
                }
                Some("TopicName") => string(resource.id.clone()),
                _ => None,
            },
            DISTRIBUTION => match attribute {
                None | Some("Id") => string(resource.id.clone()),
                Some("DomainName") => string(
                    self.options
                        .api_url
                        .split_once("://")
                        .map_or(self.options.api_url.as_str(), |(_, host)| host)
                        .trim_end_matches('/')
                        .to_string(),
                ),
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

    /// The physical name of the function a function URL serves.
    pub(super) fn url_target(&self, stack: usize, url: &Resource) -> Result<String> {
        let scope = self.scope(stack, url.id.clone());
        let arn = self
            .properties(&scope, url, &["TargetFunctionArn"])?
            .required_string("TargetFunctionArn")?;
        // A name or an ARN, as CloudFormation accepts; the name is the ARN's last part.
        Ok(arn.rsplit(':').next().unwrap_or(&arn).to_string())
    }

    /// An output of the nested application `app`; `None` when it declares no such output.
    fn nested_output(&self, stack: usize, app: &Resource, name: &str) -> Result<Option<Json>> {
        let child = self.stacks[stack].child(&app.id)?;
        match self.stacks[child].outputs.contains_key(name) {
            true => self.output(child, name).map(Some),
            false => Ok(None),
        }
    }

    pub(super) fn output(&self, stack: usize, name: &str) -> Result<Json> {
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
            .get("Value")
            .ok_or_else(|| output.required("Value"))?;
        self.guarded(&scope, || self.eval_value(&scope, value, "Value"))
    }

    /// The resource's name in AWS (and moto): the explicit name property, else `<prefix>-<LogicalId>`.
    pub(super) fn physical_name(&self, stack: usize, resource: &Resource) -> Result<String> {
        let scope = self.scope(stack, resource.id.clone());
        self.guarded(&scope, || {
            let property = match resource.kind.as_str() {
                TABLE => Some("TableName"),
                QUEUE => Some("QueueName"),
                BUS | RULE => Some("Name"),
                FUNCTION => Some("FunctionName"),
                SECRET => Some("Name"),
                _ => None,
            };
            let explicit = match property {
                Some(property) => self
                    .properties(&scope, resource, &[property])?
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
            .properties(scope, queue, &["FifoQueue"])?
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

    pub(super) fn queue_url(&self, name: &str) -> String {
        format!(
            "{}/{ACCOUNT_ID}/{name}",
            self.options.endpoint_url.trim_end_matches('/')
        )
    }

    /// The name of the bus a rule is on.
    pub(super) fn rule_bus(&self, stack: usize, rule: &Resource) -> Result<String> {
        let scope = self.scope(stack, format!("{}.EventBusName", rule.id));
        self.guarded(&scope, || {
            let bus = self
                .properties(&scope, rule, &["EventBusName"])?
                .string("EventBusName")?;
            Ok(bus.map_or_else(|| "default".to_string(), |bus| bus_name_of(&bus)))
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::template::test_support::{outputs_error, topology_error, topology_of};

    #[test]
    fn circular_references_are_reported() {
        let error = outputs_error(
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
        let topology = topology_of(root);
        assert_eq!(topology.queues.len(), 1);
        assert_eq!(topology.queues[0].name, "shop-Kept");
        assert!(
            topology.not_emulated.is_empty(),
            "{:?}",
            topology.not_emulated
        );
        let error = outputs_error(&format!("{root}Outputs:\n  X: {{Value: !Ref ProdOnly}}\n"));
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
        let topology = topology_of(root);
        let names: Vec<&str> = topology.queues.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["shop-Plain", "shop-Ordered.fifo", "jobs.fifo"]);
        assert_eq!(topology.rules[0].name, "my-rule");
        assert_eq!(topology.rules[0].bus_name, "default");
        let wrong = topology_error(
            "Resources:\n  Q: {Type: AWS::SQS::Queue, Properties: {QueueName: jobs, FifoQueue: true}}\n",
        );
        assert!(
            wrong.contains(
                "/t/template.yaml: Q: QueueName jobs: a FIFO queue's name must end in .fifo"
            ),
            "{wrong}"
        );
    }
}
