//! The `gp` stage end to end: reports, figures, the FD baseline, the shipped configs and config
//! errors.

mod common;

use common::*;
use std::path::Path;

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("gp_report.json")).unwrap()).unwrap()
}

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn one_dimensional_run_writes_a_consistent_report_prediction_and_figures() {
    let dir = tempfile::tempdir().unwrap();
    // u = sin(2π·2x + 1) on [−1, 1] (nonzero boundary data, a domain other than [0, 1]).
    let text = "[gp]\npde = \"poisson\"\nsolution = \"sin(4*pi*x + 1)\"\ndomain = [-1.0, 1.0]\npoints = 60\ncomponents = 8\nmax_freq = 4.0\nsteps = 3000\ncheckpoints = 10\noutput_dir = \"out\"\n";
    let (_, out) = run_config(dir.path(), "g.toml", text);
    assert!(
        out.contains("finite differences on the same points"),
        "{out}"
    );
    let out_dir = dir.path().join("out");
    let r = report(&out_dir);
    let rel = r["final"]["rel_l2"].as_f64().unwrap();
    assert!(rel < 1e-2, "final relative L2 {rel}");

    // The report's final error is the one of the written prediction.
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("prediction.json")).unwrap())
            .unwrap();
    let (axis, exact, gp) = (numbers(&p["axis"]), numbers(&p["exact"]), numbers(&p["gp"]));
    assert_eq!(axis.len(), 1000);
    assert!((axis[0] + 1.0).abs() < 1e-15 && (axis[999] - 1.0).abs() < 1e-15);
    let truth = |x: f64| (4.0 * std::f64::consts::PI * x + 1.0).sin();
    let (mut e, mut n) = (0.0, 0.0);
    for ((x, t), g) in axis.iter().zip(&exact).zip(&gp) {
        assert!((t - truth(*x)).abs() < 1e-12);
        e += (g - t) * (g - t);
        n += t * t;
    }
    assert!(((e / n).sqrt() - rel).abs() <= 1e-12 * rel.max(1e-300));

    // Checkpoints: one per 300 steps, the last after the final step (and its polish).
    let cps = r["checkpoints"].as_array().unwrap();
    assert_eq!(cps.len(), 10);
    assert_eq!(cps[9]["step"].as_u64(), Some(3000));
    assert!((cps[9]["rel_l2"].as_f64().unwrap() - rel).abs() <= 1e-12 * rel);

    // FD at h = 2/59 on this solution: second order, error of order (2π·2·h)²/12 ≈ 2e-2.
    let fd = r["baseline_fd"]["rel_l2"].as_f64().unwrap();
    assert!(fd > 1e-3 && fd < 1e-1, "FD error {fd}");
    assert_eq!(r["baseline_fd"]["converged"].as_bool(), Some(true));

    let spectrum = r["spectrum"][0].as_array().unwrap();
    assert_eq!(spectrum.len(), 8);
    for f in ["solution", "error", "convergence", "spectrum"] {
        assert!(out_dir.join(format!("{f}.png")).exists(), "{f}.png");
    }
}

#[test]
fn two_dimensional_allen_cahn_runs_and_gives_finite_output() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[gp]\npde = \"allen_cahn\"\nsolution = \"sin(3*x)*cos(2*y + 0.5)\"\npoints = 12\ntest_points = 20\ncomponents = 3\nmax_freq = 1.0\nsteps = 200\npolish_every = 100\nenvelope = \"matern\"\nformat = \"svg\"\noutput_dir = \"out\"\n";
    run_config(dir.path(), "g.toml", text);
    let out_dir = dir.path().join("out");
    let r = report(&out_dir);
    let rel = r["final"]["rel_l2"].as_f64().unwrap();
    assert!(rel.is_finite() && rel < 0.5, "final relative L2 {rel}");
    assert_eq!(r["polishes"].as_u64(), Some(2));
    assert!(
        r["baseline_fd"].is_null(),
        "the FD baseline is 1-D by default"
    );
    assert_eq!(r["spectrum"].as_array().unwrap().len(), 2);
    for f in ["solution", "error", "convergence", "spectrum"] {
        assert!(out_dir.join(format!("{f}.svg")).exists(), "{f}.svg");
    }
}

