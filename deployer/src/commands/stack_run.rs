//! The one way a stack is run, shared by `apply --env`, `destroy --env`,
//! `bootstrap` and `destroy --bootstrap`: observe and plan; if something would
//! change, take the lock, observe and plan again under it (a run that waited
//! for the lock sees what the run before it did), show the plan, confirm,
//! apply, observe again, and record against the state read under the lock;
//! release the lock on every path. A run with nothing to change takes no lock
//! and makes no mutating call.
//!
//! The lock is held through [`super::lock_guard`]: SIGINT or SIGTERM during
//! the lock wait, the prompt or the apply stops the run (the resources in
//! flight finish, no other starts, what exists is recorded) and releases the
//! lock; a second signal exits at once (and says how to force-unlock). A lease
//! that may be lost stops the run the same way, without recording.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde_json::Value;
use state::{Backend, Stored};

use super::lock_guard::LockGuard;
use super::recording;
use crate::engine::{self, Fence, ObservedResource, Plan, Resources, Stop, apply::apply_fenced};
use crate::error::CliError;
use crate::ui;

/// A stack, observed and planned.
#[derive(Debug)]
pub struct Prepared {
    pub resources: Resources,
    pub observed: Vec<Option<ObservedResource>>,
    pub plan: Plan,
    /// What planning found worth saying, shown once per run (a run prepares
    /// twice: before the lock and under it).
    pub notices: Vec<Notice>,
    /// What the run leaves in place that it would otherwise delete, each
    /// with why (a bootstrap destroy's adopted resources and a bucket holding
    /// others' objects, an environment destroy's user pool): shown below the
    /// plan, and returned as [`Ran::kept`].
    pub kept: Vec<String>,
    /// What planning decided for the function's `live` alias, in words (an
    /// environment's plan; `None` for other stacks): shown below the plan,
    /// and in a JSON plan.
    pub release: Option<String>,
    /// Work the plan does not show as resource changes, done by
    /// [`Stack::before_apply`] once confirmed; the run has work when there is
    /// some, even with no change planned.
    pub unplanned: Vec<Unplanned>,
}

/// What [`Stack::before_apply`] made that outlasts the run, returned as
/// [`Ran::made`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    /// A destroy's final on-demand backup of the scores table.
    FinalBackup { arn: String },
}

/// Work a run does that its plan does not show as a resource change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unplanned {
    /// Delete the deployer's own objects, every version, from the state
    /// bucket a bootstrap destroy keeps (because it holds others' objects, or
    /// was adopted).
    ClearStateBucket,
}

/// Something outside the stack that planning found and people should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A Lambda layer left from when `use_layer` was on, with `versions`
    /// versions; only destroy removes it.
    LayerLeft {
        layer: String,
        versions: usize,
        environment: String,
    },
    /// A user pool the state records from when `auth_create_user_pool` was
    /// on, which stays with its accounts.
    PoolKept {
        pool: String,
        id: String,
        environment: String,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LayerLeft {
                layer,
                versions,
                environment,
            } => write!(
                formatter,
                "note: the Lambda layer {layer} still has {versions} version(s) from when use_layer was on; \
                 the function does not use it once applied. `deployer destroy --env {environment}` deletes it, \
                 as does `aws lambda delete-layer-version --layer-name {layer} --version-number N` for each version"
            ),
            Self::PoolKept {
                pool,
                id,
                environment,
            } => write!(
                formatter,
                "note: the Cognito user pool {pool} ({id}) stays, with its accounts, while \
                 auth_create_user_pool is off: once applied, the API no longer accepts its \
                 tokens. Turning the setting on again manages it again; \
                 `deployer destroy --env {environment} --delete-user-accounts` deletes it"
            ),
        }
    }
}

/// Shows each kind of [`Notice`] once in a run, the first time it is found.
#[derive(Debug, Default)]
struct Shown(Vec<std::mem::Discriminant<Notice>>);

