//! The S3 backend: one object per environment in the bootstrap bucket,
//! `deployer/<env>/state.json`, server-side encryption (AES256) requested on
//! every write, and conditional writes (`If-Match` the ETag we read, or
//! `If-None-Match: *` for a first write) so a concurrent writer is refused
//! rather than overwritten. The bucket's versioning keeps the history.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;

use crate::{HistoryEntry, StateDocument, StateError};

/// Key prefix of every environment's state object.
pub const KEY_PREFIX: &str = "deployer/";

/// The object key of `environment`'s state.
pub fn state_key(environment: &str) -> String {
    format!("{KEY_PREFIX}{environment}/state.json")
}

/// The key of the document `name` kept beside `environment`'s state.
fn beside_key(environment: &str, name: &str) -> String {
    format!("{KEY_PREFIX}{environment}/{name}")
}

/// State objects in one bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn location(&self, environment: &str) -> String {
        format!("s3://{}/{}", self.bucket, state_key(environment))
    }

    pub fn location_beside(&self, environment: &str, name: &str) -> String {
        format!("s3://{}/{}", self.bucket, beside_key(environment, name))
    }

    pub(crate) async fn read_beside(
        &self,
        environment: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StateError> {
        let action = format!("reading {}", self.location_beside(environment, name));
        Ok(self
            .get(&beside_key(environment, name), &action)
            .await?
            .map(|(bytes, _)| bytes))
    }

    /// The object at `key` and its ETag; `None` when there is none. `action`
    /// says what the read was for, in any error.
    async fn get(&self, key: &str, action: &str) -> Result<Option<(Vec<u8>, String)>, StateError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key()) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(StateError::aws(action, &error)),
        };
        let etag = output.e_tag().unwrap_or_default().to_owned();
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|error| StateError::Aws {
                action: action.to_owned(),
                detail: crate::sdk_error::causes(&error),
            })?
            .into_bytes();
        Ok(Some((bytes.to_vec(), etag)))
    }

    pub(crate) async fn write_beside(
        &self,
        environment: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(), StateError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(beside_key(environment, name))
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|error| {
                StateError::aws(
                    format!("writing {}", self.location_beside(environment, name)),
                    &error,
                )
            })?;
        Ok(())
    }

    pub(crate) async fn remove_beside(
        &self,
        environment: &str,
        name: &str,
    ) -> Result<(), StateError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(beside_key(environment, name))
            .send()
            .await
            .map_err(|error| {
                StateError::aws(
                    format!("removing {}", self.location_beside(environment, name)),
                    &error,
                )
            })?;
        Ok(())
    }

    /// The document and its ETag.
    pub(crate) async fn read(
        &self,
        environment: &str,
    ) -> Result<Option<(StateDocument, String)>, StateError> {
        let location = self.location(environment);
        let Some((bytes, etag)) = self
            .get(
                &state_key(environment),
                &format!("reading state {location}"),
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((StateDocument::from_json(&bytes, &location)?, etag)))
    }

    /// Write `document` only if the object is still at `expected_etag` (or absent
    /// when `None`). Returns the new ETag.
    pub(crate) async fn write(
        &self,
        environment: &str,
        document: &StateDocument,
        expected_etag: Option<&str>,
        note: Option<&str>,
    ) -> Result<String, StateError> {
        let location = self.location(environment);
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(state_key(environment))
            .content_type("application/json")
            .server_side_encryption(ServerSideEncryption::Aes256)
            .metadata("serial", document.serial.to_string())
            .metadata("lineage", document.lineage.to_string())
            .body(ByteStream::from(document.to_json()));
        if let Some(note) = note {
            // Object metadata is ASCII.
            let ascii: String = note
                .chars()
                .map(|c| {
                    if c.is_ascii() && !c.is_ascii_control() {
                        c
                    } else {
                        '?'
                    }
                })
                .collect();
            request = request.metadata("note", ascii);
        }
        request = match expected_etag {
            Some(etag) => request.if_match(etag),
            None => request.if_none_match("*"),
        };
        match request.send().await {
            Ok(output) => Ok(output.e_tag().unwrap_or_default().to_owned()),
            Err(error) if error.code() == Some("PreconditionFailed") => {
                let found = match self.read(environment).await {
                    Ok(Some((current, _))) => {
                        format!("serial {} of lineage {}", current.serial, current.lineage)
                    }
                    Ok(None) => "no state".to_owned(),
                    Err(read_error) => format!("an unreadable state ({read_error})"),
                };
                Err(StateError::Stale {
                    location,
                    expected: match expected_etag {
                        Some(_) => format!(
                            "serial {} of lineage {}",
                            document.serial.saturating_sub(1),
                            document.lineage
                        ),
                        None => "no state".to_owned(),
                    },
                    found,
                })
            }
            Err(error) => Err(StateError::aws(format!("writing state {location}"), &error)),
        }
    }

    pub(crate) async fn remove(&self, environment: &str) -> Result<(), StateError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(state_key(environment))
            .send()
            .await
            .map_err(|error| {
                StateError::aws(
                    format!("removing state {}", self.location(environment)),
                    &error,
                )
            })?;
        Ok(())
    }

    /// The versions S3 keeps of `environment`'s state, newest first, at most `limit`.
    pub(crate) async fn history(
        &self,
        environment: &str,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StateError> {
        let key = state_key(environment);
        let location = self.location(environment);
        let listing = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(&key)
            .send()
            .await
            .map_err(|error| StateError::aws(format!("listing versions of {location}"), &error))?;
        let mut versions: Vec<_> = listing
            .versions()
            .iter()
            .filter(|version| version.key() == Some(key.as_str()))
            .collect();
        versions.sort_by(|a, b| b.last_modified().cmp(&a.last_modified()));
        let mut entries = Vec::new();
        for version in versions.into_iter().take(limit) {
            let version_id = version.version_id().unwrap_or("null").to_owned();
            // An unversioned bucket reports the one object as version "null".
            let versioned = version_id != "null";
            let head = self
                .client
                .head_object()
                .bucket(&self.bucket)
                .key(&key)
                .set_version_id(versioned.then(|| version_id.clone()))
                .send()
                .await
                .map_err(|error| {
                    StateError::aws(
                        format!("reading version {version_id} of {location}"),
                        &error,
                    )
                })?;
            entries.push(HistoryEntry {
                version_id,
                modified: version
                    .last_modified()
                    .and_then(|time| {
                        time.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
                            .ok()
                    })
                    .unwrap_or_default(),
                serial: head
                    .metadata()
                    .and_then(|metadata| metadata.get("serial"))
                    .and_then(|serial| serial.parse().ok()),
                is_latest: version.is_latest().unwrap_or(false),
                note: head
                    .metadata()
                    .and_then(|metadata| metadata.get("note"))
                    .cloned(),
            });
        }
        Ok(entries)
    }

    /// When `environment`'s state was first written since it was last
    /// removed (a destroy leaves a delete marker; a later apply starts a new
    /// life): the oldest version after the newest delete marker, RFC 3339.
    /// `None`: no state.
    pub(crate) async fn created(&self, environment: &str) -> Result<Option<String>, StateError> {
        let key = state_key(environment);
        let location = self.location(environment);
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        let time = |time: Option<&aws_sdk_s3::primitives::DateTime>| {
            time.and_then(|time| {
                time.fmt(aws_sdk_s3::primitives::DateTimeFormat::DateTime)
                    .ok()
            })
        };
        // ListObjectVersions has no paginator: its pages go by key and version markers.
        let mut markers_from: Option<(String, String)> = None;
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(&key)
                .set_key_marker(markers_from.as_ref().map(|(key, _)| key.clone()))
                .set_version_id_marker(markers_from.as_ref().map(|(_, version)| version.clone()))
                .send()
                .await
                .map_err(|error| {
                    StateError::aws(format!("listing versions of {location}"), &error)
                })?;
            versions.extend(
                page.versions()
                    .iter()
                    .filter(|version| version.key() == Some(key.as_str()))
                    .filter_map(|version| time(version.last_modified())),
            );
            markers.extend(
                page.delete_markers()
                    .iter()
                    .filter(|marker| marker.key() == Some(key.as_str()))
                    .filter_map(|marker| time(marker.last_modified())),
            );
            match (
                page.is_truncated(),
                page.next_key_marker(),
                page.next_version_id_marker(),
            ) {
                (Some(true), Some(next_key), next_version) => {
                    markers_from =
                        Some((next_key.to_owned(), next_version.unwrap_or("").to_owned()));
                }
                _ => break,
            }
        }
        Ok(first_of_current_life(&versions, &markers))
    }

    /// The environments that have a state object in the bucket.
    pub(crate) async fn environments(&self) -> Result<Vec<String>, StateError> {
        let mut environments = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(KEY_PREFIX)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| {
                StateError::aws(
                    format!("listing state objects in s3://{}/{KEY_PREFIX}", self.bucket),
                    &error,
                )
            })?;
            for object in page.contents() {
                if let Some(environment) = object
                    .key()
                    .and_then(|key| key.strip_prefix(KEY_PREFIX))
                    .and_then(|rest| rest.strip_suffix("/state.json"))
                {
                    environments.push(environment.to_owned());
                }
            }
        }
        environments.sort();
        Ok(environments)
    }
}

