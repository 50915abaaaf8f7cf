//! The Lambda artifact: a zip holding one `bootstrap` executable for the
//! `provided.al2023` runtime.
//!
//! [`package`] zips a compiled executable deterministically, so the same
//! executable always gives the same `CodeSha256` and an unchanged function is
//! not redeployed. [`load`] and [`validate`] check a zip before it is uploaded:
//! that it holds a root `bootstrap` that is a 64-bit little-endian ELF
//! executable for the function's architecture, executable by its owner, and
//! needing no glibc newer than the 2.34 that `provided.al2023` ships. Every
//! error says what is wrong and how to build a correct artifact.

use std::fmt;
use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipArchive, ZipWriter};

use super::{Architecture, Code, MAX_UNZIPPED_BYTES, code_sha256};

/// The entry Lambda's `provided.al2023` runtime runs: `bootstrap`, at the root.
pub const BOOTSTRAP_ENTRY_NAME: &str = "bootstrap";

/// The unix mode [`package`] gives `bootstrap`: rwxr-xr-x.
pub const BOOTSTRAP_PERMISSIONS: u32 = 0o755;

/// The newest glibc that `provided.al2023` ships.
pub const NEWEST_SUPPORTED_GLIBC: GlibcVersion = GlibcVersion {
    major: 2,
    minor: 34,
    patch: 0,
};

/// Deflate level for [`package`]: fixed, so the output does not follow the zip
/// crate's default.
const DEFLATE_LEVEL: i64 = 9;

/// How many entry names an error lists when `bootstrap` is missing.
const MAX_LISTED_ENTRIES: usize = 10;

/// The unix mode bit "executable by owner".
const OWNER_EXECUTE_BIT: u32 = 0o100;

const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const ELF64_HEADER_LEN: usize = 64;
const EI_CLASS_OFFSET: usize = 4;
const EI_DATA_OFFSET: usize = 5;
const E_TYPE_OFFSET: usize = 16;
const E_MACHINE_OFFSET: usize = 18;
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ELFDATA2MSB: u8 = 2;
const ET_REL: u16 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const ET_CORE: u16 = 4;
const EM_386: u16 = 3;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;

/// The prefix of a glibc 2.x version name, as a binary dynamically linked
/// against glibc names it in its version needs.
const GLIBC_2_PREFIX: &str = "GLIBC_2.";

impl Architecture {
    /// The ELF `e_machine` value of an executable for this architecture.
    pub fn elf_machine(self) -> u16 {
        match self {
            Self::X86_64 => EM_X86_64,
            Self::Arm64 => EM_AARCH64,
        }
    }
}

/// A glibc version, as named by a `GLIBC_2.N` or `GLIBC_2.N.M` symbol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlibcVersion {
    pub major: u32,
    pub minor: u32,
    /// 0 when the version has no third component.
    pub patch: u32,
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.patch == 0 {
            write!(formatter, "{}.{}", self.major, self.minor)
        } else {
            write!(formatter, "{}.{}.{}", self.major, self.minor, self.patch)
        }
    }
}

/// A Lambda deployment package, ready to upload.
#[derive(Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The zip file's bytes.
    pub bytes: Vec<u8>,
    /// Base64 of the SHA-256 of [`Artifact::bytes`]: exactly Lambda's `CodeSha256`.
    pub code_sha256: String,
    /// Where the artifact came from (a path or a description), for messages.
    pub source: String,
}

impl Artifact {
    fn from_zip_bytes(bytes: Vec<u8>, source: &str) -> Self {
        let code_sha256 = code_sha256(&bytes);
        Self {
            bytes,
            code_sha256,
            source: source.to_owned(),
        }
    }
}

/// What the function resource uploads.
impl From<Artifact> for Code {
    fn from(artifact: Artifact) -> Self {
        Self {
            zip: artifact.bytes,
            sha256: Some(artifact.code_sha256),
        }
    }
}

/// Shows the size instead of every byte of the zip.
impl fmt::Debug for Artifact {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Artifact")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("code_sha256", &self.code_sha256)
            .field("source", &self.source)
            .finish()
    }
}

