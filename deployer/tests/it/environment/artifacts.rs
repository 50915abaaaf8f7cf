//! The function's artifact: bad zips refused before any AWS call, and `apply` without
//! `--artifact` building the function.

use super::*;

#[tokio::test]
async fn bad_artifacts_are_refused_before_any_aws_call() {
    let account = Account::bootstrapped().await;
    account.write_artifact("arm.zip", &executable(AARCH64, b"arm"));
    std::fs::write(account.dir.path().join("not.zip"), b"just text").expect("write");
    let mut empty = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    empty
        .start_file("README", zip::write::SimpleFileOptions::default())
        .expect("entry");
    std::io::Write::write_all(&mut empty, b"no bootstrap here").expect("write");
    std::fs::write(
        account.dir.path().join("nobootstrap.zip"),
        empty.finish().expect("zip").into_inner(),
    )
    .expect("write");

    emulator::clear_served_requests(account.emulator.endpoint());
    for (artifact, needle) in [
        ("arm.zip", "arm64"),
        ("not.zip", "zip"),
        ("nobootstrap.zip", "README"),
        ("missing.zip", "missing.zip"),
    ] {
        let output = account.deployer(&[
            "apply",
            "--env",
            "dev",
            "--auto-approve",
            "--artifact",
            artifact,
        ]);
        assert_exit(&output, 1);
        assert!(
            text(&output).contains(needle),
            "{artifact}: {}",
            text(&output)
        );
        assert!(
            text(&output).contains("cargo lambda build"),
            "says how to build one: {}",
            text(&output)
        );
    }
    let output = account.deployer(&["apply", "--env", "dev", "--auto-approve"]);
    assert_exit(&output, 1);
    assert!(text(&output).contains("--artifact"), "{}", text(&output));
    assert!(
        emulator::served_requests(account.emulator.endpoint()).is_empty(),
        "no AWS call at all"
    );
}

/// A workspace shaped like this one (`function/` with the `playground-api`
/// binary) whose function is a few lines, so that the real build path of
/// `apply` without `--artifact` runs in seconds.
fn tiny_workspace(dir: &std::path::Path) {
    let function = dir.join("function/src");
    std::fs::create_dir_all(&function).expect("create function/src");
    std::fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"3\"\nmembers = [\"function\"]\n",
    )
    .expect("workspace manifest");
    std::fs::write(
        dir.join("function/Cargo.toml"),
        "[package]\nname = \"function\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [[bin]]\nname = \"playground-api\"\npath = \"src/main.rs\"\n",
    )
    .expect("function manifest");
    std::fs::write(
        function.join("main.rs"),
        "fn main() { println!(\"playground\"); }\n",
    )
    .expect("main.rs");
    let lockfile = std::process::Command::new(env!("CARGO"))
        .current_dir(dir)
        .args(["generate-lockfile", "--offline"])
        .output()
        .expect("run cargo generate-lockfile");
    assert!(lockfile.status.success(), "{}", text(&lockfile));
}

#[tokio::test]
async fn apply_without_an_artifact_builds_the_function_and_an_unchanged_build_changes_nothing() {
    let account = Account::bootstrapped().await;
    let workspace = account.dir.path();
    tiny_workspace(workspace);
    // The nested build gets its own target directory: the one `cargo test`
    // runs from stays locked while the tests run.
    let target = tempfile::tempdir().expect("target dir");
    let apply = || {
        support::run_deployer_with(
            workspace,
            account.emulator.endpoint(),
            &["apply", "--env", "dev", "--auto-approve"],
            &[("CARGO_TARGET_DIR", target.path())],
        )
    };

    let output = apply();
    assert_exit(&output, 0);
    assert!(
        text(&output).contains("building the function: cargo build --release"),
        "{}",
        text(&output)
    );
    let binary = std::fs::read(target.path().join("release/playground-api")).expect("built");
    let expected = deployer::package::artifact::package(&binary, "built").expect("package");
    let deployed = account.function("dev").await;
    assert_eq!(
        deployed
            .configuration()
            .and_then(|configuration| configuration.code_sha256()),
        Some(expected.code_sha256.as_str()),
        "the deployed code is the build, packed deterministically"
    );

    // A second build of unchanged sources packs the same zip: nothing to do.
    emulator::clear_served_requests(account.emulator.endpoint());
    let output = apply();
    assert_exit(&output, 0);
    assert!(text(&output).contains("No changes."), "{}", text(&output));
    assert_eq!(account.mutating_requests(), Vec::<String>::new());
}