/// The oldest of `versions` written after the newest of `markers` (times in
/// one RFC 3339 format, which sorts as text): when the current state began.
fn first_of_current_life(versions: &[String], markers: &[String]) -> Option<String> {
    let removed = markers.iter().max();
    versions
        .iter()
        .filter(|version| removed.is_none_or(|removed| *version > removed))
        .min()
        .cloned()
}

#[cfg(test)]
mod created_tests {
    use super::first_of_current_life;

    fn times(times: &[&str]) -> Vec<String> {
        times.iter().map(|time| (*time).to_owned()).collect()
    }

    #[test]
    fn an_environment_is_as_old_as_its_state_since_it_was_last_destroyed() {
        let versions = times(&[
            "2026-12-01T10:00:00Z",
            "2026-12-03T09:00:00Z",
            "2026-12-02T08:00:00Z",
        ]);
        assert_eq!(
            first_of_current_life(&versions, &[]).as_deref(),
            Some("2026-12-01T10:00:00Z")
        );
        let destroyed = times(&["2026-12-01T12:00:00Z"]);
        assert_eq!(
            first_of_current_life(&versions, &destroyed).as_deref(),
            Some("2026-12-02T08:00:00Z"),
            "a destroy and a new apply start a new life"
        );
        let destroyed_last = times(&["2026-12-01T12:00:00Z", "2026-12-04T00:00:00Z"]);
        assert_eq!(first_of_current_life(&versions, &destroyed_last), None);
        assert_eq!(first_of_current_life(&[], &[]), None);
    }
}