/// Why an artifact cannot be built, read or deployed. Each message names the
/// artifact, says what is wrong and how to build a correct one.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(
        "the Lambda artifact {path} does not exist; build it with `{}` \
         (it writes target/lambda/<binary>/bootstrap.zip) and pass that path",
        .expected.build_command()
    )]
    Missing {
        path: PathBuf,
        expected: Architecture,
    },

    #[error(
        "cannot read the Lambda artifact {path}: {source}; build it again with `{}`",
        .expected.build_command()
    )]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
        expected: Architecture,
    },

    #[error(
        "{artifact} is not a zip ({reason}); Lambda needs a zip holding `bootstrap`: \
         build it with `{}`",
        .expected.build_command()
    )]
    NotAZip {
        artifact: String,
        reason: String,
        expected: Architecture,
    },

    #[error(
        "{artifact} has no `bootstrap` at its root (it contains {entries}); the provided.al2023 \
         runtime runs /var/task/bootstrap: build the zip with `{}`",
        .expected.build_command()
    )]
    MissingBootstrap {
        artifact: String,
        /// Up to 10 entry names, or "no entries".
        entries: String,
        expected: Architecture,
    },

    #[error(
        "cannot decompress `bootstrap` in {artifact} ({reason}); build the zip again with `{}`",
        .expected.build_command()
    )]
    BootstrapUnreadable {
        artifact: String,
        reason: String,
        expected: Architecture,
    },

    #[error(
        "`bootstrap` in {artifact} is larger than Lambda's {limit_bytes}-byte unzipped limit; \
         build a release executable with `{}`",
        .expected.build_command()
    )]
    BootstrapTooLarge {
        artifact: String,
        limit_bytes: u64,
        expected: Architecture,
    },

    #[error(
        "`bootstrap` in {artifact} has unix mode {mode:#o}, not executable by its owner, so \
         Lambda cannot start it; build the zip with `{}` (or `chmod 755 bootstrap` before zipping)",
        .expected.build_command()
    )]
    BootstrapNotExecutable {
        artifact: String,
        mode: u32,
        expected: Architecture,
    },

    #[error(
        "`bootstrap` in {artifact} is not an ELF executable ({found}); the provided.al2023 \
         runtime needs a compiled Linux executable: build it with `{}`",
        .expected.build_command()
    )]
    NotElf {
        artifact: String,
        /// What the file looks like instead.
        found: String,
        expected: Architecture,
    },

    #[error(
        "`bootstrap` in {artifact} is a {found} ELF file, but Lambda runs 64-bit executables; \
         build it with `{}`",
        .expected.build_command()
    )]
    Not64Bit {
        artifact: String,
        found: String,
        expected: Architecture,
    },

    #[error(
        "`bootstrap` in {artifact} is a {found} ELF file, but Lambda's {expected} runs \
         little-endian executables; build it with `{}`",
        .expected.build_command()
    )]
    NotLittleEndian {
        artifact: String,
        found: String,
        expected: Architecture,
    },

    #[error(
        "`bootstrap` in {artifact} is an ELF {found}, not an executable; build the function's \
         binary with `{}`",
        .expected.build_command()
    )]
    NotAnExecutable {
        artifact: String,
        found: String,
        expected: Architecture,
    },

    #[error(
        "`bootstrap` in {artifact} is built for {found}, but the function runs on {expected}; \
         build it with `{}`",
        .expected.build_command()
    )]
    WrongArchitecture {
        artifact: String,
        found: String,
        expected: Architecture,
    },

    #[error(
        "`bootstrap` in {artifact} needs glibc {found}, but the provided.al2023 runtime ships \
         glibc {newest}; build it against glibc {newest} or older (cargo lambda links against an \
         older glibc) with `{}`, or build a static musl executable",
        .expected.build_command(),
        newest = NEWEST_SUPPORTED_GLIBC
    )]
    GlibcTooNew {
        artifact: String,
        found: GlibcVersion,
        expected: Architecture,
    },

    #[error(
        "cannot write the Lambda zip for {artifact}: {reason}; build the zip with \
         `cargo lambda build --release --arm64 --output-format zip` (or `--x86-64`) instead"
    )]
    PackagingFailed { artifact: String, reason: String },
}

/// Pack a compiled `bootstrap` executable into a deterministic zip: a single
/// entry named `bootstrap` at the root, unix mode 0o755 (regular file), a
/// fixed timestamp (1980-01-01 00:00:00), deflate compression. The same input
/// bytes always give byte-identical zip output (so the same `CodeSha256`),
/// with a given version of the zip crate.
///
/// `source` names the executable in messages. The executable itself is not
/// checked here: [`validate`] checks the result.
pub fn package(executable: &[u8], source: &str) -> Result<Artifact, ArtifactError> {
    let bytes =
        write_bootstrap_zip(executable).map_err(|error| ArtifactError::PackagingFailed {
            artifact: source.to_owned(),
            reason: error.to_string(),
        })?;
    Ok(Artifact::from_zip_bytes(bytes, source))
}

/// Read a zip file from disk and validate it (see [`validate`]); the path is
/// the artifact's source in messages.
pub fn load(path: &Path, architecture: Architecture) -> Result<Artifact, ArtifactError> {
    let bytes = std::fs::read(path).map_err(|error| read_error(path, error, architecture))?;
    validate(bytes, &path.display().to_string(), architecture)
}

