//! Time-series files read as datasets of one-step pairs: The Well's HDF5 layout and PDEBench's
//! time-dependent files. A trajectory of `T` states gives `T − 1` samples, the state at step `t`
//! (`inputs/…`) and at step `t + 1` (`outputs/…`), so a model trains on `u(t) → u(t + Δt)` under
//! the same names as a native dataset. Sample `r` is trajectory `r / (T − 1)`, step
//! `r % (T − 1)`.
//!
//! - **The Well** (`t0_fields/`, `t1_fields/`, `dimensions/`, `boundary_conditions/`,
//!   `scalars/`): every field that varies over trajectories and time is read, scalar fields as
//!   one channel and vector fields as one channel per component. `inputs/state` stacks them all
//!   (scalar fields first, in `t0_fields` order, then each vector field's components);
//!   `inputs/NAME` is one field. `params/NAME` are the scalars of `scalars/` (per trajectory or
//!   constant), `params/time` the time of the input state. Fields that do not vary over
//!   trajectories or time are left out.
//! - **PDEBench**, 1-D and 2-D: a `tensor` `[B, T, x(, y)]` with `t-coordinate` (advection,
//!   Burgers, diffusion–reaction 1-D; `inputs/u`); the compressible-flow files' `density`,
//!   `pressure`, `Vx`, `Vy`(, `Vz`) `[B, T, x(, y)]` (`inputs/state` and one per field); and
//!   per-sample groups `NNNN/data` `[T, x(, y), C]` (shallow water, diffusion–reaction 2-D;
//!   `inputs/data`).

use super::h5::H5Reader;
use super::{DataError, Field, Layout};
use std::ops::Range;
use std::path::Path;

/// Where the values of a time-series field come from.
#[derive(Debug, Clone, PartialEq)]
pub enum StepSource {
    /// An array `[B, T, grid…]` (`components = 1`) or `[B, T, grid…, components]`.
    Stacked { path: String, components: usize },
    /// One array `[T, grid…, components]` per trajectory.
    PerTrajectory {
        paths: Vec<String>,
        components: usize,
    },
    /// A scalar per trajectory (`[B]`) or one for all (`[]` or `[1]`).
    Scalar { path: String, per_trajectory: bool },
    /// The time of the sample's step, from `[T]` (or longer) times.
    Time { path: String },
}

impl StepSource {
    fn channels(&self) -> usize {
        match self {
            StepSource::Stacked { components, .. }
            | StepSource::PerTrajectory { components, .. } => *components,
            StepSource::Scalar { .. } | StepSource::Time { .. } => 1,
        }
    }

    fn describe(&self) -> String {
        match self {
            StepSource::Stacked { path, .. } | StepSource::Scalar { path, .. } => path.clone(),
            StepSource::Time { path } => path.clone(),
            StepSource::PerTrajectory { paths, .. } => format!(
                "{} … ({} groups)",
                paths.first().map_or("", String::as_str),
                paths.len()
            ),
        }
    }
}

/// How a field's samples are cut from trajectories.
#[derive(Debug, Clone, PartialEq)]
pub struct Steps {
    /// Stacked as channels, in order.
    pub sources: Vec<StepSource>,
    /// States per trajectory.
    pub steps: usize,
    /// 0: the state at the sample's step (inputs); 1: the next one (outputs).
    pub lag: usize,
    /// The spatial grid (empty for parameters).
    pub grid: Vec<usize>,
}

/// What a time-series file holds, for [`super::Dataset`].
pub(super) struct Opened {
    pub layout: Layout,
    pub fields: Vec<Field>,
    pub grid: Option<(String, String)>,
    pub len: usize,
    /// Facts worth showing (boundary conditions, trajectory and step counts).
    pub notes: Vec<String>,
}

fn corrupt(path: &Path, message: String) -> DataError {
    DataError::Corrupt {
        path: path.to_path_buf(),
        message,
    }
}

/// `(inputs/NAME, outputs/NAME)` fields over `sources`, plus the shape bookkeeping.
fn pair(
    name: &str,
    sources: Vec<StepSource>,
    steps: usize,
    grid: &[usize],
    trajectories: usize,
) -> [Field; 2] {
    let channels: usize = sources.iter().map(StepSource::channels).sum();
    let mut shape = vec![trajectories * (steps - 1)];
    if channels > 1 {
        shape.push(channels);
    }
    shape.extend(grid);
    let source = sources
        .iter()
        .map(StepSource::describe)
        .collect::<Vec<_>>()
        .join(" + ");
    [("inputs", 0), ("outputs", 1)].map(|(group, lag)| Field {
        name: format!("{group}/{name}"),
        source: format!("{source} (step t{})", if lag == 0 { "" } else { " + 1" }),
        shape: shape.clone(),
        dtype: "f32".into(),
        steps: Some(Steps {
            sources: sources.clone(),
            steps,
            lag,
            grid: grid.to_vec(),
        }),
    })
}

