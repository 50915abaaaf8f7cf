//! The one way a command holds a state lock: apply, destroy, bootstrap (all
//! through `stack_run`), restore, rollback, migrate and import.
//!
//! [`LockGuard::acquire`] takes the lock (waiting up to `--lock-timeout`; a
//! stale lock, whose heartbeat is older than its lease, is taken over, said,
//! and recorded in the state history). While it is held:
//! - a heartbeat renews it every third of the lease; the [`Fence`] goes up when
//!   a renewal finds the lock lost, or when no renewal succeeded within the
//!   lease. The engine checks the fence before each mutating step, so a run
//!   never acts on a lock it may have lost;
//! - SIGINT or SIGTERM raises the fence too: the AWS calls in flight finish,
//!   no new change starts, the work records what was done, and the lock is
//!   released, all within [`GRACE`] plus the release; work still running when
//!   the grace ends is dropped. A second signal exits at once, naming the lock
//!   left held (its lease clears it, as it clears one left by SIGKILL).
//!
//! A run a signal interrupted ends by that signal ([`exit`]), not with an exit
//! code: a calling shell script then stops too. Bash, waiting for a command
//! in the foreground, takes a command that caught SIGINT and exited normally
//! as one that handled the Ctrl-C for it, and goes on with its script
//! (`scripts/dev --watch` did, past its trap).

use std::future::Future;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use state::{Backend, HeldLock, LockRequest, StateError};

use crate::engine::{Fence, Stop};
use crate::error::CliError;
use crate::ui;

/// How long interrupted work has to stop by itself (finish the call in
/// flight, record what was done) before it is dropped: with the release, a
/// cancelled run is gone within the 7.5 s GitHub allows between SIGINT and
/// SIGKILL, and within 5 s for a typical step.
pub const GRACE: Duration = Duration::from_secs(4);

/// A held lock, its heartbeat and its fence.
#[derive(Debug)]
pub struct LockGuard {
    backend: Backend,
    environment: String,
    held: Arc<tokio::sync::Mutex<HeldLock>>,
    fence: Fence,
    heartbeat: tokio::task::JoinHandle<()>,
    watcher: tokio::task::JoinHandle<()>,
    /// Counts this guard as active until it is dropped.
    _active: Active,
}

/// A guard waiting for or holding a lock. While none is, a signal has
/// nothing to stop cleanly and ends the process at once, as Ctrl-C does
/// without a handler (the handler stays registered for the process's life).
#[derive(Debug)]
struct Active;

