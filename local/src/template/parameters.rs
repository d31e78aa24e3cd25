//! Template parameters: root overrides from [`LoadOptions`](super::LoadOptions), values a
//! parent's Application passes to a nested template, defaults, and `AllowedValues`.

use serde_json::Value as Json;

use super::props::{Props, Scope, scalar_string};
use super::{Loader, Result, TemplateError, invalid};

impl Loader<'_> {
    /// Root overrides and Application parameters must name declared parameters, as in
    /// CloudFormation: a typo would otherwise silently fall back to the default.
    pub(super) fn check_parameters(&self) -> Result<()> {
        let root = &self.stacks[0];
        for name in self.options.parameters.keys() {
            if !root.parameters.contains_key(name) {
                return Err(invalid(
                    &root.file,
                    "Parameters",
                    format!("a value is given for {name}, which the template does not declare"),
                ));
            }
        }
        for (index, stack) in self.stacks.iter().enumerate() {
            let Some((parent, app_id)) = &stack.parent else {
                continue;
            };
            let parent = &self.stacks[*parent];
            let passed = match parent
                .resource(app_id)
                .and_then(|app| app.properties.get("Parameters"))
            {
                None => continue,
                Some(Json::Object(passed)) => passed,
                Some(_) => {
                    return Err(invalid(
                        &parent.file,
                        app_id,
                        "Parameters must be a mapping",
                    ));
                }
            };
            if let Some(name) = passed
                .keys()
                .find(|name| !self.stacks[index].parameters.contains_key(*name))
            {
                return Err(invalid(
                    &parent.file,
                    app_id,
                    format!(
                        "passes the parameter {name}, which {} does not declare",
                        stack.file.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The value of a declared parameter of `stack`; `None` when it declares no such parameter.
    pub(super) fn parameter(&self, stack: usize, name: &str) -> Result<Option<Json>> {
        let Some(declaration) = self.stacks[stack].parameters.get(name) else {
            return Ok(None);
        };
        let key = (stack, name.to_string());
        if let Some(value) = self.parameter_values.borrow().get(&key) {
            return Ok(Some(value.clone()));
        }
        let value = self.parameter_value(stack, name, declaration)?;
        self.parameter_values
            .borrow_mut()
            .insert(key, value.clone());
        Ok(Some(value))
    }

    fn parameter_value(&self, stack: usize, name: &str, declaration: &Json) -> Result<Json> {
        let scope = self.scope(stack, format!("Parameters.{name}"));
        let declared = Props::of(&scope, scope.at.clone(), declaration)?;
        let given = match &self.stacks[stack].parent {
            None => self.options.parameters.get(name).cloned(),
            Some((parent, app_id)) => self.passed_parameter(&scope, *parent, app_id, name)?,
        };
        let default = match declared.get("Default") {
            None => None,
            Some(value) => Some(
                parameter_string(value)
                    .ok_or_else(|| declared.wrong("Default", "a string", value))?,
            ),
        };
        let Some(value) = given.or(default) else {
            return Err(TemplateError::MissingParameter {
                file: scope.file.to_path_buf(),
                name: name.to_string(),
            });
        };
        let kind = declared.string("Type")?.unwrap_or_default();
        let is_list = kind == "CommaDelimitedList" || kind.starts_with("List<");
        let values: Vec<String> = match is_list {
            // CloudFormation trims the members of a comma-delimited list.
            true => value
                .split(',')
                .map(|item| item.trim().to_string())
                .collect(),
            false => vec![value.clone()],
        };
        let allowed = declared.strings("AllowedValues")?;
        if let Some(bad) = values
            .iter()
            .find(|value| !allowed.is_empty() && !allowed.contains(value))
        {
            return Err(scope.invalid(format!(
                "{bad:?} is not one of the AllowedValues {allowed:?}"
            )));
        }
        Ok(match is_list {
            true => Json::Array(values.into_iter().map(Json::String).collect()),
            false => Json::String(value),
        })
    }

    /// What the parent's Application passes for a nested parameter, evaluated in the parent.
    fn passed_parameter(
        &self,
        scope: &Scope,
        parent: usize,
        app_id: &str,
        name: &str,
    ) -> Result<Option<String>> {
        let passed = self.stacks[parent]
            .resource(app_id)
            .and_then(|app| app.properties.get("Parameters"))
            .and_then(|parameters| parameters.get(name));
        let Some(passed) = passed else {
            return Ok(None);
        };
        let parent_scope = self.scope(parent, app_id);
        let what = format!("Parameters.{name}");
        let value = self.guarded(scope, || self.eval_value(&parent_scope, passed, &what))?;
        parameter_string(&value).map(Some).ok_or_else(|| {
            parent_scope.invalid(format!(
                "{what} must be a string or a list of strings, got {value}"
            ))
        })
    }
}

/// A parameter value: scalars stringified, lists comma-joined (as nested stacks receive them).
fn parameter_string(value: &Json) -> Option<String> {
    match value {
        Json::Array(items) => items
            .iter()
            .map(scalar_string)
            .collect::<Option<Vec<_>>>()
            .map(|items| items.join(",")),
        scalar => scalar_string(scalar),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::Value as Json;

    use crate::template::test_support::{
        expect_error, expect_ok, options, outputs_error, outputs_with,
    };
    use crate::template::{Result, TemplateError};

    #[test]
    fn parameters_take_overrides_then_defaults_and_fail_without_either() {
        let root = r#"
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Retention: {Type: Number, Default: 30}
  Required: {Type: String}
Resources:
  Topic: {Type: AWS::SNS::Topic}
Outputs:
  Stage: {Value: !Ref Stage}
  Retention: {Value: !Ref Retention}
  Required: {Value: !Ref Required}
"#;
        let error = match outputs_with(root, &[], &options()) {
            Err(error @ TemplateError::MissingParameter { .. }) => error.to_string(),
            other => panic!("expected a missing parameter, got {other:?}"),
        };
        assert!(
            error.contains("/t/template.yaml: Parameters.Required: no value"),
            "{error}"
        );

        let mut given = options();
        given.parameters.insert("Required".into(), "here".into());
        given.parameters.insert("Stage".into(), "prod".into());
        let out = expect_ok(outputs_with(root, &[], &given));
        assert_eq!(out["Stage"], "prod");
        assert_eq!(out["Retention"], "30");
        assert_eq!(out["Required"], "here");

        given.parameters.insert("Stage".into(), "test".into());
        let error = expect_error(outputs_with(root, &[], &given));
        assert!(
            error.contains("\"test\" is not one of the AllowedValues"),
            "{error}"
        );

        given.parameters.insert("Typo".into(), "x".into());
        let error = expect_error(outputs_with(root, &[], &given));
        assert!(error.contains("a value is given for Typo"), "{error}");
    }

    const NESTED_ROOT: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties: {Name: !Sub "shop-${Stage}"}
  BillingService:
    Type: AWS::Serverless::Application
    Properties:
      Location: billing/template.yaml
      Parameters:
        BusName: !Ref Bus
        Zones: [a, b]
Outputs:
  QueueUrl: {Value: !GetAtt BillingService.Outputs.QueueUrl}
  Echo: {Value: {"Fn::GetAtt": [BillingService, Outputs.Echo]}}
  StackName: {Value: !GetAtt BillingService.Outputs.StackName}
  Zones: {Value: !GetAtt BillingService.Outputs.Zones}
"#;

    const NESTED_BILLING: &str = r#"
Parameters:
  BusName: {Type: String}
  Zones: {Type: CommaDelimitedList}
  Unused: {Type: String, Default: fine}
Resources:
  Queue: {Type: AWS::SQS::Queue}
Outputs:
  QueueUrl: {Value: !Ref Queue}
  Echo: {Value: !Sub "${BusName}!"}
  StackName: {Value: !Ref AWS::StackName}
  Zones: {Value: !Join [";", !Ref Zones]}
"#;

    /// The outputs of `root` with `NESTED_BILLING` where its BillingService points.
    fn with_billing(root: &str) -> Result<BTreeMap<String, Json>> {
        let nested = [("/t/billing/template.yaml", NESTED_BILLING)];
        outputs_with(root, &nested, &options())
    }

    #[test]
    fn nested_outputs_resolve_with_parameters_passed_from_the_parent() {
        let out = expect_ok(with_billing(NESTED_ROOT));
        assert_eq!(
            out["QueueUrl"],
            "http://127.0.0.1:4566/123456789012/billing-Queue"
        );
        assert_eq!(out["Echo"], "shop-dev!");
        assert_eq!(out["StackName"], "shop-local-BillingService");
        assert_eq!(out["Zones"], "a;b");
        let error = outputs_error(&NESTED_ROOT.replace("Outputs.Echo", "Outputs.Nope"));
        assert!(
            error.contains("cannot read template /t/billing/template.yaml"),
            "{error}"
        );
        let missing_output = expect_error(with_billing(
            &NESTED_ROOT.replace("Outputs.Echo", "Outputs.Nope"),
        ));
        assert!(
            missing_output.contains(
                "BillingService (AWS::Serverless::Application) has no attribute Outputs.Nope"
            ),
            "{missing_output}"
        );
    }

    #[test]
    fn nested_parameters_must_be_declared_and_given() {
        let undeclared = expect_error(with_billing(
            &NESTED_ROOT.replace("Zones: [a, b]", "Zones: [a, b]\n        Extra: x"),
        ));
        assert!(
            undeclared.contains("/t/template.yaml: BillingService: passes the parameter Extra"),
            "{undeclared}"
        );
        let missing = expect_error(with_billing(
            &NESTED_ROOT.replace("        Zones: [a, b]\n", ""),
        ));
        assert!(
            missing.contains("/t/billing/template.yaml: Parameters.Zones: no value"),
            "{missing}"
        );
    }
}
