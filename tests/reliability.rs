//! Hostile input and interruptions: no panic or abort, clear errors, exact resumes.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

/// A Darcy training config on `data` (14 samples at 16×16) writing to `out`.
fn train_config(data: &str, epochs: usize, out: &str) -> String {
    format!(
        "[train]\ndata = \"{data}\"\ntrain_samples = 10\ntest_samples = 4\nepochs = {epochs}\nbatch_size = 2\noutput_dir = \"{out}\"\n[train.fno]\nwidth = 6\nmodes = [4, 4]\nlayers = 2\n"
    )
}

fn generate(d: &Path, name: &str, text: &str) {
    let cfg = common::write(d, &format!("{name}.toml"), text);
    let (code, out, err) = common::run(&["generate", cfg.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// Trains with the config `text` written as `name` in `d`, asserting success.
fn train_ok(d: &Path, name: &str, text: &str) {
    let cfg = common::write(d, name, text);
    let (code, out, err) = common::run(&["train", cfg.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{out}{err}");
}

/// The arguments of `pdekit evaluate --checkpoint CKPT --data DATA`.
fn evaluate(ckpt: &Path, data: &Path) -> [String; 5] {
    ["evaluate", "--checkpoint", path(ckpt), "--data", path(data)].map(str::to_string)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `args` as the `&[&str]` the runners take.
fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// The weights and the epoch history of a training run (wall times aside).
fn outcome(dir: &Path) -> (Vec<u8>, serde_json::Value) {
    let ckpt = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    let n = u64::from_le_bytes(ckpt[..8].try_into().unwrap()) as usize;
    let mut history = common::read_json(&dir.join("training_report.json"))["history"].clone();
    for r in history.as_array_mut().unwrap() {
        // Wall time and memory are the machine's, not the run's.
        r["seconds"] = serde_json::Value::Null;
        r["peak_rss_mib"] = serde_json::Value::Null;
    }
    (ckpt[8 + n..].to_vec(), history)
}

#[test]
fn one_ctrl_c_stops_training_with_a_checkpoint_and_exit_130_and_the_rerun_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "g", &common::darcy_config("d.h5", 14, 16, ""));
    let long = common::write(d, "long.toml", &train_config("d.h5", 100_000, "cut"));
    let child = common::pdekit()
        .args(["train", long.to_str().unwrap(), "--quiet"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first checkpoint is written, i.e. well inside the run.
    let started = Instant::now();
    while !d.join("cut/checkpoint.safetensors").exists() {
        assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // One interrupt must be enough: the run ends within a batch or two, not after its epochs.
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("one Ctrl-C did not stop training within a minute");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("training interrupted"), "{err}");
    assert!(err.contains("Rerun the same command to resume"), "{err}");
    // Finish two epochs past the interruption, and compare with an uninterrupted run.
    let stopped = pdekit::checkpoint::load(&d.join("cut/checkpoint.safetensors"))
        .unwrap()
        .state;
    let epochs = stopped.epoch + 2;
    let rest = common::write(d, "long.toml", &train_config("d.h5", epochs, "cut"));
    let (code, out, err) = common::run(&["train", rest.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("resuming from"), "{out}");
    train_ok(d, "whole.toml", &train_config("d.h5", epochs, "whole"));
    assert!(
        outcome(&d.join("cut")) == outcome(&d.join("whole")),
        "interrupted at {:?} (epoch {}): the resumed run must equal the uninterrupted one",
        stopped.partial,
        stopped.epoch
    );
    // Rerunning the finished config rewrites its report with the same numbers.
    let before = common::read_json(&d.join("cut/training_report.json"));
    train_ok(d, "long.toml", &train_config("d.h5", epochs, "cut"));
    let after = common::read_json(&d.join("cut/training_report.json"));
    assert_eq!(before["history"], after["history"]);
    assert_eq!(before["final"], after["final"]);
}

#[test]
fn evaluate_refuses_data_whose_channels_or_grids_differ_from_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ns = |snapshots: usize| {
        format!("[generate]\nproblem = \"navier_stokes\"\noutput = \"ns{snapshots}.h5\"\nsamples = 6\nseed = 0\n[generate.navier_stokes]\nresolution = 16\nfinal_time = 0.2\nsnapshots = {snapshots}\ndt = 1e-2\n")
    };
    generate(d, "ns4", &ns(4));
    generate(d, "ns2", &ns(2));
    train_ok(
        d,
        "t.toml",
        "[train]\ndata = \"ns4.h5\"\ntrain_samples = 4\ntest_samples = 2\nepochs = 1\nbatch_size = 2\noutput_dir = \"m\"\n[train.fno]\nwidth = 4\nmodes = [3, 3]\nlayers = 1\n",
    );
    let ckpt = d.join("m/checkpoint.safetensors");
    common::assert_fails(
        &strs(&evaluate(&ckpt, &d.join("ns2.h5"))),
        1,
        "field `outputs/vorticity`: expected 4 channels, as the model of",
    );
}

#[test]
fn modes_that_do_not_fit_the_grid_name_their_key_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "g", &common::darcy_config("d.h5", 14, 16, ""));
    let text = train_config("d.h5", 2, "o").replace("modes = [4, 4]", "modes = [9, 4]");
    let cfg = common::write(d, "t.toml", &text);
    let (code, _, err) = common::run(&["train", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("key `train.fno.modes`"), "{err}");
    assert!(err.contains("the data's grid is [16, 16]"), "{err}");
    assert!(!err.contains("checkpoint"), "{err}");
    assert!(!d.join("o/checkpoint.safetensors").exists());
}

#[test]
fn a_second_writer_of_a_dataset_or_checkpoint_stops_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = common::write(d, "g.toml", &common::darcy_config("d.h5", 14, 16, ""));
    let me = std::process::id().to_string();
    {
        // This test process plays the first writer.
        let _held = pdekit::files::WriteLock::acquire(&d.join("d.h5")).unwrap();
        let (code, _, err) = common::run(&["generate", cfg.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!("another process (PID {me}) is writing it")),
            "{err}"
        );
        assert!(!d.join("d.h5").exists() && !d.join("d.partial.h5").exists());
    }
    // Released (as it is when its holder exits, however it exits): the run goes ahead.
    assert_eq!(
        common::run(&["generate", cfg.to_str().unwrap(), "--quiet"]).0,
        0
    );
    assert!(!d.join("d.h5.lock").exists());
    let t = common::write(d, "t.toml", &train_config("d.h5", 1, "o"));
    let _held = pdekit::files::WriteLock::acquire(&d.join("o/checkpoint.safetensors")).unwrap();
    let (code, _, err) = common::run(&["train", t.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("checkpoint.safetensors: another process"),
        "{err}"
    );
}

#[test]
fn a_resume_knows_the_same_file_by_any_path_and_notices_changed_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "g", &common::darcy_config("d.h5", 14, 16, ""));
    train_ok(d, "t.toml", &train_config("d.h5", 1, "o"));
    // The same file, spelled through a folder and back, resumes.
    std::fs::create_dir(d.join("sub")).unwrap();
    let again = common::write(d, "t.toml", &train_config("sub/../d.h5", 2, "o"));
    let (code, out, err) = common::run(&["train", again.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("resuming from"), "{out}");
    // Other values under the same name do not.
    generate(
        d,
        "g",
        &common::darcy_config("d.h5", 14, 16, "").replace("seed = 3", "seed = 4"),
    );
    let more = common::write(d, "t.toml", &train_config("d.h5", 3, "o"));
    common::assert_fails(
        &["train", more.to_str().unwrap()],
        2,
        "was trained on other data (the data's values changed since)",
    );
}

#[test]
fn small_mistakes_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A GP solution that is not finite on the domain is the config's mistake.
    let gp = common::write(
        d,
        "gp.toml",
        "[gp]\npde = \"poisson\"\nsolution = \"1/x\"\ndomain = [-1.0, 1.0]\npoints = 21\nsteps = 10\noutput_dir = \"gp\"\n",
    );
    common::assert_fails(
        &["run", gp.to_str().unwrap()],
        2,
        "gp.solution = \"1/x\": its value is inf at x = 0",
    );
    // More shards than samples would leave shards empty.
    let g = common::write(d, "g.toml", &common::darcy_config("d.h5", 6, 8, ""));
    common::assert_fails(
        &["generate", g.to_str().unwrap(), "--shard", "0/1000"],
        2,
        "holds 6 samples, too few for 1000 non-empty shards",
    );
    assert!(!d.join("d.shard-0-of-1000.h5").exists());
    // An output folder that is a file.
    std::fs::write(d.join("taken"), "").unwrap();
    generate(d, "g", &common::darcy_config("d.h5", 14, 16, ""));
    let t = common::write(d, "t.toml", &train_config("d.h5", 1, "taken/run"));
    common::assert_fails(
        &["train", t.to_str().unwrap()],
        1,
        "cannot create this folder: ",
    );
    let (_, _, err) = common::run(&["train", t.to_str().unwrap()]);
    assert!(err.contains("taken is a file"), "{err}");
}

/// `bytes` with bit `bit` of byte `at` flipped.
fn flipped(bytes: &[u8], at: usize, bit: u32) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 1 << bit;
    b
}

/// Damaged copies of `bytes`: truncations, bit flips spread over the file (a fixed pseudo-random
/// walk, so every run tries the same ones), and files that are not of the kind at all.
fn damaged(bytes: &[u8], flips: usize) -> Vec<(String, Vec<u8>)> {
    let n = bytes.len();
    let mut out: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), Vec::new()),
        ("text".into(), b"x = 1\n".to_vec()),
        (
            "noise".into(),
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
    ];
    for frac in [0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.99] {
        let at = ((n as f64 * frac) as usize).min(n - 1);
        out.push((format!("truncated at {at}"), bytes[..at].to_vec()));
    }
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for k in 0..flips {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Half the flips in the first 4 KiB, where the headers and metadata are.
        let at = if k % 2 == 0 {
            state as usize % n.min(4096)
        } else {
            state as usize % n
        };
        let bit = (state >> 40) as u32 % 8;
        out.push((
            format!("bit {bit} of byte {at} flipped"),
            flipped(bytes, at, bit),
        ));
    }
    out
}

