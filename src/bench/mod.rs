//! `pdekit bench ...`: benchmarks whose results are written as JSON under `bench/results/` with the
//! machine, the commit and the command that produced them.

pub mod bandwidth;
pub mod generate;
pub mod gp;
pub mod gp_operator;
pub mod solvers;
pub mod train;

use crate::data::DataError;
use std::path::{Path, PathBuf};

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

/// Where the peer script `name` lives (`bench/peers/` of the source tree).
pub fn peer_script(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench/peers")
        .join(name)
}

/// Runs a peer script `bench/peers/SCRIPT` with `python` and `args`; a missing interpreter or a
/// failing script is a clear error pointing at the peers' README.
pub fn run_peer_script(
    python: &Path,
    script: &str,
    args: &[&Path],
    reporter: &crate::progress::Reporter,
) -> Result<(), crate::PdekitError> {
    let script = peer_script(script);
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
            crate::PdekitError::Peer(format!(
                "cannot run {}: {e} (is the peers' venv set up?)",
                python.display()
            ))
        })?;
    if !status.success() {
        return Err(crate::PdekitError::Peer(format!(
            "the peer script {} failed ({status})",
            script.display()
        )));
    }
    Ok(())
}
