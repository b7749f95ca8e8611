//! `pdekit bench ...`: benchmarks whose results are written as JSON under `bench/results/` with the
//! machine, the commit and the command that produced them.

pub mod generate;
pub mod solvers;

use crate::data::DataError;
use std::path::{Path, PathBuf};

/// Writes `text` to `path` through a temporary name, creating the folder.
pub fn write_atomic(path: &Path, text: &str) -> Result<PathBuf, DataError> {
    let io = |e: std::io::Error| DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(path.to_path_buf())
}

/// `YYYYMMDDTHHMMSSZ`, for result file names.
pub fn stamp() -> String {
    crate::meta::now_utc().replace(['-', ':'], "")
}
