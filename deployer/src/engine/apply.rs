//! Carrying out a plan: creates and updates in dependency order, deletions in
//! reverse, resources whose dependencies are done run concurrently. A plan
//! with no changes makes no call at all. A run holding a lock passes its
//! [`Fence`]: no resource's change starts once it is up (interrupted, or the
//! lease may be lost); those already running finish.

use std::collections::BTreeSet;

use super::plan::{Action, Plan};
use super::progress::Progress;
use super::{EngineError, Fence, ObservedResource, Resources};

/// Apply `plan` (made from `resources` and `observed`, in the same order).
/// Stops at the first failure once the resources already running finish;
/// everything done so far stays done (and is reported).
pub async fn apply(
    resources: &Resources,
    observed: &[Option<ObservedResource>],
    plan: &Plan,
    progress: Progress,
) -> Result<(), EngineError> {
    apply_fenced(resources, observed, plan, progress, &Fence::open()).await
}

/// [`apply`], checking `fence` before each resource's change starts.
pub async fn apply_fenced(
    resources: &Resources,
    observed: &[Option<ObservedResource>],
    plan: &Plan,
    progress: Progress,
    fence: &Fence,
) -> Result<(), EngineError> {
    let addresses: Vec<String> = resources
        .iter()
        .map(|resource| resource.address().to_owned())
        .collect();
    let dependencies: Vec<Vec<String>> = resources
        .iter()
        .map(|resource| resource.desired().depends_on)
        .collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut pending: Vec<usize> = (0..resources.len()).collect();
    let destroying = plan
        .resources
        .iter()
        .all(|planned| planned.action == Action::Delete)
        && !plan.resources.is_empty();
    while !pending.is_empty() {
        // Deletions go in reverse dependency order: a resource waits for those that depend on it.
        let ready: Vec<usize> = pending
            .iter()
            .copied()
            .filter(|&index| {
                if destroying {
                    pending.iter().all(|&other| {
                        other == index || !dependencies[other].contains(&addresses[index])
                    })
                } else {
                    dependencies[index].iter().all(|dependency| {
                        done.contains(dependency) || !addresses.contains(dependency)
                    })
                }
            })
            .collect();
        if ready.is_empty() {
            return Err(EngineError::new(
                "ordering resources",
                format!(
                    "dependency cycle among {:?}",
                    pending.iter().map(|&i| &addresses[i]).collect::<Vec<_>>()
                ),
            ));
        }
        let mut tasks = tokio::task::JoinSet::new();
        let mut fence_error = None;
        for &index in &ready {
            let Some(planned) = plan
                .resources
                .iter()
                .find(|planned| planned.address == addresses[index])
            else {
                continue;
            };
            let action = planned.action.clone();
            if action == Action::NoOp {
                continue;
            }
            if let Err(stop) = fence.check(&format!("changing {}", addresses[index])) {
                // What already started finishes below; nothing else starts.
                fence_error.get_or_insert(stop);
                break;
            }
            let resource = resources[index].clone();
            let current = observed.get(index).cloned().flatten();
            let address = addresses[index].clone();
            tasks.spawn(async move {
                let result = match (&action, &current) {
                    (Action::Create(_), _) => {
                        let started = progress.start(&address, "creating");
                        resource.create().await.map(|()| ("created", started))
                    }
                    (Action::Update(changes), Some(current)) => {
                        let started = progress.start(&address, "updating");
                        resource
                            .update(current, changes)
                            .await
                            .map(|()| ("updated", started))
                    }
                    (Action::Replace(_), Some(current)) => {
                        let started = progress.start(&address, "replacing");
                        match resource.delete(current).await {
                            Ok(()) => resource.create().await.map(|()| ("replaced", started)),
                            Err(error) => Err(error),
                        }
                    }
                    (Action::Delete, Some(current)) => {
                        let started = progress.start(&address, "destroying");
                        resource
                            .delete(current)
                            .await
                            .map(|()| ("destroyed", started))
                    }
                    _ => Ok(("unchanged", std::time::Instant::now())),
                };
                match result {
                    Ok((past, started)) => {
                        progress.done(&address, past, started);
                        Ok(())
                    }
                    Err(error) => {
                        progress.failed(&address, &error.to_string());
                        Err(error)
                    }
                }
            });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let result = joined.map_err(|error| EngineError::new("applying", error.to_string()))?;
            if let Err(error) = result
                && first_error.is_none()
            {
                first_error = Some(error);
            }
        }
        if let Some(error) = first_error.or(fence_error) {
            return Err(error);
        }
        for index in &ready {
            done.insert(addresses[*index].clone());
        }
        pending.retain(|index| !ready.contains(index));
    }
    Ok(())
}
