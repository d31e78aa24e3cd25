//! Secrets Manager secrets (`AWS::SecretsManager::Secret`).

use super::props::Scope;
use super::{Loader, Placed, Result};
use crate::topology::{SecretSpec, SecretValue};

/// CloudFormation's default length for a generated password.
const DEFAULT_PASSWORD_LENGTH: u32 = 32;

impl Loader<'_> {
    pub(super) fn secret(&self, scope: &Scope, placed: &Placed) -> Result<SecretSpec> {
        let props = self.properties(
            scope,
            placed.resource,
            &["SecretString", "GenerateSecretString"],
        )?;
        let value = match (
            props.string("SecretString")?,
            props.object("GenerateSecretString")?,
        ) {
            (Some(_), Some(_)) => {
                return Err(scope.invalid(
                    "SecretString and GenerateSecretString exclude each other: give one",
                ));
            }
            (Some(literal), None) => SecretValue::Literal(literal),
            (None, Some(generate)) => {
                let template = generate.string("SecretStringTemplate")?;
                let key = generate.string("GenerateStringKey")?;
                if template.is_some() != key.is_some() {
                    return Err(scope.invalid(
                        "GenerateSecretString: SecretStringTemplate and GenerateStringKey go together",
                    ));
                }
                if let Some(template) = &template
                    && !serde_json::from_str::<serde_json::Value>(template)
                        .is_ok_and(|value| value.is_object())
                {
                    return Err(scope.invalid(format!(
                        "GenerateSecretString.SecretStringTemplate must be a JSON object, got {template:?}"
                    )));
                }
                SecretValue::Generated {
                    template,
                    key,
                    length: generate
                        .u32("PasswordLength")?
                        .unwrap_or(DEFAULT_PASSWORD_LENGTH),
                }
            }
            // CloudFormation generates one when neither is given.
            (None, None) => SecretValue::Generated {
                template: None,
                key: None,
                length: DEFAULT_PASSWORD_LENGTH,
            },
        };
        Ok(SecretSpec {
            logical_id: placed.id.clone(),
            name: self.physical_name(placed.stack, placed.resource)?,
            value,
        })
    }
}

impl SecretValue {
    /// The secret string to store: the literal, or a fresh random password (letters and
    /// digits, whatever the template's exclusions, which can only narrow that set) in its
    /// JSON template.
    pub fn materialise(&self) -> String {
        match self {
            SecretValue::Literal(literal) => literal.clone(),
            SecretValue::Generated {
                template,
                key,
                length,
            } => {
                let password: String = std::iter::repeat_with(fastrand::alphanumeric)
                    .take(*length as usize)
                    .collect();
                match (template, key) {
                    (Some(template), Some(key)) => {
                        let mut object: serde_json::Map<String, serde_json::Value> =
                            serde_json::from_str(template).unwrap_or_default();
                        object.insert(key.clone(), serde_json::Value::String(password));
                        serde_json::Value::Object(object).to_string()
                    }
                    _ => password,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::template::test_support::{topology_error, topology_of};
    use crate::topology::SecretValue;

    #[test]
    fn secrets_are_literal_or_generated_into_their_json_template() {
        let topology = topology_of(
            r#"
Resources:
  Literal: {Type: AWS::SecretsManager::Secret, Properties: {Name: fixed, SecretString: "s3cret"}}
  ApiKey:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString: {SecretStringTemplate: '{"user": "shop"}', GenerateStringKey: apiKey, PasswordLength: 40, ExcludePunctuation: true}
Outputs:
  ApiKeyRef: {Value: !Ref ApiKey}
"#,
        );
        assert_eq!(topology.secrets.len(), 2);
        assert_eq!(topology.secrets[0].name, "fixed");
        assert_eq!(topology.secrets[0].value.materialise(), "s3cret");
        assert_eq!(topology.secrets[1].name, "shop-ApiKey");
        let generated: serde_json::Value =
            serde_json::from_str(&topology.secrets[1].value.materialise()).unwrap();
        assert_eq!(generated["user"], "shop");
        let key = generated["apiKey"].as_str().unwrap();
        assert_eq!(key.len(), 40);
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(
            topology.secrets[1].value.materialise(),
            topology.secrets[1].value.materialise(),
            "a fresh password each time"
        );
        assert!(matches!(
            topology.secrets[1].value,
            SecretValue::Generated { length: 40, .. }
        ));
    }

    #[test]
    fn contradictory_secrets_are_refused() {
        let both = topology_error(
            "Resources:\n  S: {Type: AWS::SecretsManager::Secret, Properties: {SecretString: x, GenerateSecretString: {}}}\n",
        );
        assert!(
            both.contains("S: SecretString and GenerateSecretString"),
            "{both}"
        );
        let half = topology_error(
            "Resources:\n  S: {Type: AWS::SecretsManager::Secret, Properties: {GenerateSecretString: {GenerateStringKey: k}}}\n",
        );
        assert!(half.contains("go together"), "{half}");
    }
}
