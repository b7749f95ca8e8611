//! Every kind of figure pdekit draws, rendered as SVG by small real runs and read back as text:
//! no axis says "log10", log axes carry power-of-ten ticks, no two legend entries or bars share a
//! label, and truth and prediction share their colour-bar limits.

mod common;

use common::{run, run_config, write};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// plotters writes a font of size s as s / 1.24 in SVG.
fn svg_size(points: f64) -> f64 {
    points / 1.24
}
const TICK: f64 = 13.0;
const LEGEND: f64 = 14.0;

#[derive(Debug)]
struct Text {
    x: f64,
    y: f64,
    size: f64,
    anchor: String,
    text: String,
}

/// The `<text>` elements of an SVG file.
fn texts(svg: &str) -> Vec<Text> {
    let attr = |tag: &str, name: &str| -> String {
        let key = format!(" {name}=\"");
        tag.find(&key)
            .map(|i| {
                let rest = &tag[i + key.len()..];
                rest[..rest.find('"').unwrap()].to_string()
            })
            .unwrap_or_default()
    };
    svg.split("<text")
        .skip(1)
        .map(|chunk| {
            let (tag, rest) = chunk.split_once('>').unwrap();
            let text = rest.split("</text>").next().unwrap().trim().to_string();
            Text {
                x: attr(tag, "x").parse().unwrap(),
                y: attr(tag, "y").parse().unwrap(),
                size: attr(tag, "font-size").parse().unwrap(),
                anchor: attr(tag, "text-anchor"),
                text,
            }
        })
        .collect()
}

fn is_power_of_ten_tick(t: &str) -> bool {
    let Some(exp) = t.strip_prefix("10") else {
        return false;
    };
    !exp.is_empty() && exp.chars().all(|c| "⁻⁰¹²³⁴⁵⁶⁷⁸⁹".contains(c))
}

