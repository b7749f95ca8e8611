//! NumPy's `.npy` format (version 1.0) for f32 arrays: what `numpy.load` reads.

use crate::data::DataError;
use std::path::{Path, PathBuf};

/// Writes `values` (row-major, `shape`) as a little-endian f32 `.npy` file, atomically.
pub fn write_f32(path: &Path, shape: &[usize], values: &[f32]) -> Result<PathBuf, DataError> {
    assert_eq!(
        shape.iter().product::<usize>(),
        values.len(),
        "values fill the shape"
    );
    let dims = shape
        .iter()
        .map(|n| format!("{n},"))
        .collect::<Vec<_>>()
        .join(" ");
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of
    // 64 and ended by a newline.
    let unpadded = 10 + dict.len() + 1;
    let header = format!("{dict}{}\n", " ".repeat((64 - unpadded % 64) % 64));
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * values.len());
    bytes.extend(b"\x93NUMPY\x01\x00");
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for v in values {
        bytes.extend(v.to_le_bytes());
    }
    crate::files::write_bytes_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_header_is_aligned_and_names_the_shape() {
        let dir = std::env::temp_dir().join(format!("pdekit-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.npy");
        super::write_f32(&path, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(
            header.contains("'shape': (2, 3,)") && header.ends_with('\n'),
            "{header}"
        );
        assert_eq!(bytes.len(), 10 + header_len + 24);
        assert_eq!(&bytes[10 + header_len..][..4], &1.0f32.to_le_bytes());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