impl Shown {
    fn show(&mut self, notices: &[Notice]) {
        for notice in self.unseen(notices) {
            ui::note(notice);
        }
    }

    /// The notices of a kind not shown yet, now counted as shown.
    fn unseen<'a>(&mut self, notices: &'a [Notice]) -> Vec<&'a Notice> {
        notices
            .iter()
            .filter(|notice| {
                let kind = std::mem::discriminant(*notice);
                let new = !self.0.contains(&kind);
                if new {
                    self.0.push(kind);
                }
                new
            })
            .collect()
    }
}

/// How a run ends once the plan is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Record what exists now, with the stack's outputs.
    Record,
    /// Remove the state: the stack is gone.
    Remove,
    /// Remove the state but for the record at this address, of what the
    /// destroy kept (an environment's user pool, with its accounts), so that a
    /// later destroy told to delete it still finds it.
    RemoveAllBut(&'static str),
    /// The state went with what was destroyed (it was kept in it).
    Gone,
}

/// What differs from one stack to another.
#[async_trait::async_trait]
pub trait Stack: Send + Sync {
    /// Observe AWS and plan (the plan itself is pure).
    async fn prepare(&self) -> Result<Prepared, CliError>;

    /// The outputs to record when `observed` is what exists.
    fn outputs(
        &self,
        resources: &Resources,
        observed: &[Option<ObservedResource>],
    ) -> BTreeMap<String, Value>;

    /// The state as it is now (`None`: none, or nowhere to keep it yet).
    async fn stored(&self, prepared: &Prepared) -> Result<Option<Stored>, CliError>;

    /// Where the lock is taken, given what `prepared` observed.
    fn lock_backend(&self, prepared: &Prepared) -> Backend;

    /// Where the state is recorded (or removed) after apply.
    fn state_backend(&self) -> Backend;

    /// How the run ends, given what `prepared` found.
    fn ending(&self, prepared: &Prepared) -> Ending;

    /// Lines shown below the plan (what a destroy deletes with the table).
    fn notes(&self, _prepared: &Prepared) -> Vec<String> {
        Vec::new()
    }

    /// What must succeed, once confirmed, before anything is applied (a
    /// destroy's final backup); a failure stops the run with nothing changed.
    /// `stored` is the state read under the lock. Returns what it made, for
    /// [`Ran::made`].
    async fn before_apply(
        &self,
        _prepared: &Prepared,
        _stored: Option<&Stored>,
    ) -> Result<Vec<Made>, CliError> {
        Ok(Vec::new())
    }
}

/// Who must say yes before anything changes.
#[derive(Debug, Clone)]
pub enum Approval {
    /// `--auto-approve`.
    Given,
    /// Ask `question` on the terminal; only `expected` proceeds.
    Ask {
        question: String,
        expected: &'static str,
    },
}

/// The run's identity in the lock, and its approval.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The state's name (`dev`, `bootstrap`).
    pub environment: String,
    /// `apply`, `destroy`, `bootstrap`.
    pub operation: &'static str,
    /// The command line, shown to whoever finds the lock held.
    pub command: String,
    pub lock_timeout: Duration,
    /// The lock's lease (the `lock_lease` setting).
    pub lock_lease: Duration,
    pub approval: Approval,
    /// A saved plan being applied: what must hold under the lock.
    pub saved: Option<super::saved_plan::Expected>,
}

/// What a run did.
#[derive(Debug)]
pub struct Ran {
    /// The plan that was applied (made under the lock), or the no-op plan.
    pub plan: Plan,
    pub outputs: BTreeMap<String, Value>,
    /// Whether anything was applied or recorded.
    pub applied: bool,
    /// What the run left in place, and why ([`Prepared::kept`]).
    pub kept: Vec<String>,
    /// What [`Stack::before_apply`] made (a destroy's final backup).
    pub made: Vec<Made>,
}

