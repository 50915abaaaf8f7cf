//! The function's `live` alias, which API Gateway invokes: a release is a
//! published version, and clients reach it only once the alias points at it.
//!
//! `function_version` is the version the alias should point at:
//! - a published version that already runs the configured code and
//!   configuration ([`Release::Existing`]), preferring the one the alias points
//!   at (so a rollback stays where it is until new code comes);
//! - otherwise the next version, which apply publishes from `$LATEST` (staged
//!   by [`super::lambda_function`]) ([`Release::Publish`]).
//!
//! Apply publishes (guarded by the code's SHA-256, so a `$LATEST` changed by
//! someone else meanwhile is refused), waits until the version is active,
//! invokes it with [`pre_traffic`] (unless told not to), and only then
//! creates or moves the alias: a version that fails its check never serves a
//! client, and `live` stays where it was. After a release, versions beyond the
//! newest `keep_versions` are deleted, except those the alias and the recorded
//! releases point at.

mod pre_traffic;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::client::Waiters;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Clients;
use super::lambda_function::{LambdaFunction, attributes_of};
use crate::engine::Doing;
use crate::engine::{
    AttributeChange, AttributeSet, DesiredAttributes, DesiredResource, EngineError,
    ObservedResource, Planned, Resource,
};

pub const ADDRESS: &str = "lambda_alias.live";
/// The alias API Gateway invokes.
pub const ALIAS_NAME: &str = "live";
/// The recorded attribute that lists the releases, newest last.
pub const RELEASES: &str = "releases";
/// How a release was made, as recorded.
pub const BY_APPLY: &str = "apply";
pub const BY_ROLLBACK: &str = "rollback";
/// How many releases the state remembers (for rollback and for pruning).
const REMEMBERED_RELEASES: usize = 20;

crate::attributes! {
    /// What is managed of the alias: the version it points at.
    pub struct AliasAttributes, enum AliasAttribute {
        FunctionVersion function_version: Planned<String>,
    }
}

/// Which version the alias should point at, as decided from the function's
/// published versions before planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// Not decided yet (the first planning pass, which only observes).
    Undecided,
    /// This published version runs the configured code and configuration.
    Existing { version: String },
    /// Publish `$LATEST` as a new version, expected to be numbered `expected`
    /// (the highest version so far plus one).
    Publish { expected: Option<String> },
    /// The configured code runs only in `version`, which a rollback moved
    /// `live` away from: `live` stays at `current` until new code comes (or
    /// `deployer rollback --to VERSION` asks for it again).
    Withheld { current: String, version: String },
}

impl Release {
    /// The version `live` points at once applied, when no publish is needed.
    pub fn existing_version(&self) -> Option<&str> {
        match self {
            Self::Existing { version }
            | Self::Withheld {
                current: version, ..
            } => Some(version),
            Self::Undecided | Self::Publish { .. } => None,
        }
    }
}

/// One release, as the state remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_sha256: Option<String>,
    /// `apply` or `rollback`.
    pub by: String,
}

/// The versions a rollback moved `live` away from (each the release just
/// before a rollback record), unless a later rollback chose them again.
pub fn rolled_back(releases: &[ReleaseRecord]) -> Vec<String> {
    let mut rolled_back: Vec<String> = Vec::new();
    for (index, release) in releases.iter().enumerate() {
        if release.by != BY_ROLLBACK {
            continue;
        }
        rolled_back.retain(|version| *version != release.version);
        if let Some(before) = index.checked_sub(1).map(|before| &releases[before])
            && before.version != release.version
        {
            rolled_back.push(before.version.clone());
        }
    }
    rolled_back
}

/// The newest releases of `releases`, as many as the state remembers.
pub fn remembered(releases: Vec<ReleaseRecord>) -> Vec<ReleaseRecord> {
    let skip = releases.len().saturating_sub(REMEMBERED_RELEASES);
    releases.into_iter().skip(skip).collect()
}

/// The releases recorded in a resource's state attributes (oldest first).
pub fn recorded_releases(attributes: &BTreeMap<String, Value>) -> Vec<ReleaseRecord> {
    attributes
        .get(RELEASES)
        .cloned()
        .and_then(|releases| serde_json::from_value(releases).ok())
        .unwrap_or_default()
}

/// A published version of the function and what it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedVersion {
    pub version: String,
    /// The SHA-256 of the version's code, as Lambda reports it.
    pub code_sha256: Option<String>,
    /// What the version runs, by the function's attribute names: compared
    /// with the wanted release here only ([`decide`]).
    attributes: BTreeMap<String, Value>,
}

