//! `pdekit bench ...`: benchmarks whose results are written as JSON under `bench/results/` with the
//! machine, the commit and the command that produced them.

pub mod generate;
pub mod gp;
pub mod solvers;
pub mod train;

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

/// The JSON a peer script wrote to `out`.
pub fn read_peer_json(out: PathBuf) -> Result<serde_json::Value, crate::PdekitError> {
    let text = std::fs::read_to_string(&out).map_err(|e| DataError::Io {
        path: out.clone(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| {
        DataError::Corrupt {
            path: out,
            message: format!("peer output is not JSON: {e}"),
        }
        .into()
    })
}

/// `YYYYMMDDTHHMMSSZ`, for result file names.
pub fn stamp() -> String {
    crate::meta::now_utc().replace(['-', ':'], "")
}

/// Runs a peer script `bench/peers/SCRIPT` with `python` and `args`; a missing interpreter or a
/// failing script is a clear error pointing at the peers' README.
pub fn run_peer_script(
    python: &Path,
    script: &str,
    args: &[&Path],
    reporter: &crate::progress::Reporter,
) -> Result<(), crate::PdekitError> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench/peers")
        .join(script);
    let shown: Vec<String> = args.iter().map(|a| a.display().to_string()).collect();
    reporter.info(format!(
        "running the peer: {} {} {}",
        python.display(),
        script.display(),
        shown.join(" ")
    ));
    let status = std::process::Command::new(python)
        .arg(&script)
        .args(args)
        .status()
        .map_err(|e| {
            crate::PdekitError::Usage(format!(
                "cannot run {}: {e}; see bench/peers/README.md for the venv",
                python.display()
            ))
        })?;
    if !status.success() {
        return Err(crate::PdekitError::Usage(format!(
            "the peer script {} failed ({status}); see bench/peers/README.md",
            script.display()
        )));
    }
    Ok(())
}