#[test]
fn advection_on_a_space_time_grid_reaches_the_manufactured_solution() {
    // u_t + 2u_x = 0 with u = sin(3x − 6t + 0.5): a sign slip in the first-derivative operators
    // (odd kernel derivatives, K₂'ᵀ along t) would leave an O(1) error.
    let dir = tempfile::tempdir().unwrap();
    let text = "[gp]\npde = \"advection\"\nvelocity = 2.0\nsolution = \"sin(3*x - 6*y + 0.5)\"\npoints = 20\ntest_points = 40\ncomponents = 6\nmax_freq = 2.0\nsteps = 1000\npolish_every = 200\noutput_dir = \"out\"\n";
    run_config(dir.path(), "a.toml", text);
    let r = report(&dir.path().join("out"));
    let rel = r["final"]["rel_l2"].as_f64().unwrap();
    assert!(rel < 5e-2, "final relative L2 {rel}");
    assert!(r["baseline_fd"].is_null());
}

/// Every config in configs/gp validates and runs at a small size.
#[test]
fn shipped_gp_configs_run_at_small_size() {
    let ran = run_configs_small("configs/gp", |text, l| {
        let two_d = text.contains("*y") || text.contains("y)");
        match l.split('=').next().unwrap_or("").trim() {
            "steps" => "steps = 40".to_string(),
            "points" if two_d => "points = 10".to_string(),
            "points" => "points = 30".to_string(),
            "test_points" => "test_points = 20".to_string(),
            _ => l.to_string(),
        }
    });
    assert!(ran >= 9, "{ran} configs in configs/gp");
}

#[test]
fn gp_config_errors_name_the_key_and_column() {
    let base = "[gp]\npde = \"poisson\"\noutput_dir = \"out\"\n";
    assert_config_error(
        &format!("{base}solution = \"sin(100x)\"\n"),
        4,
        "gp.solution",
        "multiplication is written with `*`",
    );
    assert_config_error(
        &format!("{base}solution = \"sin(x) + foo(x)\"\n"),
        4,
        "gp.solution",
        "unknown name `foo`",
    );
    assert_config_error(
        &format!("{base}solution = \"x*y\"\ndim = 1\n"),
        5,
        "gp.dim",
        "the solution uses y",
    );
    assert_config_error(
        &format!("{base}solution = \"x\"\nlearning_rate = 1e-3\nfinal_learning_rate = 1e-2\n"),
        6,
        "gp.final_learning_rate",
        "≤ learning_rate = 0.001",
    );
    assert_config_error(
        &format!("{base}solution = \"x\"\ndomain = [1.0, 0.0]\n"),
        5,
        "gp.domain",
        "finite a < b",
    );
    assert_config_error(
        &format!("{base}solution = \"x\"\nkernel = \"se\"\n"),
        5,
        "gp.kernel",
        "unknown field",
    );
    assert_config_error(
        "[gp]\npde = \"advection\"\nsolution = \"sin(x - 2*y)\"\noutput_dir = \"out\"\n",
        2,
        "gp.velocity",
        "advection needs `velocity`",
    );
    assert_config_error(
        "[gp]\npde = \"advection\"\nvelocity = 2.0\nsolution = \"sin(x)\"\noutput_dir = \"out\"\n",
        2,
        "gp.pde",
        "space-time grid",
    );
    assert_config_error(
        &format!("{base}solution = \"x\"\nvelocity = 3.0\n"),
        5,
        "gp.velocity",
        "only the advection equation",
    );
    assert_config_error(
        "[gp]\npde = \"heat\"\nsolution = \"x\"\noutput_dir = \"out\"\n",
        2,
        "gp.pde",
        "unknown variant `heat`",
    );
}
