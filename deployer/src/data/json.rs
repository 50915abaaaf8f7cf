//! Items as plain JSON objects, one per line (`export`, `import`): strings,
//! numbers, booleans, null, lists and maps, as a teacher's script would write
//! them. Hand-written rather than `serde_dynamo`: the scores table holds only
//! these types, and a number must keep its exact text both ways (a count of
//! `9007199254740991` through an `f64` would not).

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Number, Value};

use super::shape::Item;

/// Why a line is not an item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonItemError {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("{0}")]
    Syntax(String),
    #[error("attribute {0}: sets and binary values are not part of a scores table")]
    Unsupported(String),
}

pub fn to_json(item: &Item) -> Result<Value, JsonItemError> {
    let mut names: Vec<&String> = item.keys().collect();
    names.sort();
    let mut object = Map::new();
    for name in names {
        object.insert(name.clone(), value_to_json(name, &item[name])?);
    }
    Ok(Value::Object(object))
}

fn value_to_json(name: &str, value: &AttributeValue) -> Result<Value, JsonItemError> {
    Ok(match value {
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::N(text) => match text.parse::<u64>() {
            Ok(whole) => Value::Number(whole.into()),
            Err(_) => text
                .parse::<i64>()
                .map(Value::from)
                .ok()
                .or_else(|| {
                    text.parse::<f64>()
                        .ok()
                        .and_then(Number::from_f64)
                        .map(Value::Number)
                })
                .ok_or_else(|| JsonItemError::Unsupported(name.to_owned()))?,
        },
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(items) => Value::Array(
            items
                .iter()
                .map(|item| value_to_json(name, item))
                .collect::<Result<_, _>>()?,
        ),
        AttributeValue::M(map) => to_json(map)?,
        _ => return Err(JsonItemError::Unsupported(name.to_owned())),
    })
}

pub fn from_line(line: &str) -> Result<Item, JsonItemError> {
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(object)) => Ok(from_object(&object)),
        Ok(_) => Err(JsonItemError::NotAnObject),
        Err(error) => Err(JsonItemError::Syntax(error.to_string())),
    }
}

fn from_object(object: &Map<String, Value>) -> Item {
    object
        .iter()
        .map(|(name, value)| (name.clone(), value_from_json(value)))
        .collect()
}

fn value_from_json(value: &Value) -> AttributeValue {
    match value {
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::Bool(flag) => AttributeValue::Bool(*flag),
        Value::Null => AttributeValue::Null(true),
        Value::Array(items) => AttributeValue::L(items.iter().map(value_from_json).collect()),
        Value::Object(object) => AttributeValue::M(from_object(object)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_go_to_json_and_back_unchanged() {
        let line = r#"{"isArchived":false,"note":null,"submissionCount":9007199254740991,"tableId":"c","tags":["a",1],"username":"u","x":{"y":2.5}}"#;
        let item = from_line(line).expect("an item");
        assert_eq!(
            item["submissionCount"],
            AttributeValue::N("9007199254740991".into())
        );
        assert_eq!(to_json(&item).expect("JSON").to_string(), line);
        assert_eq!(from_line("[1]"), Err(JsonItemError::NotAnObject));
        assert!(matches!(from_line("{"), Err(JsonItemError::Syntax(_))));
        let set: Item = [("s".to_owned(), AttributeValue::Ss(vec!["a".into()]))].into();
        assert_eq!(to_json(&set), Err(JsonItemError::Unsupported("s".into())));
    }
}
