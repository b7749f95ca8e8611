//! End-to-end tests of the `pdekit` binary: exit codes, error messages, outputs on disk.

mod common;

use common::*;
use pdekit::data::Dataset;
use std::time::{Duration, Instant};

#[test]
fn misspelled_key_is_a_config_error_listing_allowed_keys() {
    let text = "[generate]\nproblem = \"darcy\"\noutput = \"d.h5\"\nsamples = 4\n\n[generate.darcy]\nresolutoin = 32\n";
    assert_config_error(
        text,
        7,
        "generate.darcy.resolutoin",
        "expected one of `resolution`, `centring`",
    );
}

#[test]
fn wrong_type_is_a_config_error() {
    let text = "[generate]\nproblem = \"darcy\"\noutput = \"d.h5\"\nsamples = \"many\"\n";
    assert_config_error(text, 4, "generate.samples", "invalid type: string \"many\"");
}

#[test]
fn out_of_range_values_are_config_errors() {
    let base = "[generate]\nproblem = \"darcy\"\noutput = \"d.h5\"\n";
    assert_config_error(
        &format!("{base}samples = 0\n"),
        4,
        "generate.samples",
        "expected an integer ≥ 1, got 0",
    );
    assert_config_error(
        &format!("{base}samples = 4\n[generate.darcy]\nresolution = 2\n"),
        6,
        "generate.darcy.resolution",
        "expected an integer from 3 to 8192, got 2",
    );
    assert_config_error(
        &format!("{base}samples = 4\n[generate.solver]\ntolerance = 0.0\n"),
        6,
        "generate.solver.tolerance",
        "expected a number in (0, 1)",
    );
    assert_config_error(
        &format!("{base}samples = 4\n[generate.darcy.coefficient]\ntau = -3.0\n"),
        6,
        "generate.darcy.coefficient.tau",
        "expected a positive number, got -3",
    );
}

#[test]
fn missing_key_and_unknown_problem_are_config_errors() {
    assert_config_error(
        "[generate]\nproblem = \"darcy\"\nsamples = 3\n",
        1,
        "generate.output",
        "missing field `output`",
    );
    assert_config_error(
        "[generate]\nproblem = \"burgers2\"\noutput = \"d.h5\"\nsamples = 3\n",
        2,
        "generate.problem",
        "unknown problem \"burgers2\"",
    );
}

