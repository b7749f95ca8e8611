//! Every HDF5 call of pdekit lives here, so the backend (`rust-hdf5`, pure Rust) can be swapped.
//!
//! Writing uses rust-hdf5's SWMR writer: after each [`DatasetWriter::checkpoint`] the file on disk is
//! a consistent HDF5 file holding every sample appended so far, even if the process is then killed.
//! That is what makes generation resumable. A plain (non-SWMR) file is valid only once closed.

use super::DataError;
use rust_hdf5::format::messages::datatype::{ByteOrder, DatatypeMessage};
use rust_hdf5::format::messages::filter::FilterPipeline;
use rust_hdf5::swmr::SwmrFileWriter;
use rust_hdf5::H5File;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Element types pdekit stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
    U8,
    U32,
    U64,
}

impl Dtype {
    /// The type a reader reports as `name` (see [`ArrayInfo::dtype`]).
    pub fn from_name(name: &str) -> Option<Self> {
        [Dtype::F32, Dtype::F64, Dtype::U8, Dtype::U32, Dtype::U64]
            .into_iter()
            .find(|d| d.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
            Dtype::U8 => "u8",
            Dtype::U32 => "u32",
            Dtype::U64 => "u64",
        }
    }

    fn encode(self, values: &[f64], out: &mut Vec<u8>) {
        out.clear();
        for &v in values {
            match self {
                Dtype::F32 => out.extend_from_slice(&(v as f32).to_le_bytes()),
                Dtype::F64 => out.extend_from_slice(&v.to_le_bytes()),
                Dtype::U8 => out.push(v as u8),
                Dtype::U32 => out.extend_from_slice(&(v as u32).to_le_bytes()),
                Dtype::U64 => out.extend_from_slice(&(v as u64).to_le_bytes()),
            }
        }
    }
}

/// A per-sample array: stored as `[N, frame...]`, one sample per chunk, deflate-compressed.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    /// Path in the file, e.g. `inputs/coefficient`.
    pub path: String,
    pub dtype: Dtype,
    /// Shape of one sample's array (empty for a scalar per sample).
    pub frame: Vec<usize>,
}

/// Everything in a dataset file that is not per-sample.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// Root string attributes.
    pub attrs: Vec<(String, String)>,
    /// Fixed arrays, e.g. `grid/x`.
    pub arrays: Vec<(String, Vec<f64>)>,
    pub fields: Vec<FieldSpec>,
}

/// Appends samples to `NAME.partial.h5` and renames it to `NAME.h5` when finished.
pub struct DatasetWriter {
    writer: SwmrFileWriter,
    ids: Vec<usize>,
    fields: Vec<FieldSpec>,
    partial: PathBuf,
    target: PathBuf,
    count: u64,
    bytes: Vec<u8>,
}