/// Exit 0, or 1 or 2 with an `error:` line; never a panic (101), an abort (134) or a signal.
fn assert_handled(what: &str, args: &[&str]) {
    let (code, out, err) = common::run(args);
    assert!(
        [0, 1, 2].contains(&code),
        "{what}: {args:?} ended with {code}:\n{out}{err}"
    );
    assert!(!err.contains("panicked"), "{what}: {args:?}:\n{err}");
    if code != 0 {
        assert!(
            err.contains("error: "),
            "{what}: {args:?} gave no message:\n{err}"
        );
    }
}

/// Truncated, bit-flipped and crafted datasets and checkpoints through inspect, train, evaluate
/// and plot: every one ends with a message, none with a panic, an abort or a signal.
#[test]
fn corrupt_datasets_and_checkpoints_never_panic_or_abort() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "g", &common::darcy_config("d.h5", 14, 16, ""));
    train_ok(d, "t.toml", &train_config("d.h5", 1, "good"));
    let good_data = d.join("d.h5");
    let good_ckpt = d.join("good/checkpoint.safetensors");
    let bad = d.join("bad.h5");
    let train = common::write(d, "bad.toml", &train_config("bad.h5", 1, "bad-run"));
    let plot = common::write(
        d,
        "plot.toml",
        "[plot]\ninput = \"bad.h5\"\noutput_dir = \"plots\"\nsamples = 2\n",
    );
    for (what, bytes) in damaged(&std::fs::read(&good_data).unwrap(), 150) {
        std::fs::write(&bad, &bytes).unwrap();
        let _ = std::fs::remove_dir_all(d.join("bad-run"));
        assert_handled(&what, &["inspect", path(&bad)]);
        assert_handled(&what, &["train", path(&train), "--quiet", "--force"]);
        assert_handled(&what, &strs(&evaluate(&good_ckpt, &bad)));
        assert_handled(&what, &["run", path(&plot), "--quiet"]);
    }
    let bad_ckpt = d.join("bad.safetensors");
    for (what, bytes) in damaged(&std::fs::read(&good_ckpt).unwrap(), 150) {
        std::fs::write(&bad_ckpt, &bytes).unwrap();
        assert_handled(&what, &strs(&evaluate(&bad_ckpt, &good_data)));
    }
    // A checkpoint whose header claims more bytes than the file holds, or a huge spec.
    let good = std::fs::read(&good_ckpt).unwrap();
    let mut long = good.clone();
    long[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&bad_ckpt, &long).unwrap();
    common::assert_fails(
        &strs(&evaluate(&bad_ckpt, &good_data)),
        1,
        "runs past the end of the file",
    );
}

