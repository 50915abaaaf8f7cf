//! `deployer lock status --env E [--json]`: who holds the state's lock, in
//! every place it is kept (the `.tflock` file, the legacy table's item, the
//! local lock file), with the run's URL, its age and its last heartbeat.

use serde::Serialize;
use state::{Backend, FoundLock};

use crate::error::CliError;

/// One lock, as shown.
#[derive(Debug, Serialize)]
struct Shown {
    place: String,
    id: String,
    operation: String,
    info: String,
    who: String,
    version: String,
    created: String,
    age_seconds: Option<u64>,
    run_url: Option<String>,
    host: Option<String>,
    process: Option<u32>,
    last_heartbeat: Option<String>,
    heartbeat_age_seconds: Option<u64>,
    lease_seconds: Option<u64>,
    /// The heartbeat is older than the lease: the next run takes it over.
    stale: bool,
}

#[derive(Debug, Serialize)]
struct Status {
    environment: String,
    lock_backend: &'static str,
    locked: bool,
    locks: Vec<Shown>,
}

fn age(rfc3339: &str) -> Option<u64> {
    let then = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    let age = chrono::Utc::now().signed_duration_since(then);
    Some(u64::try_from(age.num_seconds()).unwrap_or(0))
}

fn shown(found: FoundLock) -> Shown {
    let info = found.info;
    let holder = info.holder.clone();
    Shown {
        place: found.place,
        age_seconds: age(&info.created),
        heartbeat_age_seconds: info.heartbeat_age().map(|age| age.as_secs()),
        stale: info.is_stale(),
        run_url: info.run_url().map(str::to_owned),
        host: holder.as_ref().map(|holder| holder.host.clone()),
        process: holder.as_ref().map(|holder| holder.process),
        last_heartbeat: holder.as_ref().map(|holder| holder.heartbeat.clone()),
        lease_seconds: holder.as_ref().map(|holder| holder.lease_seconds),
        id: info.id,
        operation: info.operation,
        info: info.info,
        who: info.who,
        version: info.version,
        created: info.created,
    }
}

pub async fn run(backend: &Backend, environment: &str, json: bool) -> Result<String, CliError> {
    let found = backend
        .locks(environment)
        .await
        .map_err(CliError::state(format!(
            "reading the lock of {environment}"
        )))?;
    let status = Status {
        environment: environment.to_owned(),
        lock_backend: backend.lock_backend(),
        locked: !found.is_empty(),
        locks: found.into_iter().map(shown).collect(),
    };
    if json {
        return Ok(super::to_json(&status));
    }
    if status.locks.is_empty() {
        return Ok(format!(
            "{environment}: not locked (locks kept in: {}).",
            status.lock_backend
        ));
    }
    let mut lines = vec![format!(
        "{environment}: locked (locks kept in: {}).",
        status.lock_backend
    )];
    let seconds = |value: Option<u64>| value.map_or("unknown".to_owned(), |s| format!("{s} s"));
    for lock in &status.locks {
        lines.push(format!("  {}", lock.place));
        lines.push(format!("    lock ID:        {}", lock.id));
        lines.push(format!(
            "    held by:        {} ({})",
            lock.who, lock.operation
        ));
        lines.push(format!("    info:           {}", lock.info));
        if let Some(url) = &lock.run_url {
            lines.push(format!("    run:            {url}"));
        }
        if let (Some(host), Some(process)) = (&lock.host, lock.process) {
            lines.push(format!("    process:        {process} on {host}"));
        }
        lines.push(format!(
            "    since:          {} ({} ago)",
            lock.created,
            seconds(lock.age_seconds)
        ));
        match &lock.last_heartbeat {
            Some(heartbeat) => lines.push(format!(
                "    last heartbeat: {heartbeat} ({} ago; lease {}){}",
                seconds(lock.heartbeat_age_seconds),
                seconds(lock.lease_seconds),
                if lock.stale {
                    ": stale, the next run takes it over"
                } else {
                    ""
                }
            )),
            None => lines.push(
                "    last heartbeat: none (a Terraform lock: it never expires; remove it with force-unlock once its run is gone)"
                    .to_owned(),
            ),
        }
    }
    lines.push(format!(
        "Remove a lock whose run is gone with: deployer force-unlock --env {environment} LOCK_ID"
    ));
    Ok(lines.join("\n"))
}
