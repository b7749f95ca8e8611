#!/usr/bin/env python3
"""NumPy reference generators for `pdekit bench generate --peers`: Burgers (ETDRK4) and 2-D
Navier–Stokes (vorticity, Crank–Nicolson + explicit advection), written the way the FNO authors'
data scripts are: one batch of samples advanced together with batched FFTs.

    python generate_numpy.py SPEC.json RESULT.json

SPEC (written by pdekit) gives the problem, its settings, the sample count, and sample 0's initial
condition as raw little-endian f64 (`initial_condition`). The script times generating `samples`
random samples (its own Gaussian random fields, batched), then solves pdekit's initial condition
and writes that output as raw f64 to `output`, so pdekit can compare the two. RESULT gets
samples/second and the settings used.

The numerics mirror pdekit's so the outputs agree to rounding: the 2/3 rule, first derivatives
with the Nyquist wavenumber set to zero, the mean of the advection term dropped (NS), and the
Kassam–Trefethen contour integrals for the ETDRK4 coefficients (Burgers).
"""
import json
import sys
import time

import numpy as np

BATCH = 20  # the FNO Navier–Stokes script's batch size


def wavenumbers(n):
    k = np.fft.fftfreq(n, 1.0 / n)
    return k


def derivative_wavenumbers(n):
    k = np.fft.fftfreq(n, 1.0 / n)
    if n % 2 == 0:
        k[n // 2] = 0.0
    return k


def grf_1d(rng, batch, n, alpha, tau, sigma):
    k = wavenumbers(n)
    sqrt_eig = sigma * (4 * np.pi**2 * k**2 + tau**2) ** (-alpha / 2)
    sqrt_eig[0] = 0.0
    xi = rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))
    return np.real(np.fft.ifft(sqrt_eig * xi, axis=-1) * n)


def grf_2d(rng, batch, n, alpha, tau, sigma):
    k = wavenumbers(n)
    kx, ky = np.meshgrid(k, k, indexing="ij")
    sqrt_eig = sigma * (4 * np.pi**2 * (kx**2 + ky**2) + tau**2) ** (-alpha / 2)
    sqrt_eig[0, 0] = 0.0
    xi = rng.standard_normal((batch, n, n)) + 1j * rng.standard_normal((batch, n, n))
    return np.real(np.fft.ifft2(sqrt_eig * xi) * n * n)


