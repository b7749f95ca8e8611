#!/usr/bin/env python3
"""Peer side of `pdekit bench solvers --peers`: the same systems, solved by scipy and pyamg.

Usage: solvers_scipy.py EXPORT_DIR OUT.json

EXPORT_DIR holds A_00000.mtx, b_00000.mtx, ... and manifest.json, written by pdekit. Every method
solves every system from x0 = 0 to the manifest's tolerance on ||b - Ax|| / ||b|| (scipy's `rtol`),
and the true final residual is recomputed here. Time per system is setup + solve (wall clock,
time.perf_counter). Methods:

  scipy gmres(restart)                 natural order
  scipy gcrotmk(m=restart, k=recycle)  fresh on every system, natural order
  scipy gcrotmk recycled               CU carried across systems (discard_C), natural order
  scipy gcrotmk recycled + sorted      the same, in pdekit's sorted order
  scipy cg                             SPD problems only
  pyamg SA + cg                        SPD problems only (smoothed aggregation, V-cycle)
  scipy spilu + gmres                  non-symmetric problems: the practitioner's ILU choice

Thread count: scipy's sparse kernels and pyamg are single-threaded; OMP/BLAS threads are pinned
to the manifest's `threads` before numpy is imported.
"""
import json
import os
import sys
import time

with open(os.path.join(sys.argv[1], "manifest.json")) as f:
    MANIFEST = json.load(f)
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(MANIFEST.get("threads", 1))

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.io  # noqa: E402
import scipy.sparse.linalg as sla  # noqa: E402

try:
    import pyamg  # noqa: E402
except ImportError:  # reported in the output, not fatal
    pyamg = None


def load(directory, n):
    systems = []
    for i in range(n):
        a = scipy.io.mmread(os.path.join(directory, f"A_{i:05d}.mtx")).tocsr()
        b = np.asarray(scipy.io.mmread(os.path.join(directory, f"b_{i:05d}.mtx"))).ravel()
        systems.append((a, b))
    return systems


class Counter(sla.LinearOperator):
    """A as a LinearOperator that counts its mat-vecs."""

    def __init__(self, a):
        super().__init__(a.dtype, a.shape)
        self.a = a
        self.count = 0

    def _matvec(self, x):
        self.count += 1
        return self.a @ x


def rel_residual(a, b, x):
    return float(np.linalg.norm(b - a @ x) / np.linalg.norm(b))


def run(label, ordering, systems, order, solve):
    """solve(a, b, state) -> (x, iterations, matvecs, state); timed per system."""
    rows = []
    state = None
    for i in order:
        a, b = systems[i]
        t0 = time.perf_counter()
        x, its, mv, state = solve(a, b, state)
        seconds = time.perf_counter() - t0
        res = rel_residual(a, b, x)
        rows.append((its, mv, seconds, res, res <= TOL * (1 + 1e-12)))
    its, mv, secs, res, conv = zip(*rows)
    return {
        "label": label,
        "ordering": ordering,
        "systems": len(rows),
        "converged": int(sum(conv)),
        "mean_iterations": float(np.mean(its)),
        "mean_matvecs": float(np.mean(mv)),
        "seconds_per_system": float(np.mean(secs)),
        "max_residual": float(max(res)),
        "per_system": {"iterations": list(its), "matvecs": list(mv), "seconds": list(secs),
                       "residual": list(res)},
    }


def gmres(restart, precond=None):
    def solve(a, b, state):
        op = Counter(a)
        m = precond(a) if precond else None
        its = [0]
        x, _ = sla.gmres(op, b, rtol=TOL, atol=0.0, restart=restart, maxiter=MAXIT // restart + 1,
                         M=m, callback=lambda _: its.__setitem__(0, its[0] + 1),
                         callback_type="pr_norm")
        return x, its[0], op.count, state
    return solve


def gcrot(m, k, recycle):
    def solve(a, b, cu):
        op = Counter(a)
        its = [0]
        if not recycle:
            cu = None
        elif cu is None:
            cu = []
        x, _ = sla.gcrotmk(op, b, rtol=TOL, atol=0.0, maxiter=MAXIT, m=m, k=k, CU=cu,
                           discard_C=recycle, callback=lambda _: its.__setitem__(0, its[0] + 1))
        return x, its[0], op.count, cu
    return solve


def cg(precond=None):
    def solve(a, b, state):
        op = Counter(a)
        m = precond(a) if precond else None
        its = [0]
        x, _ = sla.cg(op, b, rtol=TOL, atol=0.0, maxiter=MAXIT, M=m,
                      callback=lambda _: its.__setitem__(0, its[0] + 1))
        return x, its[0], op.count, state
    return solve


def pyamg_sa(a):
    return pyamg.smoothed_aggregation_solver(a).aspreconditioner(cycle="V")


def spilu(a):
    ilu = sla.spilu(a.tocsc())
    return sla.LinearOperator(a.shape, ilu.solve)


def main():
    global TOL, MAXIT
    directory, out = sys.argv[1], sys.argv[2]
    TOL = MANIFEST["tolerance"]
    MAXIT = MANIFEST["max_iterations"]
    n = MANIFEST["systems"]
    restart, recycle = MANIFEST["restart"], MANIFEST["recycle"]
    systems = load(directory, n)
    natural = list(range(n))
    sorted_order = MANIFEST["sorted_order"]
    results = []

    def add(label, ordering, order, solve):
        print(f"  peer {label} ...", flush=True)
        try:
            results.append(run(label, ordering, systems, order, solve))
        except Exception as e:  # a failed factorisation is a result, not a crash
            results.append({"label": label, "ordering": ordering, "error": f"{type(e).__name__}: {e}"})
            print(f"  peer {label:<34} failed: {results[-1]['error']}", flush=True)
            return
        r = results[-1]
        print(f"  peer {label:<34} {r['mean_iterations']:9.1f} iterations "
              f"{r['seconds_per_system']:9.4f} s/system", flush=True)

    add(f"scipy gmres({restart})", "natural", natural, gmres(restart))
    add(f"scipy gcrotmk({restart},{recycle})", "natural", natural, gcrot(restart, recycle, False))
    add(f"scipy gcrotmk({restart},{recycle}) recycled", "natural", natural,
        gcrot(restart, recycle, True))
    add(f"scipy gcrotmk({restart},{recycle}) recycled", MANIFEST["ordering"], sorted_order,
        gcrot(restart, recycle, True))
    if MANIFEST["spd"]:
        add("scipy cg", "natural", natural, cg())
        if pyamg is not None:
            add("pyamg sa + scipy cg", "natural", natural, cg(pyamg_sa))
    else:
        add(f"scipy spilu + gmres({restart})", "natural", natural, gmres(restart, spilu))
        if pyamg is not None:
            add(f"pyamg sa + scipy gmres({restart})", "natural", natural, gmres(restart, pyamg_sa))
    doc = {
        "tool": "scipy/pyamg",
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                     "scipy": scipy.__version__,
                     "pyamg": getattr(pyamg, "__version__", None)},
        "threads": MANIFEST.get("threads", 1),
        "methods": results,
    }
    tmp = out + ".partial"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
