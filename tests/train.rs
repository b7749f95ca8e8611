//! `pdekit bench train`: a tiny FNO step runs and reports honest figures; bad sizes are clear
//! errors.

mod common;

#[test]
fn bench_train_times_a_step_and_writes_its_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::pdekit()
        .args([
            "bench", "train", "--width", "4", "--modes", "3", "--grid", "16", "--batch", "2",
            "--layers", "2", "--steps", "2", "--quiet",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
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
        err.contains("--modes gives 2 axes but --grid gives 1"),
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