#[test]
fn missing_config_file_and_bad_usage_exit_2() {
    let (code, _, err) = run(&["run", "/nonexistent/pdekit.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/pdekit.toml"), "{err}");
    let (code, _, _) = run(&["frobnicate"]);
    assert_eq!(code, 2);
    let (code, out, _) = run(&["run", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Example"), "help shows an example: {out}");
}

#[test]
fn dry_run_prints_the_plan_with_defaults_and_resolved_paths_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "sub/c.toml",
        &darcy_config("../data/d.h5", 5, 16, ""),
    );
    let (code, out, err) = run(&["run", cfg.to_str().unwrap(), "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let want = dir.path().join("data/d.h5");
    assert!(
        out.contains(&format!("output = \"{}\"", want.display())),
        "{out}"
    );
    assert!(
        out.contains("tolerance = ")
            && out.contains("max_iterations = 10000")
            && out.contains("alpha = 2.0"),
        "{out}"
    );
    assert!(!want.exists() && !dir.path().join("data").exists());
}

/// The neuraloperator-style recipe (bench/recipes/) runs at a small size: its test-file config
/// first, then the recipe, which trains on a separate test file.
#[test]
fn the_darcy16_recipe_runs_at_small_size() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    for name in ["darcy16_test.toml", "darcy16.toml"] {
        let text = std::fs::read_to_string(root.join("bench/recipes").join(name)).unwrap();
        let small: String = text
            .lines()
            .map(|l| match l.split('=').next().unwrap_or("").trim() {
                "samples" => "samples = 8".to_string(),
                "train_samples" => "train_samples = 6".to_string(),
                "test_samples" => "test_samples = 4".to_string(),
                "epochs" => "epochs = 1".to_string(),
                "batch_size" => "batch_size = 3".to_string(),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        let copy = write(dir.path(), &format!("bench/recipes/{name}"), &small);
        let (code, out, err) = run(&["run", copy.to_str().unwrap(), "--quiet"]);
        assert_eq!(code, 0, "{name}: {out}{err}");
    }
    let report = read_json(&dir.path().join("runs/darcy16/fno/training_report.json"));
    assert_eq!(report["epochs_done"], 1);
    assert!(report["final"]["test_l2"].as_f64().unwrap().is_finite());
}

/// Every shipped config validates, and runs end to end at a small size: 6 samples at 16×16,
/// short sequences and trajectories, one repeat.
#[test]
fn shipped_configs_run_at_small_size() {
    let ran = run_configs_small("configs", |_, l| {
        let key = l.split('=').next().unwrap_or("").trim();
        match key {
            "samples" if !l.contains("output") => "samples = 6".to_string(),
            "train_samples" => "train_samples = 4".to_string(),
            "batch_size" => "batch_size = 2".to_string(),
            "test_samples" => "test_samples = 2".to_string(),
            "epochs" => "epochs = 1".to_string(),
            "modes" => "modes = [4, 4]".to_string(),
            "input_components" => "input_components = 3".to_string(),
            "resolution" => "resolution = 16".to_string(),
            "instances" => "instances = 60".to_string(),
            "steps" => "steps = 20".to_string(),
            "every" => "every = 5".to_string(),
            "final_time" => "final_time = 0.02".to_string(),
            "snapshots" => "snapshots = 2".to_string(),
            // 16 points cannot resolve the shipped wavenumbers.
            "wavenumber" => "wavenumber = 5.0".to_string(),
            "repeats" => "repeats = 1".to_string(),
            "grid" => "grid = 6".to_string(),
            // [mlvms.chidenn] takes a list of coarse sizes.
            "coarse" if l.contains('[') => "coarse = [8]".to_string(),
            "coarse" => "coarse = 8".to_string(),
            "uniform" => "uniform = [16]".to_string(),
            _ => l.to_string(),
        }
    });
    assert!(ran >= 1);
}

#[test]
fn generate_plot_inspect_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[plot]\noutput_dir = \"figs\"\nsamples = 3\nformat = \"svg\"\n",
        darcy_config("d.h5", 10, 24, "")
    );
    let (cfg, out) = run_config(dir.path(), "c.toml", &text);
    assert!(out.contains("generated 10 samples"), "{out}");
    let data = dir.path().join("d.h5");
    let ds = Dataset::open(&data).unwrap();
    assert_eq!(ds.len(), 10);
    assert_eq!(ds.attr("format").as_deref(), Some("pdekit-dataset"));
    assert_eq!(ds.attr("config").as_deref(), Some(text.as_str()));
    let conv = ds.read_all("stats/converged").unwrap();
    assert!(conv.iter().all(|&c| c == 1.0));
    let res = ds.read_all("stats/residual").unwrap();
    assert!(res.iter().all(|&r| r > 0.0 && r <= 1e-8), "{res:?}");
    for f in ["samples.svg", "iterations.svg"] {
        let svg = std::fs::read_to_string(dir.path().join("figs").join(f)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("sample"), "{f}");
    }
    assert!(!dir.path().join("figs/samples.partial.svg").exists());

    // PNG through the one-off form of `plot`.
    let figs = dir.path().join("png");
    let (code, _, err) = run(&[
        "plot",
        "--data",
        data.to_str().unwrap(),
        "--out",
        figs.to_str().unwrap(),
        "--samples",
        "2",
    ]);
    assert_eq!(code, 0, "{err}");
    let png = std::fs::read(figs.join("samples.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    let (code, out, _) = run(&["inspect", data.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("pdekit dataset with 10 samples")
            && out.contains("outputs/solution")
            && out.contains("[10, 24, 24]"),
        "{out}"
    );
    assert!(out.contains("converged: 10 of 10"), "{out}");

    // A second run finds the dataset up to date; a changed plan regenerates it.
    let (code, out, _) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("up to date"), "{out}");
    std::fs::write(&cfg, text.replace("samples = 10", "samples = 12")).unwrap();
    let (code, out, _) = run(&["generate", cfg.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("regenerating"), "{out}");
    assert_eq!(Dataset::open(&data).unwrap().len(), 12);
}

#[test]
fn unconverged_samples_fail_the_run_or_are_kept_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let capped = "[generate.solver]\nmax_iterations = 3\n";
    let cfg = write(
        dir.path(),
        "f.toml",
        &darcy_config("f.h5", 4, 16, "")
            .replace("[generate.darcy]", &format!("{capped}[generate.darcy]")),
    );
    let (code, _, err) = run(&["generate", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("sample 0 did not converge") && err.contains("after 3 iterations"),
        "{err}"
    );
    assert!(
        !dir.path().join("f.h5").exists(),
        "no final file for a failed run"
    );

    let keep = darcy_config("k.h5", 4, 16, "on_failure = \"keep\"")
        .replace("[generate.darcy]", &format!("{capped}[generate.darcy]"));
    let cfg = write(dir.path(), "k.toml", &keep);
    let (code, _, err) = run(&["generate", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("4 samples did not converge"), "{err}");
    let ds = Dataset::open(&dir.path().join("k.h5")).unwrap();
    assert!(ds
        .read_all("stats/converged")
        .unwrap()
        .iter()
        .all(|&c| c == 0.0));
    assert!(ds
        .read_all("stats/iterations")
        .unwrap()
        .iter()
        .all(|&c| c == 3.0));
    assert!(ds
        .read_all("stats/residual")
        .unwrap()
        .iter()
        .all(|&r| r > 1e-8));
}

#[test]
fn inspect_reports_missing_and_corrupt_files_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let junk = write(dir.path(), "junk.h5", "not an hdf5 file at all");
    let (code, _, err) = run(&["inspect", junk.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("junk.h5") && err.contains("not a readable HDF5 file"),
        "{err}"
    );
    let (code, _, err) = run(&["inspect", dir.path().join("gone.h5").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("gone.h5: no such file"), "{err}");
}

/// kill -9 in the middle of a generation; rerunning the same command completes a dataset whose
/// content equals an uninterrupted run's.
#[test]
fn killed_generation_resumes_to_the_same_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let n = 4000;
    let a = write(dir.path(), "a/c.toml", &darcy_config("d.h5", n, 24, ""));
    let b = write(dir.path(), "b/c.toml", &darcy_config("d.h5", n, 24, ""));
    let partial = dir.path().join("a/d.partial.h5");

    let mut child = pdekit()
        .args(["generate", a.to_str().unwrap(), "--quiet"])
        .spawn()
        .unwrap();
    let start = Instant::now();
    // Wait until at least one checkpoint is on disk, then kill without warning.
    loop {
        let ready = Dataset::open(&partial)
            .map(|d| d.len() >= 16)
            .unwrap_or(false);
        if ready || start.elapsed() > Duration::from_secs(60) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let final_a = dir.path().join("a/d.h5");
    if final_a.exists() {
        panic!("the run finished before it could be interrupted; make it longer");
    }
    let recovered = Dataset::open(&partial).unwrap().len();
    assert!(recovered >= 16 && (recovered as u64) < n, "{recovered}");

    let (code, out, err) = run(&["generate", a.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("resuming"), "{out}");
    let (code, _, err) = run(&["generate", b.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(!partial.exists());
    assert_same_content(&final_a, &dir.path().join("b/d.h5"));
}

#[test]
fn relax_stage_writes_report_and_figures_with_consistent_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[relax]\nsequence = \"shifted_laplacian\"\noutput_dir = \"out\"\nrepeats = 2\n\n[relax.arms]\ncount = 6\n\n[relax.shifted_laplacian]\ngrid = 6\ninstances = 80\n";
    let (_, out) = run_config(dir.path(), "r.toml", text);
    assert!(
        out.contains("Tsallis-INF") && out.contains("instance-optimal"),
        "{out}"
    );
    let json = read_json(&dir.path().join("out/learned_sor.json"));
    let summary = json["summary"].as_array().unwrap();
    assert_eq!(
        summary.len(),
        7,
        "3 learners + ω = 1, best fixed, instance-optimal, Young's ω*"
    );
    let mean = |name: &str| {
        summary
            .iter()
            .find(|s| s["policy"].as_str().unwrap().starts_with(name))
            .unwrap()["mean"]
            .as_f64()
            .unwrap()
    };
    assert!(mean("instance-optimal") <= mean("best fixed"));
    assert!(
        mean("model-optimal") <= mean("best fixed"),
        "Young's ω* per instance beats any one ω"
    );
    assert!(mean("best fixed") <= mean("fixed ω = 1.00"));
    assert_eq!(json["runs"].as_array().unwrap().len(), 2);
    let learner = &json["runs"][0]["learners"][0];
    assert_eq!(learner["costs"].as_array().unwrap().len(), 80);
    let probs: f64 = learner["final_probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .sum();
    assert!((probs - 1.0).abs() < 1e-9);
    for f in ["cumulative.png", "omega.png", "probabilities.png"] {
        assert!(dir.path().join("out").join(f).exists(), "{f}");
    }
}

#[test]
fn mlvms_stage_compares_multilevel_with_uniform_meshes() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[mlvms]\ndim = 2\ncoarse = 8\ncentre = [0.4375, 0.5625]\nradius = 0.08\nlevels = [{ half_width = 0.25, refine = 2 }, { half_width = 0.15, refine = 2 }]\nuniform = [8, 16, 32, 64]\noutput_dir = \"out\"\n";
    run_config(dir.path(), "m.toml", text);
    let json = read_json(&dir.path().join("out/mlvms_report.json"));
    let ml = &json["multilevel"];
    assert_eq!(ml["converged"].as_bool(), Some(true));
    assert_eq!(ml["per_level"].as_array().unwrap().len(), 3);
    let errors: Vec<f64> = json["uniform"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["rel_l2"].as_f64().unwrap())
        .collect();
    // Q1 on a resolved bump: the uniform error falls about 4× per halving of h.
    for w in errors.windows(2).skip(1) {
        let ratio = w[0] / w[1];
        assert!(ratio > 3.0 && ratio < 5.0, "{errors:?}");
    }
    // The finest level has h = 1/32 near the source: the multilevel error is the uniform 32's
    // (the error lives at the source) with fewer unknowns.
    let ml_err = ml["rel_l2"].as_f64().unwrap();
    assert!(
        (ml_err / errors[2] - 1.0).abs() < 0.05,
        "{ml_err} vs {errors:?}"
    );
    assert!(ml["unknowns"].as_u64().unwrap() < json["uniform"][2]["unknowns"].as_u64().unwrap());
    for f in ["solution", "error", "error_vs_unknowns", "error_vs_time"] {
        assert!(
            dir.path().join("out").join(format!("{f}.png")).exists(),
            "{f}"
        );
    }
}

#[test]
fn mlvms_stage_adds_a_chidenn_curve_that_beats_linear_elements_on_the_same_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[mlvms]\ndim = 2\ncoarse = 12\ncentre = [0.4375, 0.5625]\nradius = 0.05\nlevels = [{ half_width = 0.25, refine = 2 }, { half_width = 0.15, refine = 2 }]\nuniform = [16, 32]\noutput_dir = \"out\"\n\n[mlvms.chidenn]\ncoarse = [8, 12]\n";
    run_config(dir.path(), "m.toml", text);
    let json = read_json(&dir.path().join("out/mlvms_report.json"));
    let runs = json["chidenn"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs
        .iter()
        .all(|r| r["run"]["converged"].as_bool() == Some(true)));
    // Same coarse size, same boxes, same unknowns: only the basis differs.
    let linear = &json["multilevel"];
    let same = &runs[1]["run"];
    assert_eq!(same["unknowns"], linear["unknowns"]);
    let (c, l) = (
        same["rel_l2"].as_f64().unwrap(),
        linear["rel_l2"].as_f64().unwrap(),
    );
    assert!(c < 0.5 * l, "C-HiDeNN {c:e} vs linear {l:e}");
    assert!(json["chidenn_as_accurate_as_multilevel"].is_object());
}

#[test]
fn mlvms_dataset_mode_writes_beams_and_their_temperatures() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[generate]\nproblem = \"mlvms\"\noutput = \"beam.h5\"\nsamples = 5\nseed = 3\n\n[generate.mlvms]\nresolution = 17\ncoarse = 8\nlevels = [{ half_width = 0.15, refine = 2 }, { half_width = 0.06, refine = 2 }]\nradius = 0.05\npower = [1.0, 3.0]\nbasis = \"chidenn\"\n";
    run_config(dir.path(), "g.toml", text);
    let (code, out, err) = run(&["inspect", dir.path().join("beam.h5").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for name in [
        "source",
        "temperature",
        "beam_x",
        "power",
        "unknowns",
        "residual",
    ] {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
    assert_config_error(
        &format!("{text}\n[generate.solver]\nmethod = \"gmres\"\n"),
        16,
        "generate.solver.method",
        "AMG-preconditioned CG",
    );
    assert_config_error(
        &text.replace("radius = 0.05", "margin = 0.1"),
        11,
        "generate.mlvms.margin",
        "wider than the first box",
    );
}

#[test]
fn mlvms_transient_stage_balances_energy_and_writes_its_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[mlvms_transient]\ndim = 2\ncoarse = 16\nlevels = [{ half_width = 0.15, refine = 2 }, { half_width = 0.08, refine = 2 }]\npower = 10.0\nradius = 0.03\nstart = [0.3, 0.5]\nvelocity = [3.0, 1.0]\ndt = 2e-3\nsteps = 40\ntheta = 0.5\noutput_dir = \"out\"\n";
    run_config(dir.path(), "t.toml", text);
    let json = read_json(&dir.path().join("out/mlvms_transient_report.json"));
    assert!(json["energy_balance_relative"].as_f64().unwrap() < 1e-6);
    assert!(json["recentres"].as_u64().unwrap() >= 2);
    let steps = json["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 40);
    // The ledger adds up step by step: the stored heat is the running in − out + transfer.
    let (mut acc, mut worst) = (0.0, 0.0f64);
    for s in steps {
        acc += s["heat_in"].as_f64().unwrap() - s["heat_out"].as_f64().unwrap()
            + s["transfer"].as_f64().unwrap();
        worst = worst.max((acc - s["stored"].as_f64().unwrap()).abs());
    }
    assert!(worst < 1e-8 * acc.abs(), "ledger drift {worst:e}");
    for f in ["temperature", "energy"] {
        assert!(
            dir.path().join("out").join(format!("{f}.png")).exists(),
            "{f}"
        );
    }
}

#[test]
fn mlvms_config_errors_name_the_key() {
    let base = "[mlvms]\noutput_dir = \"out\"\nradius = 0.01\nlevels = []\n";
    assert_config_error(
        &format!("{base}dim = 4\ncentre = [0.5, 0.5]\n"),
        5,
        "mlvms.dim",
        "expected 2 or 3",
    );
    assert_config_error(
        &format!("{base}dim = 3\ncentre = [0.5, 0.5]\n"),
        6,
        "mlvms.centre",
        "expected 3 finite numbers inside (0, 1), got [0.5, 0.5]",
    );
    assert_config_error(
        "[mlvms_transient]\ndim = 2\nlevels = []\npower = 1.0\nradius = 0.01\nstart = [0.5, 1.5]\nvelocity = [1.0, 0.0]\ndt = 1e-3\nsteps = 10\noutput_dir = \"out\"\n",
        6,
        "mlvms_transient.start",
        "inside (0, 1)",
    );
    assert_config_error(
        "[mlvms]\noutput_dir = \"out\"\nradius = 0.01\ndim = 2\ncentre = [0.5, 0.5]\nlevels = [{ half_width = 0.1, refine = 40 }]\n",
        6,
        "mlvms.levels[0]",
        "refine from 1 to 16",
    );
}

#[test]
fn relax_config_errors_name_the_key() {
    let base = "[relax]\nsequence = \"shifted_laplacian\"\noutput_dir = \"out\"\n";
    assert_config_error(
        &format!("{base}\n[relax.arms]\nmin = 1.5\nmax = 1.2\n"),
        7,
        "relax.arms.max",
        "expected a value ≥ relax.arms.min",
    );
    assert_config_error(
        &format!("{base}\n[relax.heat]\nsteps = 10\n"),
        5,
        "relax.heat",
        "does not apply",
    );
    assert_config_error(
        &format!("{base}learners = [\"ucb\"]\n"),
        4,
        "relax.learners",
        "unknown variant `ucb`",
    );
}

/// The same config gives the same dataset whatever the thread count, a learned SSOR ω included.
#[test]
fn generation_is_identical_for_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "[generate.solver]\npreconditioner = \"ssor\"\nomega = \"learned\"";
    let mut files = Vec::new();
    for threads in ["1", "2"] {
        let cfg = write(
            dir.path(),
            &format!("t{threads}/c.toml"),
            &darcy_config("d.h5", 30, 16, extra),
        );
        generate_with_threads(&cfg, threads);
        files.push(dir.path().join(format!("t{threads}/d.h5")));
    }
    assert_same_content(&files[0], &files[1]);
    let (a, b) = (
        Dataset::open(&files[0]).unwrap(),
        Dataset::open(&files[1]).unwrap(),
    );
    let omegas = a.read_all("stats/omega").unwrap();
    assert_eq!(omegas, b.read_all("stats/omega").unwrap());
    assert!(omegas.iter().all(|&w| (1.0..=1.95).contains(&w)));
    assert!(
        omegas.iter().any(|&w| w != omegas[[0]]),
        "the learner explores"
    );
}
