//! TensorBoard event files: `tensorboard --logdir runs` shows a training run's scalars while it
//! trains.
//!
//! The records are TensorBoard's own: `Event` and `Summary` protocol buffers
//! (`tensorboard-proto`), framed as TFRecords with masked CRC-32C checksums by `tensorboard-rs`'s
//! `RecordWriter`. The file is ours rather than `tensorboard-rs`'s `SummaryWriter`, whose
//! background thread panics on an I/O error: here every write returns its error instead.

use crate::data::DataError;
use protobuf::Message;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use tensorboard_proto::event::Event;
use tensorboard_proto::summary::{Summary, Summary_Value};
use tensorboard_rs::masked_crc32c::masked_crc32c;
use tensorboard_rs::record_writer::RecordWriter;

/// An open event file.
pub struct EventLog {
    path: PathBuf,
    writer: RecordWriter<BufWriter<File>>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl EventLog {
    /// A new event file in `dir` (created if needed), named as TensorBoard's writers name theirs:
    /// `events.out.tfevents.<seconds>.<host>.<pid>`. A resumed run adds a file beside the old
    /// ones; TensorBoard shows them as one run.
    pub fn create(dir: &Path) -> Result<Self, DataError> {
        crate::files::create_dir(dir)?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .unwrap_or_else(|| "localhost".into());
        let path = dir.join(format!(
            "events.out.tfevents.{}.{host}.{}",
            now() as u64,
            std::process::id()
        ));
        let file = File::create(&path).map_err(|e| DataError::Io {
            path: path.clone(),
            message: format!("cannot create the TensorBoard event file: {e}"),
        })?;
        let mut log = Self {
            path,
            writer: RecordWriter::new(BufWriter::new(file)),
        };
        let mut first = Event::new();
        first.set_wall_time(now());
        first.set_file_version("brain.Event:2".into());
        log.write(&first)?;
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One event at `step` holding `values` as scalars (tags such as `epoch/test_l2`), written
    /// and flushed, so TensorBoard sees it at once. Non-finite values are written as they are.
    pub fn scalars(&mut self, step: i64, values: &[(&str, f64)]) -> Result<(), DataError> {
        let mut summary = Summary::new();
        for (tag, v) in values {
            let mut value = Summary_Value::new();
            value.set_tag(tag.to_string());
            value.set_simple_value(*v as f32);
            summary.mut_value().push(value);
        }
        let mut event = Event::new();
        event.set_wall_time(now());
        event.set_step(step);
        event.set_summary(summary);
        self.write(&event)
    }

    fn write(&mut self, event: &Event) -> Result<(), DataError> {
        let io = |e: String| DataError::Io {
            path: self.path.clone(),
            message: e,
        };
        let bytes = event.write_to_bytes().map_err(|e| io(e.to_string()))?;
        self.writer.write(&bytes).map_err(|e| io(e.to_string()))?;
        self.writer.flush().map_err(|e| io(e.to_string()))
    }
}

/// One scalar of an event file: its step, tag and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub step: i64,
    pub tag: String,
    pub value: f32,
}

/// The scalars of an event file, in order, with every record's checksums verified.
pub fn read_scalars(path: &Path) -> Result<Vec<Scalar>, DataError> {
    let bytes = crate::files::read_bytes(path)?;
    let corrupt = |at: usize, message: &str| DataError::Corrupt {
        path: path.to_path_buf(),
        message: format!("record at byte {at}: {message}"),
    };
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        if at + 12 > bytes.len() {
            return Err(corrupt(at, "truncated header"));
        }
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
        if masked_crc32c(&bytes[at..at + 8]) != u32_at(at + 8) {
            return Err(corrupt(at, "length checksum mismatch"));
        }
        let data_at = at + 12;
        if len > bytes.len() || data_at + len + 4 > bytes.len() {
            return Err(corrupt(at, "truncated record"));
        }
        let data = &bytes[data_at..data_at + len];
        if masked_crc32c(data) != u32_at(data_at + len) {
            return Err(corrupt(at, "data checksum mismatch"));
        }
        let event = Event::parse_from_bytes(data).map_err(|e| corrupt(at, &e.to_string()))?;
        if event.has_summary() {
            for v in event.get_summary().get_value() {
                out.push(Scalar {
                    step: event.get_step(),
                    tag: v.get_tag().to_string(),
                    value: v.get_simple_value(),
                });
            }
        }
        at = data_at + len + 4;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_read_back_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::create(&dir.path().join("run")).unwrap();
        log.scalars(1, &[("epoch/test_l2", 0.25), ("epoch/learning_rate", 1e-3)])
            .unwrap();
        log.scalars(2, &[("epoch/test_l2", 0.125)]).unwrap();
        let path = log.path().to_path_buf();
        assert!(path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("events.out.tfevents."));
        drop(log);
        let got = read_scalars(&path).unwrap();
        let want = [
            (1, "epoch/test_l2", 0.25),
            (1, "epoch/learning_rate", 1e-3),
            (2, "epoch/test_l2", 0.125),
        ];
        assert_eq!(got.len(), want.len());
        for (g, (step, tag, value)) in got.iter().zip(want) {
            assert_eq!((g.step, g.tag.as_str(), g.value), (step, tag, value as f32));
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 6] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let e = read_scalars(&path).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
    }
}