impl PublishedVersion {
    fn number(&self) -> Option<u64> {
        self.version.parse().ok()
    }
}

/// The function's published versions (not `$LATEST`), oldest first; none when
/// the function does not exist.
pub async fn published_versions(
    clients: &Clients,
    function: &str,
) -> Result<Vec<PublishedVersion>, EngineError> {
    let action = format!("listing the published versions of Lambda function {function}");
    let mut versions = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let result = clients
            .lambda
            .list_versions_by_function()
            .function_name(function)
            .set_marker(marker.clone())
            .send()
            .await;
        let Some(page) = crate::engine::existing(
            result,
            |error| error.is_resource_not_found_exception(),
            action.clone(),
        )?
        else {
            return Ok(Vec::new());
        };
        for configuration in page.versions() {
            let Some(version) = configuration.version().filter(|v| *v != "$LATEST") else {
                continue;
            };
            let attributes = attributes_of(configuration);
            versions.push(PublishedVersion {
                version: version.to_owned(),
                code_sha256: attributes.code_sha256.clone(),
                attributes: attributes.into_observed(),
            });
        }
        marker = page.next_marker().map(str::to_owned);
        if marker.is_none() {
            break;
        }
    }
    versions.sort_by_key(PublishedVersion::number);
    Ok(versions)
}

/// Whether `version` runs what `wanted` (the function's release attributes)
/// says. An attribute not known until apply (a layer version to publish)
/// matches nothing; one not stated (the code, for a plan without an
/// artifact) matches anything.
fn runs(wanted: &DesiredAttributes, version: &PublishedVersion) -> bool {
    wanted.iter().all(|(name, want)| match want {
        Planned::Known(want) => version.attributes.get(name).unwrap_or(&Value::Null) == want,
        Planned::Unknown => false,
    })
}

/// Decide the release: the version `current` (the alias's) if it runs
/// `wanted`, else the newest version that does, else a new one. A version in
/// `rolled_back` is not chosen again: when only such versions run `wanted`,
/// `live` stays at `current`.
pub fn decide(
    wanted: &DesiredAttributes,
    versions: &[PublishedVersion],
    current: Option<&str>,
    rolled_back: &[String],
) -> Release {
    let (matching, withheld): (Vec<&PublishedVersion>, Vec<&PublishedVersion>) = versions
        .iter()
        .filter(|version| runs(wanted, version))
        .partition(|version| {
            Some(version.version.as_str()) == current || !rolled_back.contains(&version.version)
        });
    if let Some(current) = current
        && matching.iter().any(|version| version.version == current)
    {
        return Release::Existing {
            version: current.to_owned(),
        };
    }
    if let Some(newest) = matching.last() {
        return Release::Existing {
            version: newest.version.clone(),
        };
    }
    if let (Some(current), Some(withheld)) = (current, withheld.last()) {
        return Release::Withheld {
            current: current.to_owned(),
            version: withheld.version.clone(),
        };
    }
    let highest = versions.iter().filter_map(PublishedVersion::number).max();
    Release::Publish {
        expected: Some(highest.map_or(1, |highest| highest + 1).to_string()),
    }
}

/// What `release` does to the alias, now at `current`, in the plan's words;
/// `None` when the alias stays where it is.
pub fn release_note(release: &Release, current: Option<&str>) -> Option<String> {
    let moved = |to: &str| match current {
        Some(current) => format!("move live from {current} to {to}"),
        None => format!("create live at {to}"),
    };
    match release {
        Release::Undecided => None,
        Release::Withheld { current, version } => Some(format!(
            "live stays at {current}: the configured code runs in version {version}, which \
             `deployer rollback` moved live away from; `deployer rollback --to {version}` releases it again"
        )),
        Release::Existing { version } if current == Some(version.as_str()) => None,
        Release::Existing { version } => Some(format!(
            "{} (published before, it runs the configured code and configuration)",
            moved(version)
        )),
        Release::Publish { expected } => {
            let version = expected.as_deref().unwrap_or("N+1");
            Some(format!("publish version {version} and {}", moved(version)))
        }
    }
}

