//! What is uploaded to Lambda, and the architecture it is for: the function's
//! zip ([`artifact`]: packed deterministically, or read and checked), the
//! function built from the workspace when `apply` gets no `--artifact`
//! ([`from_source`]), and the optional layer's zip ([`layer`]). Every check
//! here runs before any AWS call; the resources only upload a [`Code`].

pub mod artifact;
// Compiled into tests only; the integration tests include the same file.
#[cfg(test)]
#[allow(dead_code)] // the unit and the integration tests each use part of it
mod elf_fixture;
pub mod from_source;
pub mod layer;

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The Lambda runtime the function and its layer are for: a `bootstrap`
/// executable, no managed language runtime.
pub const RUNTIME: &str = "provided.al2023";

/// Lambda's limit on the unzipped size of a function and its layers (250 MB).
pub const MAX_UNZIPPED_BYTES: u64 = 262_144_000;

/// Lambda's limit for a zip uploaded directly (not through S3), in bytes.
pub const MAX_DIRECT_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;

/// Lambda CPU architecture: the `architecture` setting, what an artifact's
/// executable must be built for, and what the function and layer declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    X86_64,
    Arm64,
}

impl Architecture {
    /// The name Lambda uses: `x86_64` or `arm64`.
    pub fn lambda_name(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }

    /// The command that builds a correct artifact for this architecture.
    pub fn build_command(self) -> &'static str {
        match self {
            Self::X86_64 => "cargo lambda build --release --x86-64 --output-format zip",
            Self::Arm64 => "cargo lambda build --release --arm64 --output-format zip",
        }
    }

    /// The architecture this deployer runs on, when Lambda has it.
    pub fn host() -> Option<Self> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Self::X86_64),
            "aarch64" => Some(Self::Arm64),
            _ => None,
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.lambda_name())
    }
}

impl From<Architecture> for aws_sdk_lambda::types::Architecture {
    fn from(architecture: Architecture) -> Self {
        Self::from(architecture.lambda_name())
    }
}

/// A deployment package as the resources upload it: zip bytes and Lambda's
/// `CodeSha256` of them (`None`: no package given, so the code is not compared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub zip: Vec<u8>,
    pub sha256: Option<String>,
}

impl Code {
    /// No package: the code is not compared (a plan without an artifact, or a
    /// resource only observed for destroy).
    pub fn none() -> Self {
        Self {
            zip: Vec::new(),
            sha256: None,
        }
    }

    /// `zip`, with its `CodeSha256`.
    pub fn of(zip: Vec<u8>) -> Self {
        Self {
            sha256: Some(code_sha256(&zip)),
            zip,
        }
    }
}

/// Base64 of the SHA-256 of `bytes`: the format of Lambda's `CodeSha256`.
pub fn code_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_reads_and_writes_lambdas_names() {
        for architecture in [Architecture::X86_64, Architecture::Arm64] {
            let value = toml::Value::String(architecture.lambda_name().to_owned());
            assert_eq!(value.try_into::<Architecture>().ok(), Some(architecture));
            assert_eq!(
                serde_json::to_value(architecture).expect("serializes"),
                serde_json::json!(architecture.lambda_name())
            );
            assert_eq!(
                aws_sdk_lambda::types::Architecture::from(architecture).as_str(),
                architecture.lambda_name()
            );
        }
    }
}
