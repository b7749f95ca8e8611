//! The dataset module: HDF5 round trips, partial reads, crash recovery and foreign layouts.

mod common;

use common::*;
use pdekit::config::Plan;
use pdekit::data::h5::{DatasetWriter, Dtype, FieldSpec, Header};
use pdekit::data::{DataError, Dataset, Layout};
use pdekit::pipeline::{generate, RunOptions};
use pdekit::progress::Reporter;
use pdekit_solvers::grid::{Centring, Grid2d};
use pdekit_solvers::problem::darcy::assemble;
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn opts() -> RunOptions {
    RunOptions {
        force: false,
        reporter: Reporter::silent(),
        shard: None,
    }
}

fn header(fields: Vec<FieldSpec>) -> Header {
    Header {
        attrs: vec![
            ("format".into(), "pdekit-dataset".into()),
            ("note".into(), "round trip".into()),
        ],
        arrays: vec![
            ("grid/x".into(), vec![0.0, 0.5, 1.0]),
            ("grid/y".into(), vec![0.0, 1.0]),
        ],
        fields,
    }
}

fn spec(path: &str, dtype: Dtype, frame: Vec<usize>) -> FieldSpec {
    FieldSpec {
        path: path.into(),
        dtype,
        frame,
    }
}

#[test]
fn dataset_write_read_round_trip_preserves_values_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("rt.h5");
    let h = header(vec![
        spec("inputs/a", Dtype::F64, vec![3, 2]),
        spec("outputs/b", Dtype::F32, vec![3, 2]),
        spec("stats/n", Dtype::U32, vec![]),
        spec("stats/ok", Dtype::U8, vec![]),
        spec("params/id", Dtype::U64, vec![]),
    ]);
    let mut w = DatasetWriter::create(&target, &h).unwrap();
    assert!(
        w.partial_path().exists(),
        "samples accumulate in the partial file"
    );
    assert!(
        !target.exists(),
        "the final name appears only when complete"
    );
    for i in 0..10u32 {
        let a: Vec<f64> = (0..6).map(|k| i as f64 + k as f64 / 7.0).collect();
        let b: Vec<f64> = a.iter().map(|v| -v).collect();
        w.append(&[
            &a,
            &b,
            &[f64::from(i * 3)],
            &[f64::from(i % 2)],
            &[1e12 + f64::from(i)],
        ])
        .unwrap();
    }
    let out = w.finish().unwrap();
    assert_eq!(out, target);
    assert!(!dir.path().join("rt.partial.h5").exists());

    let ds = Dataset::open(&target).unwrap();
    assert_eq!(ds.layout(), Layout::Pdekit);
    assert_eq!(ds.len(), 10);
    assert_eq!(ds.attr("note").as_deref(), Some("round trip"));
    assert_eq!(
        ds.grid().unwrap(),
        Some((vec![0.0, 0.5, 1.0], vec![0.0, 1.0]))
    );
    let a = ds.read_all("inputs/a").unwrap();
    assert_eq!(a.shape(), &[10, 3, 2]);
    assert_eq!(a[[4, 2, 1]], 4.0 + 5.0 / 7.0);
    let b = ds.read_all("outputs/b").unwrap();
    assert_eq!(
        b[[4, 2, 1]],
        -((4.0 + 5.0 / 7.0) as f32) as f64,
        "f32 storage rounds once"
    );
    assert_eq!(ds.field("outputs/b").unwrap().dtype, "f32");
    assert_eq!(ds.read_all("stats/n").unwrap()[[9]], 27.0);
    assert_eq!(ds.read_all("stats/ok").unwrap()[[3]], 1.0);
    assert_eq!(ds.read_all("params/id").unwrap()[[9]], 1e12 + 9.0);
}

