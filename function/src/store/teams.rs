//! Ranks and the team leaderboard, read from what every user write keeps
//! exact (see [`crate::schema::ranking`]): never the whole class.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use serde::Serialize;

use super::cursor::{self, StartAfter};
use super::item::string_value;
use super::users::UserRecord;
use super::{Page, Store, StoreError};
use crate::schema::ranking::{self, TeamStanding};
use crate::schema::{TABLE_ID, USERNAME};

/// A team on the team leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamRecord {
    pub team_name: String,
    /// How many users of the class are in it.
    #[schema(minimum = 1)]
    pub member_count: u64,
    /// Its members' average `moralCompassScore` (none counts as 0), from
    /// their exact sum.
    pub average_score: f64,
    /// Its 1-based place: average descending, then more members, then the name.
    #[schema(minimum = 1)]
    pub rank: u64,
}

/// The nearest double to an exact decimal, through its text (which Rust
/// parses correctly rounded).
fn nearest_double(value: &BigDecimal) -> f64 {
    f64::from_str(&value.to_string()).unwrap_or(0.0)
}

impl Store {
    /// The class's teams in leaderboard order (one strongly consistent query
    /// of one item per team).
    async fn standings(&self, table_id: &str) -> Result<Vec<TeamStanding>, StoreError> {
        ranking::teams(&self.client(), &self.table_name, table_id)
            .await
            .map_err(|error| {
                StoreError::dynamodb(format!("reading the teams of table {table_id}"), error)
            })
    }

    /// A page of the team leaderboard. [`StoreError::TableNotFound`] when
    /// there is no such table.
    pub async fn list_teams(
        &self,
        table_id: &str,
        limit: u16,
        start_after: &StartAfter,
    ) -> Result<Page<TeamRecord>, StoreError> {
        if !self.table_exists(table_id).await? {
            return Err(StoreError::TableNotFound);
        }
        let standings = self.standings(table_id).await?;
        // A cursor names the last team sent; the page goes on after it.
        let after = match start_after {
            StartAfter::Cursor(cursor) => cursor::decode(cursor, &[TABLE_ID, USERNAME], |key| {
                cursor::holds(key, TABLE_ID, table_id)
            })
            .and_then(|key| key.get(USERNAME)?.as_s().ok().cloned()),
            _ => None,
        };
        let start = after
            .and_then(|last| {
                standings
                    .iter()
                    .position(|team| ranking::team_username(&team.name) == last)
            })
            .map_or(0, |index| index + 1);
        let end = (start + usize::from(limit)).min(standings.len());
        let items: Vec<TeamRecord> = standings[start.min(end)..end]
            .iter()
            .enumerate()
            .map(|(offset, team)| TeamRecord {
                team_name: team.name.clone(),
                member_count: team.members,
                average_score: nearest_double(&team.average()),
                rank: (start + offset + 1) as u64,
            })
            .collect();
        let next_cursor = (end < standings.len())
            .then(|| items.last())
            .flatten()
            .and_then(|last| {
                cursor::encode(
                    &[
                        (TABLE_ID.to_owned(), string_value(table_id)),
                        (
                            USERNAME.to_owned(),
                            string_value(ranking::team_username(&last.team_name)),
                        ),
                    ]
                    .into(),
                )
            });
        Ok(Page { items, next_cursor })
    }

    /// `user` with its `rank` and, in a team, its team's `teamRank`: the
    /// buckets before its place, a count within its own, and the teams. A
    /// user not ranked yet (written before ranks existed, not backfilled)
    /// gets neither.
    pub async fn add_ranks(&self, table_id: &str, user: &mut UserRecord) -> Result<(), StoreError> {
        let Some((rank_key, team)) = user.counted_as.clone() else {
            return Ok(());
        };
        let rank = ranking::rank_of(&self.client(), &self.table_name, table_id, &rank_key)
            .await
            .map_err(|error| {
                StoreError::dynamodb(
                    format!("ranking user {} of table {table_id}", user.username),
                    error,
                )
            })?;
        user.rank = (rank > 0).then_some(rank);
        if let Some(team) = team {
            user.team_rank = self
                .standings(table_id)
                .await?
                .iter()
                .position(|standing| standing.name == team)
                .map(|index| index as u64 + 1);
        }
        Ok(())
    }
}
