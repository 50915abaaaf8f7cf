//! The shapes of the scores table's keys and indexes: typed, compared by
//! their fields, and shown (in plans and the state) as `name: hash (S) / range (N)`.
//! A recorded text that does not read stays as it was written ([`Shape::Unreadable`]),
//! so an old or hand-edited state never fails a plan.

use crate::engine::attributes;

/// A key attribute's type, as DynamoDB names it: `S`, `N` or `B`, or
/// whatever else was read (`?`: the table defines no type for the attribute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAttributeType {
    S,
    N,
    B,
    Unknown(String),
}

impl KeyAttributeType {
    /// Shown where the table defines no type for a key attribute.
    pub(super) const UNDEFINED: &str = "?";

    pub(super) fn of_letter(letter: &str) -> Self {
        match letter {
            "S" => Self::S,
            "N" => Self::N,
            "B" => Self::B,
            other => Self::Unknown(other.to_owned()),
        }
    }

    fn letter(&self) -> &str {
        match self {
            Self::S => "S",
            Self::N => "N",
            Self::B => "B",
            Self::Unknown(text) => text,
        }
    }
}

/// One key attribute, shown `name (T)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttribute {
    pub name: String,
    pub attribute_type: KeyAttributeType,
}

impl KeyAttribute {
    fn of(key: &schema::KeyAttribute) -> Self {
        Self {
            name: key.name.to_owned(),
            attribute_type: match key.key_type {
                schema::KeyType::String => KeyAttributeType::S,
                schema::KeyType::Number => KeyAttributeType::N,
            },
        }
    }
}

impl std::fmt::Display for KeyAttribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.attribute_type.letter())
    }
}

impl std::str::FromStr for KeyAttribute {
    type Err = UnreadableShape;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, letter) = text
            .strip_suffix(')')
            .and_then(|text| text.rsplit_once(" ("))
            .ok_or_else(|| UnreadableShape(text.to_owned()))?;
        Ok(Self {
            name: name.to_owned(),
            attribute_type: KeyAttributeType::of_letter(letter),
        })
    }
}

/// A table's or an index's keys, shown `hash (T) / range (T)`, or
/// `hash (T) / (none)` without a range key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    pub hash: KeyAttribute,
    pub range: Option<KeyAttribute>,
}

/// Shown for a key a schema does not have.
const NO_KEY: &str = "(none)";

impl KeySchema {
    /// Keys as the schema defines them (a table's or an index's: both have
    /// a partition and a sort key).
    pub(super) fn of(partition: &schema::KeyAttribute, sort: &schema::KeyAttribute) -> Self {
        Self {
            hash: KeyAttribute::of(partition),
            range: Some(KeyAttribute::of(sort)),
        }
    }

    /// The keys as read from AWS: typed when there is a hash key (DynamoDB
    /// always has one), else shown as they are.
    pub(super) fn read(hash: Option<KeyAttribute>, range: Option<KeyAttribute>) -> Shape<Self> {
        match hash {
            Some(hash) => Shape::Typed(Self { hash, range }),
            None => Shape::Unreadable(format!(
                "{NO_KEY} / {}",
                range.map_or_else(|| NO_KEY.to_owned(), |range| range.to_string())
            )),
        }
    }
}

impl std::fmt::Display for KeySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.range {
            Some(range) => write!(f, "{} / {range}", self.hash),
            None => write!(f, "{} / {NO_KEY}", self.hash),
        }
    }
}

impl std::str::FromStr for KeySchema {
    type Err = UnreadableShape;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unreadable = || UnreadableShape(text.to_owned());
        let (hash, range) = text.split_once(" / ").ok_or_else(unreadable)?;
        Ok(Self {
            hash: hash.parse().map_err(|_| unreadable())?,
            range: match range {
                NO_KEY => None,
                range => Some(range.parse().map_err(|_| unreadable())?),
            },
        })
    }
}

/// A global secondary index: its name and its keys, shown `name: hash (T) /
/// range (T)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexShape {
    pub name: String,
    pub keys: Shape<KeySchema>,
}

impl IndexShape {
    /// The index as the schema defines it.
    pub(super) fn of(index: &schema::GlobalSecondaryIndex) -> Self {
        Self {
            name: index.name.to_owned(),
            keys: Shape::Typed(KeySchema::of(&index.partition_key, &index.sort_key)),
        }
    }
}

impl std::fmt::Display for IndexShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.keys)
    }
}

impl std::str::FromStr for IndexShape {
    type Err = UnreadableShape;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, keys) = text
            .split_once(": ")
            .ok_or_else(|| UnreadableShape(text.to_owned()))?;
        Ok(Self {
            name: name.to_owned(),
            keys: Shape::from(keys.to_owned()),
        })
    }
}

/// A text that does not read as the shape it should show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a shape as the plan shows it: {0:?}")]
pub struct UnreadableShape(pub String);

/// A shape (the table's keys, an index) as the plan shows it and the state
/// records it: its text. Reading a text that is not such a shape (a state
/// written by hand, keys shown `(none) / (none)`) keeps the text as it is:
/// it reads and shows the same, and is never equal to a typed shape, so the
/// plan shows the change and no plan fails on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(
    into = "String",
    from = "String",
    bound(
        serialize = "T: std::fmt::Display + Clone",
        deserialize = "T: std::str::FromStr"
    )
)]
pub enum Shape<T> {
    Typed(T),
    Unreadable(String),
}

