//! Real FFTs on periodic grids for the pseudo-spectral steppers, with their scratch owned so a
//! time step allocates nothing.
//!
//! Conventions: the forward transform is the plain sum `û_k = Σ_x u_x e^{−2πik·x/n}`; the inverse
//! divides by the number of points, so `inverse(forward(u)) = u`. Wavenumbers are signed integers
//! ([`crate::field::wavenumber`]); on the unit interval `∂/∂x` multiplies mode k by `2πik`.

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{num_complex::Complex64, Fft, FftPlanner};
use std::sync::Arc;

/// Plans shared by all threads; each thread owns an [`Rfft1`] or [`Rfft2`] workspace built from them.
#[derive(Clone)]
pub struct Plans1 {
    n: usize,
    r2c: Arc<dyn RealToComplex<f64>>,
    c2r: Arc<dyn ComplexToReal<f64>>,
}

impl std::fmt::Debug for Plans1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plans1").field("n", &self.n).finish()
    }
}

impl Plans1 {
    pub fn new(n: usize) -> Self {
        let mut planner = RealFftPlanner::<f64>::new();
        Self {
            n,
            r2c: planner.plan_fft_forward(n),
            c2r: planner.plan_fft_inverse(n),
        }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Number of complex modes `n/2 + 1`.
    pub fn modes(&self) -> usize {
        self.n / 2 + 1
    }
}

/// A 1-D real FFT of length n with its scratch.
pub struct Rfft1 {
    plans: Plans1,
    real: Vec<f64>,
    scratch: Vec<Complex64>,
}

impl Rfft1 {
    pub fn new(plans: &Plans1) -> Self {
        let scratch_len = plans.r2c.get_scratch_len().max(plans.c2r.get_scratch_len());
        Self {
            plans: plans.clone(),
            real: vec![0.0; plans.n],
            scratch: vec![Complex64::default(); scratch_len],
        }
    }

    /// `spec ← FFT(u)`; `spec` has `n/2 + 1` modes.
    pub fn forward(&mut self, u: &[f64], spec: &mut [Complex64]) {
        self.real.copy_from_slice(u);
        self.plans
            .r2c
            .process_with_scratch(&mut self.real, spec, &mut self.scratch)
            .expect("buffer lengths match the plan");
    }

    /// `u ← IFFT(spec)/n`. `spec` is consumed as scratch. The imaginary parts of the mean and
    /// Nyquist modes, which a real signal cannot have, are dropped.
    pub fn inverse(&mut self, spec: &mut [Complex64], u: &mut [f64]) {
        self.inverse_unnormalised(spec, u);
        let scale = 1.0 / self.plans.n as f64;
        for v in u.iter_mut() {
            *v *= scale;
        }
    }

    /// `u ← n · IFFT(spec)`: the plain sum, for callers that fold 1/n into their spectra.
    pub fn inverse_unnormalised(&mut self, spec: &mut [Complex64], u: &mut [f64]) {
        spec[0].im = 0.0;
        if self.plans.n.is_multiple_of(2) {
            spec[self.plans.n / 2].im = 0.0;
        }
        self.plans
            .c2r
            .process_with_scratch(spec, u, &mut self.scratch)
            .expect("buffer lengths match the plan");
    }
}

/// Plans for an `n × n` real 2-D FFT.
#[derive(Clone)]
pub struct Plans2 {
    rows: Plans1,
    fwd: Arc<dyn Fft<f64>>,
    inv: Arc<dyn Fft<f64>>,
}

impl std::fmt::Debug for Plans2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plans2").field("n", &self.rows.n).finish()
    }
}

impl Plans2 {
    pub fn new(n: usize) -> Self {
        let mut planner = FftPlanner::<f64>::new();
        Self {
            rows: Plans1::new(n),
            fwd: planner.plan_fft_forward(n),
            inv: planner.plan_fft_inverse(n),
        }
    }

    pub fn n(&self) -> usize {
        self.rows.n
    }

    /// Length of a spectrum: `(n/2 + 1) · n`, laid out `[ky][kx]`.
    pub fn spectrum_len(&self) -> usize {
        self.rows.modes() * self.rows.n
    }
}

/// An `n × n` real 2-D FFT with its scratch. Real arrays are `[x][y]` row-major; spectra are
/// `[ky][kx]` with `ky` in `0..=n/2` (the halved axis) and `kx` in FFT order, so each `ky` row is
/// contiguous for the complex transforms along x.
pub struct Rfft2 {
    plans: Plans2,
    rows: Rfft1,
    /// `[x][ky]` half spectra of the rows.
    half: Vec<Complex64>,
    scratch: Vec<Complex64>,
}

