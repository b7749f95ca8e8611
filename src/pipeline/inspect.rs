//! `pdekit inspect FILE`: a dataset's layout, attributes, arrays and solver statistics.

use crate::data::Dataset;
use crate::PdekitError;
use ndarray::ArrayD;
use std::fmt::Write as _;
use std::path::Path;

/// How one `/stats` column is summarised, and under what label.
type Summary = (&'static str, &'static str, fn(&ArrayD<f64>) -> String);

fn mean(a: &ArrayD<f64>) -> f64 {
    a.mean().unwrap_or(f64::NAN)
}

const STATS: [Summary; 6] = [
    ("stats/iterations", "solver iterations", |a| {
        let (lo, hi) = a
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(l, h), &v| (l.min(v), h.max(v)));
        format!("min {lo}, mean {:.1}, max {hi}", mean(a))
    }),
    ("stats/matvecs", "mat-vecs per sample", |a| {
        format!("mean {:.1}", mean(a))
    }),
    ("stats/residual", "max relative residual", |a| {
        format!("{:.3e}", a.iter().fold(0.0f64, |m, &v| m.max(v)))
    }),
    ("stats/steps", "time steps per sample", |a| {
        format!("mean {:.1}", mean(a))
    }),
    ("stats/converged", "converged", |a| {
        let bad = a.iter().filter(|&&v| v == 0.0).count();
        format!("{} of {}", a.len() - bad, a.len())
    }),
    ("stats/seconds", "seconds per sample", |a| {
        format!("mean {:.4}", mean(a))
    }),
];

/// The summary `pdekit inspect` prints.
pub fn summary(path: &Path) -> Result<String, PdekitError> {
    let ds = Dataset::open(path)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} with {} samples{}",
        path.display(),
        ds.layout().describe(),
        ds.len(),
        if ds.files() > 1 {
            format!(
                " in {} shard files (attributes of the first shown)",
                ds.files()
            )
        } else {
            String::new()
        }
    );
    let mut attrs = ds.attr_names();
    attrs.sort();
    for name in attrs {
        if let Some(v) = ds.attr(&name) {
            let first = v.lines().next().unwrap_or_default();
            let more = v.lines().count() > 1;
            let _ = writeln!(out, "  @{name} = {first}{}", if more { " …" } else { "" });
        }
    }
    if let Some((x, y)) = ds.grid()? {
        let _ = writeln!(
            out,
            "  grid: {} × {} points on [{}, {}] × [{}, {}]",
            x.len(),
            y.len(),
            x[0],
            x[x.len() - 1],
            y[0],
            y[y.len() - 1]
        );
    }
    for note in ds.notes() {
        let _ = writeln!(out, "  {note}");
    }
    for f in ds.fields() {
        let _ = writeln!(out, "  {:<22} {:?} {}", f.name, f.shape, f.dtype);
    }
    for (field, label, summarise) in STATS {
        if ds.has(field) && !ds.is_empty() {
            let _ = writeln!(out, "  {label}: {}", summarise(&ds.read_all(field)?));
        }
    }
    Ok(out)
}
