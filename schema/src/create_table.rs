//! The one CreateTable request for a playground table, sent by the function's
//! `--create-table` (every index) and by the deployer (the indexes its settings
//! want, plus its tags), and the pieces of it the deployer also needs when it
//! adds an index in place.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    self, AttributeDefinition, BillingMode, KeySchemaElement, Projection, ProjectionType,
    ScalarAttributeType,
};

use crate::{GlobalSecondaryIndex, KeyAttribute, KeyType, TABLE_SCHEMA};

/// DynamoDB's type for a key attribute of `key_type`.
pub fn attribute_type(key_type: KeyType) -> ScalarAttributeType {
    match key_type {
        KeyType::String => ScalarAttributeType::S,
        KeyType::Number => ScalarAttributeType::N,
    }
}

/// `name` as the hash or range key of a key schema.
pub fn key_element(name: &str, role: types::KeyType) -> Result<KeySchemaElement, BuildError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(role)
        .build()
}

fn attribute_definition(key: KeyAttribute) -> Result<AttributeDefinition, BuildError> {
    AttributeDefinition::builder()
        .attribute_name(key.name)
        .attribute_type(attribute_type(key.key_type))
        .build()
}

/// `index` as DynamoDB describes it: its keys, projecting every attribute.
pub fn global_secondary_index(
    index: &GlobalSecondaryIndex,
) -> Result<types::GlobalSecondaryIndex, BuildError> {
    types::GlobalSecondaryIndex::builder()
        .index_name(index.name)
        .key_schema(key_element(index.partition_key.name, types::KeyType::Hash)?)
        .key_schema(key_element(index.sort_key.name, types::KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
}

/// The definitions of the table's keys and of `indexes`' keys, once each.
pub fn attribute_definitions(
    indexes: &[&GlobalSecondaryIndex],
) -> Result<Vec<AttributeDefinition>, BuildError> {
    TABLE_SCHEMA
        .key_attributes_of(indexes.iter().copied())
        .into_iter()
        .map(attribute_definition)
        .collect()
}

/// CreateTable of `table` with the schema's keys, on-demand billing and `indexes`.
pub fn create_table(
    client: &Client,
    table: &str,
    indexes: &[&GlobalSecondaryIndex],
) -> Result<CreateTableFluentBuilder, BuildError> {
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key_element(
            TABLE_SCHEMA.partition_key.name,
            types::KeyType::Hash,
        )?)
        .key_schema(key_element(
            TABLE_SCHEMA.sort_key.name,
            types::KeyType::Range,
        )?)
        .set_attribute_definitions(Some(attribute_definitions(indexes)?));
    for index in indexes {
        request = request.global_secondary_indexes(global_secondary_index(index)?);
    }
    Ok(request)
}
