//! Lambda functions (`AWS::Serverless::Function`).

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::names::{function_url, local_endpoint};
use super::props::{Scope, scalar_string};
use super::{Loader, Placed, Result};
use crate::topology::{FunctionSpec, FunctionUrlSpec};

impl Loader<'_> {
    pub(super) fn function(&self, scope: &Scope, placed: &Placed) -> Result<FunctionSpec> {
        let props = self.properties(
            scope,
            placed.resource,
            &[
                "Environment",
                "Timeout",
                "MemorySize",
                "ReservedConcurrentExecutions",
            ],
        )?;
        let mut environment = BTreeMap::new();
        if let Some(settings) = props.object("Environment")?
            && let Some(variables) = settings.object("Variables")?
        {
            for (name, value) in &variables.map {
                let value =
                    scalar_string(value).ok_or_else(|| variables.wrong(name, "a string", value))?;
                environment.insert(name.clone(), local_endpoint(&value, &self.options.api_url));
            }
        }
        Ok(FunctionSpec {
            logical_id: placed.id.clone(),
            name: self.physical_name(placed.stack, placed.resource)?,
            binary: binary(scope, &placed.resource.metadata)?,
            environment,
            timeout_seconds: props.u32("Timeout")?.unwrap_or(3),
            memory_mb: props.u32("MemorySize")?.unwrap_or(128),
            reserved_concurrency: props.u32("ReservedConcurrentExecutions")?,
        })
    }
}

impl Loader<'_> {
    /// A function URL (SAM's `FunctionUrlConfig`). Only public URLs are served: an IAM-signed
    /// one would need SigV4 checks the local gateway does not make.
    pub(super) fn function_url(&self, scope: &Scope, placed: &Placed) -> Result<FunctionUrlSpec> {
        let props = self.properties(scope, placed.resource, &["AuthType"])?;
        match props.string("AuthType")?.as_deref() {
            Some("NONE") => {}
            Some("AWS_IAM") => {
                return Err(scope.unsupported(
                    "function URLs with AuthType AWS_IAM (requests would need SigV4 checks); use NONE and authenticate in the function",
                ));
            }
            other => {
                return Err(
                    scope.invalid(format!("AuthType must be NONE or AWS_IAM, got {other:?}"))
                );
            }
        }
        let function = self.url_target(placed.stack, placed.resource)?;
        Ok(FunctionUrlSpec {
            logical_id: placed.id.clone(),
            url: function_url(&self.options.api_url, &function),
            function,
        })
    }
}

/// The cargo binary a function runs. The runner executes it directly, so only Rust functions
/// built by cargo-lambda (which name their binary in the build metadata) can run locally.
fn binary(scope: &Scope, metadata: &Json) -> Result<String> {
    match metadata.pointer("/BuildProperties/Binary") {
        Some(Json::String(binary)) if !binary.is_empty() => Ok(binary.clone()),
        Some(other) => Err(scope.invalid(format!("Metadata.BuildProperties.Binary must be a binary name, got {other}"))),
        None => match metadata.get("BuildMethod").and_then(Json::as_str) {
            Some("rust-cargolambda") => Err(scope.invalid(
                "Metadata.BuildProperties.Binary is missing: name the cargo [[bin]] this function runs",
            )),
            build_method => Err(scope.unsupported(format!(
                "only Rust functions (Metadata.BuildMethod: rust-cargolambda, with BuildProperties.Binary) run locally; \
                 this one's BuildMethod is {build_method:?}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use crate::template::test_support::{topology_error, topology_of};

    #[test]
    fn functions_need_a_cargo_lambda_binary() {
        let function = |metadata: &str| {
            format!(
                "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Metadata: {metadata}\n    Properties: {{CodeUri: .}}\n"
            )
        };
        let missing = topology_error(&function("{BuildMethod: rust-cargolambda}"));
        assert!(
            missing.contains("/t/template.yaml: Fn: Metadata.BuildProperties.Binary is missing"),
            "{missing}"
        );
        let python = topology_error(&function("{BuildMethod: python3.12}"));
        assert!(
            python.contains("not supported by the local runner: only Rust functions"),
            "{python}"
        );
        let topology = topology_of(&function("{BuildProperties: {Binary: fn}}"));
        assert_eq!(topology.functions[0].name, "shop-Fn");
        assert_eq!(topology.functions[0].timeout_seconds, 3);
        assert_eq!(topology.functions[0].memory_mb, 128);
        assert_eq!(topology.not_emulated, ["FnRole (AWS::IAM::Role)"]);
    }

    #[test]
    fn a_function_url_is_served_by_the_local_api_and_resolves_as_deployed() {
        let topology = topology_of(
            r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: fn}}
    Properties:
      CodeUri: .
      FunctionUrlConfig: {AuthType: NONE}
  Caller:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: caller}}
    Properties:
      CodeUri: .
      Environment: {Variables: {TARGET: !GetAtt FnUrl.FunctionUrl}}
"#,
        );
        assert_eq!(topology.function_urls.len(), 1);
        let url = &topology.function_urls[0];
        assert_eq!(url.function, "shop-Fn");
        assert_eq!(url.logical_id, "FnUrl");
        assert_eq!(
            url.url,
            "http://127.0.0.1:3000/_local/function-urls/shop-Fn/"
        );
        assert_eq!(topology.functions[1].environment["TARGET"], url.url);

        let signed = topology_error(
            "Resources:
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: fn}}
    Properties: {CodeUri: ., FunctionUrlConfig: {AuthType: AWS_IAM}}
",
        );
        assert!(
            signed.contains(
                "FnUrl: not supported by the local runner: function URLs with AuthType AWS_IAM"
            ),
            "{signed}"
        );
    }
}