fn is_time_tick(t: &str) -> bool {
    ["ns", "µs", "ms", "s", "min"].iter().any(|u| {
        t.strip_suffix(&format!(" {u}"))
            .is_some_and(|n| n.parse::<f64>().is_ok())
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks that hold for every figure; returns its texts.
fn common_checks(path: &Path) -> Vec<Text> {
    let svg = read(path);
    assert!(svg.starts_with("<svg"), "{}", path.display());
    let all = texts(&svg);
    for t in &all {
        assert!(
            !t.text.to_lowercase().contains("log10"),
            "{}: says {:?}",
            path.display(),
            t.text
        );
        assert!(
            !(t.text.contains('e') && t.text.parse::<f64>().is_ok()),
            "{}: tick in exponent notation {:?}",
            path.display(),
            t.text
        );
    }
    let near = |a: f64, b: f64| (a - b).abs() < 1e-6;
    let legend: Vec<&str> = all
        .iter()
        .filter(|t| near(t.size, svg_size(LEGEND)) && !t.text.is_empty())
        .map(|t| t.text.as_str())
        .collect();
    let mut seen = std::collections::HashSet::new();
    for l in &legend {
        assert!(
            seen.insert(*l),
            "{}: legend entry {l:?} twice",
            path.display()
        );
    }
    all
}

fn assert_log_ticks(path: &Path, all: &[Text]) {
    assert!(
        all.iter()
            .any(|t| is_power_of_ten_tick(&t.text) || is_time_tick(&t.text)),
        "{}: a log axis without 10ᵏ ticks: {:?}",
        path.display(),
        all.iter().map(|t| &t.text).collect::<Vec<_>>()
    );
}

/// The colour-bar labels of the first row of a heatmap panel, per column (bars label to the
/// right, so their text starts at the left).
fn colour_bars(all: &[Text], cell_width: f64, row_bottom: f64) -> BTreeMap<usize, Vec<String>> {
    let mut bars: BTreeMap<usize, Vec<(i64, String)>> = BTreeMap::new();
    for t in all.iter().filter(|t| {
        t.anchor == "start" && (t.size - svg_size(TICK)).abs() < 1e-6 && t.y < row_bottom
    }) {
        let column = (t.x / cell_width) as usize;
        bars.entry(column)
            .or_default()
            .push((t.y as i64, t.text.clone()));
    }
    bars.into_iter()
        .map(|(c, mut v)| {
            v.sort();
            (c, v.into_iter().map(|(_, s)| s).collect())
        })
        .collect()
}

fn svgs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_figure_kind_reads_as_a_paper_figure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A dataset with its figures, and a model trained on it.
    run_config(
        d,
        "darcy.toml",
        "[generate]\nproblem = \"darcy\"\noutput = \"data/d.h5\"\nsamples = 24\nseed = 0\n\
         [generate.darcy]\nresolution = 16\n\
         [plot]\noutput_dir = \"figs/dataset\"\nsamples = 3\nformat = \"svg\"\n\
         [train]\ndata = \"data/d.h5\"\ntrain_samples = 20\ntest_samples = 4\nepochs = 3\n\
         batch_size = 4\noutput_dir = \"figs/train\"\nformat = \"svg\"\n\
         [train.fno]\nwidth = 8\nmodes = [4, 4]\nlayers = 2\n",
    );
    // GP-HM in 2-D (heatmaps, a log colour scale, a scatter), ML-VMS (log–log, times), learned
    // SOR (linear axes).
    run_config(
        d,
        "gp.toml",
        "[gp]\npde = \"allen_cahn\"\nsolution = \"sin(3*x)*cos(2*y + 0.5)\"\npoints = 10\n\
         test_points = 16\ncomponents = 3\nmax_freq = 1.0\nsteps = 60\npolish_every = 30\n\
         format = \"svg\"\noutput_dir = \"figs/gp\"\n",
    );
    run_config(
        d,
        "mlvms.toml",
        "[mlvms]\ndim = 2\ncoarse = 8\ncentre = [0.4375, 0.5625]\nradius = 0.05\n\
         levels = [{ half_width = 0.2, refine = 2 }]\nuniform = [8, 16]\nformat = \"svg\"\n\
         output_dir = \"figs/mlvms\"\n",
    );
    run_config(
        d,
        "relax.toml",
        "[relax]\nsequence = \"shifted_laplacian\"\noutput_dir = \"figs/relax\"\nrepeats = 1\n\
         learners = [\"tsallis\", \"chebyshev\"]\nformat = \"svg\"\n\
         [relax.shifted_laplacian]\ngrid = 6\ninstances = 40\nvariance = \"low\"\n",
    );
    // The solver benchmark: bars against time, convergence on system 0, iterations per system.
    let bench_dir = d.join("figs/bench");
    let bench = write(
        d,
        "b.toml",
        &format!(
            "[solver_bench]\nproblem = \"darcy_flux\"\ngrid = 12\nsystems = 3\ntolerance = 1e-8\n\
             output_dir = \"{}\"\nformat = \"svg\"\n\
             [[solver_bench.methods]]\nmethod = \"gmres\"\nrestart = 20\n\
             [[solver_bench.methods]]\nmethod = \"gcrodr\"\nrestart = 20\nrecycle = 5\n\
             [[solver_bench.methods]]\nmethod = \"gcrodr\"\nrestart = 20\nrecycle = 5\nfresh = true\n\
             [[solver_bench.methods]]\nmethod = \"gcrodr\"\nrestart = 20\nrecycle = 5\nordering = \"natural\"\n\
             [[solver_bench.methods]]\nmethod = \"cg\"\npreconditioner = \"amg\"\n",
            bench_dir.display()
        ),
    );
    let (code, out, err) = run(&["bench", "solvers", bench.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");

    // Figures whose value axis (or colour scale) is logarithmic.
    let log_axes = [
        "dataset/residuals",
        "train/loss",
        "gp/error",
        "gp/convergence",
        "gp/spectrum",
        "mlvms/error_vs_unknowns",
        "mlvms/error_vs_time",
        "bench/convergence-b",
        "bench/sequence-b",
    ];
    let mut checked = 0;
    for sub in ["dataset", "train", "gp", "mlvms", "relax", "bench"] {
        let figures = svgs(&d.join("figs").join(sub));
        assert!(!figures.is_empty(), "no figures in {sub}");
        for path in figures {
            let all = common_checks(&path);
            let name = format!("{sub}/{}", path.file_stem().unwrap().to_string_lossy());
            if log_axes.contains(&name.as_str()) || name.starts_with("bench/solvers-") {
                assert_log_ticks(&path, &all);
            }
            if name.starts_with("bench/solvers-") {
                // Bar labels (left of the bars, anchored at their end) are distinct, say the order
                // where it is not natural, and the time axis reads in units.
                let labels: Vec<&str> = all
                    .iter()
                    .filter(|t| {
                        t.anchor == "end"
                            && (t.size - svg_size(TICK)).abs() < 1e-6
                            && !t.text.is_empty()
                    })
                    .map(|t| t.text.as_str())
                    .collect();
                let distinct: std::collections::HashSet<_> = labels.iter().collect();
                assert_eq!(distinct.len(), labels.len(), "{labels:?}");
                assert!(labels.contains(&"gcrodr(20,5), greedy order"), "{labels:?}");
                assert!(
                    labels.contains(&"gcrodr(20,5), natural order"),
                    "{labels:?}"
                );
                assert!(labels.contains(&"gcrodr(20,5)+fresh"), "{labels:?}");
                assert!(all.iter().any(|t| is_time_tick(&t.text)));
            }
            checked += 1;
        }
    }
    assert!(checked >= 18, "{checked} figures");

    // The residual histories are the dataset's own solves: as many iterations as it records.
    let ds = pdekit::data::Dataset::open(&d.join("data/d.h5")).unwrap();
    let iterations = ds.read_all("stats/iterations").unwrap();
    let legend: Vec<String> = texts(&read(&d.join("figs/dataset/residuals.svg")))
        .into_iter()
        .filter(|t| (t.size - svg_size(LEGEND)).abs() < 1e-6)
        .map(|t| t.text)
        .collect();
    // Three of 24 samples are drawn: 0, 8 and 16.
    for sample in [0, 8, 16] {
        let want = format!("sample {sample} ({} iterations)", iterations[[sample]]);
        assert!(legend.contains(&want), "no {want:?} in {legend:?}");
    }

    // Truth and prediction share their colour bar; the error has its own.
    for (path, cell, truth, prediction, error) in [
        (d.join("figs/train/predictions.svg"), 420.0, 1, 2, 3),
        (d.join("figs/gp/solution.svg"), 420.0, 0, 1, 2),
    ] {
        let bars = colour_bars(&texts(&read(&path)), cell, 50.0 + 340.0);
        assert!(!bars[&truth].is_empty(), "{}: {bars:?}", path.display());
        assert_eq!(bars[&truth], bars[&prediction], "{}", path.display());
        assert_ne!(bars[&truth], bars[&error], "{}", path.display());
    }
}
