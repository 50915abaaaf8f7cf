//! Data access for the playground table: one method per API operation, each a
//! bounded number of DynamoDB round trips (see docs/api.md's cost table).

mod counter;
mod cursor;
mod delete;
mod error;
mod item;
mod provision;
mod sessions;
mod tables;
mod tasks;
mod teams;
mod users;

use std::time::Duration;

use aws_sdk_dynamodb::Client;

use crate::deadline::Deadline;

pub use cursor::StartAfter;
pub use delete::TableDeletion;
pub use error::StoreError;
pub use provision::{create_table_if_missing, table_status};
pub use sessions::{SessionWriter, StoredSession};
pub use tables::{NewTableExtras, TableOwner, TablePatch, TableRecord};
pub use tasks::TaskChange;
pub use teams::TeamRecord;
pub use users::{PutUserOutcome, UserCounts, UserRecord, UserWrite};

/// One page of a listing, with the cursor of the next page when there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// How a new user and the table's `userCount` are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewUserWrite {
    /// One transaction writes the user and increments the count: both or neither.
    Transaction,
    /// The user (in its rank transaction, which checks a counter is open), then
    /// the increment, as a one-item transaction with a request token so that
    /// the SDK's retry of an attempt DynamoDB applied is not counted twice:
    /// the user's transaction never holds a counter, so a class joining at
    /// once conflicts less on them; exact under concurrency because only the
    /// writer that created the user increments; a crash between the two
    /// writes could leave the count one short.
    ConditionalPut,
}

/// The playground table, seen through the API's operations.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table_name: String,
    new_user_write: NewUserWrite,
    allow_table_delete: bool,
    session_lifetime_s: i64,
    request_timeout: Duration,
}

/// How long a sign-in session lives at most, in seconds, unless configured
/// (`SESSION_TTL_SECONDS`): the legacy handler's 720,000 (about 8 days).
pub const DEFAULT_SESSION_LIFETIME_S: i64 = 720_000;

impl Store {
    pub fn new(
        client: Client,
        table_name: impl Into<String>,
        new_user_write: NewUserWrite,
    ) -> Self {
        Self {
            client,
            table_name: table_name.into(),
            new_user_write,
            allow_table_delete: false,
            session_lifetime_s: DEFAULT_SESSION_LIFETIME_S,
            request_timeout: crate::api::deadline::DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// The same store, for an API whose requests have `timeout` each where no
    /// Lambda deadline applies (`REQUEST_TIMEOUT_MS`, locally).
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// A request's budget where no Lambda deadline applies.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The client for the next DynamoDB call: within a request, one whose
    /// operation timeout is what is left of the request's [`Deadline`] (less
    /// the margin to answer), each attempt at most half of that (and 4 s), so
    /// that a slow or silent DynamoDB becomes a timeout the API answers as a
    /// 503 in time; outside a request, the client as configured.
    fn client(&self) -> std::borrow::Cow<'_, Client> {
        use aws_config::timeout::TimeoutConfig;
        let Some(deadline) = Deadline::current() else {
            return std::borrow::Cow::Borrowed(&self.client);
        };
        let left = deadline.left_for_calls().max(Duration::from_millis(1));
        let attempt = (left / 2)
            .clamp(Duration::from_millis(100), Duration::from_secs(4))
            .min(left);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(attempt.min(Duration::from_secs(3)))
            .operation_attempt_timeout(attempt)
            .operation_timeout(left)
            .build();
        std::borrow::Cow::Owned(Client::from_conf(
            self.client
                .config()
                .to_builder()
                .timeout_config(timeouts)
                .build(),
        ))
    }

    /// The same store, keeping sign-in sessions at most `seconds`.
    #[must_use]
    pub fn with_session_lifetime(mut self, seconds: i64) -> Self {
        self.session_lifetime_s = seconds;
        self
    }

    /// How long a sign-in session lives at most, in seconds.
    pub fn session_lifetime_s(&self) -> i64 {
        self.session_lifetime_s
    }

    /// The same store, allowed (or not: the default) to delete playground
    /// tables (`ALLOW_TABLE_DELETE`).
    #[must_use]
    pub fn allowing_table_delete(mut self, allowed: bool) -> Self {
        self.allow_table_delete = allowed;
        self
    }

    /// Whether [`Store::delete_table`] may delete tables (`ALLOW_TABLE_DELETE`).
    pub fn table_delete_allowed(&self) -> bool {
        self.allow_table_delete
    }

    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// How new users are written (`SAFE_CONCURRENCY`).
    pub fn new_user_write(&self) -> NewUserWrite {
        self.new_user_write
    }

    fn reader<'a>(&'a self, item: &'a item::Item) -> item::ItemReader<'a> {
        item::ItemReader {
            item,
            table: &self.table_name,
        }
    }
}

/// A growing, jittered pause before attempt `attempt + 1` of something that
/// lost a race or was left unprocessed: `min` doubling up to `max`, full jitter.
async fn back_off(attempt: u32, min: Duration, max: Duration) {
    use backon::BackoffBuilder;
    let pause = backon::ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempt.min(16) as usize)
        .unwrap_or(max);
    tokio::time::sleep(pause).await;
}

