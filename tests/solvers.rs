//! The Krylov/AMG/recycling wiring end to end: `[generate.solver]` methods, recycling chains,
//! `pdekit bench solvers`, and their config errors.

mod common;

use common::*;
use pdekit::data::Dataset;
use std::path::Path;

const GEN: &str =
    "[generate]\nproblem = \"darcy\"\noutput = \"d.h5\"\nsamples = 4\n[generate.solver]\n";

#[test]
fn solver_method_keys_are_checked_against_the_method() {
    assert_config_error(
        &format!("{GEN}method = \"gcrodr\"\nrestart = 20\nrecycle = 20\n"),
        8,
        "generate.solver.recycle",
        "expected an integer below restart (20), got 20",
    );
    assert_config_error(
        &format!("{GEN}method = \"cg\"\nrestart = 20\n"),
        7,
        "generate.solver.restart",
        "only applies to method = \"gmres\", \"fgmres\" or \"gcrodr\"",
    );
    assert_config_error(
        &format!("{GEN}method = \"gmres\"\nrecycle = 5\n"),
        7,
        "generate.solver.recycle",
        "only applies to method = \"gcrodr\" or \"rcg\"",
    );
    assert_config_error(
        &format!("{GEN}method = \"gcrodr\"\npreconditioner = \"ssor\"\nomega = \"learned\"\n"),
        8,
        "generate.solver.omega",
        "a learned ω needs a method that solves each sample on its own",
    );
    assert_config_error(
        &format!("{GEN}method = \"amg\"\npreconditioner = \"jacobi\"\n"),
        7,
        "generate.solver.preconditioner",
        "use method = \"cg\" with preconditioner = \"amg\"",
    );
    assert_config_error(
        &format!("{GEN}method = \"cg\"\nchains = 4\n"),
        7,
        "generate.solver.chains",
        "only applies to methods that carry state",
    );
    assert_config_error(
        &format!("{GEN}method = \"gmres\"\nrecycle_update = \"system\"\n"),
        7,
        "generate.solver.recycle_update",
        "only applies to method = \"gcrodr\"",
    );
}

const BENCH: &str = "[solver_bench]\nproblem = \"darcy_flux\"\ngrid = 10\nsystems = 4\n";

#[test]
fn solver_bench_config_errors_name_the_key() {
    assert_config_error(
        &format!("{BENCH}methods = []\n"),
        5,
        "solver_bench.methods",
        "expected at least one [[solver_bench.methods]] entry",
    );
    assert_config_error(
        &format!(
            "{BENCH}\n[[solver_bench.methods]]\nmethod = \"gmres\"\npreconditioner = \"ssor\"\n"
        ),
        6,
        "solver_bench.methods[0].omega",
        "needs omega",
    );
    assert_config_error(
        &format!("{BENCH}\n[[solver_bench.methods]]\nmethod = \"cg\"\n\n[[solver_bench.methods]]\nmethod = \"gmres\"\nrestart = 0\n"),
        11,
        "solver_bench.methods[1].restart",
        "expected an integer from 1 to 1000, got 0",
    );
    assert_config_error(
        "[solver_bench]\nproblem = \"darcy_flux\"\ngrid = 2\n[[solver_bench.methods]]\nmethod = \"cg\"\n",
        3,
        "solver_bench.grid",
        "expected an integer from 4 to 4096, got 2",
    );
}

#[test]
fn a_bench_only_config_is_not_runnable_but_says_how_to_bench_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "b.toml",
        &format!("{BENCH}\n[[solver_bench.methods]]\nmethod = \"cg\"\n"),
    );
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pdekit bench solvers"), "{err}");
}