fn param(name: &str, source: StepSource, steps: usize, trajectories: usize) -> Field {
    Field {
        name: format!("params/{name}"),
        source: source.describe(),
        shape: vec![trajectories * (steps - 1)],
        dtype: "f64".into(),
        steps: Some(Steps {
            sources: vec![source],
            steps,
            lag: 0,
            grid: Vec::new(),
        }),
    }
}

/// A The Well or PDEBench time-series file, or `None` if it is neither.
pub(super) fn detect(reader: &H5Reader, path: &Path) -> Result<Option<Opened>, DataError> {
    let names = reader.names();
    let has = |n: &str| names.iter().any(|x| x == n);
    let well_groups = ["t0_fields", "t1_fields", "t2_fields", "dimensions"];
    if names
        .iter()
        .any(|n| well_groups.iter().any(|g| n.starts_with(&format!("{g}/"))))
    {
        return the_well(reader, path, &names).map(Some);
    }
    if has("tensor") && !has("nu") {
        let info = reader.info("tensor")?;
        let [b, t, grid @ ..] = info.shape.as_slice() else {
            return Err(corrupt(
                path,
                format!(
                    "`tensor` has shape {:?}; a PDEBench time series is [samples, steps, x(, y)]",
                    info.shape
                ),
            ));
        };
        let (b, t, grid) = (*b, *t, grid.to_vec());
        check_series(path, "tensor", b, t, &grid)?;
        let mut fields = pair(
            "u",
            vec![StepSource::Stacked {
                path: "tensor".into(),
                components: 1,
            }],
            t,
            &grid,
            b,
        )
        .to_vec();
        if has("t-coordinate") {
            fields.push(param(
                "time",
                StepSource::Time {
                    path: "t-coordinate".into(),
                },
                t,
                b,
            ));
        }
        return Ok(Some(Opened {
            layout: Layout::PdeBenchSeries,
            fields,
            grid: coordinate_pair(&names, &grid, "x-coordinate", "y-coordinate"),
            len: b * (t - 1),
            notes: vec![format!("{b} trajectories of {t} steps")],
        }));
    }
    let cfd: Vec<&str> = ["density", "pressure", "Vx", "Vy", "Vz"]
        .into_iter()
        .filter(|n| has(n))
        .collect();
    if cfd.len() >= 2 {
        let info = reader.info(cfd[0])?;
        let [b, t, grid @ ..] = info.shape.as_slice() else {
            return Err(corrupt(
                path,
                format!(
                    "`{}` has shape {:?}; PDEBench flow fields are [samples, steps, x(, y)]",
                    cfd[0], info.shape
                ),
            ));
        };
        let (b, t, grid) = (*b, *t, grid.to_vec());
        check_series(path, cfd[0], b, t, &grid)?;
        let mut sources = Vec::new();
        let mut fields = Vec::new();
        for name in &cfd {
            let shape = reader.info(name)?.shape;
            if shape != info.shape {
                return Err(corrupt(path, format!("`{name}` has shape {shape:?}, `{}` {:?}; the flow fields must share one shape", cfd[0], info.shape)));
            }
            let s = StepSource::Stacked {
                path: name.to_string(),
                components: 1,
            };
            fields.extend(pair(name, vec![s.clone()], t, &grid, b));
            sources.push(s);
        }
        let mut all = pair("state", sources, t, &grid, b).to_vec();
        all.extend(fields);
        if has("t-coordinate") {
            all.push(param(
                "time",
                StepSource::Time {
                    path: "t-coordinate".into(),
                },
                t,
                b,
            ));
        }
        return Ok(Some(Opened {
            layout: Layout::PdeBenchSeries,
            fields: all,
            grid: coordinate_pair(&names, &grid, "x-coordinate", "y-coordinate"),
            len: b * (t - 1),
            notes: vec![format!(
                "{b} trajectories of {t} steps; state channels: {}",
                cfd.join(", ")
            )],
        }));
    }
    let mut groups: Vec<String> = names
        .iter()
        .filter_map(|n| n.strip_suffix("/data"))
        .filter(|g| !g.contains('/'))
        .map(str::to_string)
        .collect();
    if !groups.is_empty() {
        groups.sort();
        let first = format!("{}/data", groups[0]);
        let info = reader.info(&first)?;
        let [t, grid @ .., c] = info.shape.as_slice() else {
            return Err(corrupt(path, format!("`{first}` has shape {:?}; PDEBench per-sample data is [steps, x(, y), channels]", info.shape)));
        };
        let (t, grid, c) = (*t, grid.to_vec(), *c);
        check_series(path, &first, groups.len(), t, &grid)?;
        let mut paths = Vec::with_capacity(groups.len());
        for g in &groups {
            let p = format!("{g}/data");
            let shape = reader.info(&p)?.shape;
            if shape != info.shape {
                return Err(corrupt(path, format!("`{p}` has shape {shape:?}, `{first}` {:?}; every sample group must hold the same shape", info.shape)));
            }
            paths.push(p);
        }
        let b = groups.len();
        let mut fields = pair(
            "data",
            vec![StepSource::PerTrajectory {
                paths,
                components: c,
            }],
            t,
            &grid,
            b,
        )
        .to_vec();
        let time = format!("{}/grid/t", groups[0]);
        if has(&time) {
            fields.push(param("time", StepSource::Time { path: time }, t, b));
        }
        let g0 = &groups[0];
        return Ok(Some(Opened {
            layout: Layout::PdeBenchSeries,
            fields,
            grid: coordinate_pair(
                &names,
                &grid,
                &format!("{g0}/grid/x"),
                &format!("{g0}/grid/y"),
            ),
            len: b * (t - 1),
            notes: vec![format!("{b} sample groups of {t} steps and {c} channels")],
        }));
    }
    Ok(None)
}

