//! Building the function for Lambda when `apply` is given no `--artifact`:
//! `cargo build --release -p function --bin playground-api` in the workspace,
//! then a deterministic zip. Only for the machine's own architecture (a cross
//! build needs `cargo lambda`, whose command the error gives).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::artifact::{self, Artifact, Machine};
use crate::error::CliError;

/// The architecture this deployer runs on, when Lambda has it.
pub fn host_machine() -> Option<Machine> {
    match std::env::consts::ARCH {
        "x86_64" => Some(Machine::X86_64),
        "aarch64" => Some(Machine::Arm64),
        _ => None,
    }
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

/// Build and package the function for `machine`, from the workspace around `start`.
pub fn build_function(start: &Path, machine: Machine) -> Result<Artifact, CliError> {
    if host_machine() != Some(machine) {
        return Err(CliError::Usage(format!(
            "apply without --artifact builds the function for this machine ({}), but the configuration wants {machine}: \
             build it with `{}` and pass --artifact",
            std::env::consts::ARCH,
            machine.build_command()
        )));
    }
    let workspace = find_workspace(start).ok_or_else(|| {
        CliError::Usage(format!(
            "apply without --artifact builds the function from source, but no workspace with function/ was found at or above {}: \
             run it from the workspace, or build with `{}` and pass --artifact",
            start.display(),
            machine.build_command()
        ))
    })?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    eprintln!(
        "building the function: cargo build --release -p function --bin playground-api (in {})",
        workspace.display()
    );
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
        .map_err(|error| {
            CliError::Usage(format!("running cargo to build the function: {error}"))
        })?;
    if !status.success() {
        return Err(CliError::Usage(format!(
            "building the function failed ({status}); see cargo's output above"
        )));
    }
    let binary_path = target.join("release/playground-api");
    let binary = std::fs::read(&binary_path).map_err(|error| {
        CliError::Usage(format!(
            "reading the built function {}: {error}",
            binary_path.display()
        ))
    })?;
    let packaged = artifact::package(&binary, &binary_path.display().to_string())
        .map_err(|error| CliError::Usage(error.to_string()))?;
    artifact::validate(packaged.bytes, &binary_path.display().to_string(), machine)
        .map_err(|error| CliError::Usage(error.to_string()))
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
        let foreign = match host_machine() {
            Some(Machine::X86_64) => Machine::Arm64,
            _ => Machine::X86_64,
        };
        let error = build_function(Path::new("."), foreign)
            .expect_err("cannot build for another architecture");
        assert!(error.to_string().contains("cargo lambda build"), "{error}");
    }
}
