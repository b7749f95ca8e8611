//! Writing result files so that a crash never leaves a half-written one: write to a temporary
//! name beside the target, then rename.

use crate::data::DataError;
use std::path::{Path, PathBuf};

/// Writes `text` to `path` through a temporary name, creating the folder.
pub fn write_atomic(path: &Path, text: &str) -> Result<PathBuf, DataError> {
    write_bytes_atomic(path, text.as_bytes())
}

/// [`write_atomic`] for binary contents.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<PathBuf, DataError> {
    let io = |e: std::io::Error| DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(path.to_path_buf())
}

/// `value` as indented JSON, written atomically.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<PathBuf, DataError> {
    let text = serde_json::to_string_pretty(value).expect("a JSON value serialises");
    write_atomic(path, &text)
}

/// A report or benchmark result: `doc` stamped with the command, commit, machine and time that
/// produced it ([`crate::meta::record_provenance`]), written as JSON.
pub fn write_report(path: &Path, doc: &mut serde_json::Value) -> Result<PathBuf, DataError> {
    crate::meta::record_provenance(doc);
    write_json(path, doc)
}