#[derive(Debug, Clone)]
pub struct LambdaAlias {
    pub clients: Clients,
    pub function_name: String,
    pub release: Release,
    /// The staged code's SHA-256: PublishVersion refuses if `$LATEST` differs.
    pub code_sha256: Option<String>,
    /// The stage whose events the pre-traffic check sends; `None`: no check.
    pub check_stage: Option<String>,
    /// The function's timeout, which bounds each invocation of the check.
    pub function_timeout_s: u32,
    /// Versions kept after a release (the newest ones), besides those the
    /// alias and the recorded releases point at.
    pub keep_versions: u32,
    /// The releases recorded so far, oldest first.
    pub releases: Vec<ReleaseRecord>,
    pub depends_on: Vec<String>,
}

impl LambdaAlias {
    fn doing(&self, what: &str) -> String {
        format!(
            "{what} alias {ALIAS_NAME} of Lambda function {}",
            self.function_name
        )
    }

    /// The alias's ARN, which API Gateway's integration names.
    pub fn arn_of(clients: &Clients, function_name: &str) -> String {
        format!(
            "{}:{ALIAS_NAME}",
            LambdaFunction::arn_of(clients, function_name)
        )
    }

    /// The version to point at: the existing one, or one published now from
    /// `$LATEST`, once Lambda reports it active.
    async fn target(&self) -> Result<String, EngineError> {
        let version = match &self.release {
            Release::Existing { version }
            | Release::Withheld {
                current: version, ..
            } => version.clone(),
            Release::Undecided | Release::Publish { .. } => {
                let published = self
                    .clients
                    .lambda
                    .publish_version()
                    .function_name(&self.function_name)
                    .set_code_sha256(self.code_sha256.clone())
                    .description("published by deployer apply")
                    .send()
                    .await
                    .doing(|| {
                        format!(
                            "publishing a version of Lambda function {}",
                            self.function_name
                        )
                    })?;
                published.version().unwrap_or_default().to_owned()
            }
        };
        self.clients
            .lambda
            .wait_until_published_version_active()
            .function_name(&self.function_name)
            .qualifier(&version)
            .wait(Duration::from_secs(300))
            .await
            .map_err(|error| {
                EngineError::waited(
                    format!(
                        "waiting (up to 5 min) until version {version} of Lambda function {} is active",
                        self.function_name
                    ),
                    error,
                )
            })?;
        Ok(version)
    }

    /// Invoke `version` as API Gateway would; an error keeps `live` where it is.
    async fn check(&self, version: &str, current: Option<&str>) -> Result<(), EngineError> {
        let Some(stage) = &self.check_stage else {
            return Ok(());
        };
        let timeout = Duration::from_secs(self.function_timeout_s.into());
        pre_traffic::check(
            &self.clients.lambda,
            &self.function_name,
            version,
            stage,
            timeout,
        )
        .await
        .map_err(|failure| {
            let stays = current.map_or_else(
                || "no client was sent to it (the alias does not exist yet)".to_owned(),
                |current| format!("live stays at version {current}"),
            );
            let detail = format!("{failure}\n    {stays}; fix the code and apply again");
            let mut error = EngineError::caused_by(
                format!(
                    "checking version {version} of Lambda function {} before it takes traffic",
                    self.function_name
                ),
                failure,
            );
            error.detail = detail;
            error
        })
    }

    /// Delete the versions beyond the newest `keep_versions`, except those
    /// the alias and the recorded releases point at (and `live`'s own).
    async fn prune(&self, live: &str) -> Result<(), EngineError> {
        let versions = published_versions(&self.clients, &self.function_name).await?;
        let keep = usize::try_from(self.keep_versions).unwrap_or(usize::MAX);
        // The last `keep` releases: this one (live) and the ones before it.
        let protected: Vec<&str> = self
            .releases
            .iter()
            .rev()
            .take(keep.saturating_sub(1))
            .map(|release| release.version.as_str())
            .chain(std::iter::once(live))
            .collect();
        let newest_first: Vec<&PublishedVersion> = versions.iter().rev().collect();
        for version in newest_first.into_iter().skip(keep) {
            if protected.contains(&version.version.as_str()) {
                continue;
            }
            self.clients
                .lambda
                .delete_function()
                .function_name(&self.function_name)
                .qualifier(&version.version)
                .send()
                .await
                .doing(|| {
                    format!(
                        "deleting old version {} of Lambda function {} (keep_versions = {})",
                        version.version, self.function_name, self.keep_versions
                    )
                })?;
        }
        Ok(())
    }

