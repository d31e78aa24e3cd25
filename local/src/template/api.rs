//! The HTTP API's routes, with their Lambda proxy integrations and JWT authorizers, and the
//! WebSocket API's routes.

use super::names::{HTTP_API_ID, WEBSOCKET_API_ID, function_arn, function_arn_in_uri};
use super::props::{Props, Scope};
use super::{Links, Loader, Placed, Result};
use crate::topology::{
    CorsSpec, RouteAuth, RouteSpec, Topology, WebSocketRouteSpec, WebSocketSpec,
};

impl Loader<'_> {
    /// The API's `CorsConfiguration`, resolved.
    pub(super) fn cors(&self, scope: &Scope, placed: &Placed) -> Result<Option<CorsSpec>> {
        let props = self.properties(scope, placed.resource, &["CorsConfiguration"])?;
        let Some(cors) = props.object("CorsConfiguration")? else {
            return Ok(None);
        };
        let max_age = cors.u32("MaxAge")?;
        Ok(Some(CorsSpec {
            allow_origins: cors.strings("AllowOrigins")?,
            allow_methods: cors.strings("AllowMethods")?,
            allow_headers: cors.strings("AllowHeaders")?,
            expose_headers: cors.strings("ExposeHeaders")?,
            max_age,
            allow_credentials: cors.bool("AllowCredentials")?.unwrap_or(false),
        }))
    }

    /// A WebSocket API, before its routes (they point at it).
    pub(super) fn websocket_api(&self, scope: &Scope, placed: &Placed) -> Result<WebSocketSpec> {
        let props = self.properties(scope, placed.resource, &["RouteSelectionExpression"])?;
        let expression = props.required_string("RouteSelectionExpression")?;
        if !expression.starts_with("$request.body.") {
            return Err(scope.unsupported(format!(
                "RouteSelectionExpression {expression}: only `$request.body.<field>` is emulated"
            )));
        }
        Ok(WebSocketSpec {
            route_selection_expression: expression,
            routes: Vec::new(),
            stages: Vec::new(),
        })
    }

    /// A WebSocket API stage's name; `None` for another API's stage.
    pub(super) fn websocket_stage(&self, scope: &Scope, placed: &Placed) -> Result<Option<String>> {
        let props = self.properties(scope, placed.resource, &["ApiId", "StageName"])?;
        if props.string("ApiId")?.as_deref() != Some(WEBSOCKET_API_ID) {
            return Ok(None);
        }
        Ok(Some(props.required_string("StageName")?))
    }

    pub(super) fn is_websocket_route(&self, scope: &Scope, placed: &Placed) -> Result<bool> {
        let props = self.properties(scope, placed.resource, &["ApiId"])?;
        Ok(props.string("ApiId")?.as_deref() == Some(WEBSOCKET_API_ID))
    }

    /// A WebSocket route: its key and the function behind it. API Gateway allows only
    /// NONE, AWS_IAM or a Lambda authorizer on `$connect`; the shop's `$connect` checks
    /// its token itself, so only NONE is emulated.
    pub(super) fn websocket_route(
        &self,
        scope: &Scope,
        placed: &Placed,
        topology: &Topology,
        links: &Links,
    ) -> Result<WebSocketRouteSpec> {
        let props = self.properties(
            scope,
            placed.resource,
            &["RouteKey", "Target", "AuthorizationType"],
        )?;
        let route_key = props.required_string("RouteKey")?;
        match props.string("AuthorizationType")?.as_deref() {
            None | Some("NONE") => {}
            Some(other) => {
                return Err(scope.unsupported(format!(
                    "AuthorizationType {other} on a WebSocket route: only NONE is emulated"
                )));
            }
        }
        let integration = self.target_integration(scope, &props, links)?;
        Ok(WebSocketRouteSpec {
            route_key,
            function: self.integration_function(integration, topology, WEBSOCKET_API_ID)?,
        })
    }

    fn target_integration<'a>(
        &self,
        scope: &Scope,
        props: &Props,
        links: &'a Links,
    ) -> Result<&'a Placed<'a>> {
        let target = props.required_string("Target")?;
        target
            .strip_prefix("integrations/")
            .and_then(|id| links.integrations.get(id))
            .copied()
            .ok_or_else(|| {
                scope.invalid(format!(
                    "Target {target:?} is not `integrations/<id>` of an AWS::ApiGatewayV2::Integration in the templates"
                ))
            })
    }

    pub(super) fn route(
        &self,
        scope: &Scope,
        placed: &Placed,
        topology: &Topology,
        links: &Links,
    ) -> Result<RouteSpec> {
        let props = self.properties(
            scope,
            placed.resource,
            &[
                "ApiId",
                "RouteKey",
                "Target",
                "AuthorizationType",
                "AuthorizerId",
                "AuthorizationScopes",
            ],
        )?;
        check_api_id(&props, HTTP_API_ID)?;
        if props.has("AuthorizationScopes") {
            return Err(scope.unsupported("AuthorizationScopes: the topology has no field for them, so they would not be checked"));
        }
        let route_key = props.required_string("RouteKey")?;
        let (method, path) = parse_route_key(&route_key).ok_or_else(|| {
            scope.invalid(format!(
                "RouteKey {route_key:?} is not `$default` or `METHOD /path`"
            ))
        })?;
        let integration = self.target_integration(scope, &props, links)?;
        let function = self.integration_function(integration, topology, HTTP_API_ID)?;
        let auth = match props
            .string("AuthorizationType")?
            .as_deref()
            .unwrap_or("NONE")
        {
            "NONE" => RouteAuth::None,
            "JWT" => {
                let authorizer_id = props.required_string("AuthorizerId")?;
                let authorizer = links.authorizers.get(&authorizer_id).ok_or_else(|| {
                    scope.invalid(format!(
                        "AuthorizerId {authorizer_id:?} is not the id of an AWS::ApiGatewayV2::Authorizer in the templates"
                    ))
                })?;
                self.jwt_authorizer(authorizer)?
            }
            other => {
                return Err(scope.unsupported(format!(
                    "AuthorizationType {other}: only NONE and JWT routes are emulated"
                )));
            }
        };
        Ok(RouteSpec {
            route_key,
            method,
            path,
            function,
            auth,
        })
    }

    /// The physical name of the function behind an integration of the API `api_id`.
    fn integration_function(
        &self,
        integration: &Placed,
        topology: &Topology,
        api_id: &str,
    ) -> Result<String> {
        let scope = self.scope_of(integration);
        let props = self.properties(
            &scope,
            integration.resource,
            &[
                "ApiId",
                "IntegrationType",
                "IntegrationUri",
                "PayloadFormatVersion",
            ],
        )?;
        check_api_id(&props, api_id)?;
        let kind = props.required_string("IntegrationType")?;
        if kind != "AWS_PROXY" {
            return Err(scope.unsupported(format!(
                "IntegrationType {kind}: only AWS_PROXY (Lambda proxy) integrations run locally"
            )));
        }
        // A WebSocket API's events have one shape, and no version to choose.
        let version = match api_id {
            WEBSOCKET_API_ID => "2.0".to_owned(),
            _ => props.required_string("PayloadFormatVersion")?,
        };
        if version != "2.0" {
            return Err(scope.unsupported(format!(
                "PayloadFormatVersion {version}: the local API sends 2.0 events only"
            )));
        }
        let uri = props.required_string("IntegrationUri")?;
        let arn = function_arn_in_uri(&uri);
        topology
            .functions
            .iter()
            .find(|function| function_arn(&function.name) == arn)
            .map(|function| function.name.clone())
            .ok_or_else(|| {
                scope.invalid(format!(
                    "IntegrationUri {uri} is not a function the templates declare"
                ))
            })
    }

    fn jwt_authorizer(&self, authorizer: &Placed) -> Result<RouteAuth> {
        let scope = self.scope_of(authorizer);
        let props = self.properties(
            &scope,
            authorizer.resource,
            &["ApiId", "AuthorizerType", "JwtConfiguration"],
        )?;
        check_api_id(&props, HTTP_API_ID)?;
        let kind = props.required_string("AuthorizerType")?;
        if kind != "JWT" {
            return Err(scope.unsupported(format!(
                "AuthorizerType {kind}: only JWT authorizers are emulated"
            )));
        }
        let jwt = props
            .object("JwtConfiguration")?
            .ok_or_else(|| props.required("JwtConfiguration"))?;
        let audience = jwt.strings("Audience")?;
        if audience.is_empty() {
            return Err(jwt.required("Audience"));
        }
        Ok(RouteAuth::Jwt {
            issuer: jwt.required_string("Issuer")?,
            audience,
        })
    }
}

