//! Datasets: the pdekit HDF5 layout, and readers for the files users already have.
//!
//! A [`Dataset`] presents any supported file through the pdekit names (`inputs/…`, `outputs/…`,
//! `params/…`, `stats/…`), with the sample axis first:
//! - pdekit datasets (root attribute `format = "pdekit-dataset"`), as written by `pdekit generate`;
//! - neuraloperator files with datasets `x` (input) and `y` (output), `[N, R, R]`, bool, f32 or f64,
//!   seen as `inputs/x` and `outputs/y`;
//! - PDEBench Darcy files with `nu` `[b, x, y]` and `tensor` `[b, 1, x, y]`, seen as
//!   `inputs/coefficient` and `outputs/solution` (the singleton time axis dropped), with the grid from
//!   `x-coordinate` and `y-coordinate`.

pub mod h5;
pub mod merge;
pub mod series;

use h5::H5Reader;
use ndarray::ArrayD;
use std::ops::Range;
use std::path::{Path, PathBuf};
use thiserror::Error;

pub const FORMAT_NAME: &str = "pdekit-dataset";
pub const FORMAT_VERSION: &str = "1";

#[derive(Debug, Error)]
pub enum DataError {
    #[error("{}: no such file", path.display())]
    Missing { path: PathBuf },
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Io { path: PathBuf, message: String },
    #[error("{what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },
    #[error("{}: samples {start}..{end} of {name} requested, but it holds {len}", path.display())]
    Range {
        path: PathBuf,
        name: String,
        start: usize,
        end: usize,
        len: usize,
    },
    #[error("{}: this partial file was started by a different plan, so it cannot be continued.\n  stored: {stored}\n  wanted: {wanted}\nRerun with --force to discard it and start again", path.display())]
    PlanMismatch {
        path: PathBuf,
        stored: String,
        wanted: String,
    },
    #[error("{}: another process (PID {}) is writing it and holds {}; wait for it to finish or stop it", path.display(), if holder.is_empty() { "unknown" } else { holder.as_str() }, lock.display())]
    Locked {
        path: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("{}: not a pdekit dataset, a neuraloperator file (datasets `x` and `y`), a PDEBench Darcy file (`nu` and `tensor`), a PDEBench time series (`tensor` [samples, steps, x(, y)], flow fields `density`, `Vx`, … or sample groups `NNNN/data`) or a The Well file (`t0_fields/`, `t1_fields/`, `dimensions/`); it holds: {found}", path.display())]
    UnknownLayout { path: PathBuf, found: String },
    #[error("{}: no array `{name}`; it has: {available}", path.display())]
    NoField {
        path: PathBuf,
        name: String,
        available: String,
    },
}

/// Which kind of file a [`Dataset`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Pdekit,
    NeuralOperator,
    PdeBench,
    /// The Well's trajectories, read as one-step pairs ([`series`]).
    TheWell,
    /// PDEBench's time-dependent files, read as one-step pairs ([`series`]).
    PdeBenchSeries,
}

impl Layout {
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Pdekit => "pdekit dataset",
            Layout::NeuralOperator => "neuraloperator {x, y} file",
            Layout::PdeBench => "PDEBench Darcy file",
            Layout::TheWell => "The Well file (one-step pairs of its trajectories)",
            Layout::PdeBenchSeries => "PDEBench time series (one-step pairs of its trajectories)",
        }
    }
}

/// `(logical name, path in the file)` pairs.
type NameMap = Vec<(String, String)>;
/// Paths of the x and y coordinate arrays.
type GridPaths = Option<(String, String)>;
/// Coordinates along x and y.
pub type GridCoords = (Vec<f64>, Vec<f64>);

/// One per-sample array of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// pdekit name, e.g. `inputs/coefficient`.
    pub name: String,
    /// Path of the array in the file.
    pub source: String,
    /// Shape with the sample axis first, after any squeeze.
    pub shape: Vec<usize>,
    pub dtype: String,
    /// For a time series: how its samples are cut from the trajectories (else rows of `source`).
    pub steps: Option<series::Steps>,
}

/// A dataset opened for reading; reads load only the samples asked for. It is one file, or the
/// shard files `NAME.shard-I-of-N.h5` of a sharded run read as one dataset in shard order.
pub struct Dataset {
    /// The first file, whose attributes and grid stand for the whole.
    reader: H5Reader,
    /// Further shard files and their sample counts, after the first.
    more: Vec<(H5Reader, usize)>,
    /// The path the dataset was opened by.
    path: PathBuf,
    layout: Layout,
    fields: Vec<Field>,
    /// Samples in the first file.
    first_len: usize,
    len: usize,
    grid: GridPaths,
    /// What `inspect` should say besides the fields (a time series' trajectories, boundaries).
    notes: Vec<String>,
}

