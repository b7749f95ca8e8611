//! End-to-end tests of the problem families: every family generates a dataset with its layout,
//! shards and threads do not change a bit of the content, `merge` joins shards, and bad configs
//! for the new tables fail clearly.

mod common;

use common::{assert_config_error, generate_with_threads, pdekit, run, succeed, write};
use pdekit::data::Dataset;
use std::path::Path;

/// A small config of each family (2 samples are enough to see the layout).
fn family_config(output: &str, samples: u64, family: &str) -> String {
    let table = match family {
        "poisson" => "[generate.poisson]\nresolution = 12\n",
        "poisson3" => "[generate.poisson]\ndim = 3\nresolution = 8\n",
        "helmholtz" => "[generate.helmholtz]\nresolution = 14\nwavenumber = [4.0, 6.0]\nvariation = 0.2\nboundary = \"absorbing\"\n",
        "heat" => "[generate.heat]\nresolution = 10\ndt = 0.01\nsteps = 6\nevery = 3\nkappa = \"switching\"\n[generate.heat.coefficient]\nkind = \"lognormal\"\n",
        "burgers" => "[generate.burgers]\nresolution = 32\nfinal_time = 0.1\ndt = 1e-3\nsnapshots = 2\n",
        "navier_stokes" => "[generate.navier_stokes]\nresolution = 16\nfinal_time = 0.05\ndt = 1e-3\nsnapshots = 5\n",
        "darcy" => "[generate.darcy]\nresolution = 12\nform = \"paper\"\n[generate.darcy.coefficient]\nkind = \"lognormal\"\n",
        other => panic!("no config for {other}"),
    };
    let family = family.trim_end_matches('3');
    format!(
        "[generate]\nproblem = \"{family}\"\noutput = \"{output}\"\nsamples = {samples}\nseed = 11\ncheckpoint_every = 4\nprecision = \"f64\"\n{table}"
    )
}

fn names(ds: &Dataset) -> Vec<String> {
    ds.fields()
        .iter()
        .map(|f| format!("{} {:?}", f.name, f.shape))
        .collect()
}

#[test]
fn every_family_writes_its_layout() {
    let expect: [(&str, &[&str]); 7] = [
        (
            "poisson3",
            &[
                "inputs/source [2, 8, 8, 8]",
                "outputs/solution [2, 8, 8, 8]",
            ],
        ),
        (
            "poisson",
            &[
                "inputs/source [2, 12, 12]",
                "inputs/boundary [2, 12, 12]",
                "outputs/solution [2, 12, 12]",
                "stats/iterations [2]",
            ],
        ),
        (
            "helmholtz",
            &[
                "inputs/wavenumber [2, 14, 14]",
                "outputs/solution_real [2, 14, 14]",
                "outputs/solution_imag [2, 14, 14]",
                "params/mean_wavenumber [2]",
            ],
        ),
        (
            "heat",
            &[
                "inputs/initial_condition [2, 10, 10]",
                "inputs/coefficient [2, 10, 10]",
                "outputs/trajectory [2, 2, 10, 10]",
                "stats/steps [2]",
                "stats/matvecs [2]",
            ],
        ),
        (
            "burgers",
            &[
                "inputs/initial_condition [2, 32]",
                "outputs/solution [2, 32]",
                "outputs/trajectory [2, 2, 32]",
                "params/viscosity [2]",
                "stats/steps [2]",
            ],
        ),
        (
            "navier_stokes",
            &[
                "inputs/initial_vorticity [2, 16, 16]",
                "outputs/vorticity [2, 5, 16, 16]",
                "params/viscosity [2]",
                "stats/steps [2]",
            ],
        ),
        (
            "darcy",
            &[
                "inputs/coefficient [2, 12, 12]",
                "outputs/solution [2, 12, 12]",
                "stats/residual [2]",
            ],
        ),
    ];
    for (family, fields) in expect {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write(dir.path(), "c.toml", &family_config("d.h5", 2, family));
        let (code, out, err) = run(&["generate", cfg.to_str().unwrap()]);
        assert_eq!(code, 0, "{family}: {out}{err}");
        let ds = Dataset::open(&dir.path().join("d.h5")).unwrap();
        let have = names(&ds);
        for f in fields {
            assert!(have.iter().any(|h| h == f), "{family}: no {f} in {have:?}");
        }
        assert_eq!(
            ds.attr("problem").as_deref(),
            Some(family.trim_end_matches('3'))
        );
        let conv = ds.read_all("stats/converged").unwrap();
        assert!(conv.iter().all(|&c| c == 1.0), "{family}: {conv:?}");
        if ds.has("stats/residual") {
            let r = ds.read_all("stats/residual").unwrap();
            assert!(r.iter().all(|&v| v <= 1e-8), "{family}: residuals {r:?}");
        }
        let (code, out, err) = run(&[
            "plot",
            "--data",
            dir.path().join("d.h5").to_str().unwrap(),
            "--out",
            dir.path().join("figs").to_str().unwrap(),
            "--samples",
            "2",
        ]);
        assert_eq!(code, 0, "{family} plot: {out}{err}");
        assert!(dir.path().join("figs/samples.png").exists(), "{family}");
    }
}

