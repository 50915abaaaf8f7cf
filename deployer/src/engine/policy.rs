//! IAM policy documents compared by meaning, not by text: statement order,
//! action order, a single string versus a one-element list, and duplicate
//! entries are not differences. IAM returns documents URL-encoded; [`decode`]
//! undoes that.

use serde_json::{Map, Value};

/// The canonical form of a policy document: every list-or-string field a sorted,
/// deduplicated list; statements sorted by their canonical text.
pub fn normalize(document: &Value) -> Value {
    let Value::Object(object) = document else {
        return document.clone();
    };
    let mut normalized = Map::new();
    for (key, value) in object {
        let value = if key == "Statement" {
            let mut statements: Vec<Value> =
                as_list(value).iter().map(normalize_statement).collect();
            statements.sort_by_key(Value::to_string);
            statements.dedup();
            Value::Array(statements)
        } else {
            value.clone()
        };
        normalized.insert(key.clone(), value);
    }
    Value::Object(normalized)
}

/// Whether two documents grant the same thing.
pub fn equivalent(left: &Value, right: &Value) -> bool {
    normalize(left) == normalize(right)
}

/// Parse a policy document as IAM returns it (URL-encoded JSON) or as written.
pub fn decode(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok().or_else(|| {
        let decoded = percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .ok()?;
        serde_json::from_str(&decoded).ok()
    })
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn sorted_list(value: &Value) -> Value {
    let mut items: Vec<Value> = as_list(value);
    items.sort_by_key(Value::to_string);
    items.dedup();
    Value::Array(items)
}

fn normalize_statement(statement: &Value) -> Value {
    let Value::Object(object) = statement else {
        return statement.clone();
    };
    let mut normalized = Map::new();
    for (key, value) in object {
        let value = match key.as_str() {
            "Action" | "NotAction" | "Resource" | "NotResource" => sorted_list(value),
            "Principal" | "NotPrincipal" => match value {
                Value::Object(principals) => Value::Object(
                    principals
                        .iter()
                        .map(|(kind, ids)| (kind.clone(), sorted_list(ids)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "Condition" => match value {
                Value::Object(operators) => Value::Object(
                    operators
                        .iter()
                        .map(|(operator, keys)| {
                            let keys = match keys {
                                Value::Object(keys) => Value::Object(
                                    keys.iter()
                                        .map(|(key, values)| (key.clone(), sorted_list(values)))
                                        .collect(),
                                ),
                                other => other.clone(),
                            };
                            (operator.clone(), keys)
                        })
                        .collect(),
                ),
                other => other.clone(),
            },
            _ => value.clone(),
        };
        normalized.insert(key.clone(), value);
    }
    Value::Object(normalized)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn order_and_single_values_are_not_differences() {
        let written = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": ["arn:t"],
                 "Condition": {"StringLike": {"k": ["b", "a"]}}}
            ]
        });
        let returned = json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": "arn:t",
                 "Condition": {"StringLike": {"k": ["a", "b", "a"]}}},
                {"Action": ["s3:GetObject", "s3:PutObject"], "Resource": ["arn:aws:s3:::b/*"], "Effect": "Allow"}
            ]
        });
        assert!(equivalent(&written, &returned));
        let statement = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "a:b", "Resource": "*"}});
        let listed = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["a:b"], "Resource": ["*"]}]});
        assert!(equivalent(&statement, &listed));
    }

    #[test]
    fn real_differences_are_differences() {
        let base = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]});
        for other in [
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]}),
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}]}),
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
                {"Effect": "Allow", "Action": "iam:*", "Resource": "*"}
            ]}),
        ] {
            assert!(!equivalent(&base, &other), "{other}");
        }
    }

    #[test]
    fn url_encoded_documents_decode() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            decode(encoded),
            Some(json!({"Version": "2012-10-17", "Statement": []}))
        );
        assert_eq!(decode(r#"{"a":1}"#), Some(json!({"a": 1})));
        assert_eq!(decode("%zz"), None);
    }
}
