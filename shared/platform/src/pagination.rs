//! Cursor pagination (DESIGN §4): `limit` 1..=100 (default 20) and an opaque `cursor`,
//! answered as `{"items": [...], "nextCursor": "..."}`. What a page is and how a cursor
//! is spelt; reading them from a request is [`crate::http::page_request`]'s.
//!
//! A cursor is the position DynamoDB gave (`LastEvaluatedKey`) and an HMAC-SHA256 of it
//! under the capability's cursor key ([`CursorKey`], kept in Secrets Manager): only what
//! this API gave out decodes, so no caller can hand DynamoDB a key of its own making
//! (another attribute type, another partition, a position in another list).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

pub const DEFAULT_LIMIT: i32 = 20;
pub const MAX_LIMIT: i32 = 100;

/// A DynamoDB key to resume after.
pub type Key = HashMap<String, AttributeValue>;

/// What the caller asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub limit: i32,
    pub after: Option<Key>,
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Only string and number key attributes exist in this system's tables.
#[derive(Serialize, Deserialize)]
enum KeyValue {
    S(String),
    N(String),
}

/// The key a capability's cursors are signed with.
#[derive(Clone)]
pub struct CursorKey(aws_lc_rs::hmac::Key);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(<redacted>)")
    }
}

impl CursorKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            secret,
        ))
    }

    /// The key kept in the secret `CURSOR_SECRET_ID` names (`{"key": "..."}`), which the
    /// capability's template generates.
    pub async fn from_env(config: &aws_config::SdkConfig) -> Result<Self, lambda_runtime::Error> {
        let secret_id = crate::aws::required_env("CURSOR_SECRET_ID")?;
        let client = aws_sdk_secretsmanager::Client::new(config);
        let secret = crate::secret::read_field(&client, &secret_id, "key").await?;
        Ok(Self::new(secret.as_bytes()))
    }
}

/// Encodes DynamoDB's `LastEvaluatedKey` as an opaque, URL-safe cursor signed with `key`.
pub fn encode_cursor(signing: &CursorKey, key: &Key) -> Option<String> {
    let mut plain: Vec<(&str, KeyValue)> = Vec::with_capacity(key.len());
    for (name, value) in key {
        let value = match value {
            AttributeValue::S(s) => KeyValue::S(s.clone()),
            AttributeValue::N(n) => KeyValue::N(n.clone()),
            _ => return None,
        };
        plain.push((name, value));
    }
    plain.sort_by(|a, b| a.0.cmp(b.0));
    let json = serde_json::to_vec(&plain).ok()?;
    let tag = aws_lc_rs::hmac::sign(&signing.0, &json);
    Some(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&json),
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    ))
}

/// The key a cursor of [`encode_cursor`]'s stands for, if it is one signed with `signing`
/// and holds exactly the attributes in `key_attributes` (the table's and the index's keys).
pub fn decode_cursor(signing: &CursorKey, cursor: &str, key_attributes: &[&str]) -> Option<Key> {
    if cursor.len() > 2048 {
        return None;
    }
    let (payload, tag) = cursor.split_once('.')?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    aws_lc_rs::hmac::verify(&signing.0, &json, &tag).ok()?;
    let plain: Vec<(String, KeyValue)> = serde_json::from_slice(&json).ok()?;
    if plain.len() != key_attributes.len()
        || !plain
            .iter()
            .all(|(name, _)| key_attributes.contains(&name.as_str()))
    {
        return None;
    }
    Some(
        plain
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    KeyValue::S(s) => AttributeValue::S(s),
                    KeyValue::N(n) => AttributeValue::N(n),
                };
                (name, value)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signing() -> CursorKey {
        CursorKey::new(b"a test key, not a secret")
    }

    #[test]
    fn a_cursor_round_trips_and_rejects_foreign_keys() {
        let key: Key = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("PRODUCT#1".into())),
            ("gsi1pk".to_owned(), AttributeValue::S("PRODUCT".into())),
            ("n".to_owned(), AttributeValue::N("7".into())),
        ]);
        let cursor = encode_cursor(&signing(), &key).unwrap();
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        );
        assert_eq!(
            decode_cursor(&signing(), &cursor, &["pk", "gsi1pk", "n"]),
            Some(key)
        );
        assert_eq!(decode_cursor(&signing(), &cursor, &["pk", "sk", "n"]), None);
        assert_eq!(decode_cursor(&signing(), "not base64!", &["pk"]), None);
        assert_eq!(
            decode_cursor(&signing(), &URL_SAFE_NO_PAD.encode("{}"), &["pk"]),
            None
        );
    }

    /// What an attacker does to a cursor: decode it, change a value or a type, encode it
    /// again. Without the key, it no longer decodes.
    #[test]
    fn a_cursor_changed_in_any_way_or_signed_with_another_key_does_not_decode() {
        let key: Key = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("PRODUCT#1".into())),
            ("gsi1sk".to_owned(), AttributeValue::S("lamp#1".into())),
        ]);
        let attributes = ["pk", "gsi1sk"];
        let cursor = encode_cursor(&signing(), &key).unwrap();
        let (payload, tag) = cursor.split_once('.').unwrap();
        let plain = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let retyped = plain.replace(r#"{"S":"lamp#1"}"#, r#"{"N":"1"}"#);
        assert_ne!(retyped, plain);
        for forged in [
            format!("{}.{tag}", URL_SAFE_NO_PAD.encode(&retyped)),
            format!(
                "{}.{tag}",
                URL_SAFE_NO_PAD.encode(plain.replace("lamp", "lampa"))
            ),
            payload.to_owned(),
            format!("{payload}."),
            format!("{payload}.{}", &tag[1..]),
            encode_cursor(&CursorKey::new(b"another key"), &key).unwrap(),
        ] {
            assert_eq!(
                decode_cursor(&signing(), &forged, &attributes),
                None,
                "{forged}"
            );
        }
        assert_eq!(format!("{:?}", signing()), "CursorKey(<redacted>)");
    }
}
