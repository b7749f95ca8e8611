"""Writes the small h5py-made files under tests/fixtures/ that the Rust tests read.

Values follow closed formulas, so tests/dataset.rs checks them without Python:
  neuraloperator_bool.h5: x[n, i, j] = (i + j + n) % 2 == 0 (bool), y[n, i, j] = n + i / 10 + j / 100 (f64)
  neuraloperator_f32.h5:  x = y = the f64 formula above, stored as float32
  neuraloperator_bigendian.h5: x = arange(12).reshape(3, 2, 2) + 0.5 as big-endian f32, y = the same + 0.25
                          as big-endian f64 (a reader that ignores byte order gets garbage)
  pdebench_darcy.h5:      nu[n, i, j] = 1 + n + i * j (f32), tensor[n, 0, i, j] = n - i + 2 j (f32),
                          x-coordinate = y-coordinate = linspace(0, 1, 6)
Run: python tests/make_fixtures.py (needs h5py and numpy).
"""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fixtures")
os.makedirs(out, exist_ok=True)
n, r = 3, 5
N, I, J = np.meshgrid(np.arange(n), np.arange(r), np.arange(r), indexing="ij")
y = N + I / 10 + J / 100
with h5py.File(os.path.join(out, "neuraloperator_bool.h5"), "w") as f:
    f["x"] = (I + J + N) % 2 == 0
    f["y"] = y.astype(np.float64)
with h5py.File(os.path.join(out, "neuraloperator_f32.h5"), "w") as f:
    f["x"] = y.astype(np.float32)
    f["y"] = y.astype(np.float32)
with h5py.File(os.path.join(out, "neuraloperator_bigendian.h5"), "w") as f:
    f["x"] = np.arange(12, dtype=">f4").reshape(3, 2, 2) + 0.5
    f["y"] = np.arange(12, dtype=">f8").reshape(3, 2, 2) + 0.25
b, s = 2, 6
B, I, J = np.meshgrid(np.arange(b), np.arange(s), np.arange(s), indexing="ij")
with h5py.File(os.path.join(out, "pdebench_darcy.h5"), "w") as f:
    f["nu"] = (1 + B + I * J).astype(np.float32)
    f["tensor"] = (B - I + 2 * J).astype(np.float32)[:, None, :, :]
    f["x-coordinate"] = np.linspace(0, 1, s).astype(np.float32)
    f["y-coordinate"] = np.linspace(0, 1, s).astype(np.float32)
