"""Writes the small h5py-made files under tests/fixtures/ that the Rust tests read.

Values follow closed formulas, so tests/dataset.rs checks them without Python:
  neuraloperator_bool.h5: x[n, i, j] = (i + j + n) % 2 == 0 (bool), y[n, i, j] = n + i / 10 + j / 100 (f64)
  neuraloperator_f32.h5:  x = y = the f64 formula above, stored as float32
  neuraloperator_bigendian.h5: x = arange(12).reshape(3, 2, 2) + 0.5 as big-endian f32, y = the same + 0.25
                          as big-endian f64 (a reader that ignores byte order gets garbage)
  pdebench_darcy.h5:      nu[n, i, j] = 1 + n + i * j (f32), tensor[n, 0, i, j] = n - i + 2 j (f32),
                          x-coordinate = y-coordinate = linspace(0, 1, 6)
  the_well_2d.h5:         The Well's layout, 2 trajectories of 4 steps on an 8 × 6 grid (x, y):
                          t0_fields/density[b, t, i, j] = 1000 b + 100 t + 10 i + j,
                          t0_fields/pressure = −density, t1_fields/velocity[b, t, i, j, d] = 10 b + t + d / 2,
                          t0_fields/obstacle [8, 6] (static, so left out), dimensions/time = 0.1 t,
                          boundary_conditions/x_periodic and y_wall, scalars/Reynolds = [100] (constant),
                          scalars/viscosity = [0.1, 0.2] (per trajectory), scalars/forcing [4] (time-varying)
  the_well_no_time.h5:    the same without dimensions/time (a clear error)
  pdebench_1d.h5:         tensor[b, t, x] = 100 b + 10 t + x / 8 (3 samples, 5 steps, 8 points),
                          x-coordinate [8], t-coordinate [6] (PDEBench stores T + 1 times)
  pdebench_2d_groups.h5:  groups 0000, 0001: data[t, i, j, c] = 1000 g + 100 t + 10 i + j + c / 2
                          (3 steps, 4 × 6 grid, 2 channels), grid/x, grid/y, grid/t
  pdebench_cfd_1d.h5:     density = 100 b + 10 t + x, pressure = −density, Vx = b + t / 10 [2, 3, 8]
                          (PDEBench's compressible-flow layout), t-coordinate [4]
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

# The Well: fields [trajectories, steps, x, y(, components)].
nb, nt, nx, ny = 2, 4, 8, 6
Bw, Tw, Iw, Jw = np.meshgrid(np.arange(nb), np.arange(nt), np.arange(nx), np.arange(ny), indexing="ij")
density = (1000 * Bw + 100 * Tw + 10 * Iw + Jw).astype(np.float32)
for name, with_time in [("the_well_2d.h5", True), ("the_well_no_time.h5", False)]:
    with h5py.File(os.path.join(out, name), "w") as f:
        f.attrs["dataset_name"] = "fixture"
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = 2
        f.attrs["n_trajectories"] = nb
        f.attrs["simulation_parameters"] = ["Reynolds"]
        f.attrs["Reynolds"] = 100.0
        d = f.create_group("dimensions")
        d.attrs["spatial_dims"] = ["x", "y"]
        if with_time:
            d["time"] = (0.1 * np.arange(nt)).astype(np.float32)
        d["x"] = np.linspace(0, 1, nx).astype(np.float32)
        d["y"] = np.linspace(0, 1, ny).astype(np.float32)
        bc = f.create_group("boundary_conditions")
        for bname, kind, n in [("x_periodic", "PERIODIC", nx), ("y_wall", "WALL", ny)]:
            g = bc.create_group(bname)
            g.attrs["bc_type"] = kind
            mask = np.zeros(n, dtype=bool)
            mask[[0, -1]] = True
            g["mask"] = mask
        sc = f.create_group("scalars")
        sc["Reynolds"] = np.array([100.0], dtype=np.float32)
        sc["viscosity"] = np.array([0.1, 0.2], dtype=np.float32)
        sc["forcing"] = np.arange(nt, dtype=np.float32)
        t0 = f.create_group("t0_fields")
        t0.attrs["field_names"] = ["density", "pressure", "obstacle"]
        t0["density"] = density
        t0["pressure"] = -density
        t0["obstacle"] = np.ones((nx, ny), dtype=np.float32)
        t1 = f.create_group("t1_fields")
        t1.attrs["field_names"] = ["velocity"]
        t1["velocity"] = np.stack([10 * Bw + Tw + 0.5 * c for c in range(2)], axis=-1).astype(np.float32)

# PDEBench time series: a 1-D `tensor` and 2-D per-sample groups.
Bp, Tp, Xp = np.meshgrid(np.arange(3), np.arange(5), np.arange(8), indexing="ij")
with h5py.File(os.path.join(out, "pdebench_1d.h5"), "w") as f:
    f["tensor"] = (100 * Bp + 10 * Tp + Xp / 8).astype(np.float32)
    f["x-coordinate"] = np.linspace(0, 1, 8).astype(np.float32)
    f["t-coordinate"] = np.linspace(0, 2, 6).astype(np.float32)
Tg, Ig, Jg, Cg = np.meshgrid(np.arange(3), np.arange(4), np.arange(6), np.arange(2), indexing="ij")
with h5py.File(os.path.join(out, "pdebench_2d_groups.h5"), "w") as f:
    for g in range(2):
        grp = f.create_group(f"{g:04d}")
        grp["data"] = (1000 * g + 100 * Tg + 10 * Ig + Jg + Cg / 2).astype(np.float32)
        grp["grid/x"] = np.linspace(0, 1, 4).astype(np.float32)
        grp["grid/y"] = np.linspace(0, 1, 6).astype(np.float32)
        grp["grid/t"] = np.linspace(0, 1, 3).astype(np.float32)
Bc, Tc, Xc = np.meshgrid(np.arange(2), np.arange(3), np.arange(8), indexing="ij")
with h5py.File(os.path.join(out, "pdebench_cfd_1d.h5"), "w") as f:
    f["density"] = (100 * Bc + 10 * Tc + Xc).astype(np.float32)
    f["pressure"] = -(100 * Bc + 10 * Tc + Xc).astype(np.float32)
    f["Vx"] = (Bc + Tc / 10).astype(np.float32)
    f["x-coordinate"] = np.linspace(0, 1, 8).astype(np.float32)
    f["t-coordinate"] = np.linspace(0, 1, 4).astype(np.float32)