#[test]
fn dataset_partial_reads_match_slices_of_full_read() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("p.h5");
    let mut h = header(vec![spec("outputs/u", Dtype::F64, vec![4, 4])]);
    let quarters = vec![0.0, 0.25, 0.5, 0.75];
    h.arrays = vec![
        ("grid/x".into(), quarters.clone()),
        ("grid/y".into(), quarters),
    ];
    let mut w = DatasetWriter::create(&target, &h).unwrap();
    for i in 0..25 {
        let v: Vec<f64> = (0..16).map(|k| (i * 16 + k) as f64).collect();
        w.append(&[&v]).unwrap();
    }
    w.finish().unwrap();
    let ds = Dataset::open(&target).unwrap();
    let all = ds.read_all("outputs/u").unwrap();
    let part = ds.read("outputs/u", 7..12).unwrap();
    assert_eq!(part.shape(), &[5, 4, 4]);
    assert_eq!(part, all.slice(ndarray::s![7..12, .., ..]).into_dyn());
    assert_eq!(
        ds.sample("outputs/u", 24).unwrap()[[3, 3]],
        (24 * 16 + 15) as f64
    );
    assert!(matches!(
        ds.read("outputs/u", 20..26),
        Err(DataError::Range { len: 25, .. })
    ));
    assert!(matches!(
        ds.read("outputs/nope", 0..1),
        Err(DataError::NoField { .. })
    ));
}

#[test]
fn writer_rejects_wrongly_sized_samples() {
    let dir = tempfile::tempdir().unwrap();
    let h = header(vec![spec("outputs/u", Dtype::F64, vec![2, 2])]);
    let mut w = DatasetWriter::create(&dir.path().join("s.h5"), &h).unwrap();
    let err = w.append(&[&[1.0, 2.0, 3.0]]).unwrap_err();
    assert!(err.to_string().contains("outputs/u"), "{err}");
    assert!(w.append(&[&[1.0; 4], &[1.0]]).is_err());
}

/// A crash between checkpoints (the writer vanishes without closing) loses only the samples after
/// the last checkpoint, and rerunning the plan completes a dataset identical to an uninterrupted run.
/// With a learned SSOR ω the learner is replayed from the recorded costs, so its later choices match.
fn resume_after_simulated_crash(extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let full_cfg = write(
        dir.path(),
        "full/c.toml",
        &darcy_config("full.h5", 40, 12, extra),
    );
    let crash_cfg = write(
        dir.path(),
        "crash/c.toml",
        &darcy_config("crash.h5", 40, 12, extra),
    );
    let stop = AtomicBool::new(false);
    let full_plan = Plan::load(&full_cfg).unwrap();
    generate::run(&full_plan, opts(), &stop).unwrap();
    let full = dir.path().join("full/full.h5");

    // The first 20 samples in the crash run's partial file, checkpointed after 16.
    let crash_plan = Plan::load(&crash_cfg).unwrap();
    write_crashed_partial(&full, &crash_plan, 20, 16);

    let report = generate::run(&crash_plan, opts(), &stop).unwrap();
    assert!(report.resumed >= 16, "recovered {} samples", report.resumed);
    let crashed = dir.path().join("crash/crash.h5");
    assert_same_content(&full, &crashed);
    let (a, b) = (
        Dataset::open(&full).unwrap(),
        Dataset::open(&crashed).unwrap(),
    );
    if a.has("stats/omega") {
        assert_eq!(
            a.read_all("stats/omega").unwrap(),
            b.read_all("stats/omega").unwrap()
        );
    }
}

#[test]
fn resume_after_simulated_crash_matches_uninterrupted_run() {
    resume_after_simulated_crash("");
}

#[test]
fn resume_with_a_learned_omega_replays_the_learner() {
    resume_after_simulated_crash(
        "[generate.solver]\npreconditioner = \"ssor\"\nomega = \"learned\"",
    );
}

