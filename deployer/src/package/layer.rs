//! The optional Lambda layer's zip (`use_layer` / `layer_zip_path`): read from
//! disk and checked before any AWS call. A layer's content is extracted under
//! `/opt` and may hold anything (extensions, shared files), so the checks are
//! the ones Lambda itself would make, reported before an upload instead of after:
//! it is a zip, it holds at least one file, and it fits Lambda's quotas.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use super::{Code, MAX_DIRECT_UPLOAD_BYTES, MAX_UNZIPPED_BYTES};

/// Why the layer zip cannot be deployed. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum LayerZipError {
    #[error(
        "the layer zip {path} (layer_zip_path) does not exist; set layer_zip_path to an existing \
         zip (relative paths are read from the config file's folder), or use_layer = false"
    )]
    Missing { path: PathBuf },

    #[error("cannot read the layer zip {path} (layer_zip_path): {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the layer zip {path} is not a zip ({reason}); Lambda layers are zip archives")]
    NotAZip { path: PathBuf, reason: String },

    #[error("the layer zip {path} holds no files; Lambda refuses an empty layer")]
    Empty { path: PathBuf },

    #[error(
        "the layer zip {path} is {size} bytes, over Lambda's {limit}-byte limit for a direct \
         upload; make the layer smaller"
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },

    #[error(
        "the layer zip {path} unzips to {size} bytes, over Lambda's {limit}-byte limit for a \
         function and its layers; make the layer smaller"
    )]
    UnzippedTooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
}

/// Read and check the layer zip at `path`; its `CodeSha256` is what Lambda
/// reports for the published version, so an unchanged zip publishes nothing.
pub fn load(path: &Path) -> Result<Code, LayerZipError> {
    let bytes = std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            LayerZipError::Missing {
                path: path.to_path_buf(),
            }
        } else {
            LayerZipError::Unreadable {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    check(&bytes, path)?;
    Ok(Code::of(bytes))
}

fn check(bytes: &[u8], path: &Path) -> Result<(), LayerZipError> {
    let size = bytes.len() as u64;
    if size > MAX_DIRECT_UPLOAD_BYTES {
        return Err(LayerZipError::TooLarge {
            path: path.to_path_buf(),
            size,
            limit: MAX_DIRECT_UPLOAD_BYTES,
        });
    }
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|error| LayerZipError::NotAZip {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
    let mut files = 0_usize;
    let mut unzipped = 0_u64;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|error| LayerZipError::NotAZip {
                path: path.to_path_buf(),
                reason: error.to_string(),
            })?;
        if entry.is_file() {
            files += 1;
            unzipped = unzipped.saturating_add(entry.size());
        }
    }
    if files == 0 {
        return Err(LayerZipError::Empty {
            path: path.to_path_buf(),
        });
    }
    if unzipped > MAX_UNZIPPED_BYTES {
        return Err(LayerZipError::UnzippedTooLarge {
            path: path.to_path_buf(),
            size: unzipped,
            limit: MAX_UNZIPPED_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use zip::write::SimpleFileOptions;

    use super::*;
    use crate::package::code_sha256;

    fn zip_with(entries: &[(&str, &[u8])], directories: &[&str]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for directory in directories {
            writer
                .add_directory(*directory, SimpleFileOptions::default())
                .expect("add directory");
        }
        for (name, contents) in entries {
            writer
                .start_file(*name, SimpleFileOptions::default())
                .expect("start file");
            writer.write_all(contents).expect("write file");
        }
        writer.finish().expect("finish zip").into_inner()
    }

    fn write(dir: &tempfile::TempDir, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join("layer.zip");
        std::fs::write(&path, bytes).expect("write layer zip");
        path
    }

    #[test]
    fn a_zip_with_files_loads_with_lambdas_code_sha256() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bytes = zip_with(&[("extensions/hello", b"#!/bin/sh\n")], &["extensions/"]);
        let path = write(&dir, &bytes);
        let code = load(&path).expect("a valid layer");
        assert_eq!(code.zip, bytes);
        assert_eq!(code.sha256, Some(code_sha256(&bytes)));
    }

    #[test]
    fn a_missing_file_names_the_setting() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = load(&dir.path().join("absent.zip")).expect_err("missing");
        assert!(matches!(error, LayerZipError::Missing { .. }), "{error:?}");
        assert!(error.to_string().contains("layer_zip_path"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_a_zip_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(&dir, b"not a zip at all");
        let error = load(&path).expect_err("not a zip");
        assert!(matches!(error, LayerZipError::NotAZip { .. }), "{error:?}");
    }

    #[test]
    fn a_zip_of_directories_only_is_refused_as_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write(&dir, &zip_with(&[], &["extensions/"]));
        let error = load(&path).expect_err("empty");
        assert!(matches!(error, LayerZipError::Empty { .. }), "{error:?}");
    }

    #[test]
    fn sizes_over_lambdas_limits_are_refused() {
        let path = Path::new("layer.zip");
        let too_large = vec![0_u8; usize::try_from(MAX_DIRECT_UPLOAD_BYTES + 1).expect("fits")];
        let error = check(&too_large, path).expect_err("too large");
        assert!(matches!(error, LayerZipError::TooLarge { .. }), "{error:?}");

        // 300 MB of zeros deflates to well under the upload limit.
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .start_file(
                "big",
                SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .large_file(true),
            )
            .expect("start file");
        let chunk = vec![0_u8; 1024 * 1024];
        for _ in 0..300 {
            writer.write_all(&chunk).expect("write chunk");
        }
        let bytes = writer.finish().expect("finish").into_inner();
        let error = check(&bytes, path).expect_err("unzips too large");
        assert!(
            matches!(error, LayerZipError::UnzippedTooLarge { .. }),
            "{error:?}"
        );
    }
}
