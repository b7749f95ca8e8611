#!/usr/bin/env python3
"""PETSc side of `pdekit bench solvers --peers`: the same systems, solved by PETSc's Krylov methods.

Usage: solvers_petsc.py EXPORT_DIR OUT.json
       solvers_petsc.py --probe      (exits 0 when petsc4py imports, 3 when it does not)

Runs on Debian's petsc4py (one-time: `apt-get install python3-petsc4py-real`) with the system
python3 and numpy; no scipy needed (the MatrixMarket files are read here). Every method solves
every system from x0 = 0 to the manifest's tolerance on ||b - Ax|| / ||b||: right preconditioning
(or the unpreconditioned norm for CG), so PETSc's test is on the true residual, which is recomputed
here after the solve. Time per system is KSP setup (preconditioner construction) + solve, wall
clock. Methods: GMRES(restart), FGMRES(restart), GCR(restart), LGMRES(restart) unpreconditioned
and with ILU(0); CG, CG + GAMG and CG + hypre BoomerAMG for SPD problems, GMRES + GAMG and
GMRES + BoomerAMG otherwise. A method this PETSc build lacks is reported as an error, not a crash.
"""
import glob
import json
import os
import sys
import time

PROBE = len(sys.argv) > 1 and sys.argv[1] == "--probe"
if not PROBE:
    with open(os.path.join(sys.argv[1], "manifest.json")) as f:
        MANIFEST = json.load(f)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(MANIFEST.get("threads", 1))

# Debian's petsc4py finds itself through /usr/lib/petsc, an alternatives link that is not always
# set; fall back to the real-scalar build's own directory.
if not os.environ.get("PETSC_DIR") and not os.path.exists("/usr/lib/petsc"):
    found = sorted(glob.glob("/usr/lib/petscdir/petsc*/x86_64-linux-gnu-real"))
    if found:
        os.environ["PETSC_DIR"] = found[-1]
        sys.path.append(os.path.join(found[-1], "lib/python3/dist-packages"))

try:
    import numpy as np  # noqa: E402
    import petsc4py  # noqa: E402
except ImportError as e:
    print(f"petsc4py is not available: {e}", file=sys.stderr)
    sys.exit(3)
if PROBE:  # `solvers_petsc.py --probe`: exit 0 when PETSc can run
    sys.exit(0)

petsc4py.init([])
from petsc4py import PETSc  # noqa: E402


def read_mtx(path):
    """A MatrixMarket file as (rows, cols, values) of a coordinate matrix, or a dense array."""
    with open(path) as f:
        header = f.readline().split()
        line = f.readline()
        while line.startswith("%"):
            line = f.readline()
        dims = [int(v) for v in line.split()]
        body = np.loadtxt(f, ndmin=1)
    if header[2] == "array":
        return body.reshape(dims[1], dims[0]).T.ravel()
    body = body.reshape(-1, 3)
    return dims[0], body[:, 0].astype(np.int64) - 1, body[:, 1].astype(np.int64) - 1, body[:, 2]


def to_petsc(path):
    n, rows, cols, vals = read_mtx(path)
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    indptr = np.searchsorted(rows, np.arange(n + 1)).astype(PETSc.IntType)
    return PETSc.Mat().createAIJ(size=(n, n), csr=(indptr, cols.astype(PETSc.IntType), vals))


def load(directory, n):
    systems = []
    for i in range(n):
        a = to_petsc(os.path.join(directory, f"A_{i:05d}.mtx"))
        b = read_mtx(os.path.join(directory, f"b_{i:05d}.mtx"))
        systems.append((a, PETSc.Vec().createWithArray(np.ascontiguousarray(b))))
    return systems


def solve_one(a, b, ksp_type, pc_type, restart):
    ksp = PETSc.KSP().create()
    ksp.setOperators(a)
    ksp.setType(ksp_type)
    pc = ksp.getPC()
    if pc_type == "hypre":
        pc.setType("hypre")
        pc.setHYPREType("boomeramg")
    else:
        pc.setType(pc_type)
    if ksp_type in ("gmres", "fgmres", "lgmres", "gcr"):
        if ksp_type in ("gmres", "lgmres"):
            ksp.setGMRESRestart(restart)
        elif ksp_type == "fgmres":
            ksp.setGMRESRestart(restart)
        else:
            PETSc.Options().setValue("ksp_gcr_restart", restart)
        if ksp_type != "fgmres" and ksp_type != "gcr":
            ksp.setPCSide(PETSc.PC.Side.RIGHT)
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
    else:
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
    ksp.setTolerances(rtol=MANIFEST["tolerance"], atol=0.0, max_it=MANIFEST["max_iterations"])
    ksp.setFromOptions()
    x = b.duplicate()
    x.set(0.0)
    t0 = time.perf_counter()
    ksp.setUp()
    ksp.solve(b, x)
    seconds = time.perf_counter() - t0
    r = b.duplicate()
    a.mult(x, r)
    r.aypx(-1.0, b)
    res = r.norm() / b.norm()
    its = ksp.getIterationNumber()
    ksp.destroy()
    return its, seconds, float(res)


def run(label, systems, ksp_type, pc_type, restart):
    rows = [solve_one(a, b, ksp_type, pc_type, restart) for a, b in systems]
    its, secs, res = zip(*rows)
    tol = MANIFEST["tolerance"]
    return {
        "label": label,
        "ordering": "natural",
        "systems": len(rows),
        "converged": int(sum(r <= tol * (1 + 1e-12) for r in res)),
        "mean_iterations": float(np.mean(its)),
        "seconds_per_system": float(np.mean(secs)),
        "max_residual": float(max(res)),
        "per_system": {"iterations": list(its), "seconds": list(secs), "residual": list(res)},
    }


def main():
    directory, out = sys.argv[1], sys.argv[2]
    systems = load(directory, MANIFEST["systems"])
    restart = MANIFEST["restart"]
    spd = MANIFEST["spd"]
    plan = [
        (f"petsc gmres({restart})", "gmres", "none"),
        (f"petsc fgmres({restart})", "fgmres", "none"),
        (f"petsc gcr({restart})", "gcr", "none"),
        (f"petsc lgmres({restart})", "lgmres", "none"),
        (f"petsc gmres({restart}) + ilu0", "gmres", "ilu"),
    ]
    if spd:
        plan += [
            ("petsc cg", "cg", "none"),
            ("petsc cg + gamg", "cg", "gamg"),
            ("petsc cg + boomeramg", "cg", "hypre"),
        ]
    else:
        plan += [
            (f"petsc gmres({restart}) + gamg", "gmres", "gamg"),
            (f"petsc gmres({restart}) + boomeramg", "gmres", "hypre"),
        ]
    results = []
    for label, ksp_type, pc_type in plan:
        print(f"  peer {label} ...", flush=True)
        try:
            r = run(label, systems, ksp_type, pc_type, restart)
        except Exception as e:  # a missing package or a failed setup is a result, not a crash
            results.append({"label": label, "ordering": "natural",
                            "error": f"{type(e).__name__}: {e}"})
            print(f"  peer {label:<34} failed: {results[-1]['error']}", flush=True)
            continue
        results.append(r)
        print(f"  peer {label:<34} {r['mean_iterations']:9.1f} iterations "
              f"{r['seconds_per_system']:9.4f} s/system", flush=True)
    doc = {
        "tool": "PETSc",
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__,
                     "petsc": ".".join(str(v) for v in PETSc.Sys.getVersion()),
                     "petsc4py": petsc4py.__version__},
        "threads": MANIFEST.get("threads", 1),
        "methods": results,
    }
    tmp = out + ".partial"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