#[test]
fn partial_file_of_another_plan_is_not_continued() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "c.toml", &darcy_config("d.h5", 12, 10, ""));
    let plan = Plan::load(&cfg).unwrap();
    let g = plan.generate.as_ref().unwrap();
    // A partial file left by a run with another seed.
    let other = write(
        dir.path(),
        "o.toml",
        &darcy_config("d.h5", 12, 10, "").replace("seed = 3", "seed = 4"),
    );
    let other_plan = Plan::load(&other).unwrap();
    let mut w = DatasetWriter::create(&g.dataset.output, &{
        let og = other_plan.generate.as_ref().unwrap();
        generate::header(
            &other_plan,
            og,
            &generate::family(og).unwrap().layout(),
            None,
        )
    })
    .unwrap();
    w.checkpoint().unwrap();
    drop(w);
    let err = generate::run(&plan, opts(), &AtomicBool::new(false)).unwrap_err();
    assert!(
        err.to_string().contains("different plan") && err.to_string().contains("--force"),
        "{err}"
    );
    let forced = RunOptions {
        force: true,
        ..opts()
    };
    let report = generate::run(&plan, forced, &AtomicBool::new(false)).unwrap();
    assert_eq!(report.resumed, 0);
    assert_eq!(Dataset::open(&g.dataset.output).unwrap().len(), 12);
}

/// The stored solution satisfies the discrete equations to the recorded residual, which meets the
/// tolerance: recomputed here from the stored coefficient (f64 storage, so nothing is rounded).
#[test]
fn stored_solutions_satisfy_the_equations_to_the_recorded_residual() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "c.toml",
        &darcy_config(
            "d.h5",
            6,
            20,
            "precision = \"f64\"\n[generate.solver]\ntolerance = 1e-9",
        ),
    );
    let plan = Plan::load(&cfg).unwrap();
    generate::run(&plan, opts(), &AtomicBool::new(false)).unwrap();
    let ds = Dataset::open(&dir.path().join("d.h5")).unwrap();
    let grid = Grid2d::new(20, Centring::Vertex);
    let residuals = ds.read_all("stats/residual").unwrap();
    for i in 0..ds.len() {
        let a = ds
            .sample("inputs/coefficient", i)
            .unwrap()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let u = ds
            .sample("outputs/solution", i)
            .unwrap()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap();
        let sys = assemble(&grid, &a, &ndarray::Array2::ones((20, 20))).unwrap();
        let x: Vec<f64> = u.slice(ndarray::s![1..19, 1..19]).iter().copied().collect();
        let mut ax = vec![0.0; x.len()];
        pdekit_solvers::linalg::LinearOperator::apply(
            &pdekit_solvers::linalg::CsrOperator::new(&sys.matrix),
            &x,
            &mut ax,
        );
        let r: f64 = ax
            .iter()
            .zip(&sys.rhs)
            .map(|(p, q)| (p - q).powi(2))
            .sum::<f64>()
            .sqrt();
        let rel = r / sys.rhs.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(rel <= 1e-9, "sample {i}: recomputed residual {rel}");
        assert!(
            (rel - residuals[[i]]).abs() <= 1e-12 + 1e-3 * rel,
            "sample {i}: stored {} vs recomputed {rel}",
            residuals[[i]]
        );
        assert!(a.iter().all(|&v| v == 12.0 || v == 3.0));
    }
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn reads_neuraloperator_files_written_by_h5py() {
    for name in ["neuraloperator_bool.h5", "neuraloperator_f32.h5"] {
        let ds = Dataset::open(&fixture(name)).unwrap();
        assert_eq!(ds.layout(), Layout::NeuralOperator);
        assert_eq!(ds.len(), 3);
        let y = ds.read_all("outputs/y").unwrap();
        assert_eq!(y.shape(), &[3, 5, 5]);
        let want = 2.0 + 3.0 / 10.0 + 4.0 / 100.0;
        assert!(
            (y[[2, 3, 4]] - want).abs() < 1e-6,
            "{name}: y = {}",
            y[[2, 3, 4]]
        );
        let x = ds.read("inputs/x", 1..2).unwrap();
        if name.contains("bool") {
            // x[n, i, j] = (i + j + n) even
            assert_eq!(x[[0, 1, 0]], 1.0);
            assert_eq!(x[[0, 1, 1]], 0.0);
        }
    }
}