impl<T> Shape<T> {
    /// The typed shape, when the text read as one.
    pub fn typed(&self) -> Option<&T> {
        match self {
            Self::Typed(shape) => Some(shape),
            Self::Unreadable(_) => None,
        }
    }
}

impl Shape<IndexShape> {
    /// The index's name, when its text names one.
    pub fn name(&self) -> Option<&str> {
        self.typed().map(|index| index.name.as_str())
    }
}

impl<T: std::str::FromStr> From<String> for Shape<T> {
    fn from(text: String) -> Self {
        text.parse().map_or(Self::Unreadable(text), Self::Typed)
    }
}

impl<T: std::fmt::Display> From<Shape<T>> for String {
    fn from(shape: Shape<T>) -> Self {
        shape.to_string()
    }
}

impl<T: std::fmt::Display> std::fmt::Display for Shape<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Typed(shape) => shape.fmt(f),
            Self::Unreadable(text) => f.write_str(text),
        }
    }
}

attributes::serialized_attribute_values!(Shape<KeySchema>, Vec<Shape<IndexShape>>);

/// The indexes a planned change of `global_secondary_indexes` lists (its
/// old or new value); what is not a list of texts lists none.
pub fn indexes_in(value: &serde_json::Value) -> Vec<Shape<IndexShape>> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(|text| Shape::from(text.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// One step of converging a table's indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexStep {
    /// A wanted index the table lacks: created.
    Add(String),
    /// An index the table has under a wanted name with other keys: deleted
    /// and created again (an index holds no data of its own).
    Rebuild(String),
    /// An index the table has that is not wanted: deleted.
    Remove(String),
}

impl IndexStep {
    /// The index the step is about.
    pub fn name(&self) -> &str {
        match self {
            Self::Add(name) | Self::Rebuild(name) | Self::Remove(name) => name,
        }
    }
}

/// The steps from the indexes a table has (`existing`) to the `wanted`
/// ones, in the order apply takes them: each wanted index in turn, then the
/// removals. Indexes are compared by name and shape; one whose text names
/// no index cannot be deleted by name, and is left alone.
pub fn index_steps(existing: &[Shape<IndexShape>], wanted: &[IndexShape]) -> Vec<IndexStep> {
    let mut steps = Vec::new();
    for index in wanted {
        if existing.iter().any(|old| old.typed() == Some(index)) {
            continue;
        }
        let name = index.name.clone();
        if existing.iter().any(|old| old.name() == Some(&index.name)) {
            steps.push(IndexStep::Rebuild(name));
        } else {
            steps.push(IndexStep::Add(name));
        }
    }
    for name in existing.iter().filter_map(Shape::name) {
        if !wanted.iter().any(|index| index.name == name) {
            steps.push(IndexStep::Remove(name.to_owned()));
        }
    }
    steps
}

#[cfg(test)]
pub(super) mod tests {
    use schema::TABLE_SCHEMA;

    use super::*;

    /// `name`'s index as the schema defines it.
    pub(in crate::resources::dynamodb_scores_table) fn schema_index(name: &str) -> IndexShape {
        IndexShape::of(
            TABLE_SCHEMA
                .global_secondary_indexes
                .iter()
                .find(|index| index.name == name)
                .expect("in the schema"),
        )
    }

    #[test]
    fn indexes_are_added_rebuilt_under_other_keys_and_removed_by_name_and_shape() {
        let shown = |texts: &[&str]| -> Vec<Shape<IndexShape>> {
            texts
                .iter()
                .map(|text| Shape::from((*text).to_owned()))
                .collect()
        };
        let wanted = [
            schema_index(schema::BY_LEADERBOARD),
            schema_index(schema::BY_RANK),
            schema_index(schema::BY_USER),
        ];
        // Nothing to do where every wanted index has its shape.
        let all: Vec<_> = wanted.iter().cloned().map(Shape::Typed).collect();
        assert_eq!(index_steps(&all, &wanted), []);
        assert_eq!(
            index_steps(
                &shown(&[
                    "byUser: username (S) / tableId (S)",
                    "byRank: tableId (S) / score (N)",
                    "teacherIndex: teacher (S) / (none)",
                    "junk",
                ]),
                &wanted
            ),
            [
                IndexStep::Add(schema::BY_LEADERBOARD.into()),
                IndexStep::Rebuild(schema::BY_RANK.into()),
                IndexStep::Remove("teacherIndex".into()),
            ]
        );
        // Same name, keys of another type or that do not read: rebuilt too.
        for other in [
            "byRank: tableId (S) / rankKey (N)",
            "byRank: tableId (S) / (none)",
            "byRank: (none) / (none)",
        ] {
            assert_eq!(
                index_steps(&shown(&[other]), &wanted[1..2]),
                [IndexStep::Rebuild(schema::BY_RANK.into())],
                "{other}"
            );
        }
        assert_eq!(
            index_steps(&[], &wanted[..1]),
            [IndexStep::Add(schema::BY_LEADERBOARD.into())]
        );
    }
}
