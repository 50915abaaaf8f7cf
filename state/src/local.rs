//! The local backend: `<dir>/<env>.json`, written atomically (temp file, fsync,
//! rename, fsync of the folder), and `<dir>/<env>.lock`, created exclusively.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::lock::{Attempt, LockInfo, Taken};
use crate::{StateDocument, StateError};

/// State files in one folder (`.deployer/` beside the config by default).
#[derive(Debug, Clone)]
pub struct LocalBackend {
    dir: PathBuf,
}

impl LocalBackend {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn state_path(&self, environment: &str) -> PathBuf {
        self.dir.join(format!("{environment}.json"))
    }

    pub fn lock_path(&self, environment: &str) -> PathBuf {
        self.dir.join(format!("{environment}.lock"))
    }

    /// In a folder of its own, `<env>.d`, so no listing takes it for a state.
    pub fn beside_path(&self, environment: &str, name: &str) -> PathBuf {
        self.dir.join(format!("{environment}.d")).join(name)
    }

    pub(crate) async fn read_beside(
        &self,
        environment: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.beside_path(environment, name);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StateError::io(format!("reading {}", path.display()), error)),
        }
    }

    /// Written atomically, as the state is.
    pub(crate) async fn write_beside(
        &self,
        environment: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(), StateError> {
        let path = self.beside_path(environment, name);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let action = format!("writing {}", path.display());
        tokio::task::spawn_blocking(move || write_file_atomically(&dir, &path, &bytes))
            .await
            .map_err(|error| StateError::Io {
                action: action.clone(),
                detail: error.to_string(),
            })?
            .map_err(|error| StateError::io(action, error))
    }

    pub(crate) async fn remove_beside(
        &self,
        environment: &str,
        name: &str,
    ) -> Result<(), StateError> {
        let path = self.beside_path(environment, name);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(StateError::io(
                format!("removing {}", path.display()),
                error,
            )),
        }
    }

    pub(crate) async fn read(
        &self,
        environment: &str,
    ) -> Result<Option<StateDocument>, StateError> {
        let path = self.state_path(environment);
        match tokio::fs::read(&path).await {
            Ok(bytes) => StateDocument::from_json(&bytes, &path.display().to_string()).map(Some),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StateError::io(
                format!("reading state {}", path.display()),
                error,
            )),
        }
    }

    /// Write `document` atomically: a reader sees the old or the new file, never half.
    pub(crate) async fn write_atomically(
        &self,
        environment: &str,
        document: &StateDocument,
    ) -> Result<(), StateError> {
        let path = self.state_path(environment);
        let dir = self.dir.clone();
        let bytes = document.to_json();
        let action = format!("writing state {}", path.display());
        tokio::task::spawn_blocking(move || write_file_atomically(&dir, &path, &bytes))
            .await
            .map_err(|error| StateError::Io {
                action: action.clone(),
                detail: error.to_string(),
            })?
            .map_err(|error| StateError::io(action, error))
    }

    pub(crate) async fn remove(&self, environment: &str) -> Result<(), StateError> {
        let path = self.state_path(environment);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(StateError::io(
                format!("removing state {}", path.display()),
                error,
            )),
        }
    }

    pub(crate) async fn try_lock(
        &self,
        environment: &str,
        info: &LockInfo,
    ) -> Result<Attempt<Taken>, StateError> {
        let path = self.lock_path(environment);
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|error| StateError::io(format!("creating {}", self.dir.display()), error))?;
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path);
        match created {
            Ok(mut file) => {
                file.write_all(info.to_json().as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|error| {
                        StateError::io(format!("writing lock {}", path.display()), error)
                    })?;
                Ok(Attempt::Acquired(Taken {
                    version: String::new(),
                    took_over: None,
                }))
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(Attempt::HeldBy(
                self.current_lock(environment)
                    .await?
                    .unwrap_or_else(|| LockInfo::unreadable(&path.display().to_string())),
            )),
            Err(error) => Err(StateError::io(
                format!("creating lock {}", path.display()),
                error,
            )),
        }
    }

    pub(crate) async fn current_lock(
        &self,
        environment: &str,
    ) -> Result<Option<LockInfo>, StateError> {
        let path = self.lock_path(environment);
        match tokio::fs::read(&path).await {
            Ok(bytes) => {
                Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                    LockInfo::unreadable(&path.display().to_string())
                })))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(StateError::io(
                format!("reading lock {}", path.display()),
                error,
            )),
        }
    }

    /// Renew the lock file we hold (the same `ID`) with `info`: written
    /// atomically, after checking it is still ours.
    pub(crate) async fn renew(&self, environment: &str, info: &LockInfo) -> Result<(), StateError> {
        let path = self.lock_path(environment);
        let lock_id = path.display().to_string();
        let current = self.current_lock(environment).await?;
        if current.as_ref().is_none_or(|current| current.id != info.id) {
            return Err(StateError::LockLost {
                lock_id,
                now: current.map(Box::new),
            });
        }
        let (dir, bytes) = (self.dir.clone(), info.to_json().into_bytes());
        tokio::task::spawn_blocking(move || write_file_atomically(&dir, &path, &bytes))
            .await
            .map_err(|error| StateError::Io {
                action: format!("renewing lock {lock_id}"),
                detail: error.to_string(),
            })?
            .map_err(|error| StateError::io(format!("renewing lock {lock_id}"), error))
    }

    pub(crate) async fn unlock(&self, environment: &str, id: &str) -> Result<(), StateError> {
        let path = self.lock_path(environment);
        let lock_id = path.display().to_string();
        let Some(info) = self.current_lock(environment).await? else {
            return Err(StateError::NotLocked { lock_id });
        };
        if info.id != id {
            return Err(StateError::LockIdMismatch {
                lock_id,
                held: info.id,
                given: id.to_owned(),
            });
        }
        tokio::fs::remove_file(&path)
            .await
            .map_err(|error| StateError::io(format!("removing lock {lock_id}"), error))
    }
}

fn write_file_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("state.json");
    let temporary = dir.join(format!(".{file_name}.{}.tmp", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}