/// Where the samples of `target` accumulate until the run finishes.
pub fn partial_path(target: &Path) -> PathBuf {
    target.with_extension("partial.h5")
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl DatasetWriter {
    /// Starts a new dataset for `target`, writing into its partial file (replacing any old one).
    pub fn create(target: &Path, header: &Header) -> Result<Self, DataError> {
        let partial = partial_path(target);
        Self::create_at(&partial, target, header)
    }

    fn create_at(file: &Path, target: &Path, header: &Header) -> Result<Self, DataError> {
        // rust-hdf5 keys datasets by their leaf name: `inputs/k` and `params/k` cannot coexist.
        let mut leaves: Vec<(&str, &str)> = Vec::new();
        let all = header
            .arrays
            .iter()
            .map(|(p, _)| p.as_str())
            .chain(header.fields.iter().map(|f| f.path.as_str()));
        for path in all {
            let leaf = split(path).1;
            if let Some((other, _)) = leaves.iter().find(|(_, l)| *l == leaf) {
                return Err(DataError::Corrupt {
                    path: file.to_path_buf(),
                    message: format!(
                        "arrays {other} and {path} share the name `{leaf}`; the HDF5 backend needs distinct names"
                    ),
                });
            }
            leaves.push((path, leaf));
        }
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::create_dir(dir)?;
        }
        let err = |e: rust_hdf5::Hdf5Error| io_err(file, e);
        let mut w = SwmrFileWriter::create(file).map_err(err)?;
        let mut groups: Vec<String> = Vec::new();
        let paths = header
            .arrays
            .iter()
            .map(|(p, _)| p.as_str())
            .chain(header.fields.iter().map(|f| f.path.as_str()));
        for path in paths {
            let (group, _) = split(path);
            if group != "/" && !groups.contains(&group) {
                w.create_group("/", group.trim_start_matches('/'))
                    .map_err(err)?;
                groups.push(group);
            }
        }
        for (k, v) in &header.attrs {
            w.set_group_attr_string("/", k, v).map_err(err)?;
        }
        for (path, values) in &header.arrays {
            let (group, name) = split(path);
            let id = w
                .write_dataset::<f64>(name, &[values.len() as u64], values)
                .map_err(err)?;
            w.assign_dataset_to_group(&group, id).map_err(err)?;
        }
        let mut ids = Vec::with_capacity(header.fields.len());
        for f in &header.fields {
            let (group, name) = split(&f.path);
            let frame: Vec<u64> = f.frame.iter().map(|&d| d as u64).collect();
            let id = if f.frame.is_empty() {
                // Scalars per sample: compression would only add overhead.
                match f.dtype {
                    Dtype::F32 => w.create_streaming_dataset::<f32>(name, &frame),
                    Dtype::F64 => w.create_streaming_dataset::<f64>(name, &frame),
                    Dtype::U8 => w.create_streaming_dataset::<u8>(name, &frame),
                    Dtype::U32 => w.create_streaming_dataset::<u32>(name, &frame),
                    Dtype::U64 => w.create_streaming_dataset::<u64>(name, &frame),
                }
            } else {
                let z = FilterPipeline::deflate(4);
                match f.dtype {
                    Dtype::F32 => w.create_streaming_dataset_compressed::<f32>(name, &frame, z),
                    Dtype::F64 => w.create_streaming_dataset_compressed::<f64>(name, &frame, z),
                    Dtype::U8 => w.create_streaming_dataset_compressed::<u8>(name, &frame, z),
                    Dtype::U32 => w.create_streaming_dataset_compressed::<u32>(name, &frame, z),
                    Dtype::U64 => w.create_streaming_dataset_compressed::<u64>(name, &frame, z),
                }
            }
            .map_err(err)?;
            w.assign_dataset_to_group(&group, id).map_err(err)?;
            ids.push(id);
        }
        w.start_swmr().map_err(err)?;
        Ok(Self {
            writer: w,
            ids,
            fields: header.fields.clone(),
            partial: file.to_path_buf(),
            target: target.to_path_buf(),
            count: 0,
            bytes: Vec::new(),
        })
    }

    /// Reopens the partial file of `target` after an interruption: its samples up to the last
    /// checkpoint are copied into a fresh partial file, which replaces the old one, and writing
    /// continues after them. Returns `None` when there is no partial file.
    ///
    /// `key_attr` names the root attribute that must be equal in the old file and `header`, so
    /// that a partial file of another plan is never continued. Only a multiple of `align` samples
    /// is kept (the rest are made again), for callers that work in batches of that size.
    pub fn resume(
        target: &Path,
        header: &Header,
        key_attr: &str,
        align: u64,
    ) -> Result<Option<Self>, DataError> {
        let partial = partial_path(target);
        if !partial.exists() {
            return Ok(None);
        }
        let old = H5File::open(&partial).map_err(|e| DataError::Corrupt {
            path: partial.clone(),
            message: e.to_string(),
        })?;
        let want = header
            .attrs
            .iter()
            .find(|(k, _)| k == key_attr)
            .map(|(_, v)| v.as_str());
        let have = old.attr_string(key_attr).ok();
        if want != have.as_deref() {
            return Err(DataError::PlanMismatch {
                path: partial,
                stored: have.unwrap_or_else(|| "(none)".into()),
                wanted: want.unwrap_or_default().to_string(),
            });
        }
        // The old file's `created` and other attributes carry over.
        let mut header = header.clone();
        for (k, v) in header.attrs.iter_mut() {
            if let Ok(old_v) = old.attr_string(k) {
                if k != key_attr {
                    *v = old_v;
                }
            }
        }
        let mut done = u64::MAX;
        let mut handles = Vec::with_capacity(header.fields.len());
        for f in &header.fields {
            let ds = old.dataset(&f.path).map_err(|e| DataError::Corrupt {
                path: partial.clone(),
                message: format!("dataset {}: {e}", f.path),
            })?;
            done = done.min(ds.shape().first().copied().unwrap_or(0) as u64);
            handles.push(ds);
        }
        done -= done % align.max(1);
        let fresh = target.with_extension("recovering.h5");
        let mut w = Self::create_at(&fresh, target, &header)?;
        let mut rows: Vec<Vec<f64>> = vec![Vec::new(); handles.len()];
        for i in 0..done as usize {
            for ((ds, f), row) in handles.iter().zip(&header.fields).zip(rows.iter_mut()) {
                let mut starts = vec![0usize; f.frame.len() + 1];
                starts[0] = i;
                let mut counts = vec![1usize];
                counts.extend(&f.frame);
                *row = read_as_f64(ds, &starts, &counts).map_err(|e| DataError::Corrupt {
                    path: partial.clone(),
                    message: format!("sample {i} of {}: {e}", f.path),
                })?;
            }
            let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
            w.append(&refs)?;
        }
        w.checkpoint()?;
        drop(handles);
        drop(old);
        std::fs::rename(&fresh, &partial).map_err(|e| io_err(&partial, e))?;
        w.partial = partial;
        Ok(Some(w))
    }

    /// Number of samples appended (including those recovered on resume).
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn partial_path(&self) -> &Path {
        &self.partial
    }

    /// Appends one sample: one slice per field, in the header's order, each of the field's frame size.
    pub fn append(&mut self, values: &[&[f64]]) -> Result<(), DataError> {
        if values.len() != self.fields.len() {
            return Err(DataError::Shape {
                what: "sample".into(),
                expected: format!("{} fields", self.fields.len()),
                got: format!("{} fields", values.len()),
            });
        }
        for ((f, v), &id) in self.fields.iter().zip(values).zip(&self.ids) {
            let n: usize = f.frame.iter().product();
            if v.len() != n {
                return Err(DataError::Shape {
                    what: f.path.clone(),
                    expected: format!("{n} values ({:?})", f.frame),
                    got: format!("{} values", v.len()),
                });
            }
            f.dtype.encode(v, &mut self.bytes);
            self.writer
                .append_frame(id, &self.bytes)
                .map_err(|e| io_err(&self.partial, e))?;
        }
        self.count += 1;
        Ok(())
    }

    /// Makes every sample appended so far durable: after this, a killed run resumes from here.
    pub fn checkpoint(&mut self) -> Result<(), DataError> {
        self.writer.flush().map_err(|e| io_err(&self.partial, e))
    }

    /// Closes the file and moves it to its final name. Returns the final path.
    pub fn finish(self) -> Result<PathBuf, DataError> {
        let partial = self.partial.clone();
        self.writer.close().map_err(|e| io_err(&partial, e))?;
        std::fs::rename(&partial, &self.target).map_err(|e| io_err(&self.target, e))?;
        Ok(self.target)
    }
}