/// A dataset of 8 samples of `inputs/x` and `outputs/y` with the given per-sample shapes.
fn xy_file(path: &Path, x: &[usize], y: &[usize], fill: f64) {
    use pdekit::data::h5::{DatasetWriter, Dtype, FieldSpec, Header};
    let field = |name: &str, frame: &[usize]| FieldSpec {
        path: name.into(),
        dtype: Dtype::F64,
        frame: frame.to_vec(),
    };
    let header = Header {
        attrs: vec![("format".into(), pdekit::data::FORMAT_NAME.into())],
        arrays: Vec::new(),
        fields: vec![field("inputs/x", x), field("outputs/y", y)],
    };
    let mut w = DatasetWriter::create(path, &header).unwrap();
    for i in 0..8 {
        let a: Vec<f64> = (0..x.iter().product::<usize>())
            .map(|k| fill + (k + i) as f64 * 0.01)
            .collect();
        let b: Vec<f64> = (0..y.iter().product::<usize>())
            .map(|k| 1.0 + (k * i) as f64 * 0.02)
            .collect();
        w.append(&[&a, &b]).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn crafted_files_with_mismatched_shapes_are_refused_by_train_and_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    xy_file(&d.join("ok.h5"), &[16, 16], &[16, 16], 0.0);
    let text = |data: &str, out: &str| {
        format!("[train]\ndata = \"{data}\"\ntrain_samples = 6\ntest_samples = 2\nepochs = 1\nbatch_size = 2\noutput_dir = \"{out}\"\n[train.fno]\nwidth = 4\nmodes = [3, 3]\nlayers = 1\n")
    };
    train_ok(d, "ok.toml", &text("ok.h5", "m"));
    let ckpt = d.join("m/checkpoint.safetensors");
    for (name, x, y, want) in [
        ("grids.h5", [16, 16], [8, 8], "has grid [16, 16] but"),
        ("flat.h5", [16, 16], [256, 1], "has grid [16, 16] but"),
    ] {
        xy_file(&d.join(name), &x, &y, 0.0);
        let cfg = common::write(d, "bad.toml", &text(name, "n"));
        common::assert_fails(&["train", cfg.to_str().unwrap()], 2, want);
        let (code, _, err) = common::run(&strs(&evaluate(&ckpt, &d.join(name))));
        assert!(code == 1 || code == 2, "{name}: {code} {err}");
        assert!(
            err.contains("error: ") && !err.contains("panicked"),
            "{err}"
        );
    }
    // Values beyond f32 (which the models compute in) are refused, naming the sample.
    xy_file(&d.join("huge.h5"), &[16, 16], &[16, 16], 1e39);
    common::assert_fails(
        &strs(&evaluate(&ckpt, &d.join("huge.h5"))),
        1,
        "field `inputs/x`, sample 0, holds 1e39",
    );
}