/// At least one pair, and a grid of 1 to 3 axes.
fn check_series(
    path: &Path,
    name: &str,
    b: usize,
    t: usize,
    grid: &[usize],
) -> Result<(), DataError> {
    if b == 0 || t < 2 {
        return Err(corrupt(path, format!("`{name}`: {b} trajectories of {t} steps; one-step pairs need at least one trajectory of two steps")));
    }
    if grid.is_empty() || grid.len() > 3 {
        return Err(corrupt(
            path,
            format!(
                "`{name}`: a grid of {} axes {grid:?}; expected 1 to 3",
                grid.len()
            ),
        ));
    }
    Ok(())
}

/// The x and y coordinate arrays of a 2-D grid, when the file has both.
fn coordinate_pair(names: &[String], grid: &[usize], x: &str, y: &str) -> Option<(String, String)> {
    (grid.len() == 2 && names.iter().any(|n| n == x) && names.iter().any(|n| n == y))
        .then(|| (x.to_string(), y.to_string()))
}

fn the_well(reader: &H5Reader, path: &Path, names: &[String]) -> Result<Opened, DataError> {
    let missing = |what: &str| {
        corrupt(
            path,
            format!(
                "looks like a The Well file (it has {}), but has no {what}",
                ["t0_fields/", "t1_fields/", "dimensions/"]
                    .iter()
                    .filter(|g| names.iter().any(|n| n.starts_with(*g)))
                    .map(|g| g.trim_end_matches('/'))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        )
    };
    if !names.iter().any(|n| n == "dimensions/time") {
        return Err(missing("`dimensions/time` (the times of the steps)"));
    }
    let t = reader
        .info("dimensions/time")?
        .shape
        .first()
        .copied()
        .unwrap_or(0);
    let fields_in = |group: &str| -> Vec<String> {
        let mut v: Vec<String> = names
            .iter()
            .filter(|n| n.starts_with(&format!("{group}/")) && n.matches('/').count() == 1)
            .cloned()
            .collect();
        v.sort();
        v
    };
    let (t0, t1) = (fields_in("t0_fields"), fields_in("t1_fields"));
    if t0.is_empty() && t1.is_empty() {
        return Err(missing(
            "field group (`t0_fields/` or `t1_fields/` with arrays in it)",
        ));
    }
    // The trajectory count and grid from the first field that varies over both.
    let mut b = None;
    let mut grid: Option<Vec<usize>> = None;
    let mut sources = Vec::new();
    let mut single = Vec::new();
    let mut skipped = Vec::new();
    for (list, extra) in [(&t0, 0usize), (&t1, 1)] {
        for p in list {
            let shape = reader.info(p)?.shape;
            // [B, T, grid…] (+ one component axis for vectors).
            if shape.len() < 3 + extra || shape[1] != t {
                skipped.push(format!("{p} {shape:?}"));
                continue;
            }
            let spatial = shape[2..shape.len() - extra].to_vec();
            match (&grid, b) {
                (Some(g), Some(nb)) if *g != spatial || nb != shape[0] => {
                    return Err(corrupt(path, format!("`{p}` has shape {shape:?}; the fields before it are {nb} trajectories on a grid {g:?}")));
                }
                _ => {
                    grid = Some(spatial);
                    b = Some(shape[0]);
                }
            }
            let components = if extra == 1 {
                *shape.last().expect("a component axis")
            } else {
                1
            };
            let s = StepSource::Stacked {
                path: p.clone(),
                components,
            };
            let name = p.rsplit('/').next().unwrap_or(p).to_string();
            single.push((name, s.clone()));
            sources.push(s);
        }
    }
    let (Some(b), Some(grid)) = (b, grid) else {
        return Err(missing(&format!(
            "field that varies over trajectories and time (shape [trajectories, {t} steps, grid…]); it has {}",
            skipped.join(", ")
        )));
    };
    check_series(path, "dimensions/time", b, t, &grid)?;
    let mut fields = pair("state", sources, t, &grid, b).to_vec();
    for (name, s) in single {
        fields.extend(pair(&name, vec![s], t, &grid, b));
    }
    fields.push(param(
        "time",
        StepSource::Time {
            path: "dimensions/time".into(),
        },
        t,
        b,
    ));
    for p in fields_in("scalars") {
        let shape = reader.info(&p)?.shape;
        let per_trajectory = match shape.as_slice() {
            [] | [1] => false,
            [n] if *n == b => true,
            _ => continue, // time-varying scalars are not parameters
        };
        let name = p.rsplit('/').next().unwrap_or(&p).to_string();
        fields.push(param(
            &name,
            StepSource::Scalar {
                path: p,
                per_trajectory,
            },
            t,
            b,
        ));
    }
    let mut notes = vec![format!("{b} trajectories of {t} steps")];
    let bcs: Vec<String> = {
        let mut v: Vec<String> = names
            .iter()
            .filter_map(|n| n.strip_prefix("boundary_conditions/"))
            .filter_map(|n| n.split('/').next())
            .map(str::to_string)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    if !bcs.is_empty() {
        notes.push(format!("boundary conditions: {}", bcs.join(", ")));
    }
    if !skipped.is_empty() {
        notes.push(format!(
            "left out (not varying over trajectories and time): {}",
            skipped.join(", ")
        ));
    }
    Ok(Opened {
        layout: Layout::TheWell,
        fields,
        grid: coordinate_pair(names, &grid, "dimensions/x", "dimensions/y"),
        len: b * (t - 1),
        notes,
    })
}

/// Rows `rows` of a time-series field, `[rows, channels…, grid…]` in row-major order.
pub(super) fn read(
    reader: &H5Reader,
    steps: &Steps,
    rows: Range<usize>,
) -> Result<Vec<f64>, DataError> {
    let pairs = steps.steps - 1;
    let points: usize = steps.grid.iter().product();
    let channels: usize = steps.sources.iter().map(StepSource::channels).sum();
    let mut out = vec![0.0; rows.len() * channels * points];
    // Read once per call, not per trajectory: each array's shape (the per-trajectory arrays
    // share one, checked on open) and the small parameter and time arrays.
    let mut prepared = Vec::with_capacity(steps.sources.len());
    for source in &steps.sources {
        prepared.push(match source {
            StepSource::Stacked { path, .. } => (reader.info(path)?.shape, Vec::new()),
            StepSource::PerTrajectory { paths, .. } => (reader.info(&paths[0])?.shape, Vec::new()),
            StepSource::Scalar { path, .. } | StepSource::Time { path } => {
                (Vec::new(), reader.read_all(path)?.1)
            }
        });
    }
    let mut row = rows.start;
    while row < rows.end {
        let (b, t) = (row / pairs, row % pairs);
        // This trajectory's rows in the range: steps t..t_end.
        let n = (pairs - t).min(rows.end - row);
        let first = t + steps.lag;
        let mut channel = 0;
        for (source, (shape, all)) in steps.sources.iter().zip(&prepared) {
            let c = source.channels();
            // [n, points, c] (or [n] for parameters), from one slab.
            let values = match source {
                StepSource::Stacked { path, .. } => {
                    let mut starts = vec![0; shape.len()];
                    starts[0] = b;
                    starts[1] = first;
                    let mut counts = shape.clone();
                    counts[0] = 1;
                    counts[1] = n;
                    reader.read_slab(path, &starts, &counts)?
                }
                StepSource::PerTrajectory { paths, .. } => {
                    let mut starts = vec![0; shape.len()];
                    starts[0] = first;
                    let mut counts = shape.clone();
                    counts[0] = n;
                    reader.read_slab(&paths[b], &starts, &counts)?
                }
                StepSource::Scalar { per_trajectory, .. } => {
                    let v = all
                        .get(if *per_trajectory { b } else { 0 })
                        .copied()
                        .unwrap_or(f64::NAN);
                    vec![v; n]
                }
                StepSource::Time { .. } => (first..first + n)
                    .map(|s| all.get(s).copied().unwrap_or(f64::NAN))
                    .collect(),
            };
            let per = points.max(1);
            for k in 0..n {
                let dst = &mut out[(row - rows.start + k) * channels * per..][..channels * per];
                for comp in 0..c {
                    for p in 0..per {
                        dst[(channel + comp) * per + p] = values[(k * per + p) * c + comp];
                    }
                }
            }
            channel += c;
        }
        row += n;
    }
    Ok(out)
}
