//! Typed resource attributes. Each resource kind declares its attributes once,
//! with [`attributes!`]: a struct whose fields are the attributes, and an enum
//! naming each of them. `desired` and `read` build the struct; the planner diffs
//! the attribute maps it turns into ([`AttributeSet`]); `update` matches each
//! planned change on the enum ([`AttributeSet::name_of`]), so an attribute that
//! is declared but not handled is a compile error, not a runtime "unknown
//! attribute".
//!
//! A value is [`Planned::Known`], or [`Planned::Unknown`] until apply (an id AWS
//! assigns when a resource this one depends on is created): an unknown is
//! always planned as a change. An attribute whose value is `None` is not
//! managed (or, observed, is absent) and is not compared.
//!
//! An attribute's [`Rule`] and a planned [`AttributeChange`] live here too, so
//! the planner (`plan.rs`) depends on this module and not the other way round.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::EngineError;

/// Shown for values that only exist after apply.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// A desired value: known now, or only once apply has run.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned<T = Value> {
    Known(T),
    Unknown,
}

impl<T> Planned<T> {
    /// The value, when known.
    pub fn known(&self) -> Option<&T> {
        match self {
            Self::Known(value) => Some(value),
            Self::Unknown => None,
        }
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown)
    }
}

impl From<Option<String>> for Planned<String> {
    /// `None` is unknown.
    fn from(value: Option<String>) -> Self {
        value.map_or(Self::Unknown, Self::Known)
    }
}

impl Serialize for Planned {
    /// A known value as itself; an unknown one as [`KNOWN_AFTER_APPLY`].
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Known(value) => value.serialize(serializer),
            Self::Unknown => serializer.serialize_str(KNOWN_AFTER_APPLY),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Planned {
    /// [`KNOWN_AFTER_APPLY`] as unknown; any other value as itself.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::String(text) if text == KNOWN_AFTER_APPLY => Self::Unknown,
            value => Self::Known(value),
        })
    }
}

/// How one attribute is compared and changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Compared exactly; changed in place.
    InPlace,
    /// An IAM policy document, compared by meaning; changed in place.
    Policy,
    /// A list compared as a set (order is not a difference); changed in place.
    Set,
    /// Cannot change in place: a difference replaces the resource.
    ForcesReplacement,
}

/// One attribute's change.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AttributeChange {
    pub name: String,
    pub old: Value,
    /// Shown as `(known after apply)` when unknown.
    pub new: Planned,
    pub forces_replacement: bool,
}

/// Tags, as every taggable resource declares them.
pub type Tags = BTreeMap<String, String>;

/// A value an attribute can hold. `None` means not managed (desired) or absent
/// (observed): the attribute is left out of the map, and so not compared.
pub trait AttributeValue {
    fn into_planned(self) -> Option<Planned>;
}

/// `AttributeValue` for types whose attribute is their JSON, known: the
/// basic ones here, a kind's own typed values in its file.
macro_rules! serialized_attribute_values {
    ($($type:ty),* $(,)?) => {$(
        impl $crate::engine::attributes::AttributeValue for $type {
            fn into_planned(self) -> Option<$crate::engine::attributes::Planned> {
                $crate::engine::attributes::known(self)
            }
        }
    )*};
}
pub(crate) use serialized_attribute_values;

serialized_attribute_values!(
    Value,
    String,
    bool,
    i32,
    i64,
    u32,
    Vec<String>,
    BTreeMap<String, String>
);

/// A typed value as an attribute holds it: known, as its JSON. A kind's own
/// value types implement [`AttributeValue`] with it.
pub fn known(value: impl Serialize) -> Option<Planned> {
    Some(Planned::Known(
        serde_json::to_value(value).unwrap_or(Value::Null),
    ))
}

impl AttributeValue for &str {
    fn into_planned(self) -> Option<Planned> {
        Some(Planned::Known(Value::String(self.to_owned())))
    }
}

impl<T: AttributeValue> AttributeValue for Option<T> {
    fn into_planned(self) -> Option<Planned> {
        self.and_then(AttributeValue::into_planned)
    }
}

impl<T: AttributeValue> AttributeValue for Planned<T> {
    fn into_planned(self) -> Option<Planned> {
        match self {
            Self::Known(value) => value.into_planned(),
            Self::Unknown => Some(Planned::Unknown),
        }
    }
}

/// An attribute of one kind, named by its enum (what [`attributes!`]
/// declares), so that nothing outside the kind spells an attribute as text.
pub trait AttributeName: Copy {
    /// The attribute's name in plans and observed maps.
    fn name(self) -> &'static str;
}

