//! GP operator regression end to end: `[train.gp]` fits on a generated dataset, reports its fit
//! and calibration, draws its figures, and `pdekit evaluate` rebuilds it from the checkpoint alone
//! to the same numbers; bad input is a clear error.

mod common;

use std::path::Path;

fn gp_config(data: &str, out: &str, gp: &str) -> String {
    format!(
        "[train]\ndata = \"{data}\"\ntrain_samples = 24\ntest_samples = 6\noutput_dir = \"{out}\"\nformat = \"svg\"\n\n[train.gp]\n{gp}"
    )
}

fn generate(d: &Path, name: &str, res: usize) {
    let cfg = common::write(
        d,
        &format!("g{res}.toml"),
        &common::darcy_config(name, 30, res, ""),
    );
    let (code, out, err) = common::run(&["generate", cfg.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_gp_fits_reports_calibration_and_evaluates_from_its_checkpoint_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "d16.h5", 16);
    generate(d, "d24.h5", 24);
    for (name, table) in [
        ("empty", ""),
        (
            "pca",
            "kernel = \"rational_quadratic\"\ninput_components = 8\nard = true\noutput_components = 6\n",
        ),
        ("dtc", "kernel = \"matern32\"\ninducing = 12\n"),
    ] {
        let cfg = common::write(
            d,
            &format!("{name}.toml"),
            &gp_config("d16.h5", name, table),
        );
        let (code, out, err) = common::run(&["train", cfg.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.contains("fitted the GP"), "{out}");
        let out_dir = d.join(name);
        let report = common::read_json(&out_dir.join("training_report.json"));
        let l2 = report["final"]["test_l2"].as_f64().unwrap();
        assert!(l2 > 0.0 && l2 < 0.5, "{name}: test L2 {l2}");
        let coverage = report["final"]["coverage_2sigma"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&coverage), "{name}: {coverage}");
        let fit = &report["fit"];
        assert!(fit["final_nlml"].as_f64().unwrap() <= fit["initial_nlml"].as_f64().unwrap());
        assert!(fit["hyper"]["noise_variance"].as_f64().unwrap() > 0.0);
        let observed = report["calibration"]["observed"].as_array().unwrap();
        assert_eq!(observed.len(), 11);
        for f in ["predictions.svg", "calibration.svg"] {
            let svg = std::fs::read_to_string(out_dir.join(f)).unwrap();
            assert!(svg.starts_with("<svg"), "{f}");
        }
        let predictions = std::fs::read_to_string(out_dir.join("predictions.svg")).unwrap();
        assert!(predictions.contains("σ (predicted)"), "{name}");

        // The checkpoint alone gives the same test numbers, bit for bit.
        let ckpt = out_dir.join("checkpoint.safetensors");
        let eval = d.join(format!("{name}-eval.json"));
        let (code, out, err) = common::run(&[
            "evaluate",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--data",
            d.join("d16.h5").to_str().unwrap(),
            "--start",
            "24",
            "--out",
            eval.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("±2σ coverage"), "{out}");
        let doc = common::read_json(&eval);
        assert_eq!(doc["overall"]["rel_l2"], report["final"]["test_l2"], "{name}");
        assert_eq!(doc["overall"]["coverage_2sigma"], report["final"]["coverage_2sigma"]);
        assert_eq!(doc["calibration"]["nlpd"], report["calibration"]["nlpd"]);

        // Another grid is refused, naming both sizes; subsampling does not make 24 into 16.
        common::assert_fails(
            &[
                "evaluate",
                "--checkpoint",
                ckpt.to_str().unwrap(),
                "--data",
                d.join("d24.h5").to_str().unwrap(),
            ],
            2,
            "a GP predicts on its training grid only",
        );
    }
    // A rerun reuses the fit; a changed table is refused without --force.
    let cfg = d.join("empty.toml");
    let (code, out, _) = common::run(&["train", cfg.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("reusing the GP"), "{out}");
    std::fs::write(&cfg, gp_config("d16.h5", "empty", "kernel = \"rbf\"\n")).unwrap();
    common::assert_fails(
        &["train", cfg.to_str().unwrap()],
        2,
        "holds a GP of other settings; rerun with --force",
    );
}

#[test]
fn gp_input_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "d16.h5", 16);
    // More components than samples.
    let cfg = common::write(
        d,
        "big.toml",
        &gp_config("d16.h5", "big", "input_components = 40\n"),
    );
    common::assert_fails(
        &["train", cfg.to_str().unwrap()],
        1,
        "input_components: expected at most min(training samples, values per input sample) = 24, got 40",
    );
    // The GP bench needs a [train.gp] table.
    let fno = common::write(
        d,
        "fno.toml",
        "[train]\ndata = \"d16.h5\"\ntrain_samples = 20\ntest_samples = 4\noutput_dir = \"f\"\n[train.fno]\nwidth = 4\nmodes = [3, 3]\nlayers = 1\n",
    );
    common::assert_fails(
        &["bench", "gp-operator", fno.to_str().unwrap()],
        2,
        "[train] has a neural operator; bench gp-operator needs [train.gp]",
    );
    // A damaged checkpoint is refused by its checksum.
    let ok = common::write(d, "ok.toml", &gp_config("d16.h5", "ok", ""));
    assert_eq!(
        common::run(&["train", ok.to_str().unwrap(), "--quiet"]).0,
        0
    );
    let ckpt = d.join("ok/checkpoint.safetensors");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    std::fs::write(&ckpt, bytes).unwrap();
    common::assert_fails(
        &[
            "evaluate",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--data",
            d.join("d16.h5").to_str().unwrap(),
        ],
        1,
        "SHA-256 checksum",
    );
}
