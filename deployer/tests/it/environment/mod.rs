//! `deployer plan|apply|destroy --env` against a private emulator per test:
//! every resource read back through the AWS API, reruns that change nothing,
//! in-place changes, side-by-side environments, and refused artifacts.
//!
//! One module per topic: `cargo test -p deployer --test it environment::<topic>::`.

mod apply;
mod artifacts;
mod destroy;
mod drift;
mod indexes;
mod layer;
mod leases;
mod locking;
mod logs;
mod monitoring;
pub(crate) mod permissions;
mod releases;
mod saved_plan;
mod sessions;
mod sign_in;
mod takeover;

use std::process::Output;

use crate::support::{
    self, AARCH64, Account, RankedUser, X86_64, assert_exit, assert_ranked_exactly, executable,
    names, settings, text,
};

use serde_json::Value;

impl Account {
    async fn function(
        &self,
        environment: &str,
    ) -> aws_sdk_lambda::operation::get_function::GetFunctionOutput {
        aws_sdk_lambda::Client::new(&self.config)
            .get_function()
            .function_name(names(environment).function)
            .send()
            .await
            .expect("function")
    }

    async fn api_id(&self, environment: &str) -> Option<String> {
        self.api_named(&names(environment).http_api).await
    }
}

/// The operations a deployer run logged with `-v`, as `(service, operation)`.
pub(crate) fn logged_calls(output: &Output) -> Vec<(String, String)> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter_map(|line| line.strip_prefix(deployer::aws::CALL_LOG_PREFIX))
        .filter_map(|call| call.split_once('.'))
        .map(|(service, operation)| (service.to_owned(), operation.to_owned()))
        .collect()
}

/// A layer zip holding one file with `contents`.
fn layer_zip(contents: &[u8]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file(
            "extensions/marker",
            zip::write::SimpleFileOptions::default(),
        )
        .expect("entry");
    std::io::Write::write_all(&mut writer, contents).expect("write");
    writer.finish().expect("zip").into_inner()
}

/// The settings of sign-in by the environment's own user pool.
const SIGN_IN_BY_OWN_POOL: [&str; 4] = [
    "--var",
    "auth_create_user_pool=true",
    "--var",
    "auth_callback_urls=https://app.example/cb",
];
