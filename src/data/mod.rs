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
    #[error("{}: not a pdekit dataset, a neuraloperator file (datasets `x` and `y`) or a PDEBench Darcy file (`nu` and `tensor`); it holds: {found}", path.display())]
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
}

impl Layout {
    pub fn describe(self) -> &'static str {
        match self {
            Layout::Pdekit => "pdekit dataset",
            Layout::NeuralOperator => "neuraloperator {x, y} file",
            Layout::PdeBench => "PDEBench Darcy file",
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
}

/// A dataset file opened for reading; reads load only the samples asked for.
pub struct Dataset {
    reader: H5Reader,
    layout: Layout,
    fields: Vec<Field>,
    len: usize,
    grid: GridPaths,
}

impl Dataset {
    pub fn open(path: &Path) -> Result<Self, DataError> {
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
        Ok(Self {
            reader,
            layout,
            fields,
            len,
            grid,
        })
    }

    pub fn path(&self) -> &Path {
        self.reader.path()
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
        let (_, values) = self.reader.read_rows(&field.source, rows.clone())?;
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