/// Validate zip bytes before they are deployed to a `provided.al2023` function
/// on `architecture`:
///
/// - they must be a zip;
/// - it must contain an entry named exactly `bootstrap` at the root;
/// - when the zip records a unix mode for it, it must be executable by its owner;
/// - it must be a 64-bit little-endian ELF executable (`ET_EXEC` or `ET_DYN`)
///   whose `e_machine` matches `architecture`;
/// - if it references glibc symbol versions (`GLIBC_2.N`), none may be newer
///   than [`NEWEST_SUPPORTED_GLIBC`]. A static executable references none and
///   is accepted.
pub fn validate(
    bytes: Vec<u8>,
    source: &str,
    architecture: Architecture,
) -> Result<Artifact, ArtifactError> {
    let checking = Checking {
        artifact: source,
        expected: architecture,
    };
    let bootstrap = read_bootstrap_entry(&bytes, &checking, MAX_UNZIPPED_BYTES)?;
    check_owner_can_execute(bootstrap.recorded_mode, &checking)?;
    check_elf_executable(&bootstrap.contents, &checking)?;
    check_glibc_requirement(&bootstrap.contents, &checking)?;
    Ok(Artifact::from_zip_bytes(bytes, source))
}

/// What a validation error names: the artifact and the architecture expected.
struct Checking<'a> {
    artifact: &'a str,
    expected: Architecture,
}

impl Checking<'_> {
    fn artifact(&self) -> String {
        self.artifact.to_owned()
    }
}

/// The `bootstrap` entry of a zip: its decompressed bytes and the unix mode
/// the zip records for it, if any.
struct BootstrapEntry {
    contents: Vec<u8>,
    recorded_mode: Option<u32>,
}

fn bootstrap_file_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(DEFLATE_LEVEL))
        .last_modified_time(DateTime::default())
        .system(System::Unix)
        .unix_permissions(BOOTSTRAP_PERMISSIONS)
        .large_file(false)
}

fn write_bootstrap_zip(executable: &[u8]) -> zip::result::ZipResult<Vec<u8>> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    writer.start_file(BOOTSTRAP_ENTRY_NAME, bootstrap_file_options())?;
    writer.write_all(executable)?;
    Ok(writer.finish()?.into_inner())
}

fn read_error(path: &Path, error: std::io::Error, architecture: Architecture) -> ArtifactError {
    if error.kind() == std::io::ErrorKind::NotFound {
        ArtifactError::Missing {
            path: path.to_path_buf(),
            expected: architecture,
        }
    } else {
        ArtifactError::Unreadable {
            path: path.to_path_buf(),
            source: error,
            expected: architecture,
        }
    }
}

