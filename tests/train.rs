//! `pdekit bench train`: a tiny FNO step runs and reports honest figures; bad sizes are clear
//! errors.

mod common;

#[test]
fn bench_train_times_a_step_and_writes_its_json() {
    let dir = tempfile::tempdir().unwrap();
    common::succeed(
        common::pdekit()
            .args([
                "bench", "train", "--width", "4", "--modes", "3", "--grid", "16", "--batch", "2",
                "--layers", "2", "--steps", "2", "--quiet",
            ])
            .current_dir(dir.path()),
    );
    let json = std::fs::read_dir(dir.path().join("bench/results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("train-fno-")
        })
        .expect("a train JSON");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert!(doc["step_seconds_median"].as_f64().unwrap() > 0.0);
    assert_eq!(doc["timed_steps"].as_u64(), Some(2));
    assert!(doc["model"]["parameters"].as_u64().unwrap() > 0);
    assert!(doc["peer"].is_null());
    assert!(doc["rss_at_end_mib"].as_f64().unwrap() > 0.0);
    let series = doc["rss_mib_per_step"].as_array().unwrap();
    assert_eq!(
        series.len(),
        2,
        "one resident-memory reading per timed step"
    );
    assert!(series.iter().all(|v| v.as_f64().unwrap() > 0.0));
}