impl Rfft2 {
    pub fn new(plans: &Plans2) -> Self {
        let scratch_len = plans
            .fwd
            .get_inplace_scratch_len()
            .max(plans.inv.get_inplace_scratch_len());
        Self {
            plans: plans.clone(),
            rows: Rfft1::new(&plans.rows),
            half: vec![Complex64::default(); plans.spectrum_len()],
            scratch: vec![Complex64::default(); scratch_len],
        }
    }

    /// `spec ← FFT2(u)`.
    pub fn forward(&mut self, u: &[f64], spec: &mut [Complex64]) {
        let n = self.plans.n();
        let m = self.plans.rows.modes();
        for (row, half) in u.chunks_exact(n).zip(self.half.chunks_exact_mut(m)) {
            self.rows.forward(row, half);
        }
        for x in 0..n {
            for ky in 0..m {
                spec[ky * n + x] = self.half[x * m + ky];
            }
        }
        self.plans.fwd.process_with_scratch(spec, &mut self.scratch);
    }

    /// `u ← IFFT2(spec)/n²`; `spec` is consumed as scratch.
    pub fn inverse(&mut self, spec: &mut [Complex64], u: &mut [f64]) {
        self.inverse_unnormalised(spec, u);
        let scale = 1.0 / (self.plans.n() * self.plans.n()) as f64;
        for v in u.iter_mut() {
            *v *= scale;
        }
    }

    /// `u ← n² · IFFT2(spec)`: the plain sum, for callers that fold 1/n² into their spectra.
    pub fn inverse_unnormalised(&mut self, spec: &mut [Complex64], u: &mut [f64]) {
        let n = self.plans.n();
        let m = self.plans.rows.modes();
        self.plans.inv.process_with_scratch(spec, &mut self.scratch);
        for ky in 0..m {
            for x in 0..n {
                self.half[x * m + ky] = spec[ky * n + x];
            }
        }
        for (row, half) in u.chunks_exact_mut(n).zip(self.half.chunks_exact_mut(m)) {
            self.rows.inverse_unnormalised(half, row);
        }
    }
}

/// The signed wavenumber used for a first derivative on bin `i` of `n`: the Nyquist bin of an even
/// `n` gets 0, since its derivative has no real representation.
pub fn derivative_wavenumber(i: usize, n: usize) -> f64 {
    if n.is_multiple_of(2) && i == n / 2 {
        0.0
    } else {
        crate::field::wavenumber(i, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    #[test]
    fn rfft2_round_trip_and_single_mode() {
        let n = 12;
        let plans = Plans2::new(n);
        let mut fft = Rfft2::new(&plans);
        // u = cos(2π(2x + 3y)): modes (2, 3) and (−2, −3), each n²/2.
        let u: Vec<f64> = (0..n * n)
            .map(|p| {
                let (x, y) = ((p / n) as f64 / n as f64, (p % n) as f64 / n as f64);
                (2.0 * PI * (2.0 * x + 3.0 * y)).cos()
            })
            .collect();
        let mut spec = vec![Complex64::default(); plans.spectrum_len()];
        fft.forward(&u, &mut spec);
        let half = (n * n) as f64 / 2.0;
        for ky in 0..=n / 2 {
            for kx in 0..n {
                let v = spec[ky * n + kx];
                let expect = if ky == 3 && kx == 2 { half } else { 0.0 };
                assert!(
                    (v.re - expect).abs() < 1e-9 && v.im.abs() < 1e-9,
                    "({kx},{ky}) {v}"
                );
            }
        }
        let mut back = vec![0.0; n * n];
        fft.inverse(&mut spec, &mut back);
        for (a, b) in u.iter().zip(&back) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn rfft1_round_trip() {
        let n = 10;
        let plans = Plans1::new(n);
        let mut fft = Rfft1::new(&plans);
        let u: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin() + 0.3).collect();
        let mut spec = vec![Complex64::default(); plans.modes()];
        fft.forward(&u, &mut spec);
        assert!((spec[0].re - u.iter().sum::<f64>()).abs() < 1e-12);
        let mut back = vec![0.0; n];
        fft.inverse(&mut spec, &mut back);
        for (a, b) in u.iter().zip(&back) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