/// The shard files of `target` (`NAME.shard-I-of-N.h5` beside it), in shard order. `Ok(None)` when
/// there are none; an error when the set is incomplete or mixes shard counts.
pub fn find_shards(target: &Path) -> Result<Option<Vec<PathBuf>>, DataError> {
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = match target.file_stem() {
        Some(s) => s.to_string_lossy().into_owned(),
        None => return Ok(None),
    };
    let prefix = format!("{stem}.shard-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    let mut found: Vec<(u64, u64, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".h5"))
        else {
            continue;
        };
        if let Some((i, n)) = rest.split_once("-of-") {
            if let (Ok(i), Ok(n)) = (i.parse::<u64>(), n.parse::<u64>()) {
                found.push((n, i, entry.path()));
            }
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    found.sort();
    let count = found[0].0;
    if found.iter().any(|f| f.0 != count) {
        let counts: std::collections::BTreeSet<u64> = found.iter().map(|f| f.0).collect();
        return Err(DataError::Corrupt {
            path: target.to_path_buf(),
            message: format!("shard files with different shard counts {counts:?} lie beside each other; keep one set"),
        });
    }
    let missing: Vec<u64> = (0..count)
        .filter(|i| !found.iter().any(|f| f.1 == *i))
        .collect();
    if !missing.is_empty() {
        return Err(DataError::Corrupt {
            path: target.to_path_buf(),
            message: format!(
                "{} of {count} shards are missing ({stem}.shard-I-of-{count}.h5 for I = {})",
                missing.len(),
                index_ranges(&missing)
            ),
        });
    }
    Ok(Some(found.into_iter().map(|f| f.2).collect()))
}

/// Sorted indices as `0, 3-7, 9`.
fn index_ranges(sorted: &[u64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
            j += 1;
        }
        parts.push(if j == i {
            sorted[i].to_string()
        } else {
            format!("{}-{}", sorted[i], sorted[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}

impl Dataset {
    /// Opens a dataset file; if `path` does not exist but its complete set of shard files does,
    /// opens them as one dataset.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        if !path.exists() {
            if let Some(shards) = find_shards(path)? {
                let mut ds = Self::open_shards(&shards)?;
                ds.path = path.to_path_buf();
                return Ok(ds);
            }
        }
        Self::open_file(path)
    }

    /// Opens shard files as one dataset, in the order given. They must hold the same arrays
    /// (apart from the sample count) and, for pdekit datasets, come from the same plan.
    pub fn open_shards(paths: &[PathBuf]) -> Result<Self, DataError> {
        let (first_path, rest) = paths.split_first().ok_or_else(|| DataError::Missing {
            path: PathBuf::from("(no shard files given)"),
        })?;
        let mut ds = Self::open_file(first_path)?;
        let key = ds.attr("dataset_key");
        for p in rest {
            let other = Self::open_file(p)?;
            let mismatch = |message: String| DataError::Corrupt {
                path: p.clone(),
                message,
            };
            if other.attr("dataset_key") != key {
                return Err(mismatch(format!(
                    "made by another plan than {}; shards of different runs cannot be joined",
                    first_path.display()
                )));
            }
            let shapes = |d: &Dataset| -> Vec<(String, Vec<usize>, String)> {
                d.fields
                    .iter()
                    .map(|f| (f.name.clone(), f.shape[1..].to_vec(), f.dtype.clone()))
                    .collect()
            };
            if shapes(&other) != shapes(&ds) {
                return Err(mismatch(format!(
                    "its arrays differ from those of {}",
                    first_path.display()
                )));
            }
            ds.len += other.len;
            ds.more.push((other.reader, other.len));
        }
        let total = ds.len;
        for f in &mut ds.fields {
            f.shape[0] = total;
        }
        Ok(ds)
    }

    /// Number of files the dataset is read from.
    pub fn files(&self) -> usize {
        1 + self.more.len()
    }

    fn open_file(path: &Path) -> Result<Self, DataError> {
        let reader = H5Reader::open(path)?;
        let names = reader.names();
        let has = |n: &str| names.iter().any(|x| x == n);
        let (layout, map, grid): (Layout, NameMap, GridPaths) = if reader.attr("format").as_deref()
            == Some(FORMAT_NAME)
        {
            let map = names
                .iter()
                .filter(|n| {
                    ["inputs/", "outputs/", "params/", "stats/"]
                        .iter()
                        .any(|g| n.starts_with(g))
                })
                .map(|n| (n.clone(), n.clone()))
                .collect();
            let grid = (has("grid/x") && has("grid/y")).then(|| ("grid/x".into(), "grid/y".into()));
            (Layout::Pdekit, map, grid)
        } else if has("x") && has("y") {
            let map = vec![
                ("inputs/x".into(), "x".into()),
                ("outputs/y".into(), "y".into()),
            ];
            (Layout::NeuralOperator, map, None)
        } else if has("nu") && has("tensor") {
            let map = vec![
                ("inputs/coefficient".into(), "nu".into()),
                ("outputs/solution".into(), "tensor".into()),
            ];
            let grid = (has("x-coordinate") && has("y-coordinate"))
                .then(|| ("x-coordinate".into(), "y-coordinate".into()));
            (Layout::PdeBench, map, grid)
        } else if let Some(o) = series::detect(&reader, path)? {
            return Ok(Self {
                reader,
                more: Vec::new(),
                path: path.to_path_buf(),
                layout: o.layout,
                fields: o.fields,
                first_len: o.len,
                len: o.len,
                grid: o.grid,
                notes: o.notes,
            });
        } else {
            return Err(DataError::UnknownLayout {
                path: path.to_path_buf(),
                found: if names.is_empty() {
                    "no datasets".into()
                } else {
                    names.join(", ")
                },
            });
        };
        let mut fields = Vec::with_capacity(map.len());
        for (name, source) in map {
            let info = reader.info(&source)?;
            let mut shape = info.shape;
            if layout == Layout::PdeBench && source == "tensor" && shape.len() == 4 && shape[1] == 1
            {
                shape.remove(1);
            }
            fields.push(Field {
                name,
                source,
                shape,
                dtype: info.dtype,
                steps: None,
            });
        }
        let lens: Vec<usize> = fields
            .iter()
            .map(|f| f.shape.first().copied().unwrap_or(0))
            .collect();
        let len = lens.iter().copied().min().unwrap_or(0);
        if lens.iter().any(|&l| l != len) {
            let detail: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {:?}", f.name, f.shape))
                .collect();
            return Err(DataError::Corrupt {
                path: path.to_path_buf(),
                message: format!(
                    "arrays disagree on the number of samples: {}",
                    detail.join(", ")
                ),
            });
        }
        if layout == Layout::Pdekit {
            // Files written before the attribute existed have none: version 1.
            if let Some(v) = reader
                .attr("format_version")
                .filter(|v| v != FORMAT_VERSION)
            {
                return Err(DataError::Corrupt {
                    path: path.to_path_buf(),
                    message: format!(
                        "format_version is \"{v}\"; this pdekit reads version {FORMAT_VERSION}"
                    ),
                });
            }
        }
        // Coordinate arrays must be 1-D and as long as some axis of the samples.
        let axes: Vec<usize> = fields
            .iter()
            .flat_map(|f| f.shape.iter().skip(1).copied())
            .collect();
        let coords = names.iter().filter(|n| {
            n.starts_with("grid/") || grid.as_ref().is_some_and(|(x, y)| *n == x || *n == y)
        });
        for name in coords {
            let shape = reader.info(name)?.shape;
            if shape.len() != 1 || !axes.contains(&shape[0]) {
                return Err(DataError::Corrupt {
                    path: path.to_path_buf(),
                    message: format!(
                        "coordinate array `{name}` has shape {shape:?}; expected one axis as long as an axis of the samples ({:?})",
                        fields.iter().map(|f| (&f.name, f.shape.get(1..).unwrap_or(&[]))).collect::<Vec<_>>()
                    ),
                });
            }
        }
        Ok(Self {
            reader,
            more: Vec::new(),
            path: path.to_path_buf(),
            layout,
            fields,
            first_len: len,
            len,
            grid,
            notes: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file holds besides its fields, for `inspect` (empty for most layouts).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn field(&self, name: &str) -> Result<&Field, DataError> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| DataError::NoField {
                path: self.path().to_path_buf(),
                name: name.into(),
                available: self
                    .fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    pub fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.name == name)
    }

    /// Root string attribute (pdekit datasets).
    pub fn attr(&self, name: &str) -> Option<String> {
        self.reader.attr(name)
    }

    pub fn attr_names(&self) -> Vec<String> {
        self.reader.attr_names()
    }

    /// The arrays that are not per-sample (`grid/…`), as stored in the first file.
    pub fn fixed_arrays(&self) -> Result<Vec<(String, Vec<f64>)>, DataError> {
        self.reader
            .names()
            .into_iter()
            .filter(|n| n.starts_with("grid/"))
            .map(|n| {
                let (_, v) = self.reader.read_all(&n)?;
                Ok((n, v))
            })
            .collect()
    }

    /// The coordinates `grid/NAME` (pdekit datasets), when the file has them.
    pub fn grid_axis(&self, name: &str) -> Result<Option<Vec<f64>>, DataError> {
        let path = format!("grid/{name}");
        if self.layout != Layout::Pdekit || !self.reader.names().contains(&path) {
            return Ok(None);
        }
        Ok(Some(self.reader.read_all(&path)?.1))
    }

    /// Grid coordinates `(x, y)`, when the file has them.
    pub fn grid(&self) -> Result<Option<GridCoords>, DataError> {
        match &self.grid {
            None => Ok(None),
            Some((x, y)) => Ok(Some((
                self.reader.read_all(x)?.1,
                self.reader.read_all(y)?.1,
            ))),
        }
    }

    /// Samples `rows` of field `name`, shape `[rows.len(), ...]`.
    pub fn read(&self, name: &str, rows: Range<usize>) -> Result<ArrayD<f64>, DataError> {
        let field = self.field(name)?;
        if rows.end > self.len || rows.start > rows.end {
            return Err(DataError::Range {
                path: self.path.clone(),
                name: name.into(),
                start: rows.start,
                end: rows.end,
                len: self.len,
            });
        }
        // The shape comes from the file's header: refuse what cannot be held before allocating.
        let need = field
            .shape
            .iter()
            .skip(1)
            .fold(rows.len() as u128 * 8, |b, &n| b.saturating_mul(n as u128));
        let available = crate::meta::available_bytes();
        if need > available {
            return Err(DataError::Corrupt {
                path: self.path.clone(),
                message: format!(
                    "reading rows {}..{} of `{name}` (shape {:?}) needs {:.3e} GiB; {:.1} GiB are available",
                    rows.start,
                    rows.end,
                    field.shape,
                    need as f64 / (1u64 << 30) as f64,
                    available as f64 / (1u64 << 30) as f64
                ),
            });
        }
        if let Some(steps) = &field.steps {
            let values = series::read(&self.reader, steps, rows.clone())?;
            let mut shape = field.shape.clone();
            shape[0] = rows.len();
            return ArrayD::from_shape_vec(shape.clone(), values).map_err(|e| DataError::Shape {
                what: format!("{}:{name}", self.path().display()),
                expected: format!("{shape:?}"),
                got: e.to_string(),
            });
        }
        let mut values = Vec::new();
        let mut start = 0;
        let parts = std::iter::once((&self.reader, self.first_len))
            .chain(self.more.iter().map(|(r, n)| (r, *n)));
        for (reader, n) in parts {
            let (lo, hi) = (rows.start.max(start), rows.end.min(start + n));
            if lo < hi {
                let (_, part) = reader.read_rows(&field.source, lo - start..hi - start)?;
                values.extend(part);
            }
            start += n;
        }
        let mut shape = field.shape.clone();
        shape[0] = rows.len();
        ArrayD::from_shape_vec(shape.clone(), values).map_err(|e| DataError::Shape {
            what: format!("{}:{name}", self.path().display()),
            expected: format!("{shape:?}"),
            got: e.to_string(),
        })
    }

    /// Sample `i` of field `name`, without the sample axis.
    pub fn sample(&self, name: &str, i: usize) -> Result<ArrayD<f64>, DataError> {
        let a = self.read(name, i..i + 1)?;
        Ok(a.index_axis_move(ndarray::Axis(0), 0))
    }

    /// The whole of field `name`.
    pub fn read_all(&self, name: &str) -> Result<ArrayD<f64>, DataError> {
        self.read(name, 0..self.len)
    }
}

#[cfg(test)]
mod index_tests {
    #[test]
    fn missing_indices_read_as_ranges() {
        assert_eq!(
            super::index_ranges(&[0, 3, 4, 5, 7, 9, 10]),
            "0, 3-5, 7, 9-10"
        );
        assert_eq!(super::index_ranges(&(1..1000).collect::<Vec<_>>()), "1-999");
        assert_eq!(super::index_ranges(&[]), "");
    }
}
