"""Interop check run by .ci/run: pdekit datasets read correctly in h5py, and h5py files in pdekit.

Usage: python tests/interop.py PATH/TO/pdekit
Needs h5py and numpy. Prints one line per check and a closing "N passed, M failed" line.
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

from neuralop_numpy import fno_forward, load_torch_file

PDEKIT = os.path.abspath(sys.argv[1])
results = []


def check(name, cond, detail=""):
    results.append(bool(cond))
    print(f"{'ok  ' if cond else 'FAIL'} {name}{'' if cond else ': ' + str(detail)}")


def pdekit(*args):
    return subprocess.run([PDEKIT, *args], capture_output=True, text=True)


def darcy_residual(a, u, f=1.0):
    """||b - A u|| / ||b|| for the vertex-centred flux-form 5-point operator with harmonic face means."""
    s = a.shape[0]
    h2 = (1.0 / (s - 1)) ** 2
    harm = lambda p, q: 2 * p * q / (p + q)
    c = a[1:-1, 1:-1]
    au = np.zeros_like(c)
    for di, dj in [(-1, 0), (1, 0), (0, -1), (0, 1)]:
        nb_a = a[1 + di : s - 1 + di, 1 + dj : s - 1 + dj]
        nb_u = u[1 + di : s - 1 + di, 1 + dj : s - 1 + dj]
        au += harm(c, nb_a) * (u[1:-1, 1:-1] - nb_u) / h2
    b = np.full_like(c, f)
    return np.linalg.norm(b - au) / np.linalg.norm(b)


with tempfile.TemporaryDirectory() as tmp:
    s, n, tol = 20, 6, 1e-9
    config = f"""[generate]
problem = "darcy"
output = "d.h5"
samples = {n}
seed = 11
precision = "f64"

[generate.darcy]
resolution = {s}

[generate.solver]
tolerance = {tol}
"""
    cfg = os.path.join(tmp, "c.toml")
    with open(cfg, "w") as fh:
        fh.write(config)
    r = pdekit("generate", cfg, "--quiet")
    check("pdekit generate exits 0", r.returncode == 0, r.stderr)

    with h5py.File(os.path.join(tmp, "d.h5"), "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        check("root attrs", attrs.get("format") == "pdekit-dataset" and attrs.get("problem") == "darcy"
              and attrs.get("seed") == "11" and attrs.get("format_version") == "1", attrs)
        check("config text stored verbatim", attrs.get("config") == config)
        a, u = f["inputs/coefficient"], f["outputs/solution"]
        check("field shapes", a.shape == (n, s, s) and u.shape == (n, s, s), (a.shape, u.shape))
        check("field dtypes", a.dtype == np.float64 and u.dtype == np.float64, (a.dtype, u.dtype))
        check("one sample per chunk, deflate", a.chunks == (1, s, s) and a.compression == "gzip", (a.chunks, a.compression))
        check("stats dtypes", f["stats/iterations"].dtype == np.uint32 and f["stats/converged"].dtype == np.uint8
              and f["stats/residual"].dtype == np.float64 and f["params/index"].dtype == np.uint64)
        check("params/index is 0..N-1", np.array_equal(f["params/index"][:], np.arange(n)))
        check("grid", np.allclose(f["grid/x"][:], np.linspace(0, 1, s)) and f["grid/y"].shape == (s,))
        A, U = a[:], u[:]
        check("coefficients are thresholded to {3, 12}", set(np.unique(A)) <= {3.0, 12.0}, np.unique(A))
        check("zero Dirichlet boundary", np.all(U[:, 0, :] == 0) and np.all(U[:, :, -1] == 0))
        stored = f["stats/residual"][:]
        recomputed = np.array([darcy_residual(A[i], U[i]) for i in range(n)])
        check("stored residual <= tolerance", np.all(stored <= tol), stored)
        check("residual recomputed by numpy matches /stats", np.allclose(recomputed, stored, rtol=1e-3, atol=1e-13),
              (recomputed, stored))
        check("all converged", np.all(f["stats/converged"][:] == 1))

    # Files written by h5py, read by pdekit.
    m, r_ = 3, 8
    x = np.random.default_rng(0).random((m, r_, r_))
    no = os.path.join(tmp, "no.h5")
    with h5py.File(no, "w") as f:
        f["x"] = x > 0.5
        f["y"] = x.astype(np.float32)
    r = pdekit("inspect", no)
    check("pdekit reads an h5py neuraloperator file", r.returncode == 0 and "neuraloperator" in r.stdout
          and "[3, 8, 8]" in r.stdout and "with 3 samples" in r.stdout, r.stdout + r.stderr)
    pb = os.path.join(tmp, "pb.h5")
    with h5py.File(pb, "w") as f:
        f["nu"] = x
        f["tensor"] = x[:, None, :, :]
        f["x-coordinate"] = np.linspace(0, 1, r_)
        f["y-coordinate"] = np.linspace(0, 1, r_)
    r = pdekit("inspect", pb)
    check("pdekit reads an h5py PDEBench Darcy file", r.returncode == 0 and "PDEBench" in r.stdout
          and "outputs/solution       [3, 8, 8]" in r.stdout, r.stdout + r.stderr)
    out = os.path.join(tmp, "figs")
    r = pdekit("plot", "--data", pb, "--out", out)
    check("pdekit plots an h5py file", r.returncode == 0 and os.path.exists(os.path.join(out, "samples.png")), r.stderr)

    # A sharded Navier–Stokes run, merged: h5py reads the shards and the merged file alike.
    ns = """[generate]