fn read_bootstrap_entry(
    zip_bytes: &[u8],
    checking: &Checking<'_>,
    limit_bytes: u64,
) -> Result<BootstrapEntry, ArtifactError> {
    let mut archive =
        ZipArchive::new(Cursor::new(zip_bytes)).map_err(|error| ArtifactError::NotAZip {
            artifact: checking.artifact(),
            reason: error.to_string(),
            expected: checking.expected,
        })?;
    let Some(index) = archive.index_for_name_raw(BOOTSTRAP_ENTRY_NAME.as_bytes()) else {
        return Err(ArtifactError::MissingBootstrap {
            artifact: checking.artifact(),
            entries: list_entry_names(&archive),
            expected: checking.expected,
        });
    };
    let unreadable = |error: &dyn fmt::Display| ArtifactError::BootstrapUnreadable {
        artifact: checking.artifact(),
        reason: error.to_string(),
        expected: checking.expected,
    };
    let too_large = || ArtifactError::BootstrapTooLarge {
        artifact: checking.artifact(),
        limit_bytes,
        expected: checking.expected,
    };
    let entry = archive
        .by_index(index)
        .map_err(|error| unreadable(&error))?;
    if entry.size() > limit_bytes {
        return Err(too_large());
    }
    let recorded_mode = recorded_unix_mode(entry.external_attributes());
    let mut contents = Vec::new();
    entry
        .take(limit_bytes.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(|error| unreadable(&error))?;
    if u64::try_from(contents.len()).map_or(true, |length| length > limit_bytes) {
        return Err(too_large());
    }
    Ok(BootstrapEntry {
        contents,
        recorded_mode,
    })
}

/// The unix mode in the high 16 bits of a zip entry's external attributes,
/// when the zip records one (zips made on Windows usually do not).
fn recorded_unix_mode(external_attributes: u32) -> Option<u32> {
    let mode = external_attributes >> 16;
    (mode != 0).then_some(mode)
}

/// Up to [`MAX_LISTED_ENTRIES`] entry names, quoted, and how many more there are.
fn list_entry_names<R: Read + std::io::Seek>(archive: &ZipArchive<R>) -> String {
    let total = archive.len();
    if total == 0 {
        return "no entries".to_owned();
    }
    let listed: Vec<String> = archive
        .file_names_raw()
        .take(MAX_LISTED_ENTRIES)
        .map(|name| format!("`{}`", String::from_utf8_lossy(name)))
        .collect();
    let mut description = listed.join(", ");
    if total > listed.len() {
        description.push_str(&format!(" and {} more", total - listed.len()));
    }
    description
}

fn check_owner_can_execute(
    recorded_mode: Option<u32>,
    checking: &Checking<'_>,
) -> Result<(), ArtifactError> {
    match recorded_mode {
        Some(mode) if mode & OWNER_EXECUTE_BIT == 0 => Err(ArtifactError::BootstrapNotExecutable {
            artifact: checking.artifact(),
            mode,
            expected: checking.expected,
        }),
        _ => Ok(()),
    }
}

fn check_elf_executable(contents: &[u8], checking: &Checking<'_>) -> Result<(), ArtifactError> {
    if !contents.starts_with(&ELF_MAGIC) {
        return Err(ArtifactError::NotElf {
            artifact: checking.artifact(),
            found: describe_non_elf(contents),
            expected: checking.expected,
        });
    }
    check_elf_class(contents, checking)?;
    check_elf_byte_order(contents, checking)?;
    if contents.len() < ELF64_HEADER_LEN {
        return Err(ArtifactError::NotElf {
            artifact: checking.artifact(),
            found: format!(
                "a truncated ELF header of {} bytes instead of {ELF64_HEADER_LEN}",
                contents.len()
            ),
            expected: checking.expected,
        });
    }
    check_elf_type(contents, checking)?;
    check_elf_machine(contents, checking)
}

fn check_elf_class(contents: &[u8], checking: &Checking<'_>) -> Result<(), ArtifactError> {
    match contents.get(EI_CLASS_OFFSET).copied() {
        Some(ELFCLASS64) => Ok(()),
        class => Err(ArtifactError::Not64Bit {
            artifact: checking.artifact(),
            found: match class {
                Some(ELFCLASS32) => "32-bit".to_owned(),
                Some(other) => format!("class {other} (EI_CLASS)"),
                None => "truncated".to_owned(),
            },
            expected: checking.expected,
        }),
    }
}

fn check_elf_byte_order(contents: &[u8], checking: &Checking<'_>) -> Result<(), ArtifactError> {
    match contents.get(EI_DATA_OFFSET).copied() {
        Some(ELFDATA2LSB) => Ok(()),
        data => Err(ArtifactError::NotLittleEndian {
            artifact: checking.artifact(),
            found: match data {
                Some(ELFDATA2MSB) => "big-endian".to_owned(),
                Some(other) => format!("byte order {other} (EI_DATA)"),
                None => "truncated".to_owned(),
            },
            expected: checking.expected,
        }),
    }
}

fn check_elf_type(contents: &[u8], checking: &Checking<'_>) -> Result<(), ArtifactError> {
    match read_u16_le(contents, E_TYPE_OFFSET) {
        Some(ET_EXEC | ET_DYN) => Ok(()),
        elf_type => Err(ArtifactError::NotAnExecutable {
            artifact: checking.artifact(),
            found: match elf_type {
                Some(ET_REL) => "relocatable object (ET_REL)".to_owned(),
                Some(ET_CORE) => "core dump (ET_CORE)".to_owned(),
                Some(other) => format!("file of type {other} (e_type)"),
                None => "truncated file".to_owned(),
            },
            expected: checking.expected,
        }),
    }
}

fn check_elf_machine(contents: &[u8], checking: &Checking<'_>) -> Result<(), ArtifactError> {
    let elf_machine = read_u16_le(contents, E_MACHINE_OFFSET);
    if elf_machine == Some(checking.expected.elf_machine()) {
        return Ok(());
    }
    Err(ArtifactError::WrongArchitecture {
        artifact: checking.artifact(),
        found: elf_machine.map_or_else(|| "an unknown machine".to_owned(), describe_elf_machine),
        expected: checking.expected,
    })
}

fn read_u16_le(contents: &[u8], offset: usize) -> Option<u16> {
    let low = *contents.get(offset)?;
    let high = *contents.get(offset.checked_add(1)?)?;
    Some(u16::from_le_bytes([low, high]))
}

fn describe_elf_machine(elf_machine: u16) -> String {
    match elf_machine {
        EM_X86_64 => Architecture::X86_64.lambda_name().to_owned(),
        EM_AARCH64 => Architecture::Arm64.lambda_name().to_owned(),
        EM_386 => "32-bit x86 (i386)".to_owned(),
        EM_ARM => "32-bit ARM".to_owned(),
        EM_RISCV => "RISC-V".to_owned(),
        other => format!("ELF machine {other}"),
    }
}

/// What a file that is not ELF looks like: empty, a script, or its first bytes.
fn describe_non_elf(contents: &[u8]) -> String {
    if contents.is_empty() {
        return "it is empty".to_owned();
    }
    if contents.starts_with(b"#!") {
        let first_line = contents
            .split(|byte| *byte == b'\n')
            .next()
            .unwrap_or_default();
        let shown = first_line.get(..60).unwrap_or(first_line);
        return format!(
            "it is a script starting with `{}`",
            String::from_utf8_lossy(shown)
        );
    }
    let first_bytes: Vec<String> = contents
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("it starts with bytes {}", first_bytes.join(" "))
}

fn check_glibc_requirement(contents: &[u8], checking: &Checking<'_>) -> Result<(), ArtifactError> {
    let needs = glibc_version_needs(contents).map_err(|error| ArtifactError::NotAnExecutable {
        artifact: checking.artifact(),
        found: format!("file whose version needs cannot be read ({error})"),
        expected: checking.expected,
    })?;
    match highest_glibc_requirement(needs.iter().map(String::as_str)) {
        Some(found) if found > NEWEST_SUPPORTED_GLIBC => Err(ArtifactError::GlibcTooNew {
            artifact: checking.artifact(),
            found,
            expected: checking.expected,
        }),
        _ => Ok(()),
    }
}

/// The version a binary linked with `-z pack-relative-relocs` against glibc
/// 2.36 or newer needs, though it is no `GLIBC_2.N` version.
const GLIBC_ABI_DT_RELR: &str = "GLIBC_ABI_DT_RELR";

/// The glibc that introduced [`GLIBC_ABI_DT_RELR`].
const DT_RELR_GLIBC: GlibcVersion = GlibcVersion {
    major: 2,
    minor: 36,
    patch: 0,
};

/// Every version the binary's `.gnu.version_r` section needs, of every library
/// (`GLIBC_2.34`, `GLIBC_ABI_DT_RELR`, `GCC_3.0`, ...), read with the `object`
/// crate; none for a binary without that section (a static executable). The
/// header checks above stay hand-written: each field has its own message.
fn glibc_version_needs(binary: &[u8]) -> object::Result<Vec<String>> {
    use object::read::elf::FileHeader;
    let header = object::elf::FileHeader64::<object::LittleEndian>::parse(binary)?;
    let endian = header.endian()?;
    let sections = header.sections(endian, binary)?;
    let Some((mut needs, strings_index)) = sections.gnu_verneed(endian, binary)? else {
        return Ok(Vec::new());
    };
    let strings = sections.strings(endian, binary, strings_index)?;
    let mut names = Vec::new();
    while let Some((_, mut versions)) = needs.next()? {
        while let Some(version) = versions.next()? {
            names.push(String::from_utf8_lossy(version.name(endian, strings)?).into_owned());
        }
    }
    Ok(names)
}

/// The highest glibc that `needs` (version names) require: each `GLIBC_2.N[.M]`
/// is that version, `GLIBC_ABI_DT_RELR` is 2.36, and other names (another
/// library's, `GLIBC_PRIVATE`) require none. `None` when nothing needs glibc.
fn highest_glibc_requirement<'a>(needs: impl IntoIterator<Item = &'a str>) -> Option<GlibcVersion> {
    needs
        .into_iter()
        .filter_map(|name| {
            if name == GLIBC_ABI_DT_RELR {
                return Some(DT_RELR_GLIBC);
            }
            parse_glibc_2_version(name.strip_prefix(GLIBC_2_PREFIX)?)
        })
        .max()
}