impl Active {
    fn new(interrupts: &Interrupts) -> Self {
        interrupts.active.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        Interrupts::get().active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LockGuard {
    /// Take `environment`'s lock in `backend`. A signal while waiting stops
    /// the wait.
    pub async fn acquire(
        backend: &Backend,
        environment: &str,
        request: &LockRequest,
    ) -> Result<Self, CliError> {
        let interrupts = Interrupts::get();
        let active = Active::new(interrupts);
        let held = tokio::select! {
            held = backend.lock(environment, request) => held.map_err(CliError::state(format!(
                "locking the state of {environment}"
            )))?,
            () = interrupts.first() => {
                return Err(CliError::Interrupted {
                    what: format!("while waiting for the lock of {environment}; nothing was changed"),
                });
            }
        };
        if let Some(stale) = &held.took_over {
            let age = stale
                .heartbeat_age()
                .map(|age| format!(" ({} s ago)", age.as_secs()))
                .unwrap_or_default();
            ui::note(format!(
                "took over the stale lock {} of {environment}: held by {}; its last heartbeat{age} is older than its lease",
                stale.id,
                stale.describe(),
            ));
            if let Err(error) = backend.record_takeover(&held).await {
                ui::note(format!(
                    "warning: the takeover could not be recorded in the state history: {error}"
                ));
            }
        }
        interrupts.holding(format!(
            "deployer force-unlock --env {environment} {} (lock {}); its lease clears it within {} s",
            held.info.id,
            held.lock_id,
            request.lease.as_secs()
        ));
        let fence = Fence::open();
        fence.renewed(Instant::now(), request.lease);
        let held = Arc::new(tokio::sync::Mutex::new(held));
        let heartbeat = tokio::spawn(heartbeat(
            backend.clone(),
            held.clone(),
            fence.clone(),
            request.lease,
        ));
        let watcher = tokio::spawn({
            let fence = fence.clone();
            async move {
                interrupts.first().await;
                fence.raise(Stop::Interrupted);
            }
        });
        Ok(Self {
            backend: backend.clone(),
            environment: environment.to_owned(),
            held,
            fence,
            heartbeat,
            watcher,
            _active: active,
        })
    }

    /// What the work checks before each change.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Run `work` under the lock. Once the fence is up, `work` has [`GRACE`]
    /// to stop by itself, then it is dropped.
    pub async fn run<T>(
        &self,
        work: impl Future<Output = Result<T, CliError>>,
    ) -> Result<T, CliError> {
        tokio::pin!(work);
        let stop = tokio::select! {
            result = &mut work => return self.explained(result),
            stop = self.fence.raised() => stop,
        };
        if stop == Stop::Interrupted {
            ui::note(format!(
                "\ninterrupted: finishing the call in flight, recording what was done and releasing the lock (within {} s; interrupt again to exit at once)",
                GRACE.as_secs()
            ));
        }
        match tokio::time::timeout(GRACE, &mut work).await {
            Ok(result) => self.explained(result),
            Err(_) => Err(self.stopped_error(&stop)),
        }
    }

    /// `result`, or when the fence is up and the work failed, why it stopped.
    fn explained<T>(&self, result: Result<T, CliError>) -> Result<T, CliError> {
        match (result, self.fence.stopped()) {
            (Err(error), Some(stop)) => {
                if stop == Stop::Interrupted && matches!(error, CliError::Interrupted { .. }) {
                    return Err(error);
                }
                Err(self.stopped_error(&stop))
            }
            (result, _) => result,
        }
    }

    fn stopped_error(&self, stop: &Stop) -> CliError {
        match stop {
            Stop::Interrupted => CliError::Interrupted {
                what: format!(
                    "what finished is kept and recorded; rerun the command to converge {}",
                    self.environment
                ),
            },
            Stop::LeaseLost(detail) => CliError::Refused(format!(
                "stopped before the next change to {}: {detail}. Another run may hold the lock now; rerun the command once it is free to converge",
                self.environment
            )),
        }
    }

    /// Stop the heartbeat and release the lock.
    pub async fn release(self) -> Result<(), CliError> {
        self.heartbeat.abort();
        self.watcher.abort();
        let held = self.held.lock().await;
        let released = self.backend.unlock(&held).await;
        Interrupts::get().released();
        match released {
            Ok(()) => Ok(()),
            // A lease that ran out may have been taken over: it is not ours to free.
            Err(StateError::LockIdMismatch { .. } | StateError::NotLocked { .. })
                if matches!(self.fence.stopped(), Some(Stop::LeaseLost(_))) =>
            {
                Ok(())
            }
            Err(error) => Err(CliError::state(format!(
                "releasing the lock of {}",
                self.environment
            ))(error)),
        }
    }
}

/// Run `work` holding `environment`'s lock, released whatever `work` returns
/// (`work`'s error comes first). `work` is handed the fence to check before
/// each change, and to stop waits on.
pub async fn hold<T, F, Fut>(
    backend: &Backend,
    environment: &str,
    request: &LockRequest,
    work: F,
) -> Result<T, CliError>
where
    F: FnOnce(Fence) -> Fut,
    Fut: Future<Output = Result<T, CliError>>,
{
    let guard = LockGuard::acquire(backend, environment, request).await?;
    let result = guard.run(work(guard.fence())).await;
    let released = guard.release().await;
    let value = result?;
    released?;
    Ok(value)
}

/// Renew `held` every third of `lease`; lower `fence` no more once it is lost.
async fn heartbeat(
    backend: Backend,
    held: Arc<tokio::sync::Mutex<HeldLock>>,
    fence: Fence,
    lease: Duration,
) {
    let every = (lease / 3).max(Duration::from_millis(100));
    let mut warned = false;
    loop {
        tokio::time::sleep(every).await;
        let started = Instant::now();
        let mut held = held.lock().await;
        match backend.renew(&mut held).await {
            Ok(()) => {
                fence.renewed(started, lease);
                warned = false;
            }
            Err(error @ StateError::LockLost { .. }) => {
                fence.raise(Stop::LeaseLost(error.to_string()));
                return;
            }
            Err(error) => {
                // The fence goes up by itself if no renewal succeeds within the lease.
                if !warned {
                    ui::note(format!(
                        "warning: renewing the lock failed ({error}); retrying. The run stops before its next change if the lock is not renewed within its lease"
                    ));
                    warned = true;
                }
            }
        }
    }
}

/// Ends the process: by the signal that interrupted the run if one did
/// (after the lock was released and the error shown), else with `code`.
pub fn exit(code: i32) -> ! {
    let signal = INTERRUPTS
        .get()
        .map_or(0, |interrupts| interrupts.signal.load(Ordering::SeqCst));
    if signal != 0 {
        end_by(signal);
    }
    std::process::exit(code)
}

/// Ends the process by `signal`, as if no handler had caught it: the default
/// action is restored and the signal raised again (a well-kept crate does
/// this; the workspace forbids `unsafe`). The exit status of `128 + signal`
/// is a fallback only.
fn end_by(signal: i32) -> ! {
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}

static INTERRUPTS: OnceLock<&'static Interrupts> = OnceLock::new();

/// SIGINT and SIGTERM, process-wide: the first raises every guard's fence
/// (and stops a lock wait); the second exits at once, saying which lock is
/// left held.
struct Interrupts {
    count: AtomicUsize,
    /// The first signal that came, or 0.
    signal: AtomicI32,
    /// Guards waiting for or holding a lock ([`Active`]).
    active: AtomicUsize,
    notify: tokio::sync::Notify,
    held: std::sync::Mutex<Option<String>>,
}

impl Interrupts {
    fn get() -> &'static Self {
        INTERRUPTS.get_or_init(|| {
            let interrupts: &'static Interrupts = Box::leak(Box::new(Self {
                count: AtomicUsize::new(0),
                signal: AtomicI32::new(0),
                active: AtomicUsize::new(0),
                notify: tokio::sync::Notify::new(),
                held: std::sync::Mutex::new(None),
            }));
            // Registered now, so a signal from here on is ours to handle.
            use tokio::signal::unix::{SignalKind, signal};
            if let (Ok(interrupt), Ok(terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                tokio::spawn(interrupts.listen(interrupt, terminate));
            }
            interrupts
        })
    }

    async fn listen(
        &'static self,
        mut interrupt: tokio::signal::unix::Signal,
        mut terminate: tokio::signal::unix::Signal,
    ) {
        loop {
            let signal = tokio::select! {
                _ = interrupt.recv() => signal_hook::consts::SIGINT,
                _ = terminate.recv() => signal_hook::consts::SIGTERM,
            };
            let _ = self
                .signal
                .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
            if self.active.load(Ordering::SeqCst) == 0 {
                // No lock to release: stop as an unhandled signal would.
                ui::note("\ninterrupted");
                end_by(signal);
            }
            if self.count.fetch_add(1, Ordering::SeqCst) >= 1 {
                let held = self
                    .held
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                match held {
                    Some(unlock) => ui::note(format!(
                        "\ninterrupted again: exiting now; the lock is still held: {unlock}"
                    )),
                    None => ui::note("\ninterrupted again: exiting now"),
                }
                end_by(signal);
            }
            self.notify.notify_waiters();
        }
    }

    /// Resolves at the first signal (at once if it already came).
    async fn first(&self) {
        let notified = self.notify.notified();
        if self.count.load(Ordering::SeqCst) > 0 {
            return;
        }
        notified.await;
    }

    fn holding(&self, unlock: String) {
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(unlock);
    }

    fn released(&self) {
        *self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}
