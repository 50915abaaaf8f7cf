//! What the deployer does with the ranks the function keeps
//! (`schema::ranking`): the index-key backfill ranks users written before
//! ranks existed, and the data commands leave the derived items (rank
//! entries, rank buckets, teams) behind and rank what they copy. This module
//! is what both share: the derived items' sort-key prefixes for filter
//! expressions, the clock the ranking calls take, and how a ranking failure
//! is told.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use schema::ranking::RankingError;

/// The sort-key prefixes of the derived items, for DynamoDB filter
/// expressions (`NOT begins_with(...)`): exactly what
/// [`schema::ranking::is_derived`] tells apart (a test checks they agree).
pub const DERIVED_PREFIXES: [&str; 2] = ["_rank#", "_team#"];

/// Now, in epoch milliseconds, as the ranking calls take it (a bucket split's
/// lease is measured against it).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A ranking call's failure as `(what it was doing, what went wrong)`: the
/// service's error code and message when it sent them, else the causes.
pub fn failure(error: &RankingError) -> (String, String) {
    match error {
        RankingError::Aws { action, source } => {
            let detail = match (source.code(), source.message()) {
                (Some(code), Some(message)) if !message.is_empty() => format!("{code}: {message}"),
                (Some(code), _) => code.to_owned(),
                _ => state::sdk_error::causes(source),
            };
            (action.clone(), detail)
        }
        RankingError::Build { action, source } => {
            (action.clone(), state::sdk_error::causes(source))
        }
        RankingError::Contended { action } => (
            action.clone(),
            "other writes kept changing the same items; run it again".to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::ranking::{bucket_username, entry_username, is_derived, team_username};

    #[test]
    fn the_prefixes_are_what_is_derived() {
        for derived in [
            entry_username(""),
            entry_username("00ff"),
            bucket_username(""),
            bucket_username("abc"),
            team_username("red"),
        ] {
            assert!(is_derived(&derived), "{derived}");
            assert!(
                DERIVED_PREFIXES
                    .iter()
                    .any(|prefix| derived.starts_with(prefix)),
                "{derived}"
            );
        }
        for prefix in DERIVED_PREFIXES {
            assert!(is_derived(prefix), "{prefix}");
            assert!(is_derived(&format!("{prefix}anything")), "{prefix}");
            let shorter = &prefix[..prefix.len() - 1];
            assert!(!is_derived(shorter), "{shorter}");
            assert!(!is_derived(&format!("{shorter}x")), "{shorter}x");
        }
        for user in [
            "ann",
            "_metadata",
            "_metadata#count0",
            "_session",
            "_rank",
            "_teams",
        ] {
            assert!(!is_derived(user), "{user}");
            assert!(
                !DERIVED_PREFIXES
                    .iter()
                    .any(|prefix| user.starts_with(prefix)),
                "{user}"
            );
        }
    }

    #[test]
    fn a_failure_says_what_was_being_done() {
        let (action, detail) = failure(&RankingError::Contended {
            action: "ranking user ann of table c".into(),
        });
        assert_eq!(action, "ranking user ann of table c");
        assert!(detail.contains("run it again"), "{detail}");
    }
}
