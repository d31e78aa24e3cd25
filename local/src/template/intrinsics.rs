//! Intrinsic functions (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::If`, ...), conditions
//! and pseudo parameters. Evaluation is lazy: only what the runner reads is evaluated, so an
//! expression that only makes sense in AWS cannot fail locally unless the runner needs it.

use serde_json::{Map, Value as Json};

use super::document::{Resource, intrinsic};
use super::props::{Scope, as_bool, as_u32, scalar_string};
use super::{Loader, Result};
use crate::topology::{ACCOUNT_ID, REGION};

impl Loader<'_> {
    /// Evaluates every intrinsic function in `value`. `None` is `AWS::NoValue`: the caller
    /// drops the key or list element that held it.
    pub(super) fn eval(&self, scope: &Scope, value: &Json) -> Result<Option<Json>> {
        match value {
            Json::Object(map) => {
                if let Some((name, argument)) = intrinsic(map) {
                    return self.intrinsic(scope, name, argument);
                }
                let mut evaluated = Map::new();
                for (key, item) in map {
                    if let Some(item) = self.eval(scope, item)? {
                        evaluated.insert(key.clone(), item);
                    }
                }
                Ok(Some(Json::Object(evaluated)))
            }
            Json::Array(items) => {
                let mut evaluated = Vec::with_capacity(items.len());
                for item in items {
                    evaluated.extend(self.eval(scope, item)?);
                }
                Ok(Some(Json::Array(evaluated)))
            }
            scalar => Ok(Some(scalar.clone())),
        }
    }

    /// `eval` where `AWS::NoValue` makes no sense, such as an intrinsic function's argument.
    pub(super) fn eval_value(&self, scope: &Scope, value: &Json, what: &str) -> Result<Json> {
        self.eval(scope, value)?
            .ok_or_else(|| scope.invalid(format!("{what} cannot be AWS::NoValue")))
    }

    fn eval_string(&self, scope: &Scope, value: &Json, what: &str) -> Result<String> {
        let value = self.eval_value(scope, value, what)?;
        scalar_string(&value)
            .ok_or_else(|| scope.invalid(format!("{what} must be a string, got {value}")))
    }

    fn eval_list(&self, scope: &Scope, value: &Json, what: &str) -> Result<Vec<Json>> {
        match self.eval_value(scope, value, what)? {
            Json::Array(items) => Ok(items),
            other => Err(scope.invalid(format!("{what} must be a list, got {other}"))),
        }
    }

    fn intrinsic(&self, scope: &Scope, name: &str, argument: &Json) -> Result<Option<Json>> {
        let value = match name {
            "Ref" => return self.reference(scope, argument),
            "Fn::GetAtt" => self.get_att(scope, argument)?,
            "Fn::Sub" => Json::String(self.sub(scope, argument)?),
            "Fn::Join" => self.join(scope, argument)?,
            "Fn::Select" => self.select(scope, argument)?,
            "Fn::Split" => self.split(scope, argument)?,
            "Fn::If" => return self.fn_if(scope, argument),
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" => {
                Json::Bool(self.condition_function(scope, name, argument)?)
            }
            "Fn::FindInMap" => self.find_in_map(scope, argument)?,
            // Any AZ list works locally; three is what us-east-1 accounts usually see.
            "Fn::GetAZs" => Json::Array(
                ["a", "b", "c"]
                    .iter()
                    .map(|zone| Json::String(format!("{REGION}{zone}")))
                    .collect(),
            ),
            "Fn::ImportValue" => {
                return Err(scope.unsupported(
                    "Fn::ImportValue: there are no other stacks' exports locally; pass the value in as a parameter",
                ));
            }
            other => return Err(scope.unsupported(format!("the intrinsic function {other}"))),
        };
        Ok(Some(value))
    }

    /// The arguments of a function that takes exactly `N` of them.
    fn arguments<'j, const N: usize>(
        scope: &Scope,
        name: &str,
        argument: &'j Json,
    ) -> Result<&'j [Json; N]> {
        argument
            .as_array()
            .and_then(|items| <&[Json; N]>::try_from(items.as_slice()).ok())
            .ok_or_else(|| {
                scope.invalid(format!(
                    "{name} takes a list of {N} arguments, got {argument}"
                ))
            })
    }

    fn reference(&self, scope: &Scope, argument: &Json) -> Result<Option<Json>> {
        match argument {
            Json::String(name) => self.ref_name(scope, name),
            other => Err(scope.invalid(format!("Ref takes a name, got {other}"))),
        }
    }

    /// What `Ref name` is in `scope`'s stack: a pseudo parameter, a parameter or a resource.
    fn ref_name(&self, scope: &Scope, name: &str) -> Result<Option<Json>> {
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        if let Some(value) = self.pseudo_parameter(scope.stack, name) {
            return Ok(Some(value));
        }
        if let Some(value) = self.parameter(scope.stack, name)? {
            return Ok(Some(value));
        }
        self.attribute(scope, name, None).map(Some)
    }

    fn pseudo_parameter(&self, stack: usize, name: &str) -> Option<Json> {
        let stack_name = &self.stacks[stack].stack_name;
        let value = match name {
            "AWS::Region" => REGION.to_string(),
            "AWS::AccountId" => ACCOUNT_ID.to_string(),
            "AWS::Partition" => "aws".to_string(),
            "AWS::URLSuffix" => "amazonaws.com".to_string(),
            "AWS::StackName" => stack_name.clone(),
            "AWS::StackId" => {
                format!("arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{stack_name}/local")
            }
            "AWS::NotificationARNs" => return Some(Json::Array(Vec::new())),
            _ => return None,
        };
        Some(Json::String(value))
    }

    fn get_att(&self, scope: &Scope, argument: &Json) -> Result<Json> {
        let (id, attribute) = match argument {
            Json::String(text) => match text.split_once('.') {
                Some((id, attribute)) => (id.to_string(), attribute.to_string()),
                None => {
                    return Err(
                        scope.invalid(format!("Fn::GetAtt takes Resource.Attribute, got {text:?}"))
                    );
                }
            },
            Json::Array(parts) => match parts.as_slice() {
                [id, attribute] => (
                    self.eval_string(scope, id, "Fn::GetAtt's resource")?,
                    self.eval_string(scope, attribute, "Fn::GetAtt's attribute")?,
                ),
                _ => {
                    return Err(scope.invalid(format!(
                        "Fn::GetAtt takes [Resource, Attribute], got {argument}"
                    )));
                }
            },
            other => {
                return Err(
                    scope.invalid(format!("Fn::GetAtt takes Resource.Attribute, got {other}"))
                );
            }
        };
        self.attribute(scope, &id, Some(&attribute))
    }

    fn sub(&self, scope: &Scope, argument: &Json) -> Result<String> {
        let (text, variables) = match argument {
            Json::String(text) => (text.as_str(), Map::new()),
            Json::Array(items) => match items.as_slice() {
                [Json::String(text), variables] => {
                    match self.eval_value(scope, variables, "Fn::Sub's variables")? {
                        Json::Object(variables) => (text.as_str(), variables),
                        other => {
                            return Err(scope.invalid(format!(
                                "Fn::Sub's variables must be a mapping, got {other}"
                            )));
                        }
                    }
                }
                _ => {
                    return Err(scope.invalid(format!(
                        "Fn::Sub takes a string or [string, variables], got {argument}"
                    )));
                }
            },
            other => return Err(scope.invalid(format!("Fn::Sub takes a string, got {other}"))),
        };
        let mut output = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            output.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| scope.invalid(format!("Fn::Sub: unclosed ${{ in {text:?}")))?;
            let name = &after[..end];
            match name.strip_prefix('!') {
                // `${!Literal}` is the escape for a literal `${Literal}`.
                Some(literal) => output.push_str(&format!("${{{literal}}}")),
                None => output.push_str(&self.sub_variable(scope, name.trim(), &variables)?),
            }
            rest = &after[end + 1..];
        }
        output.push_str(rest);
        Ok(output)
    }

    /// `${Name}` in Fn::Sub: a variable of the list form, `Resource.Attribute`, or a Ref.
    fn sub_variable(
        &self,
        scope: &Scope,
        name: &str,
        variables: &Map<String, Json>,
    ) -> Result<String> {
        let value = match (variables.get(name), name.split_once('.')) {
            (Some(value), _) => value.clone(),
            (None, Some((id, attribute))) if !name.starts_with("AWS::") => {
                self.attribute(scope, id, Some(attribute))?
            }
            (None, _) => self
                .ref_name(scope, name)?
                .ok_or_else(|| scope.invalid("Fn::Sub cannot substitute ${AWS::NoValue}"))?,
        };
        scalar_string(&value).ok_or_else(|| {
            scope.invalid(format!("Fn::Sub: ${{{name}}} is not a string but {value}"))
        })
    }

    fn join(&self, scope: &Scope, argument: &Json) -> Result<Json> {
        let [delimiter, list] = Self::arguments::<2>(scope, "Fn::Join", argument)?;
        let delimiter = self.eval_string(scope, delimiter, "Fn::Join's delimiter")?;
        let parts = self
            .eval_list(scope, list, "Fn::Join's list")?
            .iter()
            .map(|part| {
                scalar_string(part)
                    .ok_or_else(|| scope.invalid(format!("Fn::Join: {part} is not a string")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Json::String(parts.join(&delimiter)))
    }

    fn select(&self, scope: &Scope, argument: &Json) -> Result<Json> {
        let [index, list] = Self::arguments::<2>(scope, "Fn::Select", argument)?;
        let index = self.eval_value(scope, index, "Fn::Select's index")?;
        let position = as_u32(&index).ok_or_else(|| {
            scope.invalid(format!(
                "Fn::Select's index must be a non-negative integer, got {index}"
            ))
        })?;
        let items = self.eval_list(scope, list, "Fn::Select's list")?;
        let count = items.len();
        items.into_iter().nth(position as usize).ok_or_else(|| {
            scope.invalid(format!(
                "Fn::Select: index {position} is out of range for a list of {count}"
            ))
        })
    }

    fn split(&self, scope: &Scope, argument: &Json) -> Result<Json> {
        let [delimiter, source] = Self::arguments::<2>(scope, "Fn::Split", argument)?;
        let delimiter = self.eval_string(scope, delimiter, "Fn::Split's delimiter")?;
        if delimiter.is_empty() {
            return Err(scope.invalid("Fn::Split's delimiter cannot be empty"));
        }
        let source = self.eval_string(scope, source, "Fn::Split's string")?;
        Ok(Json::Array(
            source
                .split(&delimiter)
                .map(|part| Json::String(part.to_string()))
                .collect(),
        ))
    }

    fn fn_if(&self, scope: &Scope, argument: &Json) -> Result<Option<Json>> {
        let [condition, when_true, when_false] = Self::arguments::<3>(scope, "Fn::If", argument)?;
        let Json::String(condition) = condition else {
            return Err(scope.invalid(format!(
                "Fn::If's first argument must be a condition name, got {condition}"
            )));
        };
        match self.condition(scope, condition)? {
            true => self.eval(scope, when_true),
            false => self.eval(scope, when_false),
        }
    }

    fn find_in_map(&self, scope: &Scope, argument: &Json) -> Result<Json> {
        let [map, top, second] = Self::arguments::<3>(scope, "Fn::FindInMap", argument)?;
        let map = self.eval_string(scope, map, "Fn::FindInMap's map name")?;
        let top = self.eval_string(scope, top, "Fn::FindInMap's top-level key")?;
        let second = self.eval_string(scope, second, "Fn::FindInMap's second-level key")?;
        self.stacks[scope.stack]
            .mappings
            .get(&map)
            .and_then(|entries| entries.get(&top))
            .and_then(|entries| entries.get(&second))
            .cloned()
            .ok_or_else(|| {
                scope.invalid(format!(
                    "Fn::FindInMap: Mappings has no {map}.{top}.{second}"
                ))
            })
    }

    /// Fn::Equals, Fn::Not, Fn::And and Fn::Or.
    fn condition_function(&self, scope: &Scope, name: &str, argument: &Json) -> Result<bool> {
        match name {
            "Fn::Equals" => {
                let [left, right] = Self::arguments::<2>(scope, name, argument)?;
                let left = self.eval_value(scope, left, "Fn::Equals' argument")?;
                let right = self.eval_value(scope, right, "Fn::Equals' argument")?;
                Ok(loosely_equal(&left, &right))
            }
            "Fn::Not" => {
                let [condition] = Self::arguments::<1>(scope, name, argument)?;
                Ok(!self.eval_condition(scope, condition)?)
            }
            _ => {
                let conditions = argument
                    .as_array()
                    .filter(|conditions| !conditions.is_empty())
                    .ok_or_else(|| {
                        scope.invalid(format!("{name} takes a list of conditions, got {argument}"))
                    })?;
                let all = name == "Fn::And";
                for condition in conditions {
                    // And stops at the first false, Or at the first true.
                    if self.eval_condition(scope, condition)? != all {
                        return Ok(!all);
                    }
                }
                Ok(all)
            }
        }
    }

    /// A condition expression: a condition function or `{"Condition": name}`.
    fn eval_condition(&self, scope: &Scope, value: &Json) -> Result<bool> {
        if let Json::Object(map) = value
            && map.len() == 1
            && let Some(Json::String(name)) = map.get("Condition")
        {
            return self.condition(scope, name);
        }
        let value = self.eval_value(scope, value, "a condition")?;
        as_bool(&value)
            .ok_or_else(|| scope.invalid(format!("a condition must be true or false, got {value}")))
    }

    /// The named condition of `scope`'s stack.
    pub(super) fn condition(&self, scope: &Scope, name: &str) -> Result<bool> {
        let Some(definition) = self.stacks[scope.stack].conditions.get(name) else {
            return Err(scope.invalid(format!("there is no condition {name} in Conditions")));
        };
        let inner = self.scope(scope.stack, format!("Conditions.{name}"));
        self.guarded(&inner, || self.eval_condition(&inner, definition))
    }

    pub(super) fn is_created(&self, stack: usize, resource: &Resource) -> Result<bool> {
        match &resource.condition {
            None => Ok(true),
            Some(condition) => self.condition(&self.scope(stack, resource.id.clone()), condition),
        }
    }
}

/// `Fn::Equals` compares strings: `!Equals [!Ref Count, 3]` holds when Count is "3".
fn loosely_equal(left: &Json, right: &Json) -> bool {
    match (scalar_string(left), scalar_string(right)) {
        (Some(left), Some(right)) => left == right,
        _ => left == right,
    }
}

#[cfg(test)]
mod tests {
    use crate::template::test_support::{expect_ok, options, outputs, outputs_error, outputs_with};
    use crate::topology::{ACCOUNT_ID, REGION};

    const BASE: &str = r#"
Parameters:
  Stage:
    Type: String
    Default: dev
  Sizes:
    Type: CommaDelimitedList
    Default: "s, m,l"
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev:
    Fn::Equals: [{Ref: Stage}, dev]
Mappings:
  StageSettings:
    dev: {Memory: 256, Zones: [x, y]}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub orders-${Stage}
  Queue:
    Type: AWS::SQS::Queue
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: bus
  Topic:
    Type: AWS::SNS::Topic
  Rule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: {source: [x]}
"#;

    fn with_outputs(outputs_yaml: &str) -> String {
        format!("{BASE}Outputs:\n{outputs_yaml}")
    }

    #[test]
    fn ref_in_both_forms_resolves_parameters_pseudo_parameters_and_resources() {
        let out = outputs(&with_outputs(
            r#"
  Short: {Value: !Ref Stage}
  Long: {Value: {Ref: Stage}}
  Region: {Value: !Ref "AWS::Region"}
  Account: {Value: {Ref: "AWS::AccountId"}}
  Partition: {Value: !Ref AWS::Partition}
  StackName: {Value: !Ref AWS::StackName}
  Suffix: {Value: !Ref AWS::URLSuffix}
  Table: {Value: !Ref Table}
  Queue: {Value: {Ref: Queue}}
  Bus: {Value: !Ref Bus}
  Topic: {Value: !Ref Topic}
  List: {Value: !Ref Sizes}
"#,
        ));
        assert_eq!(out["Short"], "dev");
        assert_eq!(out["Long"], "dev");
        assert_eq!(out["Region"], REGION);
        assert_eq!(out["Account"], ACCOUNT_ID);
        assert_eq!(out["Partition"], "aws");
        assert_eq!(out["StackName"], "shop-local");
        assert_eq!(out["Suffix"], "amazonaws.com");
        assert_eq!(out["Table"], "orders-dev");
        assert_eq!(
            out["Queue"],
            "http://127.0.0.1:4566/123456789012/shop-Queue"
        );
        assert_eq!(out["Bus"], "bus");
        // A topic's Ref is its ARN, as in CloudFormation (the same as its GetAtt Arn below).
        assert_eq!(
            out["Topic"],
            "arn:aws:local:us-east-1:123456789012:AWS::SNS::Topic/Topic"
        );
        assert_eq!(out["List"], serde_json::json!(["s", "m", "l"]));
    }

    #[test]
    fn get_att_in_both_forms_and_both_argument_shapes() {
        let out = outputs(&with_outputs(
            r#"
  Dotted: {Value: !GetAtt Table.Arn}
  Listed: {Value: !GetAtt [Table, StreamArn]}
  LongDotted: {Value: {"Fn::GetAtt": Queue.Arn}}
  LongListed: {Value: {"Fn::GetAtt": [Queue, QueueName]}}
  BusArn: {Value: !GetAtt Bus.Arn}
  TopicArn: {Value: !GetAtt Topic.Arn}
  Rule: {Value: !Ref Rule}
  RuleArn: {Value: !GetAtt Rule.Arn}
"#,
        ));
        assert_eq!(
            out["Dotted"],
            "arn:aws:dynamodb:us-east-1:123456789012:table/orders-dev"
        );
        assert_eq!(
            out["Listed"],
            "arn:aws:dynamodb:us-east-1:123456789012:table/orders-dev/stream/local"
        );
        assert_eq!(
            out["LongDotted"],
            "arn:aws:sqs:us-east-1:123456789012:shop-Queue"
        );
        assert_eq!(out["LongListed"], "shop-Queue");
        assert_eq!(
            out["BusArn"],
            "arn:aws:events:us-east-1:123456789012:event-bus/bus"
        );
        assert_eq!(
            out["TopicArn"],
            "arn:aws:local:us-east-1:123456789012:AWS::SNS::Topic/Topic"
        );
        assert_eq!(out["Rule"], "shop-Rule");
        assert_eq!(
            out["RuleArn"],
            "arn:aws:events:us-east-1:123456789012:rule/bus/shop-Rule"
        );
    }

    #[test]
    fn sub_substitutes_parameters_resources_attributes_pseudo_parameters_and_escapes() {
        let out = outputs(&with_outputs(
            r#"
  Short: {Value: !Sub "${Stage}|${Table}|${Queue.QueueName}|${AWS::Region}|${!Literal}"}
  Long: {Value: {"Fn::Sub": "arn:${AWS::Partition}:x:${AWS::AccountId}:${Bus.Arn}"}}
  WithVariables:
    Value: !Sub
      - "${Name}-${Stage}-${Other}"
      - Name: !GetAtt Queue.QueueName
        Other: literal
  LongWithVariables:
    Value:
      Fn::Sub: ["${A}/${Table.Arn}", {A: {Ref: Bus}}]
"#,
        ));
        assert_eq!(
            out["Short"],
            "dev|orders-dev|shop-Queue|us-east-1|${Literal}"
        );
        assert_eq!(
            out["Long"],
            "arn:aws:x:123456789012:arn:aws:events:us-east-1:123456789012:event-bus/bus"
        );
        assert_eq!(out["WithVariables"], "shop-Queue-dev-literal");
        assert_eq!(
            out["LongWithVariables"],
            "bus/arn:aws:dynamodb:us-east-1:123456789012:table/orders-dev"
        );
    }

    #[test]
    fn join_select_split_in_both_forms() {
        let out = outputs(&with_outputs(
            r#"
  Join: {Value: !Join ["-", [a, !Ref Stage, 3]]}
  LongJoin: {Value: {"Fn::Join": [",", {Ref: Sizes}]}}
  Select: {Value: !Select [1, [x, y, z]]}
  LongSelect: {Value: {"Fn::Select": ["2", {Ref: Sizes}]}}
  Split: {Value: !Split [",", "a,b,,c"]}
  LongSplit: {Value: {"Fn::Select": [0, {"Fn::Split": ["/", !Sub "${Stage}/x"]}]}}
"#,
        ));
        assert_eq!(out["Join"], "a-dev-3");
        assert_eq!(out["LongJoin"], "s,m,l");
        assert_eq!(out["Select"], "y");
        assert_eq!(out["LongSelect"], "l");
        assert_eq!(out["Split"], serde_json::json!(["a", "b", "", "c"]));
        assert_eq!(out["LongSplit"], "dev");
    }

    #[test]
    fn conditions_drive_if_in_both_forms_with_equals_not_and_or() {
        let root = r#"
Parameters:
  Stage: {Type: String, Default: dev}
  Region: {Type: String, Default: eu}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev: {"Fn::Equals": [dev, {Ref: Stage}]}
  NotProd: !Not [!Condition IsProd]
  DevInEu: !And [!Condition IsDev, !Equals [!Ref Region, eu]]
  LongAnd: {"Fn::And": [{Condition: IsDev}, {"Fn::Not": [{Condition: IsProd}]}]}
  ProdOrEu: !Or [!Condition IsProd, !Equals [eu, !Ref Region]]
  LongOr: {"Fn::Or": [{Condition: IsProd}, {"Fn::Equals": [us, {Ref: Region}]}]}
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Prod: {Value: !If [IsProd, yes, no]}
  NotProd: {Value: !If [NotProd, yes, no]}
  DevInEu: {Value: {"Fn::If": [DevInEu, yes, no]}}
  LongAnd: {Value: !If [LongAnd, yes, no]}
  ProdOrEu: {Value: !If [ProdOrEu, yes, no]}
  LongOr: {Value: !If [LongOr, yes, no]}
  Equals: {Value: !Equals [!Ref Stage, dev]}
"#;
        let out = outputs(root);
        assert_eq!(out["Prod"], "no");
        assert_eq!(out["NotProd"], "yes");
        assert_eq!(out["DevInEu"], "yes");
        assert_eq!(out["LongAnd"], "yes");
        assert_eq!(out["ProdOrEu"], "yes");
        assert_eq!(out["LongOr"], "no");
        assert_eq!(out["Equals"], true);

        let mut prod = options();
        prod.parameters.insert("Stage".into(), "prod".into());
        let out = expect_ok(outputs_with(root, &[], &prod));
        assert_eq!(out["Prod"], "yes");
        assert_eq!(out["NotProd"], "no");
        assert_eq!(out["DevInEu"], "no");
    }

    #[test]
    fn no_value_removes_the_key_or_the_list_element() {
        let out = outputs(&with_outputs(
            r#"
  Map:
    Value:
      Kept: 1
      Dropped: !Ref AWS::NoValue
      Conditional: !If [IsProd, x, {Ref: "AWS::NoValue"}]
      List: [a, !If [IsDev, !Ref AWS::NoValue, b], c]
"#,
        ));
        assert_eq!(
            out["Map"],
            serde_json::json!({"Kept": 1, "List": ["a", "c"]})
        );
    }

    #[test]
    fn find_in_map_and_get_azs_in_both_forms() {
        let out = outputs(&with_outputs(
            r#"
  Memory: {Value: !FindInMap [StageSettings, !Ref Stage, Memory]}
  Zones: {Value: {"Fn::FindInMap": [StageSettings, dev, Zones]}}
  Azs: {Value: !GetAZs ""}
  FirstAz: {Value: {"Fn::Select": [0, {"Fn::GetAZs": {Ref: "AWS::Region"}}]}}
"#,
        ));
        assert_eq!(out["Memory"], 256);
        assert_eq!(out["Zones"], serde_json::json!(["x", "y"]));
        assert_eq!(
            out["Azs"],
            serde_json::json!(["us-east-1a", "us-east-1b", "us-east-1c"])
        );
        assert_eq!(out["FirstAz"], "us-east-1a");
        let missing = outputs_error(&with_outputs(
            "  X: {Value: !FindInMap [StageSettings, prod, Memory]}\n",
        ));
        assert!(
            missing.contains("Mappings has no StageSettings.prod.Memory"),
            "{missing}"
        );
    }

    #[test]
    fn unknown_references_are_errors_naming_file_logical_id_and_target() {
        let error = outputs_error(&with_outputs("  X: {Value: !Ref Nope}\n"));
        assert!(
            error.contains("/t/template.yaml: Outputs.X: refers to `Nope`"),
            "{error}"
        );
        let error = outputs_error(&with_outputs("  X: {Value: !GetAtt Nope.Arn}\n"));
        assert!(error.contains("`Nope.Arn`"), "{error}");
        let error = outputs_error(&with_outputs("  X: {Value: !Sub \"${Missing}\"}\n"));
        assert!(error.contains("`Missing`"), "{error}");
        let error = outputs_error(&with_outputs("  X: {Value: !GetAtt Table.Nope}\n"));
        assert!(
            error.contains("Table (AWS::DynamoDB::Table) has no attribute Nope"),
            "{error}"
        );
        let error = outputs_error(&with_outputs("  X: {Value: !ImportValue Something}\n"));
        assert!(error.contains("Fn::ImportValue"), "{error}");
    }
}