#[test]
fn bench_train_refuses_mismatched_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::pdekit()
        .args(["bench", "train", "--modes", "3", "3", "--grid", "16"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the FNO has modes for 2 axes but --grid gives 1"),
        "{err}"
    );
    let out = common::pdekit()
        .args(["bench", "train", "--modes", "12", "--grid", "16"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds 12 modes along axis 0"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn train_config(data: &str, epochs: usize, out: &str, extra: &str) -> String {
    format!(
        "[train]\ndata = \"{data}\"\ntrain_samples = 10\ntest_samples = 4\nepochs = {epochs}\nbatch_size = 4\nlearning_rate = 5e-3\noutput_dir = \"{out}\"\n{extra}\n[train.fno]\nwidth = 6\nmodes = [4, 4]\nlayers = 2\n"
    )
}

fn history(report: &std::path::Path) -> Vec<[f64; 4]> {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    doc["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            ["learning_rate", "train_loss", "test_l2", "test_h1"].map(|k| r[k].as_f64().unwrap())
        })
        .collect()
}

/// 14 Darcy samples at 16×16 (`d16.h5`) and at 24×24 (`d24.h5`) in `d`.
fn darcy_at_16_and_24(d: &std::path::Path) {
    for (name, res) in [("d16.h5", 16), ("d24.h5", 24)] {
        let cfg = common::write(
            d,
            &format!("g{res}.toml"),
            &common::darcy_config(name, 14, res, ""),
        );
        let (code, out, err) = common::run(&["generate", cfg.to_str().unwrap(), "--quiet"]);
        assert_eq!(code, 0, "{out}{err}");
    }
}

#[test]
fn tensorboard_event_files_hold_every_batch_and_epoch_and_a_resume_continues_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    darcy_at_16_and_24(d);
    let extra = "tensorboard = true";
    let first = common::write(d, "tb.toml", &train_config("d16.h5", 2, "tb", extra));
    let (code, out, err) = common::run(&["train", first.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("tensorboard --logdir"), "{out}");
    let more = common::write(d, "tb.toml", &train_config("d16.h5", 3, "tb", extra));
    let (code, out, err) = common::run(&["train", more.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{out}{err}");
    let mut files: Vec<_> = std::fs::read_dir(d.join("tb"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "the resume adds a second file: {files:?}");
    let scalars: Vec<_> = files
        .iter()
        .flat_map(|f| pdekit::tensorboard::read_scalars(f).unwrap())
        .collect();
    let series = |tag: &str| -> Vec<(i64, f32)> {
        scalars
            .iter()
            .filter(|s| s.tag == tag)
            .map(|s| (s.step, s.value))
            .collect()
    };
    // 10 training samples in batches of 4: 3 batches per epoch, 3 epochs.
    let losses = series("batch/loss");
    assert_eq!(
        losses.iter().map(|s| s.0).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>()
    );
    for tag in [
        "batch/running_loss",
        "batch/learning_rate",
        "batch/seconds",
        "batch/rss_mib",
    ] {
        assert_eq!(series(tag).len(), 9, "{tag}");
    }
    let hist = history(&d.join("tb/training_report.json"));
    let test_l2 = series("epoch/test_l2");
    assert_eq!(
        test_l2.iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    for (e, (row, (_, logged))) in hist.iter().zip(&test_l2).enumerate() {
        assert_eq!(*logged, row[2] as f32, "epoch {e} test L2");
        // The epoch's training loss is the mean of its batches' losses.
        let mean: f64 = losses[3 * e..3 * e + 3]
            .iter()
            .map(|s| s.1 as f64)
            .sum::<f64>()
            / 3.0;
        assert!(
            (mean - row[1]).abs() < 1e-6 * row[1].abs().max(1e-3),
            "epoch {e}: {mean} vs {}",
            row[1]
        );
    }
    for tag in [
        "epoch/train_loss",
        "epoch/test_h1",
        "epoch/learning_rate",
        "epoch/seconds",
        "epoch/peak_rss_mib",
    ] {
        assert_eq!(series(tag).len(), 3, "{tag}");
    }
}

#[test]
fn compare_puts_two_runs_side_by_side_from_their_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    darcy_at_16_and_24(d);
    let runs = [("narrow", "width = 4"), ("wide", "width = 8")];
    for (name, width) in runs {
        let cfg = common::write(
            d,
            &format!("{name}.toml"),
            &train_config("d16.h5", 2, name, "").replace("width = 6", width),
        );
        let (code, out, err) = common::run(&["train", cfg.to_str().unwrap(), "--quiet"]);
        assert_eq!(code, 0, "{out}{err}");
    }
    let out_dir = d.join("cmp");
    let (code, out, err) = common::run(&[
        "compare",
        d.join("narrow").to_str().unwrap(),
        d.join("wide/checkpoint.safetensors").to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--format",
        "svg",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("parameters") && out.contains("narrow"),
        "{out}"
    );
    for f in ["test_error.svg", "predictions.svg", "compare.json"] {
        assert!(out_dir.join(f).exists(), "{f}");
    }
    let doc = common::read_json(&out_dir.join("compare.json"));
    let rows = doc["runs"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, (name, _)) in rows.iter().zip(runs) {
        // The table holds what each run's own report says.
        let report = common::read_json(&d.join(name).join("training_report.json"));
        assert_eq!(row["parameters"], report["parameters"], "{name}");
        assert_eq!(row["final_test_l2"], report["final"]["test_l2"], "{name}");
        assert_eq!(row["epochs"], 2);
    }
    // The panel's sample is the first test row (10 training samples precede it), and each run's
    // error on it is finite.
    assert_eq!(doc["sample"]["row"], 10);
    let rel = doc["sample"]["relative_l2"].as_array().unwrap();
    assert!(
        rel.iter().all(|v| v.as_f64().unwrap().is_finite()),
        "{rel:?}"
    );
    // Bad input: one run, a directory without a checkpoint, a row past the end.
    common::assert_fails(&["compare", d.join("narrow").to_str().unwrap()], 2, "");
    common::assert_fails(
        &[
            "compare",
            d.join("narrow").to_str().unwrap(),
            d.to_str().unwrap(),
        ],
        2,
        "no checkpoint there",
    );
    common::assert_fails(
        &[
            "compare",
            d.join("narrow").to_str().unwrap(),
            d.join("wide").to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--row",
            "99",
        ],
        2,
        "--row 99",
    );
}

#[test]
fn train_resume_and_evaluate_at_another_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    darcy_at_16_and_24(d);
    // Four epochs in one run, and two plus two with a resume in between.
    let whole = common::write(d, "whole.toml", &train_config("d16.h5", 4, "whole", ""));
    let (code, out, err) = common::run(&["train", whole.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{out}{err}");
    let half = common::write(d, "half.toml", &train_config("d16.h5", 2, "split", ""));
    assert_eq!(
        common::run(&["train", half.to_str().unwrap(), "--quiet"]).0,
        0
    );
    let rest = common::write(d, "half.toml", &train_config("d16.h5", 4, "split", ""));
    let (code, out, err) = common::run(&["train", rest.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("resuming from"), "{out}");
    let (a, b) = (
        history(&d.join("whole/training_report.json")),
        history(&d.join("split/training_report.json")),
    );
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "a resumed run must repeat the uninterrupted one");
    for f in ["loss.png", "predictions.png", "checkpoint.safetensors"] {
        assert!(d.join("whole").join(f).exists(), "{f}");
    }
    // Zero-shot evaluation at 24×24 from the checkpoint alone.
    let ckpt = d.join("whole/checkpoint.safetensors");
    let out_json = d.join("eval24.json");
    let (code, out, err) = common::run(&[
        "evaluate",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data",
        d.join("d24.h5").to_str().unwrap(),
        "--out",
        out_json.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
    assert_eq!(doc["grid"], serde_json::json!([24, 24]));
    assert_eq!(doc["per_sample"].as_array().unwrap().len(), 14);
    let l2 = doc["overall"]["rel_l2"].as_f64().unwrap();
    assert!(l2.is_finite() && l2 > 0.0, "{l2}");
}

#[test]
fn subsampled_training_and_evaluation_see_the_same_coarse_grid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    darcy_at_16_and_24(d);
    let cfg = common::write(
        d,
        "sub.toml",
        &train_config("d24.h5", 2, "sub", "subsample = 2"),
    );
    let (code, out, err) = common::run(&["train", cfg.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{out}{err}");
    let last_test_l2 = history(&d.join("sub/training_report.json")).last().unwrap()[2];
    let ckpt = d.join("sub/checkpoint.safetensors");
    let data = d.join("d24.h5");
    let evaluate = |extra: &[&str], json: &str| {
        let out_json = d.join(json);
        let mut args = vec![
            "evaluate",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            out_json.to_str().unwrap(),
        ];
        args.extend(extra);
        let (code, out, err) = common::run(&args);
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&out_json).unwrap())
            .unwrap()
    };
    // The model trained on 12×12 (every other point of 24); evaluated there, its error on the
    // test rows (10..14) is the one training reported last.
    let coarse = evaluate(&["--subsample", "2"], "coarse.json");
    assert_eq!(coarse["grid"], serde_json::json!([12, 12]));
    let rows = coarse["per_sample"].as_array().unwrap();
    let test_mean = rows[10..14]
        .iter()
        .map(|r| r["rel_l2"].as_f64().unwrap())
        .sum::<f64>()
        / 4.0;
    assert!(
        (test_mean - last_test_l2).abs() <= 1e-4 * last_test_l2,
        "evaluate {test_mean} vs training {last_test_l2}"
    );
    // --start picks the test rows themselves: the overall mean is then training's test error.
    let split = evaluate(&["--subsample", "2", "--start", "10"], "split.json");
    assert_eq!(split["samples"], 4);
    assert_eq!(split["per_sample"][0]["sample"], 10);
    let split_mean = split["overall"]["rel_l2"].as_f64().unwrap();
    assert!(
        (split_mean - last_test_l2).abs() <= 1e-4 * last_test_l2,
        "evaluate --start 10: {split_mean} vs training {last_test_l2}"
    );
    let fine = evaluate(&[], "fine.json");
    assert_eq!(fine["grid"], serde_json::json!([24, 24]));
    assert!(fine["overall"]["rel_l2"].as_f64().unwrap().is_finite());
    let (ckpt, data) = (ckpt.to_str().unwrap(), data.to_str().unwrap());
    let eval = ["evaluate", "--checkpoint", ckpt, "--data", data];
    let with = |extra: [&'static str; 2]| [&eval[..], &extra[..]].concat();
    common::assert_fails(
        &with(["--subsample", "0"]),
        2,
        "--subsample must be at least 1",
    );
    common::assert_fails(&with(["--start", "14"]), 2, "--start 14: ");
    common::assert_fails(&with(["--start", "14"]), 2, "holds 14 samples");
}

/// A non-finite training loss is a failure at run time (exit 1), not a usage error, and the
/// message names a checkpoint only when one exists.
#[test]
fn a_nan_training_loss_stops_with_exit_1_and_no_phantom_checkpoint() {
    use pdekit::pipeline::generate;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gen = common::write(d, "g.toml", &common::darcy_config("d.h5", 14, 16, ""));
    assert_eq!(
        common::run(&["generate", gen.to_str().unwrap(), "--quiet"]).0,
        0
    );
    // The same dataset with one NaN in the first training target.
    let nan = common::write(d, "n.toml", &common::darcy_config("nan.h5", 14, 16, ""));
    let plan = pdekit::config::Plan::load(&nan).unwrap();
    let g = plan.generate.as_ref().unwrap();
    let header = generate::header(&plan, g, &generate::family(g).unwrap().layout(), None);
    let src = pdekit::data::Dataset::open(&d.join("d.h5")).unwrap();
    let mut w = pdekit::data::h5::DatasetWriter::create(&d.join("nan.h5"), &header).unwrap();
    for i in 0..14 {
        let mut values: Vec<Vec<f64>> = header
            .fields
            .iter()
            .map(|f| src.sample(&f.path, i).unwrap().iter().copied().collect())
            .collect();
        if i == 0 {
            values[1][40] = f64::NAN;
        }
        let refs: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
        w.append(&refs).unwrap();
    }
    w.finish().unwrap();
    // NaN in the data is refused before training, naming the field and sample; so is it by
    // evaluate, which used to print "relative L2 NaN" and exit 0.
    let cfg = common::write(d, "t.toml", &train_config("nan.h5", 3, "o", ""));
    let (code, _, err) = common::run(&["train", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("field `outputs/solution`, sample 0, holds NaN"),
        "{err}"
    );
    assert!(!d.join("o/checkpoint.safetensors").exists());
    let ok = common::write(d, "ok.toml", &train_config("d.h5", 1, "ok", ""));
    assert_eq!(
        common::run(&["train", ok.to_str().unwrap(), "--quiet"]).0,
        0
    );
    common::assert_fails(
        &[
            "evaluate",
            "--checkpoint",
            d.join("ok/checkpoint.safetensors").to_str().unwrap(),
            "--data",
            d.join("nan.h5").to_str().unwrap(),
        ],
        1,
        "sample 0, holds NaN",
    );
    // From finite data, a loss made NaN by the optimiser (an eps that is 0 in f32 divides 0 by
    // 0) stops with exit 1, and names no checkpoint when none was written.
    let cfg = common::write(d, "t.toml", &train_config("d.h5", 3, "o", "eps = 1e-300"));
    let (code, _, err) = common::run(&["train", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("the training loss became NaN at epoch 0"),
        "{err}"
    );
    assert!(
        !err.contains("checkpoint"),
        "no checkpoint was written: {err}"
    );
    assert!(!d.join("o/checkpoint.safetensors").exists());
}

#[test]
fn train_and_evaluate_refuse_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = common::write(d, "g.toml", &common::darcy_config("d.h5", 6, 16, ""));
    assert_eq!(
        common::run(&["generate", cfg.to_str().unwrap(), "--quiet"]).0,
        0
    );
    // More samples than the dataset holds.
    let bad = common::write(d, "t.toml", &train_config("d.h5", 1, "o", ""));
    let (code, _, err) = common::run(&["train", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("= 14 but") && err.contains("holds 6 samples"),
        "{err}"
    );
    // One mode count for 2-D data.
    let text = train_config("d.h5", 1, "o", "")
        .replace(
            "train_samples = 10\ntest_samples = 4",
            "train_samples = 4\ntest_samples = 2",
        )
        .replace("modes = [4, 4]", "modes = [4]");
    let bad = common::write(d, "t.toml", &text);
    let (code, _, err) = common::run(&["train", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("one mode or sensor count per grid axis"),
        "{err}"
    );
    // Config errors name the key.
    common::assert_config_error(
        "[train]\ndata = \"d.h5\"\ntrain_samples = 4\ntest_samples = 2\noutput_dir = \"o\"\ntensorboard = true\n[train.gp]\n",
        6,
        "train.tensorboard",
        "applies to the neural operators",
    );
    common::assert_config_error(
        &format!("{}block = \"torch\"\n", train_config("d.h5", 1, "o", "")),
        14,
        "train.fno.block",
        "unknown variant `torch`",
    );
    common::assert_config_error(
        &train_config("d.h5", 1, "o", "optimizer = \"sgd\"\n"),
        9,
        "train.optimizer",
        "unknown variant `sgd`",
    );
    common::assert_config_error(
        &format!(
            "{}embedding = \"sawtooth\"\n",
            train_config("d.h5", 1, "o", "")
        ),
        14,
        "train.fno.embedding",
        "unknown variant `sawtooth`",
    );
    common::assert_config_error(
        &format!(
            "{}domain_padding_mode = \"both\"\n",
            train_config("d.h5", 1, "o", "")
        ),
        14,
        "train.fno.domain_padding_mode",
        "unknown variant `both`, expected `one-sided` or `symmetric`",
    );
    // A missing or corrupt checkpoint.
    let (code, _, err) = common::run(&[
        "evaluate",
        "--checkpoint",
        d.join("none.safetensors").to_str().unwrap(),
        "--data",
        d.join("d.h5").to_str().unwrap(),
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("no such file"), "{err}");
    let junk = d.join("junk.safetensors");
    std::fs::write(&junk, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ").unwrap();
    let (code, _, err) = common::run(&[
        "evaluate",
        "--checkpoint",
        junk.to_str().unwrap(),
        "--data",
        d.join("d.h5").to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("header is not JSON"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `[train]` with the given model table instead of `[train.fno]`.
fn model_config(data: &str, out: &str, model: &str) -> String {
    train_config(data, 2, out, "").replace(
        "[train.fno]\nwidth = 6\nmodes = [4, 4]\nlayers = 2\n",
        model,
    )
}

#[test]
fn tfno_ffno_factformer_and_deeponet_train_checkpoint_and_evaluate_at_another_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    darcy_at_16_and_24(d);
    let models = [
        ("tfno", "[train.tfno]\nwidth = 6\nmodes = [4, 4]\nlayers = 2\nfactorization = \"tucker\"\nrank = 0.3\n"),
        ("cp", "[train.tfno]\nwidth = 6\nmodes = [4, 4]\nlayers = 2\nfactorization = \"cp\"\nranks = [5]\n"),
        ("ffno", "[train.ffno]\nwidth = 6\nmodes = [4, 4]\nlayers = 3\nshare_weights = true\ndomain_padding = 0.1\ndomain_padding_mode = \"symmetric\"\nembedding = \"periodic\"\n"),
        ("deeponet", "[train.deeponet]\nsensors = [8, 8]\nbranch = [16]\ntrunk = [16, 16]\nbasis = 8\n"),
        ("factformer", "[train.factformer]\nwidth = 8\ndepth = 2\nheads = 2\nlatent = 6\n"),
        ("ifactformer", "[train.factformer]\nwidth = 8\ndepth = 3\nheads = 2\nvariant = \"parallel\"\nimplicit = true\nembedding = \"periodic\"\n"),
    ];
    for (name, table) in models {
        let cfg = common::write(
            d,
            &format!("{name}.toml"),
            &model_config("d16.h5", name, table),
        );
        let (code, out, err) = common::run(&["train", cfg.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        let h = history(&d.join(name).join("training_report.json"));
        assert_eq!(h.len(), 2, "{name}");
        assert!(
            h.iter().all(|r| r.iter().all(|v| v.is_finite())),
            "{name}: {h:?}"
        );
        let report = common::read_json(&d.join(name).join("training_report.json"));
        let kind = match name {
            "cp" => "tfno",
            "ifactformer" => "factformer",
            other => other,
        };
        assert_eq!(report["model"]["kind"], kind, "{name}");
        // The checkpoint alone rebuilds the model, here on a 24×24 grid.
        let out_json = d.join(format!("{name}-24.json"));
        let (code, out, err) = common::run(&[
            "evaluate",
            "--checkpoint",
            d.join(name)
                .join("checkpoint.safetensors")
                .to_str()
                .unwrap(),
            "--data",
            d.join("d24.h5").to_str().unwrap(),
            "--out",
            out_json.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
        let l2 = doc["overall"]["rel_l2"].as_f64().unwrap();
        assert!(l2.is_finite() && l2 > 0.0, "{name}: {l2}");
    }
}

#[test]
fn mgtfno_trains_checkpoints_and_evaluates_where_its_grid_divides() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    darcy_at_16_and_24(d);
    let table = "[train.mgtfno]\nwidth = 6\nmodes = [3, 3]\nlayers = 2\nfactorization = \"tucker\"\nrank = 0.3\nlevels = 2\npadding_fraction = 0.125\npatch_batch = 5\n";
    let cfg = common::write(d, "mg.toml", &model_config("d16.h5", "mg", table));
    let (code, out, err) = common::run(&["train", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("trained the MG-TFNO") && out.contains("peak memory"),
        "{out}"
    );
    let report = common::read_json(&d.join("mg/training_report.json"));
    assert_eq!(report["model"]["kind"], "mgtfno");
    assert_eq!(report["model"]["levels"], 2);
    // Per level: the data channel and the whole field's two linear coordinates.
    assert_eq!(report["model"]["tfno"]["in_channels"], 9);
    assert_eq!(report["model"]["global_coordinates"], true);
    // Each epoch reports its own peak memory.
    for r in report["history"].as_array().unwrap() {
        assert!(r["peak_rss_mib"].as_f64().unwrap() > 1.0, "{r}");
    }
    // The checkpoint alone scores the test split exactly as training did.
    let ckpt = d.join("mg/checkpoint.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let scored = d.join("mg-test.json");
    let (code, out, err) = common::run(&[
        "evaluate",
        "--checkpoint",
        ckpt,
        "--data",
        d.join("d16.h5").to_str().unwrap(),
        "--start",
        "10",
        "--samples",
        "4",
        "--out",
        scored.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let doc = common::read_json(&scored);
    let final_l2 = report["final"]["test_l2"].as_f64().unwrap();
    let l2 = doc["overall"]["rel_l2"].as_f64().unwrap();
    assert!(
        (l2 - final_l2).abs() <= 1e-6 * final_l2,
        "{l2} vs {final_l2}"
    );
    // 24 points split into 4 patches of 6: another resolution works.
    let (code, out, err) = common::run(&[
        "evaluate",
        "--checkpoint",
        ckpt,
        "--data",
        d.join("d24.h5").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // 18 points do not: a clear error naming the key, at evaluate, at train start and at
    // --dry-run once the data exists.
    let g = common::write(d, "g18.toml", &common::darcy_config("d18.h5", 14, 18, ""));
    let (code, out, err) = common::run(&["generate", g.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = common::run(&[
        "evaluate",
        "--checkpoint",
        ckpt,
        "--data",
        d.join("d18.h5").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("d18.h5: multigrid patching: levels = 2") && err.contains("[18, 18]"),
        "{err}"
    );
    let bad = common::write(d, "bad.toml", &model_config("d18.h5", "bad", table));
    for args in [vec!["train"], vec!["run", "--dry-run"]] {
        let mut args = args.clone();
        args.push(bad.to_str().unwrap());
        let (code, out, err) = common::run(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(
            err.contains("key `train.mgtfno.levels`")
                && err.contains("levels = 2 cuts each axis into 4 patches")
                && err.contains("bad.toml"),
            "{args:?}: {err}"
        );
    }
    assert!(!d.join("bad/checkpoint.safetensors").exists());
}

#[test]
fn model_tables_are_checked_with_clear_errors() {
    let two = format!(
        "{}[train.ffno]\nwidth = 6\nmodes = [4, 4]\nlayers = 2\n",
        train_config("d.h5", 1, "o", "")
    );
    common::assert_config_error(
        &two,
        14,
        "train.ffno",
        "exactly one model table ([train.fno], [train.tfno], [train.mgtfno], [train.ffno], [train.factformer], [train.deeponet], [train.gp]), got [train.fno] and [train.ffno]",
    );
    common::assert_config_error(
        &model_config(
            "d.h5",
            "o",
            "[train.tfno]\nwidth = 6\nmodes = [4, 4]\nlayers = 2\nfactorization = \"tucker\"\nranks = [2, 2]\n",
        ),
        15,
        "train.tfno.ranks",
        "expected one rank per weight axis [8, 4, 6, 6] (modes…, c_in, c_out), each from 1 to that axis' size, got [2, 2]",
    );
    common::assert_config_error(
        &model_config(
            "d.h5",
            "o",
            "[train.deeponet]\nsensors = [8, 8]\nbranch = []\ntrunk = [4]\nbasis = 8\n",
        ),
        12,
        "train.deeponet.branch",
        "expected a non-empty list of positive widths, got []",
    );
}

/// Checkpoints written before specs were derived by serde (format version 1, see
/// tests/fixtures/checkpoints_v1/README.md) load and score exactly as they did.
#[test]
fn version_1_checkpoints_evaluate_to_the_same_numbers_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoints_v1");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("expected.json")).unwrap())
            .unwrap();
    for kind in ["fno", "tfno", "ffno", "deeponet"] {
        let out = dir.path().join(format!("{kind}.json"));
        let ckpt = fixtures.join(format!("{kind}.safetensors"));
        let data = fixtures.join("darcy12.h5");
        let (code, _, err) = common::run(&[
            "evaluate",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{kind}: {err}");
        let got: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let rows = got["per_sample"].as_array().unwrap();
        let want = expected[kind].as_array().unwrap();
        assert_eq!(rows.len(), want.len(), "{kind}");
        for (r, w) in rows.iter().zip(want) {
            for key in ["sample", "rel_l2", "rel_h1", "rmse", "max_error"] {
                assert_eq!(r[key], w[key], "{kind}: {key} of sample {}", w["sample"]);
            }
        }
    }
}

#[test]
fn trains_on_neuraloperator_and_pdebench_files() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    // The time series train on one-step pairs u(t) → u(t + Δt): The Well's four-channel state,
    // and PDEBench's 2-D sample groups (two channels).
    for (file, train, test, fields, modes) in [
        ("neuraloperator_f32.h5", 2, 1, "", "[2, 2]"),
        ("pdebench_darcy.h5", 1, 1, "", "[2, 2]"),
        (
            "the_well_2d.h5",
            4,
            2,
            "input = \"state\"\noutput = \"state\"\n",
            "[2, 2]",
        ),
        ("pdebench_2d_groups.h5", 3, 1, "", "[2, 2]"),
        ("pdebench_1d.h5", 8, 4, "", "[3]"),
    ] {
        let text = format!(
            "[train]\ndata = \"{}\"\n{fields}train_samples = {train}\ntest_samples = {test}\nepochs = 2\nbatch_size = {train}\noutput_dir = \"out-{file}\"\n[train.fno]\nwidth = 4\nmodes = {modes}\nlayers = 1\n",
            fixtures.join(file).display()
        );
        let cfg = common::write(dir.path(), &format!("{file}.toml"), &text);
        let (code, out, err) = common::run(&["train", cfg.to_str().unwrap()]);
        assert_eq!(code, 0, "{file}: {out}{err}");
        let h = history(&dir.path().join(format!("out-{file}/training_report.json")));
        assert_eq!(h.len(), 2, "{file}");
        assert!(
            h.iter().all(|r| r.iter().all(|v| v.is_finite())),
            "{file}: {h:?}"
        );
    }
}

#[test]
fn snapshots_become_output_channels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gen = "[generate]\nproblem = \"navier_stokes\"\noutput = \"ns.h5\"\nsamples = 6\nseed = 1\n[generate.navier_stokes]\nresolution = 16\nfinal_time = 0.03\nsnapshots = 3\ndt = 0.01\n";
    let cfg = common::write(d, "g.toml", gen);
    let (code, out, err) = common::run(&["generate", cfg.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{out}{err}");
    let text = "[train]\ndata = \"ns.h5\"\ninput = \"initial_vorticity\"\noutput = \"vorticity\"\ntrain_samples = 4\ntest_samples = 2\nepochs = 1\nbatch_size = 2\noutput_dir = \"o\"\n[train.ffno]\nwidth = 4\nmodes = [3, 3]\nlayers = 2\n";
    let cfg = common::write(d, "t.toml", text);
    let (code, out, err) = common::run(&["train", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("o/training_report.json")).unwrap())
            .unwrap();
    assert_eq!(report["model"]["in_channels"], 1);
    assert_eq!(report["model"]["out_channels"], 3);
}

#[test]
fn a_separate_test_file_splits_and_evaluate_scores_several_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    darcy_at_16_and_24(d);
    // A test file of another seed at the training grid.
    let cfg = common::write(
        d,
        "t.toml",
        &common::darcy_config("t16.h5", 8, 16, "").replace("seed = 3", "seed = 11"),
    );
    assert_eq!(
        common::run(&["generate", cfg.to_str().unwrap(), "--quiet"]).0,
        0
    );
    let split = "test_data = \"t16.h5\"\ntest_start = 2\n";
    let text =
        train_config("d16.h5", 2, "sep", split).replace("test_samples = 4", "test_samples = 5");
    let cfg = common::write(d, "sep.toml", &text);
    let (code, out, err) = common::run(&["train", cfg.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{out}{err}");
    let ckpt = d.join("sep/checkpoint.safetensors");
    // The test error of the last epoch is the checkpoint's score on rows 2..7 of the test file.
    let last = *history(&d.join("sep/training_report.json")).last().unwrap();
    let (code, out, err) = common::run(&[
        "evaluate",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data",
        d.join("t16.h5").to_str().unwrap(),
        d.join("d24.h5").to_str().unwrap(),
        "--start",
        "2",
        "--samples",
        "5",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("relative L2").count(), 2, "{out}");
    let t = common::read_json(&d.join("sep/evaluation-t16-rows2-7.json"));
    let l2 = t["overall"]["rel_l2"].as_f64().unwrap();
    assert!(
        (l2 - last[2]).abs() <= 1e-6 * last[2],
        "{l2} vs {}",
        last[2]
    );
    assert!(d.join("sep/evaluation-d24-rows2-7.json").exists());
    // --out names one file: refused with two datasets.
    common::assert_fails(
        &[
            "evaluate",
            "--checkpoint",
            ckpt.to_str().unwrap(),
            "--data",
            d.join("t16.h5").to_str().unwrap(),
            d.join("d24.h5").to_str().unwrap(),
            "--out",
            d.join("x.json").to_str().unwrap(),
        ],
        2,
        "--out names one file but --data gives 2 datasets",
    );
    // A test file on another grid, too few test rows, test_start alone: clear errors.
    for (name, extra, want) in [
        (
            "bad",
            "test_data = \"d24.h5\"\n",
            "train and test must match",
        ),
        (
            "short",
            "test_data = \"t16.h5\"\ntest_start = 6\n",
            "train.test_start + train.test_samples = 10 but",
        ),
        (
            "alone",
            "test_start = 3\n",
            "key `train.test_start`: only applies with train.test_data",
        ),
    ] {
        let cfg = common::write(
            d,
            &format!("{name}.toml"),
            &train_config("d16.h5", 1, name, extra),
        );
        common::assert_fails(&["train", cfg.to_str().unwrap()], 2, want);
    }
}