problem = "navier_stokes"
output = "ns.h5"
samples = 5
precision = "f64"
[generate.navier_stokes]
resolution = 16
final_time = 0.05
dt = 1e-3
snapshots = 5
"""
    ns_cfg = os.path.join(tmp, "ns.toml")
    with open(ns_cfg, "w") as fh:
        fh.write(ns)
    ok = all(pdekit("generate", ns_cfg, "--quiet", "--shard", f"{i}/2").returncode == 0 for i in range(2))
    r = pdekit("merge", os.path.join(tmp, "ns.h5"))
    check("sharded generate and merge exit 0", ok and r.returncode == 0, r.stderr)
    with h5py.File(os.path.join(tmp, "ns.h5"), "r") as f, \
            h5py.File(os.path.join(tmp, "ns.shard-0-of-2.h5"), "r") as s0, \
            h5py.File(os.path.join(tmp, "ns.shard-1-of-2.h5"), "r") as s1:
        w = f["outputs/vorticity"][:]
        check("merged trajectory shape [N, T, s, s]", w.shape == (5, 5, 16, 16), w.shape)
        check("merged file is the shards in order",
              np.array_equal(w, np.concatenate([s0["outputs/vorticity"][:], s1["outputs/vorticity"][:]]))
              and np.array_equal(f["params/index"][:], np.arange(5)))
        check("shard attrs", s1.attrs["shard"] in ("1/2", b"1/2") and "shard" not in f.attrs)
        check("output times in grid/t", np.allclose(f["grid/t"][:], [0.01, 0.02, 0.03, 0.04, 0.05]))
        w0 = f["inputs/initial_vorticity"][:]
        check("mean vorticity conserved (numpy)", np.abs(w.mean(axis=(2, 3)) - w0.mean(axis=(1, 2))[:, None]).max() < 1e-12)

    # `pdekit export`: neuraloperator's FNO, run by NumPy from the exported files, predicts what
    # pdekit predicts.
    darcy = os.path.join(tmp, "darcy16.toml")
    with open(darcy, "w") as fh:
        fh.write("""[generate]