/// `inputs/coefficient` → (`/inputs`, `coefficient`).
fn split(path: &str) -> (String, &str) {
    match path.rsplit_once('/') {
        Some((g, n)) => (format!("/{}", g.trim_start_matches('/')), n),
        None => ("/".to_string(), path),
    }
}

/// A file opened for reading.
pub struct H5Reader {
    file: H5File,
    path: PathBuf,
}

/// Shape and element type of one array in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayInfo {
    pub shape: Vec<usize>,
    pub dtype: String,
}

impl H5Reader {
    pub fn open(path: &Path) -> Result<Self, DataError> {
        if !path.exists() {
            return Err(DataError::Missing {
                path: path.to_path_buf(),
            });
        }
        let file = H5File::open(path).map_err(|e| DataError::Corrupt {
            path: path.to_path_buf(),
            message: format!("not a readable HDF5 file: {e}"),
        })?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Root string attribute, if present.
    pub fn attr(&self, name: &str) -> Option<String> {
        self.file.attr_string(name).ok()
    }

    pub fn attr_names(&self) -> Vec<String> {
        self.file.attr_names().unwrap_or_default()
    }

    /// Every dataset path in the file.
    pub fn names(&self) -> Vec<String> {
        self.file.dataset_names()
    }

    pub fn info(&self, name: &str) -> Result<ArrayInfo, DataError> {
        let ds = self.dataset(name)?;
        let dtype = match ds.datatype() {
            Ok(dt) => describe(&dt),
            Err(e) => format!("unknown ({e})"),
        };
        Ok(ArrayInfo {
            shape: ds.shape(),
            dtype,
        })
    }

    fn dataset(&self, name: &str) -> Result<rust_hdf5::H5Dataset, DataError> {
        self.file.dataset(name).map_err(|e| DataError::Corrupt {
            path: self.path.clone(),
            message: format!("dataset {name}: {e}"),
        })
    }

    /// Reads the hyperslab `rows` along axis 0 (all of every other axis), as f64.
    pub fn read_rows(
        &self,
        name: &str,
        rows: Range<usize>,
    ) -> Result<(Vec<usize>, Vec<f64>), DataError> {
        let ds = self.dataset(name)?;
        let shape = ds.shape();
        if shape.is_empty() {
            return Err(DataError::Shape {
                what: format!("{}:{name}", self.path.display()),
                expected: "an array with a sample axis".into(),
                got: "a scalar".into(),
            });
        }
        if rows.end > shape[0] || rows.start > rows.end {
            return Err(DataError::Range {
                path: self.path.clone(),
                name: name.into(),
                start: rows.start,
                end: rows.end,
                len: shape[0],
            });
        }
        let mut starts = vec![0; shape.len()];
        starts[0] = rows.start;
        let mut counts = shape.clone();
        counts[0] = rows.len();
        let values = read_as_f64(&ds, &starts, &counts).map_err(|e| DataError::Corrupt {
            path: self.path.clone(),
            message: format!("dataset {name}: {e}"),
        })?;
        Ok((counts, values))
    }

    /// Reads the hyperslab `starts`, `counts` (one per axis), as f64.
    pub fn read_slab(
        &self,
        name: &str,
        starts: &[usize],
        counts: &[usize],
    ) -> Result<Vec<f64>, DataError> {
        let ds = self.dataset(name)?;
        read_as_f64(&ds, starts, counts).map_err(|e| DataError::Corrupt {
            path: self.path.clone(),
            message: format!("dataset {name}: {e}"),
        })
    }

    /// Reads a whole (small) array, as f64.
    pub fn read_all(&self, name: &str) -> Result<(Vec<usize>, Vec<f64>), DataError> {
        let ds = self.dataset(name)?;
        let shape = ds.shape();
        let values =
            read_as_f64(&ds, &vec![0; shape.len()], &shape).map_err(|e| DataError::Corrupt {
                path: self.path.clone(),
                message: format!("dataset {name}: {e}"),
            })?;
        Ok((shape, values))
    }
}

fn describe(dt: &DatatypeMessage) -> String {
    match dt {
        DatatypeMessage::FloatingPoint { size, .. } => format!("f{}", size * 8),
        DatatypeMessage::FixedPoint { size, signed, .. } => {
            format!("{}{}", if *signed { "i" } else { "u" }, size * 8)
        }
        DatatypeMessage::Enum { .. } => "enum (bool)".into(),
        other => format!("{other:?}").chars().take(40).collect(),
    }
}

/// Reads a hyperslab stored as `T` and converts each element with `to_f64`.
fn read_converted<T: rust_hdf5::H5Type>(
    ds: &rust_hdf5::H5Dataset,
    starts: &[usize],
    counts: &[usize],
    to_f64: impl Fn(T) -> f64,
) -> Result<Vec<f64>, String> {
    let values = ds
        .read_slice::<T>(starts, counts)
        .map_err(|e| e.to_string())?;
    Ok(values.into_iter().map(to_f64).collect())
}

/// Reads a hyperslab of any numeric or boolean dataset and converts it to f64.
fn read_as_f64(
    ds: &rust_hdf5::H5Dataset,
    starts: &[usize],
    counts: &[usize],
) -> Result<Vec<f64>, String> {
    let dt = ds.datatype().map_err(|e| e.to_string())?;
    let e = |e: rust_hdf5::Hdf5Error| e.to_string();
    let big = |o: &ByteOrder| matches!(o, ByteOrder::BigEndian);
    Ok(match &dt {
        DatatypeMessage::FloatingPoint {
            size: 4,
            byte_order,
            ..
        } => {
            let v = ds.read_slice::<f32>(starts, counts).map_err(e)?;
            let swap = big(byte_order);
            v.into_iter()
                .map(|x| if swap { f32::from_bits(x.to_bits().swap_bytes()) } else { x } as f64)
                .collect()
        }
        DatatypeMessage::FloatingPoint {
            size: 8,
            byte_order,
            ..
        } => {
            let v = ds.read_slice::<f64>(starts, counts).map_err(e)?;
            if big(byte_order) {
                v.into_iter()
                    .map(|x| f64::from_bits(x.to_bits().swap_bytes()))
                    .collect()
            } else {
                v
            }
        }
        DatatypeMessage::FixedPoint {
            size,
            signed,
            byte_order,
            ..
        } => {
            if big(byte_order) && *size > 1 {
                return Err("big-endian integers are not supported".into());
            }
            match (size, signed) {
                (1, false) => read_converted::<u8>(ds, starts, counts, f64::from)?,
                (1, true) => read_converted::<i8>(ds, starts, counts, f64::from)?,
                (2, false) => read_converted::<u16>(ds, starts, counts, f64::from)?,
                (2, true) => read_converted::<i16>(ds, starts, counts, f64::from)?,
                (4, false) => read_converted::<u32>(ds, starts, counts, f64::from)?,
                (4, true) => read_converted::<i32>(ds, starts, counts, f64::from)?,
                (8, false) => read_converted::<u64>(ds, starts, counts, |x| x as f64)?,
                (8, true) => read_converted::<i64>(ds, starts, counts, |x| x as f64)?,
                _ => return Err(format!("unsupported integer size {size}")),
            }
        }
        // h5py stores numpy bools as a 1-byte enum {FALSE = 0, TRUE = 1}.
        DatatypeMessage::Enum { .. } if ds.element_size() == 1 => {
            read_converted::<u8>(ds, starts, counts, f64::from)?
        }
        other => return Err(format!("unsupported element type {}", describe(other))),
    })
}
