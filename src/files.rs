//! Writing result files so that a crash never leaves a half-written one: write to a temporary
//! name beside the target, then rename. Reading whole files with errors that name them.

use crate::data::DataError;
use std::path::{Path, PathBuf};

/// Creates `dir` and its parents; when a part of the path is a file, the error says which.
pub fn create_dir(dir: &Path) -> Result<(), DataError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        let file = dir.ancestors().find(|a| a.is_file());
        DataError::Io {
            path: dir.to_path_buf(),
            message: match file {
                Some(f) => format!("cannot create this folder: {} is a file", f.display()),
                None => format!("cannot create this folder: {e}"),
            },
        }
    })
}

/// The bytes of `path`: [`DataError::Missing`] when there is no such file, else
/// [`DataError::Io`] with the reason.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    if !path.exists() {
        return Err(DataError::Missing {
            path: path.to_path_buf(),
        });
    }
    std::fs::read(path).map_err(|e| DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Writes `text` to `path` through a temporary name, creating the folder.
pub fn write_atomic(path: &Path, text: &str) -> Result<PathBuf, DataError> {
    write_bytes_atomic(path, text.as_bytes())
}

/// [`write_atomic`] for binary contents.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<PathBuf, DataError> {
    let io = |e: std::io::Error| DataError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(path.to_path_buf())
}

/// `value` as indented JSON, written atomically.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<PathBuf, DataError> {
    let text = serde_json::to_string_pretty(value).expect("a JSON value serialises");
    write_atomic(path, &text)
}

/// A report or benchmark result: `doc` stamped with the command, commit, machine and time that
/// produced it ([`crate::meta::record_provenance`]), written as JSON.
pub fn write_report(path: &Path, doc: &mut serde_json::Value) -> Result<PathBuf, DataError> {
    crate::meta::record_provenance(doc);
    write_json(path, doc)
}

/// An advisory lock (`flock`) on `TARGET.lock`, held while one process writes `TARGET`, so a
/// second writer stops with an error naming the holder instead of writing the same file. The
/// operating system releases it when the holder exits, however it exits; the lock file is removed
/// when the lock is dropped.
#[derive(Debug)]
pub struct WriteLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl WriteLock {
    pub fn acquire(target: &Path) -> Result<Self, DataError> {
        use std::io::{Read, Seek, Write};
        let mut name = target.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let io = |e: std::io::Error| DataError::Io {
            path: path.clone(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(DataError::Locked {
                    path: target.to_path_buf(),
                    lock: path.clone(),
                    holder: holder.trim().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { path, _file: file })
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