/// How many times one write is retried after conflicting with a concurrent
/// transaction: with pauses of 5 ms doubling to 250 ms, about 4 s at most.
/// The budget counts conflicts, not time: slow calls do not spend it. A
/// request's deadline still bounds it (see [`Conflicts::exhausted`]).
pub const MAX_CONFLICT_RETRIES: u32 = 24;

/// The retries of one write that DynamoDB cancelled because a concurrent
/// transaction held one of its items (`TransactionConflict`): a jittered pause
/// of 5 ms doubling to 250 ms before each, at most [`MAX_CONFLICT_RETRIES`]
/// times, and never past the request's deadline.
///
/// A conflict means the write was not applied, so retrying it is always safe.
struct Conflicts {
    attempts: u32,
}

impl Conflicts {
    fn new() -> Self {
        Self { attempts: 1 }
    }

    /// Whether the budget is spent: the retries used up, or too little of the
    /// request's time left for another attempt.
    fn exhausted(&self) -> bool {
        self.attempts > MAX_CONFLICT_RETRIES
            || Deadline::current()
                .is_some_and(|deadline| deadline.left_for_calls() < Duration::from_millis(300))
    }

    /// Count an attempt that needs no pause (the write lost a race to a write
    /// that made progress, and goes on from what that left); `false` when the
    /// budget is spent.
    fn count(&mut self) -> bool {
        if self.exhausted() {
            return false;
        }
        self.attempts += 1;
        true
    }

    /// Pause before the next attempt; `false` (at once) when the budget is spent.
    async fn pause(&mut self) -> bool {
        if self.exhausted() {
            return false;
        }
        back_off(
            self.attempts - 1,
            Duration::from_millis(5),
            Duration::from_millis(250),
        )
        .await;
        self.attempts += 1;
        true
    }

    /// The error of a write that kept conflicting until the budget was spent.
    fn give_up(&self, action: String) -> StoreError {
        StoreError::Contended {
            action,
            attempts: self.attempts,
        }
    }
}

/// Why the health check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unhealthy {
    /// The table does not exist.
    Missing,
    /// The table exists but is not `ACTIVE` (for example `CREATING`).
    NotActive(String),
    /// DynamoDB could not be asked (the detail is logged, not returned).
    Unreachable(String),
}

impl Store {
    /// Whether the table exists and is `ACTIVE` (one DescribeTable call).
    pub async fn health(&self) -> Result<(), Unhealthy> {
        match table_status(&self.client(), &self.table_name).await {
            Ok(Some(aws_sdk_dynamodb::types::TableStatus::Active)) => Ok(()),
            Ok(Some(status)) => Err(Unhealthy::NotActive(status.as_str().to_owned())),
            Ok(None) => Err(Unhealthy::Missing),
            Err(error) => Err(Unhealthy::Unreachable(error.to_string())),
        }
    }
}