problem = "darcy"
output = "d16.h5"
samples = 24
seed = 5
[generate.darcy]
resolution = 16
[train]
data = "d16.h5"
train_samples = 16
test_samples = 8
epochs = 2
batch_size = 4
output_dir = "fno_nop"
[train.fno]
width = 8
modes = [4, 3]
layers = 3
block = "neuraloperator"
""")
    ok = pdekit("generate", darcy, "--quiet").returncode == 0 and pdekit("train", darcy, "--quiet").returncode == 0
    ckpt = os.path.join(tmp, "fno_nop", "checkpoint.safetensors")
    prefix = os.path.join(tmp, "exported", "fno")
    r = pdekit("export", "--checkpoint", ckpt, "--out", prefix)
    check("pdekit export exits 0", ok and r.returncode == 0, r.stderr)
    pred_path = os.path.join(tmp, "pred.npy")
    r = pdekit("evaluate", "--checkpoint", ckpt, "--data", os.path.join(tmp, "d16.h5"), "--start", "16",
               "--predictions", pred_path)
    check("pdekit evaluate --predictions exits 0", r.returncode == 0, r.stderr)
    state = load_torch_file(prefix + "_state_dict.pt")
    kwargs = load_torch_file(prefix + "_metadata.pkl")
    norms = load_torch_file(prefix + "_normalizers.pt")
    check("exported constructor arguments", kwargs["n_modes"] == (8, 4) and kwargs["hidden_channels"] == 8
          and kwargs["n_layers"] == 3 and repr(kwargs["non_linearity"]) == "torch._C._nn.gelu", kwargs)
    check("exported spectral weight is complex (in, out, 8, 3)",
          state["fno_blocks.convs.0.weight.tensor"].shape == (8, 8, 8, 3)
          and state["fno_blocks.convs.0.weight.tensor"].dtype == np.complex64)
    with h5py.File(os.path.join(tmp, "d16.h5"), "r") as f:
        x = f["inputs/coefficient"][16:24][:, None]
    eps = 1e-7
    xe = (x - norms["in_normalizer.mean"]) / (norms["in_normalizer.std"] + eps)
    ref = fno_forward(state, kwargs, xe) * (norms["out_normalizer.std"] + eps) + norms["out_normalizer.mean"]
    ours = np.moveaxis(np.load(pred_path), -1, 1)
    diff = np.linalg.norm((ours - ref).reshape(8, -1), axis=1) / np.linalg.norm(ref.reshape(8, -1), axis=1)
    check("NumPy's neuraloperator FNO on the exported arrays matches pdekit to 1e-5", ours.shape == ref.shape
          and diff.max() < 1e-5, diff)

    # The same for TFNOs: tensorly's Tucker and CP factors, rebuilt by NumPy.
    for kind in ["tucker", "cp"]:
        cfg = os.path.join(tmp, f"tfno_{kind}.toml")
        with open(darcy) as fh:
            text = fh.read()
        text = text.replace('output_dir = "fno_nop"', f'output_dir = "tfno_{kind}"').replace(
            "[train.fno]", f'[train.tfno]\nfactorization = "{kind}"\nrank = 0.3')
        with open(cfg, "w") as fh:
            fh.write(text)
        r = pdekit("train", cfg, "--quiet")
        ckpt = os.path.join(tmp, f"tfno_{kind}", "checkpoint.safetensors")
        prefix = os.path.join(tmp, "exported", f"tfno_{kind}")
        r2 = pdekit("export", "--checkpoint", ckpt, "--out", prefix)
        r3 = pdekit("evaluate", "--checkpoint", ckpt, "--data", os.path.join(tmp, "d16.h5"), "--start", "16",
                    "--predictions", pred_path)
        ok = r.returncode == 0 and r2.returncode == 0 and r3.returncode == 0
        check(f"TFNO ({kind}) trains, exports and evaluates", ok, r.stderr + r2.stderr + r3.stderr)
        if not ok:
            continue
        state = load_torch_file(prefix + "_state_dict.pt")
        kwargs = load_torch_file(prefix + "_metadata.pkl")
        norms = load_torch_file(prefix + "_normalizers.pt")
        xe = (x - norms["in_normalizer.mean"]) / (norms["in_normalizer.std"] + eps)
        ref = fno_forward(state, kwargs, xe) * (norms["out_normalizer.std"] + eps) + norms["out_normalizer.mean"]
        ours = np.moveaxis(np.load(pred_path), -1, 1)
        diff = np.linalg.norm((ours - ref).reshape(8, -1), axis=1) / np.linalg.norm(ref.reshape(8, -1), axis=1)
        check(f"NumPy's neuraloperator TFNO ({kind}) on the exported factors matches pdekit to 1e-5",
              kwargs["factorization"] == {"tucker": "Tucker", "cp": "CP"}[kind] and diff.max() < 1e-5, diff)

passed = sum(results)
failed = len(results) - passed
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