#[test]
fn bench_solvers_writes_a_table_json_and_chart_with_honest_figures() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{BENCH}tolerance = 1e-9\noutput_dir = \"res\"\n\n[[solver_bench.methods]]\nmethod = \"gmres\"\nrestart = 20\n\n[[solver_bench.methods]]\nmethod = \"gcrodr\"\nrestart = 20\nrecycle = 5\n\n[[solver_bench.methods]]\nmethod = \"cg\"\npreconditioner = \"amg\"\n\n[[solver_bench.methods]]\nmethod = \"amg\"\n"
    );
    let cfg = write(dir.path(), "b.toml", &text);
    let (code, out, err) = run(&["bench", "solvers", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("| gcrodr(20,5) | greedy |"), "{out}");
    let results: Vec<_> = std::fs::read_dir(dir.path().join("res"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let json = results
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON result");
    assert!(results
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "png")));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    for key in ["machine", "commit", "command", "created", "plan"] {
        assert!(doc.get(key).is_some(), "no {key} in the result");
    }
    let methods = doc["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 4);
    assert_eq!(methods[0]["speedup"].as_f64(), Some(1.0));
    for m in methods {
        assert_eq!(m["converged"], 4, "{m}");
        assert!(m["max_residual"].as_f64().unwrap() <= 1e-9, "{m}");
        let its = m["per_system"]["iterations"].as_array().unwrap();
        assert_eq!(its.len(), 4);
        // Every solve applies A at least once per iteration.
        let mv = m["per_system"]["matvecs"].as_array().unwrap();
        for (i, v) in its.iter().zip(mv) {
            assert!(v.as_u64().unwrap() >= i.as_u64().unwrap());
        }
    }
}

/// Rows of a chain-mode dataset, keyed by sample index.
fn rows_by_index(path: &Path) -> Vec<(u64, Vec<f64>)> {
    let ds = Dataset::open(path).unwrap();
    let index = ds.read_all("params/index").unwrap();
    let sol = ds.read_all("outputs/solution").unwrap();
    let per = sol.len() / ds.len();
    let flat: Vec<f64> = sol.iter().copied().collect();
    index
        .iter()
        .enumerate()
        .map(|(r, &i)| (i as u64, flat[r * per..(r + 1) * per].to_vec()))
        .collect()
}

#[test]
fn recycling_generation_solves_sorted_chains_independent_of_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[generate.solver]\nmethod = \"gcrodr\"\npreconditioner = \"none\"\nrestart = 30\nrecycle = 10\nchains = 3\ntolerance = 1e-8\n\n[generate.darcy.coefficient]\nkind = \"lognormal\"\nalpha = 2.5\ntau = 7.0\n";
    let mut files = Vec::new();
    for threads in ["1", "2"] {
        let cfg = write(
            dir.path(),
            &format!("t{threads}/c.toml"),
            &format!("{}{extra}", darcy_config("d.h5", 20, 18, "")),
        );
        generate_with_threads(&cfg, threads);
        files.push(dir.path().join(format!("t{threads}/d.h5")));
    }
    for f in CONTENT_FIELDS {
        let (a, b) = (
            Dataset::open(&files[0]).unwrap().read_all(f).unwrap(),
            Dataset::open(&files[1]).unwrap().read_all(f).unwrap(),
        );
        assert!(a == b, "{f} depends on the thread count");
    }
    let ds = Dataset::open(&files[0]).unwrap();
    let mut index: Vec<u64> = rows_by_index(&files[0]).iter().map(|r| r.0).collect();
    let in_solve_order = index.clone();
    index.sort_unstable();
    assert_eq!(
        index,
        (0..20).collect::<Vec<_>>(),
        "every sample exactly once"
    );
    assert_ne!(in_solve_order, index, "rows are in the sorted solve order");
    let res = ds.read_all("stats/residual").unwrap();
    assert!(res.iter().all(|&r| r <= 1e-8), "{res:?}");
    let matvecs = ds.read_all("stats/matvecs").unwrap();
    let iterations = ds.read_all("stats/iterations").unwrap();
    assert!(matvecs.iter().zip(iterations.iter()).all(|(m, i)| m >= i));

    // The same samples solved one by one with CG agree to the tolerance's accuracy.
    let cfg = write(
        dir.path(),
        "cg/c.toml",
        &format!(
            "{}[generate.solver]\ntolerance = 1e-10\n\n[generate.darcy.coefficient]\nkind = \"lognormal\"\nalpha = 2.5\ntau = 7.0\n",
            darcy_config("d.h5", 20, 18, "")
        ),
    );
    let (code, _, err) = run(&["generate", cfg.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let reference: std::collections::HashMap<u64, Vec<f64>> =
        rows_by_index(&dir.path().join("cg/d.h5"))
            .into_iter()
            .collect();
    for (i, u) in rows_by_index(&files[0]) {
        let r = &reference[&i];
        let diff = u
            .iter()
            .zip(r)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let scale = r.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
        assert!(diff <= 1e-5 * scale, "sample {i}: {diff} vs {scale}");
    }
}

#[test]
fn shipped_bench_configs_run_at_small_size() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for entry in std::fs::read_dir(root.join("configs/bench")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("[train.gp]") {
            gp_operator_bench_runs_at_small_size(&path, &text);
            ran += 1;
            continue;
        }
        if text.contains("[generate]") {
            generate_bench_runs_at_small_size(&path, &text);
            ran += 1;
            continue;
        }
        let methods = text.matches("[[solver_bench.methods]]").count();
        let dir = tempfile::tempdir().unwrap();
        let small: String = text
            .lines()
            .map(|l| match l.split('=').next().unwrap_or("").trim() {
                "grid" => "grid = 10".to_string(),
                "systems" => "systems = 3\noutput_dir = \"res\"".to_string(),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let copy = write(dir.path(), "c.toml", &small);
        let (code, out, err) = run(&["bench", "solvers", copy.to_str().unwrap(), "--quiet"]);
        assert_eq!(code, 0, "{}: {out}{err}", path.display());
        let json = std::fs::read_dir(dir.path().join("res"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "json"))
            .unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        assert_eq!(
            doc["methods"].as_array().unwrap().len(),
            methods,
            "{}",
            path.display()
        );
        // The measured bandwidth, and per method the modelled traffic over it (AMG: not
        // modelled).
        assert!(doc["bandwidth_bytes_per_second"].as_f64().unwrap() > 1e8);
        for m in doc["methods"].as_array().unwrap() {
            let amg = m["label"].as_str().unwrap().contains("amg");
            let fraction = m["bandwidth_fraction"].as_f64();
            assert_eq!(fraction.is_none(), amg, "{m}");
            assert!(fraction.is_none_or(|f| f > 0.0 && f.is_finite()), "{m}");
        }
        ran += 1;
    }
    assert!(ran >= 5);
}

/// A `[train.gp]` bench config: its data at a small size, then `bench gp-operator` with one DTC
/// size beside the exact posterior.
fn gp_operator_bench_runs_at_small_size(path: &Path, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let small: String = text
        .lines()
        .map(|l| match l.split('=').next().unwrap_or("").trim() {
            "samples" => "samples = 30".to_string(),
            "train_samples" => "train_samples = 24".to_string(),
            "test_samples" => "test_samples = 6".to_string(),
            "resolution" => "resolution = 12".to_string(),
            "input_components" => "input_components = 4".to_string(),
            "output" => "output = \"d.h5\"".to_string(),
            "data" => "data = \"d.h5\"".to_string(),
            "output_dir" => "output_dir = \"gp\"".to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let copy = write(dir.path(), "c.toml", &small);
    for args in [
        vec!["generate", copy.to_str().unwrap(), "--quiet"],
        vec![
            "bench",
            "gp-operator",
            copy.to_str().unwrap(),
            "--inducing",
            "8",
            "--quiet",
        ],
    ] {
        let out = common::pdekit()
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let json = std::fs::read_dir(dir.path().join("bench/results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON result");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(doc["benchmark"], "gp-operator");
    let posteriors = doc["posteriors"].as_array().unwrap();
    assert_eq!(posteriors[0]["posterior"], "exact");
    assert_eq!(posteriors[1]["posterior"], "dtc(8)");
    for p in posteriors {
        let l2 = p["result"]["test_l2"].as_f64().unwrap();
        assert!(l2 > 0.0 && l2 < 1.0, "{l2}");
    }
}

/// A shipped `bench generate` config at a small size, run in a scratch folder (where it writes
/// `bench/results/`): the JSON records a positive rate and every sample's report.
fn generate_bench_runs_at_small_size(path: &Path, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let small: String = text
        .lines()
        .map(|l| match l.split('=').next().unwrap_or("").trim() {
            "samples" => "samples = 2".to_string(),
            "resolution" => "resolution = 16".to_string(),
            "final_time" => "final_time = 0.01".to_string(),
            "snapshots" => "snapshots = 1".to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let copy = write(dir.path(), "c.toml", &small);
    let out = common::pdekit()
        .args(["bench", "generate", copy.to_str().unwrap(), "--quiet"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json = std::fs::read_dir(dir.path().join("bench/results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON result");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(doc["benchmark"], "generate");
    assert_eq!(doc["samples"], 2);
    assert!(doc["samples_per_second"].as_f64().unwrap() > 0.0);
    assert!(doc["commit"].is_string() && doc["machine"].is_object());
}