#[test]
fn reads_big_endian_floats_written_by_h5py() {
    let ds = Dataset::open(&fixture("neuraloperator_bigendian.h5")).unwrap();
    let x = ds.read_all("inputs/x").unwrap();
    let y = ds.read_all("outputs/y").unwrap();
    assert_eq!(x[[1, 0, 1]], 5.5);
    assert_eq!(y[[2, 1, 1]], 11.25);
}

#[test]
fn reads_pdebench_darcy_files_written_by_h5py() {
    let ds = Dataset::open(&fixture("pdebench_darcy.h5")).unwrap();
    assert_eq!(ds.layout(), Layout::PdeBench);
    let nu = ds.read_all("inputs/coefficient").unwrap();
    let u = ds.read_all("outputs/solution").unwrap();
    assert_eq!(u.shape(), &[2, 6, 6], "the singleton time axis is dropped");
    assert_eq!(nu[[1, 2, 3]], 1.0 + 1.0 + 6.0);
    assert_eq!(u[[1, 2, 3]], 1.0 - 2.0 + 6.0);
    let (x, _) = ds.grid().unwrap().unwrap();
    assert_eq!(x.len(), 6);
    assert!((x[5] - 1.0).abs() < 1e-7);
}

#[test]
fn reads_the_well_as_one_step_pairs_of_its_trajectories() {
    let ds = Dataset::open(&fixture("the_well_2d.h5")).unwrap();
    assert_eq!(ds.layout(), Layout::TheWell);
    // 2 trajectories of 4 steps: 3 pairs each.
    assert_eq!(ds.len(), 6);
    let x = ds.read_all("inputs/state").unwrap();
    let y = ds.read_all("outputs/state").unwrap();
    assert_eq!(
        x.shape(),
        &[6, 4, 8, 6],
        "density, pressure, velocity x and y"
    );
    // Row 4 is trajectory 1, step 1 (input) and step 2 (output); at point (i, j) = (3, 5).
    let density = |b: f64, t: f64| 1000.0 * b + 100.0 * t + 10.0 * 3.0 + 5.0;
    assert_eq!(x[[4, 0, 3, 5]], density(1.0, 1.0));
    assert_eq!(y[[4, 0, 3, 5]], density(1.0, 2.0));
    assert_eq!(x[[4, 1, 3, 5]], -density(1.0, 1.0));
    assert_eq!(x[[4, 2, 3, 5]], 10.0 + 1.0);
    assert_eq!(y[[4, 3, 3, 5]], 10.0 + 2.0 + 0.5);
    // A range that crosses trajectories reads the same as single rows.
    let part = ds.read("inputs/velocity", 2..5).unwrap();
    assert_eq!(part.shape(), &[3, 2, 8, 6]);
    assert_eq!(part[[0, 1, 0, 0]], 2.0 + 0.5, "row 2: trajectory 0, step 2");
    assert_eq!(part[[1, 0, 0, 0]], 10.0, "row 3: trajectory 1, step 0");
    let time = ds.read_all("params/time").unwrap();
    let want = [0.0, 0.1, 0.2, 0.0, 0.1, 0.2];
    assert!(
        time.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
        "{time:?}"
    );
    let visc = ds.read_all("params/viscosity").unwrap();
    assert!(
        (visc[0] - 0.1).abs() < 1e-6 && (visc[5] - 0.2).abs() < 1e-6,
        "{visc:?}"
    );
    assert_eq!(ds.read_all("params/Reynolds").unwrap()[3], 100.0);
    assert!(
        !ds.has("params/forcing"),
        "a time-varying scalar is not a parameter"
    );
    assert!(!ds.has("inputs/obstacle"), "a static field is left out");
    let notes = ds.notes().join("; ");
    assert!(
        notes.contains("x_periodic, y_wall") && notes.contains("obstacle"),
        "{notes}"
    );
    let (gx, gy) = ds.grid().unwrap().unwrap();
    assert_eq!((gx.len(), gy.len()), (8, 6));
    // Without its times it is a clear error that names what is missing.
    let e = Dataset::open(&fixture("the_well_no_time.h5"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("the_well_no_time.h5") && e.contains("`dimensions/time`"),
        "{e}"
    );
}

#[test]
fn reads_pdebench_time_series_1d_and_per_sample_groups() {
    let ds = Dataset::open(&fixture("pdebench_1d.h5")).unwrap();
    assert_eq!(ds.layout(), Layout::PdeBenchSeries);
    assert_eq!(ds.len(), 3 * 4);
    let (u, v) = (
        ds.read_all("inputs/u").unwrap(),
        ds.read_all("outputs/u").unwrap(),
    );
    assert_eq!(u.shape(), &[12, 8]);
    // Row 9: sample 2, step 1 → 2; point 4.
    assert!(
        (u[[9, 4]] - (200.0 + 10.0 + 0.5)).abs() < 1e-4,
        "{}",
        u[[9, 4]]
    );
    assert!((v[[9, 4]] - (200.0 + 20.0 + 0.5)).abs() < 1e-4);
    assert!((ds.read_all("params/time").unwrap()[9] - 0.4).abs() < 1e-6);
    let g = Dataset::open(&fixture("pdebench_2d_groups.h5")).unwrap();
    assert_eq!(g.len(), 2 * 2);
    let d = g.read_all("inputs/data").unwrap();
    let o = g.read_all("outputs/data").unwrap();
    assert_eq!(d.shape(), &[4, 2, 4, 6], "channels first");
    // Row 3: group 0001, step 1 → 2; channel 1 at (2, 5).
    assert_eq!(d[[3, 1, 2, 5]], 1000.0 + 100.0 + 25.0 + 0.5);
    assert_eq!(o[[3, 1, 2, 5]], 1000.0 + 200.0 + 25.0 + 0.5);
    // The compressible-flow layout: the fields present, stacked in PDEBench's order.
    let c = Dataset::open(&fixture("pdebench_cfd_1d.h5")).unwrap();
    let s = c.read_all("inputs/state").unwrap();
    assert_eq!(s.shape(), &[4, 3, 8], "density, pressure, Vx");
    // Row 3: sample 1, step 1; point 6.
    assert_eq!(s[[3, 0, 6]], 100.0 + 10.0 + 6.0);
    assert_eq!(s[[3, 1, 6]], -(100.0 + 10.0 + 6.0));
    assert!((s[[3, 2, 6]] - 1.1).abs() < 1e-6);
    assert_eq!(
        c.read_all("outputs/density").unwrap()[[3, 6]],
        100.0 + 20.0 + 6.0
    );
}

#[test]
fn missing_and_corrupt_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.h5");
    let err = Dataset::open(&missing).err().unwrap();
    assert!(matches!(err, DataError::Missing { .. }) && err.to_string().contains("none.h5"));
    let junk = write(dir.path(), "junk.h5", "this is not HDF5");
    let err = Dataset::open(&junk).err().unwrap();
    assert!(
        err.to_string().contains("junk.h5") && err.to_string().contains("not a readable HDF5 file"),
        "{err}"
    );
    // A valid HDF5 file of an unknown layout names what it found.
    let h = Header {
        attrs: vec![],
        arrays: vec![("other/z".into(), vec![1.0])],
        fields: vec![],
    };
    let w = DatasetWriter::create(&dir.path().join("odd.h5"), &h).unwrap();
    let odd = w.finish().unwrap();
    let err = Dataset::open(&odd).err().unwrap();
    assert!(
        matches!(err, DataError::UnknownLayout { .. }) && err.to_string().contains("other/z"),
        "{err}"
    );
}

#[test]
fn arrays_sharing_a_leaf_name_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let h = header(vec![
        spec("inputs/k", Dtype::F64, vec![2]),
        spec("params/k", Dtype::F64, vec![]),
    ]);
    let target = dir.path().join("clash.h5");
    let err = DatasetWriter::create(&target, &h).err().expect("refused");
    assert!(
        err.to_string()
            .contains("inputs/k and params/k share the name `k`"),
        "{err}"
    );
    assert!(!target.exists());
}