/// Parse the `N` or `N.M` that follows `GLIBC_2.`; `None` when it is not that.
fn parse_glibc_2_version(after_prefix: &str) -> Option<GlibcVersion> {
    let mut components = after_prefix.split('.');
    let minor = components.next()?.parse().ok()?;
    let patch = match components.next() {
        Some(patch) => patch.parse().ok()?,
        None => 0,
    };
    if components.next().is_some() {
        return None;
    }
    Some(GlibcVersion {
        major: 2,
        minor,
        patch,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::package::elf_fixture::{self as fixture, Elf};

    /// A correct executable for `architecture` (the one fake-ELF builder the
    /// integration tests share, `package/elf_fixture.rs`).
    fn elf_for(architecture: Architecture) -> Elf {
        Elf::executable(architecture.elf_machine())
    }

    fn packaged(executable: &[u8]) -> Vec<u8> {
        package(executable, "test executable")
            .expect("packaging succeeds")
            .bytes
    }

    /// A zip with the given entries, each `(name, contents, external attributes)`.
    fn zip_with_entries(entries: &[(&str, &[u8], Option<u32>)]) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, contents, external_attributes) in entries {
            let mut options = SimpleFileOptions::default()
                .compression_method(CompressionMethod::Deflated)
                .system(System::Unix);
            if let Some(attributes) = external_attributes {
                options = options.external_attributes(*attributes);
            }
            writer.start_file(*name, options).expect("start entry");
            writer.write_all(contents).expect("write entry");
        }
        writer.finish().expect("finish zip").into_inner()
    }

    fn rejection(bytes: Vec<u8>, architecture: Architecture) -> ArtifactError {
        validate(bytes, "test.zip", architecture).expect_err("the artifact is refused")
    }

    #[test]
    fn package_is_deterministic() {
        let executable = elf_for(Architecture::Arm64)
            .tail(b"some code GLIBC_2.28\0")
            .build();
        let first = package(&executable, "first").expect("first packaging");
        let second = package(&executable, "second").expect("second packaging");
        assert_eq!(first.bytes, second.bytes);
        assert_eq!(first.code_sha256, second.code_sha256);
        let other = package(&elf_for(Architecture::X86_64).build(), "other").expect("other");
        assert_ne!(first.code_sha256, other.code_sha256);
    }

    #[test]
    fn package_writes_one_executable_bootstrap_entry() {
        let executable = elf_for(Architecture::X86_64).tail(&[0xAB; 4096]).build();
        let bytes = packaged(&executable);
        let mut archive = ZipArchive::new(Cursor::new(bytes)).expect("a zip");
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).expect("first entry");
        assert_eq!(entry.name_raw(), b"bootstrap");
        assert_eq!(entry.unix_mode(), Some(0o100_755));
        assert_eq!(entry.compression(), CompressionMethod::Deflated);
        assert!(entry.compressed_size() < entry.size());
        let modified = entry.last_modified().expect("a timestamp");
        assert_eq!(
            (
                modified.year(),
                modified.month(),
                modified.day(),
                modified.hour(),
                modified.minute(),
                modified.second()
            ),
            (1980, 1, 1, 0, 0, 0)
        );
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).expect("entry contents");
        assert_eq!(contents, executable);
    }

    #[test]
    fn code_sha256_is_base64_of_the_zip_sha256() {
        let artifact = package(&elf_for(Architecture::Arm64).build(), "exe").expect("package");
        let digest = Sha256::digest(&artifact.bytes);
        let expected = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(artifact.code_sha256, expected);
        assert_eq!(artifact.code_sha256.len(), 44);
        // The FIPS 180-2 test vector for "abc".
        assert_eq!(
            code_sha256(b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    #[test]
    fn validate_accepts_correct_artifacts_for_both_architectures() {
        for architecture in [Architecture::X86_64, Architecture::Arm64] {
            let bytes = packaged(
                &elf_for(architecture)
                    .tail(b"GLIBC_2.17\0GLIBC_2.28\0")
                    .build(),
            );
            let artifact = validate(bytes.clone(), "build.zip", architecture).expect("accepted");
            assert_eq!(artifact.bytes, bytes);
            assert_eq!(artifact.code_sha256, code_sha256(&bytes));
            assert_eq!(artifact.source, "build.zip");
        }
    }

    #[test]
    fn validate_accepts_et_exec() {
        let executable = Elf::executable(EM_X86_64)
            .elf_type(fixture::ET_EXEC)
            .build();
        assert!(validate(packaged(&executable), "exec.zip", Architecture::X86_64).is_ok());
    }

    #[test]
    fn validate_refuses_the_wrong_architecture_naming_both() {
        let bytes = packaged(&elf_for(Architecture::X86_64).build());
        let error = rejection(bytes, Architecture::Arm64);
        assert!(
            matches!(error, ArtifactError::WrongArchitecture { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("built for x86_64"), "{message}");
        assert!(message.contains("runs on arm64"), "{message}");
        assert!(message.contains("--arm64 --output-format zip"), "{message}");

        let bytes = packaged(&elf_for(Architecture::Arm64).build());
        let message = rejection(bytes, Architecture::X86_64).to_string();
        assert!(message.contains("built for arm64"), "{message}");
        assert!(message.contains("runs on x86_64"), "{message}");
        assert!(
            message.contains("--x86-64 --output-format zip"),
            "{message}"
        );
    }

    #[test]
    fn validate_names_an_unexpected_machine() {
        let executable = Elf::executable(EM_RISCV).build();
        let message = rejection(packaged(&executable), Architecture::Arm64).to_string();
        assert!(message.contains("built for RISC-V"), "{message}");
    }

    #[test]
    fn validate_refuses_a_non_zip() {
        let executable = elf_for(Architecture::Arm64).build();
        let error = rejection(executable, Architecture::Arm64);
        assert!(matches!(error, ArtifactError::NotAZip { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("test.zip is not a zip"), "{message}");
        assert!(message.contains("cargo lambda build"), "{message}");
    }

    #[test]
    fn validate_refuses_a_zip_without_bootstrap_listing_its_entries() {
        let bytes = zip_with_entries(&[
            ("function", b"code".as_slice(), None),
            ("lib/bootstrap", b"code".as_slice(), None),
        ]);
        let error = rejection(bytes, Architecture::X86_64);
        assert!(
            matches!(error, ArtifactError::MissingBootstrap { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("`function`, `lib/bootstrap`"), "{message}");
        assert!(message.contains("--x86-64"), "{message}");
    }

    #[test]
    fn a_missing_bootstrap_lists_at_most_ten_entries() {
        let names: Vec<String> = (0..12).map(|number| format!("file{number:02}")).collect();
        let entries: Vec<(&str, &[u8], Option<u32>)> = names
            .iter()
            .map(|name| (name.as_str(), b"x".as_slice(), None))
            .collect();
        let message = rejection(zip_with_entries(&entries), Architecture::Arm64).to_string();
        assert!(message.contains("`file09`"), "{message}");
        assert!(!message.contains("`file10`"), "{message}");
        assert!(message.contains("and 2 more"), "{message}");
    }

    #[test]
    fn an_empty_zip_says_it_has_no_entries() {
        let message = rejection(zip_with_entries(&[]), Architecture::Arm64).to_string();
        assert!(message.contains("no entries"), "{message}");
    }

    #[test]
    fn validate_refuses_a_shell_script_bootstrap() {
        let script = b"#!/bin/sh\nexec ./function\n";
        let error = rejection(packaged(script), Architecture::X86_64);
        assert!(matches!(error, ArtifactError::NotElf { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("not an ELF executable"), "{message}");
        assert!(message.contains("#!/bin/sh"), "{message}");
    }

    #[test]
    fn validate_refuses_an_empty_or_truncated_bootstrap() {
        let message = rejection(packaged(b""), Architecture::X86_64).to_string();
        assert!(message.contains("it is empty"), "{message}");
        let truncated = &elf_for(Architecture::X86_64).build()[..20];
        let message = rejection(packaged(truncated), Architecture::X86_64).to_string();
        assert!(message.contains("truncated ELF header"), "{message}");
    }

    #[test]
    fn validate_refuses_a_32_bit_elf() {
        let executable = Elf::executable(EM_386)
            .class(fixture::ELFCLASS32)
            .elf_type(fixture::ET_EXEC)
            .build();
        let error = rejection(packaged(&executable), Architecture::X86_64);
        assert!(matches!(error, ArtifactError::Not64Bit { .. }), "{error:?}");
        assert!(error.to_string().contains("32-bit"), "{error}");
    }

    #[test]
    fn validate_refuses_a_big_endian_elf() {
        let executable = Elf::executable(EM_AARCH64)
            .data(fixture::ELFDATA2MSB)
            .elf_type(fixture::ET_EXEC)
            .build();
        let error = rejection(packaged(&executable), Architecture::Arm64);
        assert!(
            matches!(error, ArtifactError::NotLittleEndian { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("big-endian"), "{error}");
    }

    #[test]
    fn validate_refuses_an_object_file() {
        let executable = Elf::executable(EM_AARCH64)
            .elf_type(fixture::ET_REL)
            .build();
        let error = rejection(packaged(&executable), Architecture::Arm64);
        assert!(
            matches!(error, ArtifactError::NotAnExecutable { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("ET_REL"), "{error}");
    }

    #[test]
    fn validate_refuses_glibc_newer_than_2_34() {
        let executable = elf_for(Architecture::Arm64)
            .needing(&["GLIBC_2.17", "GLIBC_2.38", "GLIBC_2.28"])
            .build();
        let error = rejection(packaged(&executable), Architecture::Arm64);
        assert!(
            matches!(error, ArtifactError::GlibcTooNew { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("needs glibc 2.38"), "{message}");
        assert!(message.contains("ships glibc 2.34"), "{message}");
    }

    #[test]
    fn relative_relocation_packing_counts_as_glibc_2_36() {
        let executable = elf_for(Architecture::X86_64)
            .needing(&["GLIBC_2.28", "GLIBC_ABI_DT_RELR"])
            .build();
        let error = validate(packaged(&executable), "relr.zip", Architecture::X86_64)
            .expect_err("needs 2.36");
        assert!(error.to_string().contains("2.36"), "{error}");
    }

    #[test]
    fn validate_accepts_glibc_2_34() {
        let executable = elf_for(Architecture::X86_64)
            .needing(&["GLIBC_2.28", "GLIBC_2.34", "GLIBC_2.2.5"])
            .build();
        assert!(validate(packaged(&executable), "ok.zip", Architecture::X86_64).is_ok());
    }

    #[test]
    fn validate_accepts_a_static_executable() {
        let executable = elf_for(Architecture::X86_64)
            .tail(b"no glibc here GLIBC_PRIVATE\0")
            .build();
        assert!(validate(packaged(&executable), "static.zip", Architecture::X86_64).is_ok());
    }

    #[test]
    fn version_needs_are_read_not_guessed_from_bytes() {
        // A string in the code is not a version need...
        let mentions = elf_for(Architecture::X86_64).tail(b"GLIBC_2.99\0").build();
        assert!(validate(packaged(&mentions), "strings.zip", Architecture::X86_64).is_ok());
        // ...and the needs of a real executable (this test, linked against the
        // host's glibc) are read from its .gnu.version_r.
        let this = std::fs::read(std::env::current_exe().expect("test binary")).expect("read");
        let needs = glibc_version_needs(&this).expect("readable ELF");
        assert!(
            needs.iter().any(|name| name.starts_with("GLIBC_2.")),
            "{needs:?}"
        );
        // A section table pointing outside the file is refused, not skipped.
        let mut broken = elf_for(Architecture::X86_64)
            .needing(&["GLIBC_2.28"])
            .build();
        broken[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        let error = rejection(packaged(&broken), Architecture::X86_64);
        assert!(error.to_string().contains("version needs"), "{error}");
    }

    #[test]
    fn glibc_versions_are_parsed_and_compared_numerically() {
        let highest = |needs: &[&str]| {
            highest_glibc_requirement(needs.iter().copied()).map(|v| v.to_string())
        };
        assert_eq!(
            highest(&["GLIBC_2.2.5", "GLIBC_2.9"]),
            Some("2.9".to_owned())
        );
        assert_eq!(
            highest(&["GLIBC_2.9", "GLIBC_2.10"]),
            Some("2.10".to_owned())
        );
        assert_eq!(
            highest(&["GLIBC_2.3.4", "GLIBC_2.3"]),
            Some("2.3.4".to_owned())
        );
        assert_eq!(highest(&["GLIBC_2.34", "GCC_3.0"]), Some("2.34".to_owned()));
        assert_eq!(highest(&["GLIBC_2.", "GLIBC_PRIVATE"]), None);
        assert_eq!(highest(&["GLIBC_ABI_DT_RELR"]), Some("2.36".to_owned()));
        assert_eq!(highest(&[]), None);
    }

    #[test]
    fn validate_refuses_a_bootstrap_without_the_executable_bit() {
        let executable = elf_for(Architecture::Arm64).build();
        let regular_file_rw_r_r = (0o100_644_u32) << 16;
        let bytes = zip_with_entries(&[("bootstrap", &executable, Some(regular_file_rw_r_r))]);
        let error = rejection(bytes, Architecture::Arm64);
        assert!(
            matches!(error, ArtifactError::BootstrapNotExecutable { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("0o100644"), "{message}");
        assert!(message.contains("chmod 755 bootstrap"), "{message}");
    }

    #[test]
    fn validate_accepts_a_bootstrap_whose_zip_records_no_mode() {
        let executable = elf_for(Architecture::Arm64).build();
        let bytes = zip_with_entries(&[("bootstrap", &executable, Some(0))]);
        let mut archive = ZipArchive::new(Cursor::new(bytes.as_slice())).expect("a zip");
        let entry = archive.by_index(0).expect("first entry");
        assert_eq!(recorded_unix_mode(entry.external_attributes()), None);
        drop(entry);
        assert!(validate(bytes, "windows.zip", Architecture::Arm64).is_ok());
    }

    #[test]
    fn an_oversized_bootstrap_is_refused() {
        let bytes = packaged(&elf_for(Architecture::Arm64).tail(&[0; 1000]).build());
        let checking = Checking {
            artifact: "big.zip",
            expected: Architecture::Arm64,
        };
        let within = read_bootstrap_entry(&bytes, &checking, 1064).expect("at the limit");
        assert_eq!(within.contents.len(), 1064);
        let error = read_bootstrap_entry(&bytes, &checking, 1063)
            .err()
            .expect("over the limit");
        assert!(matches!(
            error,
            ArtifactError::BootstrapTooLarge {
                limit_bytes: 1063,
                ..
            }
        ));
    }

    #[test]
    fn load_reads_and_validates_a_zip_file() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory.path().join("bootstrap.zip");
        let bytes = packaged(&elf_for(Architecture::X86_64).tail(b"GLIBC_2.17\0").build());
        std::fs::write(&path, &bytes).expect("write the zip");
        let artifact = load(&path, Architecture::X86_64).expect("loaded");
        assert_eq!(artifact.bytes, bytes);
        assert_eq!(artifact.code_sha256, code_sha256(&bytes));
        assert_eq!(artifact.source, path.display().to_string());

        let message = load(&path, Architecture::Arm64)
            .expect_err("wrong machine")
            .to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn load_reports_a_missing_file_with_its_path() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let path = directory
            .path()
            .join("target/lambda/function/bootstrap.zip");
        let error = load(&path, Architecture::Arm64).expect_err("missing");
        assert!(matches!(error, ArtifactError::Missing { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("does not exist"), "{message}");
        assert!(message.contains("--arm64"), "{message}");
    }

    #[test]
    fn load_reports_an_unreadable_path() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let error = load(directory.path(), Architecture::Arm64).expect_err("a directory");
        assert!(
            matches!(error, ArtifactError::Unreadable { .. }),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .contains(&directory.path().display().to_string())
        );
    }

    #[test]
    fn artifact_debug_shows_the_size_not_the_bytes() {
        let artifact = package(b"\x7fELF", "exe").expect("package");
        let debug = format!("{artifact:?}");
        assert!(
            debug.contains(&format!("<{} bytes>", artifact.bytes.len())),
            "{debug}"
        );
        assert!(debug.contains(&artifact.code_sha256), "{debug}");
    }
}
