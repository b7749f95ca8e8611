#![allow(dead_code)]

use pdekit::data::Dataset;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn pdekit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pdekit"))
}

/// Runs the binary with `args`, returning exit code, stdout and stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out: Output = pdekit().args(args).output().expect("pdekit binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A small Darcy generate config writing to `output` (relative to the config's folder).
pub fn darcy_config(output: &str, samples: u64, resolution: usize, extra: &str) -> String {
    format!(
        "[generate]\nproblem = \"darcy\"\noutput = \"{output}\"\nsamples = {samples}\nseed = 3\ncheckpoint_every = 8\n{extra}\n[generate.darcy]\nresolution = {resolution}\n"
    )
}

/// Fields whose content must not depend on how the run was split (all but the timings).
pub const CONTENT_FIELDS: [&str; 6] = [
    "inputs/coefficient",
    "outputs/solution",
    "params/index",
    "stats/iterations",
    "stats/residual",
    "stats/converged",
];

pub fn assert_same_content(a: &Path, b: &Path) {
    let (da, db) = (Dataset::open(a).unwrap(), Dataset::open(b).unwrap());
    assert_eq!(da.len(), db.len(), "sample counts differ");
    for f in CONTENT_FIELDS {
        let (x, y) = (da.read_all(f).unwrap(), db.read_all(f).unwrap());
        assert_eq!(x.shape(), y.shape(), "{f} shapes differ");
        assert!(
            x == y,
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
    let n = da.len();
    let index = da.read_all("params/index").unwrap();
    let expect: Vec<f64> = (0..n).map(|i| i as f64).collect();
    assert_eq!(
        index.iter().copied().collect::<Vec<_>>(),
        expect,
        "samples missing or duplicated"
    );
}

/// Asserts a config error: exit code 2, and a message naming the file, line, column and key.
pub fn assert_config_error(text: &str, line: usize, key: &str, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "bad.toml", text);
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "stderr: {err}");
    assert!(
        err.contains(&format!("bad.toml:{line}:")),
        "no file:line in: {err}"
    );
    assert!(
        err.contains(&format!("key `{key}`")),
        "no key `{key}` in: {err}"
    );
    assert!(err.contains(expect), "no '{expect}' in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Runs `pdekit generate CONFIG --quiet` with `RAYON_NUM_THREADS` set, asserting success.
pub fn generate_with_threads(config: &Path, threads: &str) {
    succeed(
        pdekit()
            .args(["generate", config.to_str().unwrap(), "--quiet"])
            .env("RAYON_NUM_THREADS", threads),
    );
}

/// Leaves the partial file a killed run of `plan` would leave: the first `rows` samples of the
/// finished dataset `full`, checkpointed after `checkpoint_after`, the writer never closed.
pub fn write_crashed_partial(
    full: &Path,
    plan: &pdekit::config::Plan,
    rows: usize,
    checkpoint_after: usize,
) {
    use pdekit::pipeline::generate;
    let g = plan.generate.as_ref().unwrap();
    let h = generate::header(plan, g, &generate::family(g).unwrap().layout(), None);
    let src = Dataset::open(full).unwrap();
    let mut w = pdekit::data::h5::DatasetWriter::create(&g.dataset.output, &h).unwrap();
    for i in 0..rows {
        let values: Vec<Vec<f64>> = h
            .fields
            .iter()
            .map(|f| src.sample(&f.path, i).unwrap().iter().copied().collect())
            .collect();
        let refs: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
        w.append(&refs).unwrap();
        if i + 1 == checkpoint_after {
            w.checkpoint().unwrap();
        }
    }
    std::mem::forget(w);
}

/// Every config in `folder` (relative to the crate root) validates with `--dry-run`, then runs
/// with each line rewritten by `shrink(config text, line)` to make it small, from a scratch copy at
/// the same relative place (so relative paths stay inside the scratch folder). Returns how many ran.
pub fn run_configs_small(folder: &str, shrink: impl Fn(&str, &str) -> String) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for entry in std::fs::read_dir(root.join(folder)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let (code, _, err) = run(&["run", path.to_str().unwrap(), "--dry-run"]);
        assert_eq!(code, 0, "{}: {err}", path.display());
        let small: String = text
            .lines()
            .map(|l| shrink(&text, l))
            .collect::<Vec<_>>()
            .join("\n");
        let dir = tempfile::tempdir().unwrap();
        let copy = write(
            dir.path(),
            &format!("{folder}/{}", path.file_name().unwrap().to_str().unwrap()),
            &small,
        );
        let (code, out, err) = run(&["run", copy.to_str().unwrap(), "--quiet"]);
        assert_eq!(code, 0, "{}: {out}{err}", path.display());
        ran += 1;
    }
    ran
}

/// Writes the config `name` with `text` in `dir` and runs it (`pdekit run`), asserting success;
/// returns the config's path and what the run printed.
pub fn run_config(dir: &Path, name: &str, text: &str) -> (PathBuf, String) {
    let cfg = write(dir, name, text);
    let (code, out, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    (cfg, out)
}

/// A JSON file written by pdekit.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Runs the binary with `args`, asserting it fails with `code` and a message containing `want`.
pub fn assert_fails(args: &[&str], code: i32, want: &str) {
    let (got, _, err) = run(args);
    assert_eq!(got, code, "{args:?}: {err}");
    assert!(err.contains(want), "{args:?}: no '{want}' in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Runs `cmd`, asserting it succeeds; returns what it printed.
pub fn succeed(cmd: &mut Command) -> String {
    let out = cmd.output().expect("pdekit binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
