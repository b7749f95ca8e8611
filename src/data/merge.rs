//! `pdekit merge`: joins the shard files of a sharded run into one dataset file.

use super::h5::{DatasetWriter, Dtype, FieldSpec, Header};
use super::{find_shards, DataError, Dataset, Layout};
use std::path::{Path, PathBuf};

/// Samples copied per read.
const CHUNK: usize = 64;

/// What a merge did.
#[derive(Debug, Clone)]
pub struct MergeReport {
    pub output: PathBuf,
    pub shards: usize,
    pub samples: usize,
}

/// Joins `shards` (or, if empty, the complete shard set found beside `target`) into `target`,
/// through a partial file renamed at the end. The merged file carries the first shard's
/// attributes, with the shard ones dropped and the plan key set to the whole dataset's, so a later
/// unsharded `pdekit generate` of the same config finds it up to date.
pub fn merge(
    target: &Path,
    shards: &[PathBuf],
    mut progress: impl FnMut(usize, usize),
) -> Result<MergeReport, DataError> {
    let shards = if shards.is_empty() {
        find_shards(target)?.ok_or_else(|| DataError::Missing {
            path: target.with_extension("shard-*-of-*.h5"),
        })?
    } else {
        shards.to_vec()
    };
    if target.exists() {
        return Err(DataError::Io {
            path: target.to_path_buf(),
            message: "already exists; remove it first (merge never overwrites a dataset)".into(),
        });
    }
    let ds = Dataset::open_shards(&shards)?;
    if ds.layout() != Layout::Pdekit {
        return Err(DataError::Corrupt {
            path: shards[0].clone(),
            message: "not a pdekit dataset; only pdekit shards can be merged".into(),
        });
    }
    let mut attrs = Vec::new();
    for name in ds.attr_names() {
        let Some(value) = ds.attr(&name) else {
            continue;
        };
        match name.as_str() {
            "shard" | "sample_range" => {}
            "samples" => attrs.push((name, ds.len().to_string())),
            "plan_key" => attrs.push((name, ds.attr("dataset_key").unwrap_or(value))),
            _ => attrs.push((name, value)),
        }
    }
    let mut fields = Vec::new();
    for f in ds.fields() {
        let dtype = Dtype::from_name(&f.dtype).ok_or_else(|| DataError::Corrupt {
            path: shards[0].clone(),
            message: format!(
                "{}: element type {} is not one pdekit writes",
                f.name, f.dtype
            ),
        })?;
        fields.push(FieldSpec {
            path: f.source.clone(),
            dtype,
            frame: f.shape[1..].to_vec(),
        });
    }
    let header = Header {
        attrs,
        arrays: ds.fixed_arrays()?,
        fields,
    };
    let mut writer = DatasetWriter::create(target, &header)?;
    let names: Vec<String> = ds.fields().iter().map(|f| f.name.clone()).collect();
    let mut start = 0;
    while start < ds.len() {
        let end = (start + CHUNK).min(ds.len());
        let blocks = names
            .iter()
            .map(|n| ds.read(n, start..end))
            .collect::<Result<Vec<_>, _>>()?;
        for k in 0..end - start {
            let rows: Vec<&[f64]> = blocks
                .iter()
                .map(|b| {
                    let per = b.len() / (end - start);
                    &b.as_slice()
                        .expect("arrays read from a file are contiguous")
                        [k * per..(k + 1) * per]
                })
                .collect();
            writer.append(&rows)?;
        }
        writer.checkpoint()?;
        progress(end, ds.len());
        start = end;
    }
    let output = writer.finish()?;
    Ok(MergeReport {
        output,
        shards: shards.len(),
        samples: ds.len(),
    })
}
