//! Reading typed values out of DynamoDB items, with errors that name the item and
//! attribute (legacy items may lack attributes added since; those have defaults).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::StoreError;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Reads attributes of one item, naming it in every error.
pub(crate) struct ItemReader<'a> {
    pub item: &'a Item,
    pub table: &'a str,
}

impl ItemReader<'_> {
    fn malformed(&self, problem: String) -> StoreError {
        let key = format!(
            "({}, {})",
            self.item
                .get(crate::schema::TABLE_ID)
                .and_then(|value| value.as_s().ok())
                .map_or("?", String::as_str),
            self.item
                .get(crate::schema::USERNAME)
                .and_then(|value| value.as_s().ok())
                .map_or("?", String::as_str),
        );
        StoreError::MalformedItem {
            table: self.table.to_owned(),
            key,
            problem,
        }
    }

    pub fn string(&self, name: &str) -> Result<String, StoreError> {
        self.optional_string(name)?
            .ok_or_else(|| self.malformed(format!("attribute {name} is missing")))
    }

    pub fn optional_string(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
            Some(_) => Err(self.malformed(format!("attribute {name} is not a string"))),
        }
    }

    /// A non-negative integer; a missing attribute reads as 0. Integral decimals
    /// such as `5.0` (older writers stored floats) read as integers.
    pub fn count(&self, name: &str) -> Result<u64, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(0),
            Some(AttributeValue::N(text)) => parse_count(text).ok_or_else(|| {
                self.malformed(format!(
                    "attribute {name} = {text} is not a non-negative integer"
                ))
            }),
            Some(_) => Err(self.malformed(format!("attribute {name} is not a number"))),
        }
    }

    /// A whole number of seconds since the epoch (a Time to Live), required.
    pub fn epoch(&self, name: &str) -> Result<i64, StoreError> {
        match self.item.get(name) {
            Some(AttributeValue::N(text)) => text.parse().map_err(|_| {
                self.malformed(format!(
                    "attribute {name} = {text} is not whole epoch seconds"
                ))
            }),
            None | Some(AttributeValue::Null(_)) => {
                Err(self.malformed(format!("attribute {name} is missing")))
            }
            Some(_) => Err(self.malformed(format!("attribute {name} is not a number"))),
        }
    }

    /// A count that may be absent (`None`).
    pub fn optional_count(&self, name: &str) -> Result<Option<u64>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(_) => self.count(name).map(Some),
        }
    }

    /// A number that may be absent, as the nearest double (what JSON carries).
    pub fn optional_number(&self, name: &str) -> Result<Option<f64>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(text)) => text
                .parse()
                .map(Some)
                .map_err(|_| self.malformed(format!("attribute {name} = {text} is not a number"))),
            Some(_) => Err(self.malformed(format!("attribute {name} is not a number"))),
        }
    }

    /// A map of numbers that may be absent (moral-compass metrics).
    pub fn optional_number_map(
        &self,
        name: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, f64>>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::M(map)) => map
                .iter()
                .map(|(key, value)| match value {
                    AttributeValue::N(text) => text
                        .parse::<f64>()
                        .map(|number| (key.clone(), number))
                        .map_err(|_| {
                            self.malformed(format!("{name}.{key} = {text} is not a number"))
                        }),
                    _ => Err(self.malformed(format!("{name}.{key} is not a number"))),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(self.malformed(format!("attribute {name} is not a map"))),
        }
    }

    /// Strings that may be absent: a string set, or (as the legacy handler
    /// wrote them) a list of strings.
    pub fn optional_strings(&self, name: &str) -> Result<Option<Vec<String>>, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::Ss(values)) => Ok(Some(values.clone())),
            Some(AttributeValue::L(values)) => values
                .iter()
                .map(|value| {
                    value
                        .as_s()
                        .cloned()
                        .map_err(|_| self.malformed(format!("attribute {name} holds a non-string")))
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(self.malformed(format!("attribute {name} is not a list of strings"))),
        }
    }

    /// A boolean; a missing attribute reads as `false`.
    pub fn flag(&self, name: &str) -> Result<bool, StoreError> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(false),
            Some(AttributeValue::Bool(value)) => Ok(*value),
            Some(_) => Err(self.malformed(format!("attribute {name} is not a boolean"))),
        }
    }
}

use crate::schema::parse_count;

pub(crate) fn string_value(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn number_value(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accept_integers_and_integral_decimals_only() {
        assert_eq!(parse_count("5"), Some(5));
        assert_eq!(parse_count("5.0"), Some(5));
        assert_eq!(parse_count("0"), Some(0));
        assert_eq!(parse_count("5.5"), None);
        assert_eq!(parse_count("-1"), None);
        assert_eq!(parse_count("abc"), None);
    }

    #[test]
    fn a_wrong_type_is_an_error_naming_the_item_and_attribute() {
        let item: Item = [
            ("tableId".to_owned(), string_value("t1")),
            ("username".to_owned(), string_value("ann")),
            ("submissionCount".to_owned(), string_value("five")),
        ]
        .into();
        let reader = ItemReader {
            item: &item,
            table: "PlaygroundScores-dev",
        };
        let message = reader
            .count("submissionCount")
            .expect_err("a string is not a count")
            .to_string();
        assert!(message.contains("(t1, ann)"), "{message}");
        assert!(message.contains("submissionCount"), "{message}");
        assert_eq!(reader.count("totalCount").ok(), Some(0));
    }
}
