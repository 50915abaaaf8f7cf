//! The optional Lambda layer: published, attached, republished, destroyed; a bad layer zip
//! refused.

use super::*;

impl Account {
    /// The versions of the dev layer (newest first) and the layers the dev
    /// function is configured with.
    async fn layer_state(&self) -> (Vec<(i64, String)>, Vec<String>) {
        let lambda = aws_sdk_lambda::Client::new(&self.config);
        let listed = lambda
            .list_layer_versions()
            .layer_name(&names("dev").layer)
            .send()
            .await
            .expect("layer versions");
        let versions = listed
            .layer_versions()
            .iter()
            .map(|version| {
                (
                    version.version(),
                    version.layer_version_arn().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let attached = self
            .function("dev")
            .await
            .configuration()
            .map(|configuration| {
                configuration
                    .layers()
                    .iter()
                    .filter_map(|layer| layer.arn().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (versions, attached)
    }
}

#[tokio::test]
async fn the_optional_layer_is_published_attached_republished_and_destroyed() {
    let account = Account::bootstrapped().await;
    let zip_v1 = layer_zip(b"one");
    std::fs::write(account.dir.path().join("layer.zip"), &zip_v1).expect("write layer");
    let with_layer = |command: &[&'static str]| -> Vec<&'static str> {
        let mut args = command.to_vec();
        args.extend([
            "--var",
            "use_layer=true",
            "--var",
            "layer_zip_path=layer.zip",
            "--artifact",
            "fn.zip",
        ]);
        args
    };

    let plan = || {
        account.deployer(&with_layer(&[
            "plan",
            "--env",
            "dev",
            "--detailed-exitcode",
        ]))
    };
    let apply = || account.deployer(&with_layer(&["apply", "--env", "dev", "--auto-approve"]));

    let output = apply();
    assert_exit(&output, 0);
    assert!(
        text(&output).contains("Apply complete: 13 added"),
        "{}",
        text(&output)
    );
    let (versions, attached) = account.layer_state().await;
    assert_eq!(versions.len(), 1, "one published version: {versions:?}");
    assert_eq!(
        attached,
        std::slice::from_ref(&versions[0].1),
        "the function uses it"
    );
    let published = aws_sdk_lambda::Client::new(&account.config)
        .get_layer_version()
        .layer_name(&names("dev").layer)
        .version_number(versions[0].0)
        .send()
        .await
        .expect("layer version");
    assert_eq!(
        published
            .content()
            .and_then(|content| content.code_sha256()),
        Some(deployer::package::code_sha256(&zip_v1).as_str())
    );
    assert_eq!(
        published
            .compatible_runtimes()
            .iter()
            .map(|runtime| runtime.as_str())
            .collect::<Vec<_>>(),
        ["provided.al2023"]
    );
    assert_eq!(
        published
            .compatible_architectures()
            .iter()
            .map(|architecture| architecture.as_str())
            .collect::<Vec<_>>(),
        ["x86_64"]
    );

    // Unchanged zip: nothing to publish, nothing to attach.
    emulator::clear_served_requests(account.emulator.endpoint());
    assert_exit(&plan(), 0);
    assert_exit(&apply(), 0);
    assert_eq!(account.mutating_requests(), Vec::<String>::new());

    // A new zip publishes the next version and moves the function to it.
    std::fs::write(account.dir.path().join("layer.zip"), layer_zip(b"two")).expect("write");
    let changes = plan();
    assert_exit(&changes, 2);
    let changes = text(&changes);
    assert!(changes.contains("~ lambda_layer.extra"), "{changes}");
    assert!(changes.contains("(known after apply)"), "{changes}");
    assert!(
        changes.contains("0 to add, 3 to change, 0 to destroy"),
        "{changes}"
    );
    assert_exit(&apply(), 0);
    let (versions, attached) = account.layer_state().await;
    assert_eq!(versions.len(), 2, "{versions:?}");
    let newest = versions
        .iter()
        .max_by_key(|(number, _)| *number)
        .expect("newest");
    assert_eq!(
        attached,
        std::slice::from_ref(&newest.1),
        "the function uses the newest"
    );
    assert_exit(&plan(), 0);

    // Turning the layer off detaches it; destroy removes every version.
    assert_exit(&account.apply_dev(), 0);
    let (versions, attached) = account.layer_state().await;
    assert!(attached.is_empty(), "detached: {attached:?}");
    let plan = account.deployer(&["plan", "--env", "dev", "--artifact", "fn.zip"]);
    assert_exit(&plan, 0);
    assert!(
        text(&plan).contains(&format!("{} still has 2 version(s)", names("dev").layer)),
        "the leftover layer is pointed out: {}",
        text(&plan)
    );
    assert_eq!(versions.len(), 2, "kept until destroy");
    let destroy = account.deployer(&["destroy", "--env", "dev", "--auto-approve"]);
    assert_exit(&destroy, 0);
    assert!(
        text(&destroy).contains("lambda_layer.extra"),
        "{}",
        text(&destroy)
    );
    let listed = aws_sdk_lambda::Client::new(&account.config)
        .list_layer_versions()
        .layer_name(&names("dev").layer)
        .send()
        .await
        .expect("layer versions");
    assert!(listed.layer_versions().is_empty(), "{listed:?}");
}

#[tokio::test]
async fn a_bad_layer_zip_is_refused_before_any_aws_call() {
    let account = Account::bootstrapped().await;
    std::fs::write(account.dir.path().join("text.zip"), b"just text").expect("write");
    emulator::clear_served_requests(account.emulator.endpoint());
    for (path, needle) in [("text.zip", "not a zip"), ("absent.zip", "does not exist")] {
        let layer = format!("layer_zip_path={path}");
        for command in [&["plan"][..], &["apply", "--auto-approve"][..]] {
            let mut args = command.to_vec();
            args.extend([
                "--env",
                "dev",
                "--artifact",
                "fn.zip",
                "--var",
                "use_layer=true",
                "--var",
                &layer,
            ]);
            let output = account.deployer(&args);
            assert_exit(&output, 1);
            assert!(text(&output).contains(needle), "{path}: {}", text(&output));
            assert!(
                text(&output).contains(path),
                "names the file: {}",
                text(&output)
            );
        }
    }
    assert!(
        emulator::served_requests(account.emulator.endpoint()).is_empty(),
        "no AWS call at all"
    );
}