#[test]
fn helmholtz_records_its_random_wavenumber() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "c.toml", &family_config("d.h5", 4, "helmholtz"));
    assert_eq!(run(&["generate", cfg.to_str().unwrap()]).0, 0);
    let ds = Dataset::open(&dir.path().join("d.h5")).unwrap();
    let k0 = ds.read_all("params/mean_wavenumber").unwrap();
    assert!(k0.iter().all(|&k| (4.0..6.0).contains(&k)), "{k0:?}");
    assert!(k0[0] != k0[1]);
    // The wavenumber field is k₀(1 + 0.2 tanh(·)): within 20% of the sample's k₀.
    let field = ds.sample("inputs/wavenumber", 0).unwrap();
    assert!(field.iter().all(|&k| (k / k0[0] - 1.0).abs() <= 0.2));
}

/// Shards 0..3 of 3, merged, equal the unsharded run bit for bit; so does the unsharded run on one
/// thread, and the shard set read as one dataset.
fn shards_and_threads_do_not_change_content(family: &str, fields: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let whole = write(
        dir.path(),
        "whole.toml",
        &family_config("whole.h5", 7, family),
    );
    generate_with_threads(&whole, "2");
    let one = write(dir.path(), "one.toml", &family_config("one.h5", 7, family));
    generate_with_threads(&one, "1");
    let parts = write(
        dir.path(),
        "parts.toml",
        &family_config("parts.h5", 7, family),
    );
    for i in 0..3 {
        succeed(pdekit().args([
            "generate",
            parts.to_str().unwrap(),
            "--quiet",
            "--shard",
            &format!("{i}/3"),
        ]));
        assert!(dir.path().join(format!("parts.shard-{i}-of-3.h5")).exists());
    }
    let same = |a: &Path, b: &Path| {
        let (da, db) = (Dataset::open(a).unwrap(), Dataset::open(b).unwrap());
        assert_eq!(da.len(), db.len());
        for f in fields {
            assert!(
                da.read_all(f).unwrap() == db.read_all(f).unwrap(),
                "{family}: {f} differs between {} and {}",
                a.display(),
                b.display()
            );
        }
    };
    let whole_h5 = dir.path().join("whole.h5");
    same(&whole_h5, &dir.path().join("one.h5"));
    // The shard set opened by the dataset's own name.
    let set = Dataset::open(&dir.path().join("parts.h5")).unwrap();
    assert_eq!(set.files(), 3);
    same(&whole_h5, &dir.path().join("parts.h5"));
    let idx = set.read_all("params/index").unwrap();
    assert_eq!(
        idx.iter().copied().collect::<Vec<_>>(),
        (0..7).map(f64::from).collect::<Vec<_>>()
    );
    // Merge, then an unsharded generate of the same config finds the merged file up to date.
    let (code, out, err) = run(&["merge", dir.path().join("parts.h5").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    for i in 0..3 {
        std::fs::remove_file(dir.path().join(format!("parts.shard-{i}-of-3.h5"))).unwrap();
    }
    same(&whole_h5, &dir.path().join("parts.h5"));
    let (code, out, err) = run(&["generate", parts.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(format!("{out}{err}").contains("up to date"), "{out}{err}");
}

#[test]
fn navier_stokes_shards_and_threads_are_bit_identical() {
    shards_and_threads_do_not_change_content(
        "navier_stokes",
        &[
            "inputs/initial_vorticity",
            "outputs/vorticity",
            "params/index",
            "params/viscosity",
        ],
    );
}

#[test]
fn heat_shards_and_threads_are_bit_identical() {
    shards_and_threads_do_not_change_content(
        "heat",
        &[
            "inputs/initial_condition",
            "inputs/coefficient",
            "outputs/trajectory",
            "stats/iterations",
            "stats/residual",
        ],
    );
}

#[test]
fn burgers_shards_and_threads_are_bit_identical() {
    shards_and_threads_do_not_change_content(
        "burgers",
        &[
            "inputs/initial_condition",
            "outputs/solution",
            "outputs/trajectory",
        ],
    );
}

#[test]
fn incomplete_shard_sets_and_bad_shard_flags_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "c.toml", &family_config("d.h5", 4, "burgers"));
    assert_eq!(
        run(&["generate", cfg.to_str().unwrap(), "--shard", "1/2"]).0,
        0
    );
    let (code, _, err) = run(&["inspect", dir.path().join("d.h5").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("1 of 2 shards are missing (d.shard-I-of-2.h5 for I = 0)"),
        "{err}"
    );
    let (code, _, err) = run(&["merge", dir.path().join("d.h5").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("missing"), "{err}");
    assert!(!dir.path().join("d.h5").exists());
    for bad in ["2/2", "x/3", "1", "0/0"] {
        let (code, _, err) = run(&["generate", cfg.to_str().unwrap(), "--shard", bad]);
        assert_eq!(code, 2, "{bad}");
        assert!(err.contains("expected I/N"), "{bad}: {err}");
    }
}

#[test]
fn blown_up_trajectory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // Δt = 0.5 with explicit advection: the state overflows.
    let text = family_config("d.h5", 2, "navier_stokes").replace(
        "final_time = 0.05\ndt = 1e-3",
        "final_time = 500.0\ndt = 0.5",
    ) + "[generate.navier_stokes.initial]\nsigma = 1000.0\n";
    let cfg = write(dir.path(), "c.toml", &text);
    let (code, _, err) = run(&["generate", cfg.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("became non-finite") && err.contains("generate.navier_stokes.dt"),
        "{err}"
    );
    assert!(!dir.path().join("d.h5").exists());
}

#[test]
fn family_config_errors_name_the_key() {
    let base = "[generate]\noutput = \"d.h5\"\nsamples = 2\n";
    assert_config_error(
        &format!("{base}problem = \"wave\"\n"),
        4,
        "generate.problem",
        "expected one of: \"darcy\", \"poisson\", \"helmholtz\", \"heat\", \"burgers\", \"navier_stokes\"",
    );
    assert_config_error(
        &format!("{base}problem = \"burgers\"\n[generate.heat]\nsteps = 3\n"),
        5,
        "generate.heat",
        "configures problem \"heat\", but generate.problem = \"burgers\"",
    );
    assert_config_error(
        &format!("{base}problem = \"navier_stokes\"\n[generate.solver]\nmethod = \"cg\"\n"),
        5,
        "generate.solver",
        "pseudo-spectral time stepper",
    );
    assert_config_error(
        &format!("{base}problem = \"helmholtz\"\n[generate.solver]\nmethod = \"cg\"\n"),
        6,
        "generate.solver.method",
        "Helmholtz is indefinite",
    );
    assert_config_error(
        &format!(
            "{base}problem = \"poisson\"\n[generate.solver]\nmethod = \"gcrodr\"\nchains = 2\n"
        ),
        7,
        "generate.solver.chains",
        "only \"darcy\" carries solver state across samples",
    );
    assert_config_error(
        &format!("{base}problem = \"heat\"\n[generate.heat]\nsteps = 10\nevery = 3\n"),
        7,
        "generate.heat.every",
        "divides steps = 10",
    );
    assert_config_error(
        &format!("{base}problem = \"heat\"\n[generate.heat]\nkappa = \"wild\"\n"),
        6,
        "generate.heat.kappa",
        "\"switching\"",
    );
    assert_config_error(
        &format!("{base}problem = \"burgers\"\n[generate.burgers]\nresolution = 31\n"),
        6,
        "generate.burgers.resolution",
        "an even integer",
    );
    assert_config_error(
        &format!("{base}problem = \"navier_stokes\"\n[generate.navier_stokes]\nfinal_time = 1.0\ndt = 2.0\n"),
        7,
        "generate.navier_stokes.dt",
        "≤ final_time = 1",
    );
    assert_config_error(
        &format!("{base}problem = \"helmholtz\"\n[generate.helmholtz]\nwavenumber = [5.0, 2.0]\n"),
        6,
        "generate.helmholtz.wavenumber",
        "0 < min ≤ max",
    );
    assert_config_error(
        &format!("{base}problem = \"poisson\"\n[generate.poisson]\ndim = 4\n"),
        6,
        "generate.poisson.dim",
        "1, 2 or 3",
    );
    assert_config_error(
        &format!("{base}problem = \"poisson\"\n[generate.poisson]\ndim = 3\nresolution = 1024\n"),
        7,
        "generate.poisson.resolution",
        "expected an integer from 3 to 512 in 3-D, got 1024",
    );
    assert_config_error(
        &format!(
            "{base}problem = \"darcy\"\n[generate.darcy]\nform = \"paper\"\ncentring = \"cell\"\n"
        ),
        7,
        "generate.darcy.centring",
        "vertex grid",
    );
}

/// A run killed after a checkpoint resumes to the content of an uninterrupted run.
fn resume_matches_uninterrupted(family: &str, fields: &[&str]) {
    use pdekit::config::Plan;
    use pdekit::pipeline::{generate, RunOptions};
    use pdekit::progress::Reporter;
    use std::sync::atomic::AtomicBool;

    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        force: false,
        reporter: Reporter::silent(),
        shard: None,
    };
    let stop = AtomicBool::new(false);
    let full_cfg = write(
        dir.path(),
        "full/c.toml",
        &family_config("full.h5", 10, family),
    );
    generate::run(&Plan::load(&full_cfg).unwrap(), opts, &stop).unwrap();
    let full = dir.path().join("full/full.h5");

    // The first 6 rows in the crashed run's partial file, checkpointed after 4.
    let crash_cfg = write(
        dir.path(),
        "crash/c.toml",
        &family_config("crash.h5", 10, family),
    );
    let plan = Plan::load(&crash_cfg).unwrap();
    common::write_crashed_partial(&full, &plan, 6, 4);
    let report = generate::run(&plan, opts, &stop).unwrap();
    assert!(
        report.resumed >= 4,
        "{family}: recovered {}",
        report.resumed
    );
    let (a, b) = (
        Dataset::open(&full).unwrap(),
        Dataset::open(&dir.path().join("crash/crash.h5")).unwrap(),
    );
    for f in fields {
        assert!(
            a.read_all(f).unwrap() == b.read_all(f).unwrap(),
            "{family}: {f} differs after resume"
        );
    }
}

#[test]
fn heat_and_navier_stokes_resume_after_a_crash() {
    resume_matches_uninterrupted(
        "heat",
        &["outputs/trajectory", "params/index", "stats/iterations"],
    );
    resume_matches_uninterrupted("navier_stokes", &["outputs/vorticity", "params/index"]);
    resume_matches_uninterrupted(
        "helmholtz",
        &["outputs/solution_imag", "params/mean_wavenumber"],
    );
}
