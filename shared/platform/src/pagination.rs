//! Cursor pagination (DESIGN §4): `limit` 1..=100 (default 20) and an opaque `cursor`,
//! answered as `{"items": [...], "nextCursor": "..."}`. What a page is and how a cursor
//! is spelt; reading them from a request is [`crate::http::page_request`]'s.

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

/// Encodes DynamoDB's `LastEvaluatedKey` as an opaque, URL-safe cursor.
pub fn encode_cursor(key: &Key) -> Option<String> {
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
    Some(URL_SAFE_NO_PAD.encode(json))
}

/// The key a cursor of [`encode_cursor`]'s stands for, if it is one and holds exactly the
/// attributes in `key_attributes` (the table's and the index's keys).
pub fn decode_cursor(cursor: &str, key_attributes: &[&str]) -> Option<Key> {
    if cursor.len() > 2048 {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(cursor).ok()?;
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

    #[test]
    fn a_cursor_round_trips_and_rejects_foreign_keys() {
        let key: Key = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("PRODUCT#1".into())),
            ("gsi1pk".to_owned(), AttributeValue::S("PRODUCT".into())),
            ("n".to_owned(), AttributeValue::N("7".into())),
        ]);
        let cursor = encode_cursor(&key).unwrap();
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(decode_cursor(&cursor, &["pk", "gsi1pk", "n"]), Some(key));
        assert_eq!(decode_cursor(&cursor, &["pk", "sk", "n"]), None);
        assert_eq!(decode_cursor("not base64!", &["pk"]), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("{}"), &["pk"]), None);
    }
}
