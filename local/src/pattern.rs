//! EventBridge event patterns, the syntax of Lambda's `FilterCriteria`: which stream
//! records or queue messages reach a function. Supported: exact values, `prefix`,
//! `suffix`, `equals-ignore-case`, `anything-but`, `exists`, `numeric` and `wildcard`,
//! nested objects and arrays of alternatives. moto evaluates the bus rules itself.

use serde_json::Value;

/// Whether `event` matches `pattern`.
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        return false;
    };
    fields.iter().all(|(key, expected)| {
        let actual = event.get(key);
        match expected {
            Value::Object(_) => actual.is_some_and(|value| matches(expected, value)),
            Value::Array(alternatives) => alternatives
                .iter()
                .any(|matcher| field_matches(matcher, actual)),
            _ => false,
        }
    })
}

/// One matcher against a field that may be absent or an array (an array matches when
/// any element does).
fn field_matches(matcher: &Value, actual: Option<&Value>) -> bool {
    if let Some(Value::Object(rule)) = Some(matcher)
        && let Some(Value::Bool(should_exist)) = rule.get("exists")
    {
        return actual.is_some() == *should_exist;
    }
    match actual {
        None => false,
        Some(Value::Array(values)) => values.iter().any(|value| value_matches(matcher, value)),
        Some(value) => value_matches(matcher, value),
    }
}

fn value_matches(matcher: &Value, value: &Value) -> bool {
    match matcher {
        Value::Object(rule) => rule
            .iter()
            .all(|(operator, operand)| operator_matches(operator, operand, value)),
        literal => literal_equals(literal, value),
    }
}

fn literal_equals(literal: &Value, value: &Value) -> bool {
    match (literal, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => literal == value,
    }
}

fn operator_matches(operator: &str, operand: &Value, value: &Value) -> bool {
    let text = value.as_str();
    match operator {
        "prefix" => match operand {
            Value::String(prefix) => text.is_some_and(|t| t.starts_with(prefix.as_str())),
            Value::Object(inner) => inner
                .get("equals-ignore-case")
                .and_then(Value::as_str)
                .zip(text)
                .is_some_and(|(prefix, t)| t.to_lowercase().starts_with(&prefix.to_lowercase())),
            _ => false,
        },
        "suffix" => operand
            .as_str()
            .zip(text)
            .is_some_and(|(suffix, t)| t.ends_with(suffix)),
        "equals-ignore-case" => operand
            .as_str()
            .zip(text)
            .is_some_and(|(expected, t)| expected.eq_ignore_ascii_case(t)),
        "wildcard" => operand
            .as_str()
            .zip(text)
            .is_some_and(|(pattern, t)| wildcard(pattern, t)),
        "anything-but" => match operand {
            Value::Array(excluded) => !excluded.iter().any(|e| literal_equals(e, value)),
            Value::Object(_) => !value_matches(operand, value),
            single => !literal_equals(single, value),
        },
        "numeric" => value
            .as_f64()
            .is_some_and(|number| numeric(operand, number)),
        _ => false,
    }
}

fn numeric(conditions: &Value, number: f64) -> bool {
    let Value::Array(parts) = conditions else {
        return false;
    };
    parts.chunks(2).all(|pair| match pair {
        [Value::String(op), bound] => bound.as_f64().is_some_and(|bound| match op.as_str() {
            "=" => number == bound,
            "<" => number < bound,
            "<=" => number <= bound,
            ">" => number > bound,
            ">=" => number >= bound,
            _ => false,
        }),
        _ => false,
    })
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    if !text.starts_with(first)
        || !text[first.len()..].ends_with(last)
        || text.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_outbox_filter_selects_outbox_inserts_only() {
        let filter: Value =
            serde_json::from_str(r#"{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"pk": {"S": [{"prefix": "OUTBOX#"}]}}}}"#).unwrap();
        let record = |name: &str, pk: &str| json!({"eventName": name, "dynamodb": {"NewImage": {"pk": {"S": pk}}}});
        assert!(matches(&filter, &record("INSERT", "OUTBOX#1")));
        assert!(!matches(&filter, &record("MODIFY", "OUTBOX#1")));
        assert!(!matches(&filter, &record("INSERT", "PRODUCT#1")));
        assert!(!matches(
            &filter,
            &json!({"eventName": "REMOVE", "dynamodb": {"Keys": {}}})
        ));
    }

    #[test]
    fn every_operator() {
        let event = json!({"source": "shop.catalog", "n": 7, "tags": ["a", "b"], "name": "Mug"});
        let yes = [
            json!({"source": ["shop.catalog"]}),
            json!({"source": [{"prefix": "shop."}]}),
            json!({"source": [{"suffix": ".catalog"}]}),
            json!({"source": [{"prefix": {"equals-ignore-case": "SHOP."}}]}),
            json!({"name": [{"equals-ignore-case": "mug"}]}),
            json!({"source": [{"anything-but": ["shop.payment"]}]}),
            json!({"source": [{"anything-but": {"prefix": "aws."}}]}),
            json!({"n": [{"numeric": [">", 5, "<=", 7]}]}),
            json!({"n": [7.0]}),
            json!({"tags": ["b"]}),
            json!({"missing": [{"exists": false}]}),
            json!({"source": [{"exists": true}]}),
            json!({"source": [{"wildcard": "shop.*log"}]}),
            json!({"source": ["nope", "shop.catalog"]}),
        ];
        for pattern in yes {
            assert!(matches(&pattern, &event), "{pattern}");
        }
        let no = [
            json!({"source": ["shop.payment"]}),
            json!({"source": [{"anything-but": "shop.catalog"}]}),
            json!({"n": [{"numeric": [">", 7]}]}),
            json!({"missing": ["x"]}),
            json!({"source": [{"exists": false}]}),
            json!({"source": [{"wildcard": "shop.*pay"}]}),
            json!({"tags": ["c"]}),
        ];
        for pattern in no {
            assert!(!matches(&pattern, &event), "{pattern}");
        }
    }
}
