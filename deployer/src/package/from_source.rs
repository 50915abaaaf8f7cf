//! The function built from source when `apply` is given no `--artifact`:
//! `cargo build --release -p function --bin playground-api` in the workspace,
//! then a deterministic zip. Only for the machine's own architecture (a cross
//! build needs `cargo lambda`, whose command the error gives).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Architecture;
use super::artifact::{self, Artifact, ArtifactError};

/// Why the function could not be built from source. Each message says what to
/// do instead.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "apply without --artifact builds the function for this machine ({host}), but the configuration wants {wanted}: \
         build it with `{}` and pass --artifact",
        wanted.build_command()
    )]
    ForeignArchitecture {
        host: &'static str,
        wanted: Architecture,
    },
    #[error(
        "apply without --artifact builds the function from source, but no workspace with function/ was found at or above {}: \
         run it from the workspace, or build with `{}` and pass --artifact",
        start.display(),
        wanted.build_command()
    )]
    NoWorkspace {
        start: PathBuf,
        wanted: Architecture,
    },
    #[error("running cargo to build the function: {0}")]
    Cargo(#[source] std::io::Error),
    #[error("building the function failed ({0}); see cargo's output above")]
    Failed(std::process::ExitStatus),
    #[error("reading the built function {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
}

/// The workspace holding the function: `start` or the nearest folder above it
/// with `function/Cargo.toml` and a `Cargo.toml`.
pub fn find_workspace(start: &Path) -> Option<PathBuf> {
    let start = start.canonicalize().ok()?;
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("function/Cargo.toml").is_file())
        .map(Path::to_path_buf)
}

/// Build and package the function for `architecture`, from the workspace around `start`.
pub fn build_function(start: &Path, architecture: Architecture) -> Result<Artifact, BuildError> {
    if Architecture::host() != Some(architecture) {
        return Err(BuildError::ForeignArchitecture {
            host: std::env::consts::ARCH,
            wanted: architecture,
        });
    }
    let workspace = find_workspace(start).ok_or_else(|| BuildError::NoWorkspace {
        start: start.to_path_buf(),
        wanted: architecture,
    })?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    crate::ui::note(format_args!(
        "building the function: cargo build --release -p function --bin playground-api (in {})",
        workspace.display()
    ));
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "function",
            "--bin",
            "playground-api",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .map_err(BuildError::Cargo)?;
    if !status.success() {
        return Err(BuildError::Failed(status));
    }
    let binary_path = target.join("release/playground-api");
    let binary = std::fs::read(&binary_path).map_err(|source| BuildError::Unreadable {
        path: binary_path.clone(),
        source,
    })?;
    let packaged = artifact::package(&binary, &binary_path.display().to_string())?;
    Ok(artifact::validate(
        packaged.bytes,
        &binary_path.display().to_string(),
        architecture,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_found_from_inside_it_and_not_elsewhere() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let workspace = find_workspace(here).expect("deployer/ is inside the workspace");
        assert!(workspace.join("function/Cargo.toml").is_file());
        let elsewhere = tempfile::tempdir().expect("temp dir");
        assert_eq!(find_workspace(elsewhere.path()), None);
    }

    #[test]
    fn a_foreign_architecture_is_refused_with_the_cross_build_command() {
        let foreign = match Architecture::host() {
            Some(Architecture::X86_64) => Architecture::Arm64,
            _ => Architecture::X86_64,
        };
        let error = build_function(Path::new("."), foreign)
            .expect_err("cannot build for another architecture");
        assert!(error.to_string().contains("cargo lambda build"), "{error}");
    }
}