/// Run `stack`. See the module's documentation.
pub async fn run(stack: &dyn Stack, options: &RunOptions) -> Result<Ran, CliError> {
    let first = stack.prepare().await?;
    let mut shown = Shown::default();
    shown.show(&first.notices);
    // A saved plan is checked under the lock, whatever the first look finds.
    if options.saved.is_none() && !has_work(&first) {
        let stored = stack.stored(&first).await?;
        if let Some(ran) = nothing_to_do(stack, &first, stored.as_ref()) {
            return Ok(ran);
        }
    }
    let lock = stack.lock_backend(&first);
    let request = super::lock_request(
        &options.environment,
        options.operation,
        options.command.clone(),
        options.lock_timeout,
        options.lock_lease,
    );
    let guard = LockGuard::acquire(&lock, &options.environment, &request).await?;
    let result = guard
        .run(under_lock(stack, options, &mut shown, guard.fence()))
        .await;
    let released = guard.release().await;
    let ran = result?;
    released?;
    Ok(ran)
}

/// Whether the run has anything to apply: resource changes, or work the plan
/// does not show.
fn has_work(prepared: &Prepared) -> bool {
    prepared.plan.has_changes() || !prepared.unplanned.is_empty()
}

/// `Some` when the run has no work and `stored` (the state as it is now)
/// already records what exists.
fn nothing_to_do(stack: &dyn Stack, prepared: &Prepared, stored: Option<&Stored>) -> Option<Ran> {
    if has_work(prepared) {
        return None;
    }
    let outputs = stack.outputs(&prepared.resources, &prepared.observed);
    let current = match stack.ending(prepared) {
        Ending::Record => recording::is_current(
            stored,
            &recording::state_resources(
                &prepared.resources,
                &prepared.observed,
                &prepared.plan,
                stored,
            ),
            &outputs,
        ),
        Ending::Remove => stored.is_none(),
        Ending::RemoveAllBut(kept) => stored.is_some_and(|stored| {
            stored.document.resources.keys().eq([kept]) && stored.document.outputs.is_empty()
        }),
        Ending::Gone => true,
    };
    current.then(|| Ran {
        plan: prepared.plan.clone(),
        outputs,
        applied: false,
        kept: prepared.kept.clone(),
        made: Vec::new(),
    })
}