/// What [`attributes!`] implements for a resource kind's attribute struct.
pub trait AttributeSet: Sized {
    /// The enum naming each attribute.
    type Name: Copy + PartialEq + std::fmt::Debug + 'static;
    /// Every attribute's name and its rule, in declaration order.
    const NAMES: &'static [(Self::Name, &'static str, Rule)];
    /// The attributes that have a value, by name.
    fn into_planned(self) -> BTreeMap<String, Planned>;

    /// Observed attributes (nothing unknown is observed).
    fn into_observed(self) -> BTreeMap<String, Value> {
        self.into_planned()
            .into_iter()
            .filter_map(|(name, value)| match value {
                Planned::Known(value) => Some((name, value)),
                Planned::Unknown => None,
            })
            .collect()
    }

    /// The rules of the attributes that are not [`Rule::InPlace`].
    fn rules() -> BTreeMap<&'static str, Rule> {
        Self::NAMES
            .iter()
            .filter(|(_, _, rule)| *rule != Rule::InPlace)
            .map(|(_, name, rule)| (*name, *rule))
            .collect()
    }

    /// The name of `attribute`, as plans show it.
    fn name(attribute: Self::Name) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(variant, _, _)| *variant == attribute)
            .map_or("", |(_, name, _)| *name)
    }

    /// Which attribute `change` is about. Only a plan made for another kind
    /// of resource can name an attribute this kind does not have.
    fn name_of(change: &AttributeChange) -> Result<Self::Name, EngineError> {
        Self::NAMES
            .iter()
            .find(|(_, name, _)| *name == change.name)
            .map(|(variant, _, _)| *variant)
            .ok_or_else(|| {
                EngineError::new(
                    "applying a planned change",
                    format!(
                        "{} is not an attribute of {}",
                        change.name,
                        std::any::type_name::<Self>()
                    ),
                )
            })
    }
}

/// Declare a resource kind's attributes once: the struct (fields are the
/// attributes, any [`AttributeValue`]), the enum naming them, and each one's
/// [`Rule`] (in place unless given after `=>`).
///
/// ```text
/// attributes! {
///     /// A role's attributes.
///     pub struct RoleAttributes, enum RoleAttribute {
///         TrustPolicy trust_policy: Value => Rule::Policy,
///         Tags tags: Tags,
///     }
/// }
/// ```
#[macro_export]
macro_rules! attributes {
    (
        $(#[$meta:meta])*
        pub struct $set:ident, enum $names:ident {
            $($variant:ident $field:ident : $type:ty $(=> $rule:expr)?),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $set {
            $(pub $field: $type,)*
        }

        /// The attributes of [`
        #[doc = stringify!($set)]
        /// `], by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $names {
            $($variant,)*
        }

        impl $crate::engine::attributes::AttributeName for $names {
            fn name(self) -> &'static str {
                <$set as $crate::engine::attributes::AttributeSet>::name(self)
            }
        }

        impl $crate::engine::attributes::AttributeSet for $set {
            type Name = $names;
            const NAMES: &'static [($names, &'static str, $crate::engine::Rule)] = &[
                $(($names::$variant, stringify!($field), $crate::attributes!(@rule $($rule)?)),)*
            ];

            fn into_planned(
                self,
            ) -> std::collections::BTreeMap<String, $crate::engine::attributes::Planned> {
                let mut attributes = std::collections::BTreeMap::new();
                $(
                    if let Some(value) =
                        $crate::engine::attributes::AttributeValue::into_planned(self.$field)
                    {
                        attributes.insert(stringify!($field).to_owned(), value);
                    }
                )*
                attributes
            }
        }
    };
    (@rule) => { $crate::engine::Rule::InPlace };
    (@rule $rule:expr) => { $rule };
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    crate::attributes! {
        /// A kind with one of each.
        pub struct Example, enum ExampleAttribute {
            Name name: String => Rule::ForcesReplacement,
            Members members: Vec<String> => Rule::Set,
            Target target: Planned<String>,
            Optional optional: Option<u32>,
        }
    }

    fn example(target: Planned<String>, optional: Option<u32>) -> Example {
        Example {
            name: "n".into(),
            members: vec!["b".into(), "a".into()],
            target,
            optional,
        }
    }

    #[test]
    fn attributes_become_a_map_by_name_leaving_out_what_is_unset() {
        let attributes = example(Planned::Known("t".into()), None).into_planned();
        assert_eq!(
            attributes.keys().map(String::as_str).collect::<Vec<_>>(),
            ["members", "name", "target"]
        );
        assert_eq!(attributes["target"], Planned::Known(json!("t")));
        let attributes = example(Planned::Unknown, Some(3)).into_planned();
        assert_eq!(attributes["target"], Planned::Unknown);
        assert_eq!(attributes["optional"], Planned::Known(json!(3)));
        assert!(
            !example(Planned::Unknown, None)
                .into_observed()
                .contains_key("target"),
            "nothing unknown is observed"
        );
    }

    #[test]
    fn rules_and_names_come_from_the_declaration() {
        let rules = Example::rules();
        assert_eq!(rules.get("name"), Some(&Rule::ForcesReplacement));
        assert_eq!(rules.get("members"), Some(&Rule::Set));
        assert_eq!(rules.get("target"), None, "in place is the default");
        let change = |name: &str| AttributeChange {
            name: name.into(),
            old: Value::Null,
            new: Planned::Known(Value::Null),
            forces_replacement: false,
        };
        assert_eq!(
            Example::name_of(&change("optional")).expect("declared"),
            ExampleAttribute::Optional
        );
        assert_eq!(Example::name(ExampleAttribute::Members), "members");
        let error = Example::name_of(&change("typo")).expect_err("not declared");
        assert!(error.to_string().contains("typo"), "{error}");
    }

    #[test]
    fn an_unknown_is_shown_as_known_after_apply() {
        assert_eq!(
            serde_json::to_value(Planned::Unknown).expect("serializes"),
            json!(KNOWN_AFTER_APPLY)
        );
        assert_eq!(
            serde_json::to_value(Planned::Known(json!(1))).expect("serializes"),
            json!(1)
        );
    }
}
