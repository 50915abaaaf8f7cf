//! Sign-in sessions: a website stores a student's ID token under a session id
//! (`POST /sessions`), and an app opened with `?sessionid=` fetches it.
//!
//! A session is the item `tableId = "session#<id>"`, `username = "_session"`
//! ([`SESSION_PARTITION_PREFIX`], [`SESSION_SORT_KEY`]): no table id can hold
//! `#`, so a session never shares a partition with a playground table and never
//! shows among tables (it has no `tablesPartition`) or users (no
//! `leaderboardKey`). Its [`TIME_TO_LIVE`] attribute (epoch seconds) lets
//! DynamoDB sweep it; until the sweep, a read treats a session past it as gone.

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{Item, string_value};
use super::{Store, StoreError};
use crate::schema::{
    OWNER_SUB, SESSION_PARTITION_PREFIX, SESSION_SORT_KEY, TABLE_ID, TIME_TO_LIVE, UPDATED_AT,
    USERNAME,
};

/// The attribute holding a session's token (as the legacy handler named it).
const TOKEN: &str = "jwtToken";

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub token: String,
    /// Epoch seconds after which the session is gone.
    pub expires_at: i64,
}

/// Who writes a session: with sign-in on, the caller's `sub`, kept on the
/// session so that only they may replace or refresh it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionWriter<'a> {
    /// Sign-in off: anyone, as the legacy handler allowed.
    Anyone,
    /// Sign-in on: the caller with this `sub`.
    Owner(&'a str),
}

fn session_key(session_id: &str) -> Item {
    [
        (
            TABLE_ID.to_owned(),
            string_value(format!("{SESSION_PARTITION_PREFIX}{session_id}")),
        ),
        (USERNAME.to_owned(), string_value(SESSION_SORT_KEY)),
    ]
    .into()
}

fn epoch_value(seconds: i64) -> AttributeValue {
    AttributeValue::N(seconds.to_string())
}

impl Store {
    /// Store `token` under `session_id` until `expires_at`. With
    /// [`SessionWriter::Anyone`] a session of the same id is replaced, as the
    /// legacy handler did; with [`SessionWriter::Owner`] only one that has
    /// expired or is the same caller's ([`StoreError::SessionTaken`] otherwise).
    pub async fn put_session(
        &self,
        session_id: &str,
        token: &str,
        expires_at: i64,
        writer: SessionWriter<'_>,
        now: i64,
        now_text: &str,
    ) -> Result<(), StoreError> {
        let mut item = session_key(session_id);
        item.extend([
            (TOKEN.to_owned(), string_value(token)),
            (TIME_TO_LIVE.to_owned(), epoch_value(expires_at)),
            (UPDATED_AT.to_owned(), string_value(now_text)),
        ]);
        let mut request = self.client().put_item().table_name(&self.table_name);
        if let SessionWriter::Owner(sub) = writer {
            item.insert(OWNER_SUB.to_owned(), string_value(sub));
            request = request
                .condition_expression(
                    "attribute_not_exists(#id) OR #ttl <= :now OR #owner = :owner",
                )
                .expression_attribute_names("#id", TABLE_ID)
                .expression_attribute_names("#ttl", TIME_TO_LIVE)
                .expression_attribute_names("#owner", OWNER_SUB)
                .expression_attribute_values(":now", epoch_value(now))
                .expression_attribute_values(":owner", string_value(sub));
        }
        match request.set_item(Some(item)).send().await {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::SessionTaken)
            }
            Err(error) => Err(StoreError::dynamodb(
                format!("storing sign-in session {session_id}"),
                error,
            )),
        }
    }

    /// The session `session_id` (strongly consistent); `None` when it never
    /// existed or has expired, swept or not.
    pub async fn get_session(
        &self,
        session_id: &str,
        now: i64,
    ) -> Result<Option<StoredSession>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(&self.table_name)
            .set_key(Some(session_key(session_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| {
                StoreError::dynamodb(format!("reading sign-in session {session_id}"), error)
            })?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        let reader = self.reader(item);
        let expires_at = reader.epoch(TIME_TO_LIVE)?;
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(StoredSession {
            token: reader.string(TOKEN)?,
            expires_at,
        }))
    }

    /// Replace the token of a live session and move its expiry;
    /// [`StoreError::SessionNotFound`] when it has expired, never existed, or
    /// (with [`SessionWriter::Owner`]) belongs to someone else.
    pub async fn refresh_session(
        &self,
        session_id: &str,
        token: &str,
        expires_at: i64,
        writer: SessionWriter<'_>,
        now: i64,
        now_text: &str,
    ) -> Result<(), StoreError> {
        let mut condition = "attribute_exists(#id) AND #ttl > :now".to_owned();
        let mut request = self
            .client()
            .update_item()
            .table_name(&self.table_name)
            .set_key(Some(session_key(session_id)))
            .update_expression("SET #token = :token, #ttl = :expires, #updated = :updated")
            .expression_attribute_names("#id", TABLE_ID)
            .expression_attribute_names("#ttl", TIME_TO_LIVE)
            .expression_attribute_names("#token", TOKEN)
            .expression_attribute_names("#updated", UPDATED_AT)
            .expression_attribute_values(":now", epoch_value(now))
            .expression_attribute_values(":token", string_value(token))
            .expression_attribute_values(":expires", epoch_value(expires_at))
            .expression_attribute_values(":updated", string_value(now_text));
        if let SessionWriter::Owner(sub) = writer {
            condition.push_str(" AND #owner = :owner");
            request = request
                .expression_attribute_names("#owner", OWNER_SUB)
                .expression_attribute_values(":owner", string_value(sub));
        }
        match request.condition_expression(condition).send().await {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::SessionNotFound)
            }
            Err(error) => Err(StoreError::dynamodb(
                format!("refreshing sign-in session {session_id}"),
                error,
            )),
        }
    }
}