    /// Point the alias at a checked version: create it, or move it.
    async fn release(&self, current: Option<&str>) -> Result<(), EngineError> {
        let version = self.target().await?;
        if current != Some(version.as_str()) {
            self.check(&version, current).await?;
        }
        match current {
            None => {
                self.clients
                    .lambda
                    .create_alias()
                    .function_name(&self.function_name)
                    .name(ALIAS_NAME)
                    .function_version(&version)
                    .description("what API Gateway invokes; moved by deployer apply and rollback")
                    .send()
                    .await
                    .doing(|| self.doing("creating"))?;
            }
            Some(_) => move_to(&self.clients, &self.function_name, &version).await?,
        }
        self.prune(&version).await
    }
}

/// The alias's version, as a read observes it.
pub async fn alias_version(
    clients: &Clients,
    function_name: &str,
) -> Result<Option<String>, EngineError> {
    let output = crate::engine::existing(
        clients
            .lambda
            .get_alias()
            .function_name(function_name)
            .name(ALIAS_NAME)
            .send()
            .await,
        |error| error.is_resource_not_found_exception(),
        format!("reading alias {ALIAS_NAME} of Lambda function {function_name}"),
    )?;
    Ok(output.and_then(|alias| alias.function_version().map(str::to_owned)))
}

/// Move `live` to `version`: what a release does once its version passed the
/// check, and all a rollback does (no publish, no check; the caller records it).
pub async fn move_to(
    clients: &Clients,
    function_name: &str,
    version: &str,
) -> Result<(), EngineError> {
    clients
        .lambda
        .update_alias()
        .function_name(function_name)
        .name(ALIAS_NAME)
        .function_version(version)
        .send()
        .await
        .doing(|| {
            format!(
                "moving alias {ALIAS_NAME} of Lambda function {function_name} to version {version}"
            )
        })?;
    Ok(())
}

#[async_trait::async_trait]
impl Resource for LambdaAlias {
    fn address(&self) -> &str {
        ADDRESS
    }

    fn desired(&self) -> DesiredResource {
        let function_version = match &self.release {
            Release::Existing { version }
            | Release::Withheld {
                current: version, ..
            } => Planned::Known(version.clone()),
            Release::Publish {
                expected: Some(expected),
            } => Planned::Known(expected.clone()),
            Release::Undecided | Release::Publish { expected: None } => Planned::Unknown,
        };
        DesiredResource::new(
            self.address(),
            "lambda_alias",
            ALIAS_NAME,
            AliasAttributes { function_version },
        )
        .depending_on(self.depends_on.clone())
    }

    async fn read(&self) -> Result<Option<ObservedResource>, EngineError> {
        let Some(version) = alias_version(&self.clients, &self.function_name).await? else {
            return Ok(None);
        };
        Ok(Some(ObservedResource {
            id: ALIAS_NAME.to_owned(),
            arn: Some(Self::arn_of(&self.clients, &self.function_name)),
            attributes: AliasAttributes {
                function_version: Planned::Known(version),
            }
            .into_observed(),
            facts: Default::default(),
        }))
    }

    async fn create(&self) -> Result<(), EngineError> {
        self.release(None).await
    }

    async fn update(
        &self,
        observed: &ObservedResource,
        changes: &[AttributeChange],
    ) -> Result<(), EngineError> {
        for change in changes {
            match AliasAttributes::name_of(change)? {
                AliasAttribute::FunctionVersion => {}
            }
        }
        let current = observed
            .attributes
            .get("function_version")
            .and_then(Value::as_str);
        self.release(current).await
    }

    async fn delete(&self, _observed: &ObservedResource) -> Result<(), EngineError> {
        self.clients
            .lambda
            .delete_alias()
            .function_name(&self.function_name)
            .name(ALIAS_NAME)
            .send()
            .await
            .doing(|| self.doing("deleting"))?;
        Ok(())
    }