/// Routes, integrations and authorizers must belong to the local API they are used with.
fn check_api_id(props: &Props, expected: &str) -> Result<()> {
    let api_id = props.required_string("ApiId")?;
    if api_id != expected {
        let which = match expected {
            WEBSOCKET_API_ID => "WebSocket",
            _ => "HTTP",
        };
        return Err(props.scope.invalid(format!(
            "ApiId {api_id:?} is not the {which} API the templates declare (pass the AWS::ApiGatewayV2::Api's Ref)"
        )));
    }
    Ok(())
}

/// `METHOD /path` → (method, path), methods kept as given (`ANY` included). `$default` catches
/// what no other route matches and has no method or path of its own: it is `("ANY", "$default")`.
fn parse_route_key(route_key: &str) -> Option<(String, String)> {
    if route_key == "$default" {
        return Some(("ANY".to_string(), "$default".to_string()));
    }
    let (method, path) = route_key.split_once(' ')?;
    let known = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
    ]
    .contains(&method);
    (known && path.starts_with('/') && !path.contains(' '))
        .then(|| (method.to_string(), path.to_string()))
}

#[cfg(test)]
mod tests {
    use crate::template::test_support::{topology_error, topology_of};
    use crate::topology::RouteAuth;

    #[test]
    fn integration_uris_in_the_apigateway_form_resolve_to_the_function() {
        let root = r#"
Resources:
  Api: {Type: AWS::ApiGatewayV2::Api, Properties: {ProtocolType: HTTP}}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: fn}}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      PayloadFormatVersion: "2.0"
      IntegrationUri: !Sub "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations"
  Default:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $default
      Target: !Sub "integrations/${Integration}"
  Any:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: ANY /things/{proxy+}
      AuthorizationType: NONE
      Target: !Join ["/", [integrations, !Ref Integration]]
"#;
        let topology = topology_of(root);
        let routes: Vec<(&str, &str, &str, &str)> = topology
            .routes
            .iter()
            .map(|r| {
                (
                    r.route_key.as_str(),
                    r.method.as_str(),
                    r.path.as_str(),
                    r.function.as_str(),
                )
            })
            .collect();
        assert_eq!(
            routes,
            [
                ("$default", "ANY", "$default", "shop-Fn"),
                ("ANY /things/{proxy+}", "ANY", "/things/{proxy+}", "shop-Fn")
            ]
        );
        assert!(
            topology
                .routes
                .iter()
                .all(|route| route.auth == RouteAuth::None)
        );
        let wrong_api = root.replace(
            "ApiId: !Ref Api\n      RouteKey: $default",
            "ApiId: other\n      RouteKey: $default",
        );
        let error = topology_error(&wrong_api);
        assert!(
            error.contains("/t/template.yaml: Default: ApiId \"other\" is not the HTTP API"),
            "{error}"
        );
        let iam = root.replace("AuthorizationType: NONE", "AuthorizationType: AWS_IAM");
        let error = topology_error(&iam);
        assert!(
            error.contains("Any: not supported by the local runner: AuthorizationType AWS_IAM"),
            "{error}"
        );
    }
}