async fn under_lock(
    stack: &dyn Stack,
    options: &RunOptions,
    shown: &mut Shown,
    fence: Fence,
) -> Result<Ran, CliError> {
    let prepared = stack.prepare().await?;
    shown.show(&prepared.notices);
    // The version every later write is checked against.
    let stored = stack.stored(&prepared).await?;
    if let Some(expected) = &options.saved {
        expected.check(stored.as_ref(), &prepared.plan)?;
    }
    if let Some(ran) = nothing_to_do(stack, &prepared, stored.as_ref()) {
        return Ok(ran);
    }
    let ending = stack.ending(&prepared);
    let mut made = Vec::new();
    if has_work(&prepared) {
        ui::text(engine::render::render(&prepared.plan));
        for note in stack.notes(&prepared) {
            ui::note(note);
        }
        if let Approval::Ask { question, expected } = &options.approval {
            let (question, expected) = (question.clone(), *expected);
            tokio::select! {
                answer = tokio::task::spawn_blocking(move || ui::confirm(&question, expected)) => {
                    answer.map_err(CliError::Confirmation)??;
                }
                _ = fence.raised() => return Err(stopped(options, "at the prompt; nothing was changed")),
            }
        }
        fence.check("starting the changes")?;
        made = stack.before_apply(&prepared, stored.as_ref()).await?;
        let applied = apply_fenced(
            &prepared.resources,
            &prepared.observed,
            &prepared.plan,
            ui::progress(),
            &fence,
        )
        .await;
        if let Err(error) = applied {
            // Interrupted: what finished is recorded before the lock is
            // released. A lease that may be lost records nothing: the state
            // is the lock holder's to write.
            if fence.stopped() == Some(Stop::Interrupted) && ending == Ending::Record {
                let observed = engine::observe(&prepared.resources).await?;
                recording::write(
                    &stack.state_backend(),
                    &options.environment,
                    stored.as_ref(),
                    recording::state_resources(
                        &prepared.resources,
                        &observed,
                        &prepared.plan,
                        stored.as_ref(),
                    ),
                    stack.outputs(&prepared.resources, &observed),
                )
                .await?;
                return Err(stopped(
                    options,
                    "resources finished so far are kept and recorded; rerun the command to converge",
                ));
            }
            return Err(error.into());
        }
    }
    let backend = stack.state_backend();
    let outputs = match ending {
        Ending::Record => {
            let observed = engine::observe(&prepared.resources).await?;
            let outputs = stack.outputs(&prepared.resources, &observed);
            recording::write(
                &backend,
                &options.environment,
                stored.as_ref(),
                recording::state_resources(
                    &prepared.resources,
                    &observed,
                    &prepared.plan,
                    stored.as_ref(),
                ),
                outputs.clone(),
            )
            .await?;
            outputs
        }
        Ending::Gone => BTreeMap::new(),
        Ending::RemoveAllBut(kept)
            if let Some(record) = stored
                .as_ref()
                .and_then(|stored| stored.document.resources.get(kept)) =>
        {
            // Against the state as it is now: `before_apply` may have written a
            // revision since (a destroy's final backup), under this run's lock.
            let latest = stack.stored(&prepared).await?;
            recording::write(
                &backend,
                &options.environment,
                latest.as_ref(),
                BTreeMap::from([(kept.to_owned(), record.clone())]),
                BTreeMap::new(),
            )
            .await?;
            BTreeMap::new()
        }
        Ending::Remove | Ending::RemoveAllBut(_) => {
            backend
                .remove(&options.environment)
                .await
                .map_err(CliError::state(format!(
                    "removing the state of {}",
                    options.environment
                )))?;
            BTreeMap::new()
        }
    };
    Ok(Ran {
        plan: prepared.plan,
        outputs,
        applied: true,
        kept: prepared.kept,
        made,
    })
}

fn stopped(options: &RunOptions, what: &str) -> CliError {
    CliError::Interrupted {
        what: format!(
            "{what} (`deployer {} --env {}`)",
            options.operation, options.environment
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(versions: usize) -> Notice {
        Notice::LayerLeft {
            layer: "aimodelshare-playground-dev-deps".into(),
            versions,
            environment: "dev".into(),
        }
    }

    fn pool() -> Notice {
        Notice::PoolKept {
            pool: "aimodelshare-playground-dev-users".into(),
            id: "us-east-1_abc".into(),
            environment: "dev".into(),
        }
    }

    /// A run prepares twice; each kind of notice is shown the first time only,
    /// even when the second preparation counts differently.
    #[test]
    fn each_kind_of_notice_is_shown_once_per_run() {
        let mut shown = Shown::default();
        assert_eq!(shown.unseen(&[layer(2)]), [&layer(2)]);
        assert_eq!(shown.unseen(&[layer(3), pool()]), [&pool()]);
        assert!(shown.unseen(&[layer(2), pool()]).is_empty());
    }

    #[test]
    fn notices_read_as_they_did_when_prepare_printed_them() {
        assert_eq!(
            layer(2).to_string(),
            "note: the Lambda layer aimodelshare-playground-dev-deps still has 2 version(s) from when \
             use_layer was on; the function does not use it once applied. `deployer destroy --env dev` \
             deletes it, as does `aws lambda delete-layer-version --layer-name \
             aimodelshare-playground-dev-deps --version-number N` for each version"
        );
        assert_eq!(
            pool().to_string(),
            "note: the Cognito user pool aimodelshare-playground-dev-users (us-east-1_abc) stays, with \
             its accounts, while auth_create_user_pool is off: once applied, the API no longer accepts \
             its tokens. Turning the setting on again manages it again; `deployer destroy --env dev \
             --delete-user-accounts` deletes it"
        );
    }
}