    fn recorded_attributes(&self, observed: &ObservedResource) -> BTreeMap<String, Value> {
        let Some(version) = observed
            .attributes
            .get("function_version")
            .and_then(Value::as_str)
        else {
            return BTreeMap::new();
        };
        let mut releases = self.releases.clone();
        if releases.last().map(|last| last.version.as_str()) != Some(version) {
            releases.push(ReleaseRecord {
                version: version.to_owned(),
                code_sha256: self.code_sha256.clone(),
                by: BY_APPLY.to_owned(),
            });
        }
        [(RELEASES.to_owned(), json!(remembered(releases)))].into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(number: &str, code: &str, memory: i32) -> PublishedVersion {
        PublishedVersion {
            version: number.to_owned(),
            code_sha256: Some(code.to_owned()),
            attributes: [
                ("code_sha256".to_owned(), json!(code)),
                ("memory_mb".to_owned(), json!(memory)),
            ]
            .into(),
        }
    }

    fn wanted(code: Option<&str>, memory: i32) -> DesiredAttributes {
        let mut wanted: DesiredAttributes =
            [("memory_mb".to_owned(), Planned::Known(json!(memory)))].into();
        if let Some(code) = code {
            wanted.insert("code_sha256".into(), Planned::Known(json!(code)));
        }
        wanted
    }

    #[test]
    fn new_code_is_published_as_the_next_version() {
        let versions = [version("1", "a", 256), version("2", "b", 256)];
        assert_eq!(
            decide(&wanted(Some("c"), 256), &versions, Some("2"), &[]),
            Release::Publish {
                expected: Some("3".into())
            }
        );
        assert_eq!(
            decide(&wanted(Some("a"), 256), &[], None, &[]),
            Release::Publish {
                expected: Some("1".into())
            }
        );
    }

    #[test]
    fn code_already_published_is_not_published_again() {
        let versions = [
            version("1", "a", 256),
            version("2", "b", 256),
            version("3", "a", 256),
        ];
        // The alias's own version wins (a rollback stays where it is) ...
        assert_eq!(
            decide(&wanted(Some("a"), 256), &versions, Some("1"), &[]),
            Release::Existing {
                version: "1".into()
            }
        );
        // ... else the newest version that runs it.
        assert_eq!(
            decide(&wanted(Some("a"), 256), &versions, Some("2"), &[]),
            Release::Existing {
                version: "3".into()
            }
        );
        // A configuration change is a new version.
        assert_eq!(
            decide(&wanted(Some("b"), 512), &versions, Some("2"), &[]),
            Release::Publish {
                expected: Some("4".into())
            }
        );
    }

    #[test]
    fn without_an_artifact_the_code_is_not_compared_and_an_unknown_matches_nothing() {
        let versions = [version("1", "a", 256)];
        assert_eq!(
            decide(&wanted(None, 256), &versions, Some("1"), &[]),
            Release::Existing {
                version: "1".into()
            }
        );
        let mut unknown = wanted(Some("a"), 256);
        unknown.insert("layers".into(), Planned::Unknown);
        assert_eq!(
            decide(&unknown, &versions, Some("1"), &[]),
            Release::Publish {
                expected: Some("2".into())
            }
        );
    }

    fn record(version: &str, by: &str) -> ReleaseRecord {
        ReleaseRecord {
            version: version.into(),
            code_sha256: None,
            by: by.into(),
        }
    }

    #[test]
    fn a_rolled_back_version_is_not_released_again_by_apply() {
        let releases = [
            record("1", BY_APPLY),
            record("2", BY_APPLY),
            record("1", BY_ROLLBACK),
        ];
        assert_eq!(rolled_back(&releases), vec!["2".to_owned()]);
        let versions = [version("1", "a", 256), version("2", "b", 256)];
        // The same (rolled back) code again: live stays at 1.
        assert_eq!(
            decide(
                &wanted(Some("b"), 256),
                &versions,
                Some("1"),
                &rolled_back(&releases)
            ),
            Release::Withheld {
                current: "1".into(),
                version: "2".into()
            }
        );
        // New code: a normal release.
        assert_eq!(
            decide(
                &wanted(Some("c"), 256),
                &versions,
                Some("1"),
                &rolled_back(&releases)
            ),
            Release::Publish {
                expected: Some("3".into())
            }
        );
        // `rollback --to 2` chose it again.
        let chosen = [releases.as_slice(), &[record("2", BY_ROLLBACK)]].concat();
        assert_eq!(rolled_back(&chosen), vec!["1".to_owned()]);
    }

    #[test]
    fn the_plan_says_what_happens_to_live() {
        let publish = Release::Publish {
            expected: Some("3".into()),
        };
        assert_eq!(
            release_note(&publish, Some("2")).as_deref(),
            Some("publish version 3 and move live from 2 to 3")
        );
        assert_eq!(
            release_note(&publish, None).as_deref(),
            Some("publish version 3 and create live at 3")
        );
        let existing = Release::Existing {
            version: "2".into(),
        };
        assert_eq!(release_note(&existing, Some("2")), None);
        assert!(
            release_note(&existing, Some("3"))
                .is_some_and(|note| note.starts_with("move live from 3 to 2 (published before"))
        );
    }
}