class Burgers:
    def __init__(self, s):
        n = s["resolution"]
        self.n = n
        self.steps = s["steps"]
        self.every = s["steps_per_snapshot"]
        self.snapshots = s["snapshots"]
        h = s["final_time"] / self.steps
        k = np.arange(n // 2 + 1, dtype=float)
        L = -s["viscosity"] * (2 * np.pi * k) ** 2
        self.E = np.exp(h * L)
        self.E2 = np.exp(h * L / 2)
        M = 32
        r = np.exp(1j * np.pi * (np.arange(1, M + 1) - 0.5) / M)
        LR = h * L[:, None] + r[None, :]
        self.Q = h * np.real(np.mean((np.exp(LR / 2) - 1) / LR, axis=1))
        self.f1 = h * np.real(np.mean((-4 - LR + np.exp(LR) * (4 - 3 * LR + LR**2)) / LR**3, axis=1))
        self.f2 = h * np.real(np.mean((2 + LR + np.exp(LR) * (-2 + LR)) / LR**3, axis=1))
        self.f3 = h * np.real(np.mean((-4 - 3 * LR - LR**2 + np.exp(LR) * (4 - LR)) / LR**3, axis=1))
        kd = derivative_wavenumbers(n)[: n // 2 + 1].copy()
        kd[n // 2] = 0.0
        self.g = -0.5j * 2 * np.pi * kd * (k < n / 3)

    def nonlinear(self, v):
        u = np.fft.irfft(v, n=self.n, axis=-1)
        return self.g * np.fft.rfft(u * u, axis=-1)

    def run(self, u0):
        v = np.fft.rfft(u0, axis=-1)
        traj = []
        for step in range(1, self.steps + 1):
            Nv = self.nonlinear(v)
            a = self.E2 * v + self.Q * Nv
            Na = self.nonlinear(a)
            b = self.E2 * v + self.Q * Na
            Nb = self.nonlinear(b)
            c = self.E2 * a + self.Q * (2 * Nb - Nv)
            Nc = self.nonlinear(c)
            v = self.E * v + Nv * self.f1 + 2 * (Na + Nb) * self.f2 + Nc * self.f3
            if self.snapshots and step % self.every == 0:
                traj.append(np.fft.irfft(v, n=self.n, axis=-1))
        return np.fft.irfft(v, n=self.n, axis=-1), traj

    def sample(self, rng, batch, s):
        return grf_1d(rng, batch, self.n, s["alpha"], s["tau"], s["sigma"])


class NavierStokes:
    def __init__(self, s):
        n = s["resolution"]
        self.n = n
        self.steps = s["steps"]
        self.every = s["steps_per_snapshot"]
        self.dt = s["final_time"] / self.steps
        nu = s["viscosity"]
        kx = wavenumbers(n)[:, None] * np.ones((1, n // 2 + 1))
        ky = np.arange(n // 2 + 1, dtype=float)[None, :] * np.ones((n, 1))
        lap = 4 * np.pi**2 * (kx**2 + ky**2)
        self.inv_lap = np.where(lap == 0, 0.0, 1.0 / np.where(lap == 0, 1.0, lap))
        self.num = 1 - 0.5 * self.dt * nu * lap
        self.den = 1 + 0.5 * self.dt * nu * lap
        cut = (2.0 / 3.0) * (n // 2)
        self.keep = (np.abs(kx) <= cut) & (ky <= cut)
        self.keep[0, 0] = False
        dkx = derivative_wavenumbers(n)[:, None] * np.ones((1, n // 2 + 1))
        dky = derivative_wavenumbers(n)[: n // 2 + 1].copy()
        dky[n // 2] = 0.0
        dky = dky[None, :] * np.ones((n, 1))
        self.ikx = 2j * np.pi * dkx
        self.iky = 2j * np.pi * dky
        x = np.arange(n) / n
        X, Y = np.meshgrid(x, x, indexing="ij")
        f = s["forcing"] * (np.sin(2 * np.pi * (X + Y)) + np.cos(2 * np.pi * (X + Y)))
        self.f_h = np.fft.rfft2(f)

    def run(self, w0):
        w_h = np.fft.rfft2(w0)
        traj = []
        for step in range(1, self.steps + 1):
            psi_h = w_h * self.inv_lap
            u = np.fft.irfft2(self.iky * psi_h, s=(self.n, self.n))
            v = np.fft.irfft2(-self.ikx * psi_h, s=(self.n, self.n))
            wx = np.fft.irfft2(self.ikx * w_h, s=(self.n, self.n))
            wy = np.fft.irfft2(self.iky * w_h, s=(self.n, self.n))
            F_h = np.fft.rfft2(u * wx + v * wy) * self.keep
            w_h = (self.num * w_h - self.dt * F_h + self.dt * self.f_h) / self.den
            if step % self.every == 0:
                traj.append(np.fft.irfft2(w_h, s=(self.n, self.n)))
        return None, traj

    def sample(self, rng, batch, s):
        return grf_2d(rng, batch, self.n, s["alpha"], s["tau"], s["sigma"])


def main():
    spec_path, result_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as fh:
        s = json.load(fh)
    solver = {"burgers": Burgers, "navier_stokes": NavierStokes}[s["problem"]](s)
    rng = np.random.default_rng(0)
    total = s["samples"]
    batch = min(BATCH, total)
    done = 0
    start = time.perf_counter()
    while done < total:
        b = min(batch, total - done)
        u0 = solver.sample(rng, b, s)
        final, traj = solver.run(u0)
        done += b
        print(f"peer: {done}/{total} samples", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start

    # pdekit's sample 0, for the comparison.
    n = s["resolution"]
    ic = np.fromfile(s["initial_condition"], dtype="<f8")
    ic = ic.reshape((1, n) if s["problem"] == "burgers" else (1, n, n))
    final, traj = solver.run(ic)
    out = final[0] if s["problem"] == "burgers" else np.stack([t[0] for t in traj])
    np.ascontiguousarray(out, dtype="<f8").tofile(s["output"])

    result = {
        "peer": "numpy",
        "numpy": np.__version__,
        "batch": batch,
        "samples": total,
        "seconds": seconds,
        "samples_per_second": total / seconds,
    }
    with open(result_path, "w") as fh:
        json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
