//! Spectral convolution (the FNO layer) in 1-D, 2-D and 3-D.
//!
//! Forward: `X̂ = (1/N)·FFT(x)` truncated to the kept modes (the first `m` along the last axis of
//! the real FFT, `±m` along the others), `Ŷ_k = X̂_k·W_k` per mode (a complex `c_in × c_out`
//! matrix), and `y = IFFT(Ŷ)` with the other modes zero. The `1/N` on the forward transform (as
//! neuraloperator's `fft_norm = "forward"`) makes the kept coefficients, and so the weights,
//! independent of the grid: a layer trained at one resolution runs at any other.
//!
//! Backward, with gradients `g = ∂L/∂Re z + i·∂L/∂Im z`:
//! - through the inverse transform, `dŶ = w ⊙ FFT(dy)` (unnormalised), where `w = 2` for the
//!   last-axis modes the real inverse counts twice (all but 0 and n/2), 1 otherwise;
//! - through the product, `dX̂_k = dŶ_k·W_kᴴ` and `dW_k += X̂_kᴴ·dŶ_k`;
//! - through the forward transform, `dx = (1/N)·IFFT(dX̂ / w)`.

use super::compose::prefixed;
use super::factorized::{Factorization, FactorizedWeight};
use super::{Layer, Param};
use crate::tensor::{vectorised, NnError, Real, Tensor};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// FFT plans for one grid.
struct Plans<T: Real> {
    grid: Vec<usize>,
    r2c: Arc<dyn RealToComplex<T>>,
    c2r: Arc<dyn ComplexToReal<T>>,
    /// Forward and inverse complex FFTs along each axis but the last.
    forward: Vec<Arc<dyn Fft<T>>>,
    inverse: Vec<Arc<dyn Fft<T>>>,
}

impl<T: Real> Plans<T> {
    fn new(grid: &[usize]) -> Self {
        let mut real = RealFftPlanner::<T>::new();
        let mut complex = FftPlanner::<T>::new();
        let last = *grid.last().expect("a grid axis");
        let others = &grid[..grid.len() - 1];
        Self {
            grid: grid.to_vec(),
            r2c: real.plan_fft_forward(last),
            c2r: real.plan_fft_inverse(last),
            forward: others
                .iter()
                .map(|&n| complex.plan_fft_forward(n))
                .collect(),
            inverse: others
                .iter()
                .map(|&n| complex.plan_fft_inverse(n))
                .collect(),
        }
    }
}

/// The spectral convolution layer.
pub struct SpectralConv<T: Real> {
    pub c_in: usize,
    pub c_out: usize,
    /// Kept modes per spatial axis.
    pub modes: Vec<usize>,
    /// Complex weights `W[k][i][o]`, interleaved (re, im). With a factorisation this is rebuilt
    /// from the factors when they may have changed, and the factors are the parameters.
    pub weight: Vec<T>,
    /// The dense weight's gradient. With a factorisation, backward passes add to it and it is
    /// pulled back onto the factors (once) when the parameters are next read.
    pub(crate) weight_grad: Vec<T>,
    factorized: Option<FactorizedWeight<T>>,
    /// With a factorisation: whether `weight` is rebuilt from the current factors (false once
    /// the parameters have been handed out, and so may have been changed).
    weight_current: bool,
    /// With a factorisation: whether `weight_grad` holds gradient not yet pulled back.
    grad_pending: bool,
    plans: Option<Plans<T>>,
    /// From the forward pass: batch size and `X̂[b][k][i]`.
    saved: Option<(usize, Vec<Complex<T>>)>,
}

impl<T: Real> SpectralConv<T> {
    /// Weights `scale·(u + iv)` with `u, v` uniform in [0, 1) and `scale = 1/(c_in·c_out)`, as in
    /// the FNO reference code.
    pub fn new(c_in: usize, c_out: usize, modes: &[usize], seed: u64) -> Result<Self, NnError> {
        if modes.is_empty() || modes.len() > 3 || modes.contains(&0) {
            return Err(NnError::BadSpec {
                layer: "spectral conv",
                message: format!("expected 1 to 3 positive mode counts, got {modes:?}"),
            });
        }
        let k = kept_count(modes);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let scale = 1.0 / (c_in * c_out) as f64;
        let weight = (0..2 * k * c_in * c_out)
            .map(|_| T::lit(scale * rng.gen::<f64>()))
            .collect::<Vec<_>>();
        Ok(Self {
            c_in,
            c_out,
            modes: modes.to_vec(),
            weight_grad: vec![T::zero(); weight.len()],
            weight,
            factorized: None,
            weight_current: true,
            grad_pending: false,
            plans: None,
            saved: None,
        })
    }

    /// A layer whose weight is stored as `factorization` (dense: [`SpectralConv::new`]). Factorised
    /// weights start zero-mean with the dense initialisation's RMS modulus.
    pub fn with_factorization(
        c_in: usize,
        c_out: usize,
        modes: &[usize],
        factorization: &Factorization,
        seed: u64,
    ) -> Result<Self, NnError> {
        let mut layer = Self::new(c_in, c_out, modes, seed)?;
        if *factorization != Factorization::Dense {
            let mut shape = kept_shape(modes);
            shape.extend([c_in, c_out]);
            let rms = (2.0f64 / 3.0).sqrt() / (c_in * c_out) as f64;
            let f = FactorizedWeight::new(&shape, factorization.clone(), rms, seed)?;
            layer.weight = f.reconstruct();
            layer.factorized = Some(f);
            layer.weight_current = true;
        }
        Ok(layer)
    }

    /// Redraws a dense weight as neuraloperator initialises its spectral weights: complex normal
    /// with standard deviation `std` (each of the real and imaginary parts `std/√2`).
    pub fn init_complex_normal(&mut self, std: f64, seed: u64) {
        debug_assert!(self.factorized.is_none(), "a dense weight");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let part = std / std::f64::consts::SQRT_2;
        for w in self.weight.iter_mut() {
            *w = T::lit(part * rng.sample::<f64, _>(rand_distr::StandardNormal));
        }
    }

    fn check_grid(&self, x: &Tensor<T>, channels: usize, what: &str) -> Result<(), NnError> {
        let d = self.modes.len();
        let bad = |expected: String| {
            Err(NnError::Shape {
                layer: "spectral conv",
                expected,
                got: format!("shape {:?}", x.shape),
            })
        };
        if x.shape.len() != d + 2 || x.channels() != channels {
            return bad(format!(
                "[batch, {d} grid axes, {channels} {what} channels]"
            ));
        }
        let grid = x.grid();
        for (a, (&n, &m)) in grid.iter().zip(&self.modes).enumerate() {
            let fits = if a + 1 == d {
                m <= n / 2 + 1
            } else {
                2 * m <= n
            };
            if !fits {
                return bad(format!(
                    "a grid that holds {m} modes along axis {a} (at least {} points)",
                    if a + 1 == d { 2 * m - 2 } else { 2 * m }
                ));
            }
        }
        Ok(())
    }

    fn plan(&mut self, grid: &[usize]) {
        if self.plans.as_ref().is_none_or(|p| p.grid != grid) {
            self.plans = Some(Plans::new(grid));
        }
    }
}

/// Modes kept: `Π_{axes but last} 2m · m_last`.
fn kept_count(modes: &[usize]) -> usize {
    let (last, others) = modes.split_last().expect("a mode count");
    others.iter().map(|m| 2 * m).product::<usize>() * last
}

/// Shape of the kept block: `[2m_0, …, 2m_{d−2}, m_last]`.
pub fn kept_shape(modes: &[usize]) -> Vec<usize> {
    let d = modes.len();
    modes
        .iter()
        .enumerate()
        .map(|(a, &m)| if a + 1 == d { m } else { 2 * m })
        .collect()
}

/// FFT index along a non-last axis of kept index `j` (the first m, then the last m).
fn freq(j: usize, m: usize, n: usize) -> usize {
    if j < m {
        j
    } else {
        n - 2 * m + j
    }
}

/// Applies `fft` along `axis` of the complex array `data` with shape `shape` (row-major).
fn along_axis<T: Real>(data: &mut [Complex<T>], shape: &[usize], axis: usize, fft: &dyn Fft<T>) {
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let outer: usize = shape[..axis].iter().product();
    let mut line = vec![Complex::default(); n];
    let mut scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            for (t, v) in line.iter_mut().enumerate() {
                *v = data[base + t * inner];
            }
            fft.process_with_scratch(&mut line, &mut scratch);
            for (t, v) in line.iter().enumerate() {
                data[base + t * inner] = *v;
            }
        }
    }
}

/// `(1/N)·FFT(field)` at the kept modes, laid out as [`kept_shape`].
fn truncated_forward<T: Real>(field: &[T], plans: &Plans<T>, modes: &[usize]) -> Vec<Complex<T>> {
    let grid = &plans.grid;
    let d = grid.len();
    let (n_last, m_last) = (grid[d - 1], modes[d - 1]);
    let lines = field.len() / n_last;
    // Real FFT of every line along the last axis, keeping the first m modes.
    let mut shape: Vec<usize> = grid.to_vec();
    shape[d - 1] = m_last;
    let mut data = vec![Complex::default(); lines * m_last];
    let mut input = plans.r2c.make_input_vec();
    let mut output = plans.r2c.make_output_vec();
    let mut scratch = plans.r2c.make_scratch_vec();
    for l in 0..lines {
        input.copy_from_slice(&field[l * n_last..(l + 1) * n_last]);
        plans
            .r2c
            .process_with_scratch(&mut input, &mut output, &mut scratch)
            .expect("buffers sized by the plan");
        data[l * m_last..(l + 1) * m_last].copy_from_slice(&output[..m_last]);
    }
    // Complex FFTs along the other axes, keeping ±m.
    for axis in (0..d - 1).rev() {
        along_axis(&mut data, &shape, axis, plans.forward[axis].as_ref());
        let (n, m) = (shape[axis], modes[axis]);
        let inner: usize = shape[axis + 1..].iter().product();
        let outer: usize = shape[..axis].iter().product();
        let mut kept = vec![Complex::default(); outer * 2 * m * inner];
        for o in 0..outer {
            for j in 0..2 * m {
                let src = (o * n + freq(j, m, n)) * inner;
                let dst = (o * 2 * m + j) * inner;
                kept[dst..dst + inner].copy_from_slice(&data[src..src + inner]);
            }
        }
        data = kept;
        shape[axis] = 2 * m;
    }
    let scale = T::one() / T::lit(field.len() as f64);
    data.iter_mut().for_each(|v| *v = *v * scale);
    data
}

/// The real field whose (unnormalised) spectrum is `spectrum` at the kept modes and zero
/// elsewhere; imaginary parts the real inverse cannot represent are dropped, as `irfftn` does.
fn truncated_inverse<T: Real>(
    spectrum: &[Complex<T>],
    plans: &Plans<T>,
    modes: &[usize],
) -> Vec<T> {
    let grid = &plans.grid;
    let d = grid.len();
    let mut shape = kept_shape(modes);
    let mut data = spectrum.to_vec();
    for axis in 0..d - 1 {
        let (n, m) = (grid[axis], modes[axis]);
        let inner: usize = shape[axis + 1..].iter().product();
        let outer: usize = shape[..axis].iter().product();
        let mut full = vec![Complex::default(); outer * n * inner];
        for o in 0..outer {
            for j in 0..2 * m {
                let src = (o * 2 * m + j) * inner;
                let dst = (o * n + freq(j, m, n)) * inner;
                full[dst..dst + inner].copy_from_slice(&data[src..src + inner]);
            }
        }
        data = full;
        shape[axis] = n;
        along_axis(&mut data, &shape, axis, plans.inverse[axis].as_ref());
    }
    let (n_last, m_last) = (grid[d - 1], modes[d - 1]);
    let lines = data.len() / m_last;
    let mut out = Vec::with_capacity(lines * n_last);
    let mut input = plans.c2r.make_input_vec();
    let mut output = plans.c2r.make_output_vec();
    let mut scratch = plans.c2r.make_scratch_vec();
    for l in 0..lines {
        input.iter_mut().for_each(|v| *v = Complex::default());
        input[..m_last].copy_from_slice(&data[l * m_last..(l + 1) * m_last]);
        input[0].im = T::zero();
        if n_last.is_multiple_of(2) {
            input[n_last / 2].im = T::zero();
        }
        plans
            .c2r
            .process_with_scratch(&mut input, &mut output, &mut scratch)
            .expect("buffers sized by the plan");
        out.extend_from_slice(&output);
    }
    out
}

/// `w` per kept mode: 2 where the real inverse counts a last-axis mode twice, else 1.
fn doubling<T: Real>(modes: &[usize], n_last: usize) -> Vec<T> {
    let m_last = *modes.last().expect("a mode count");
    let k = kept_count(modes);
    (0..k)
        .map(|i| {
            let j = i % m_last;
            if j == 0 || (n_last.is_multiple_of(2) && j == n_last / 2) {
                T::one()
            } else {
                T::lit(2.0)
            }
        })
        .collect()
}

/// The weights `W[k]` (`c_in × c_out` complex, interleaved re/im), laid out for [`mix_modes`]:
/// per mode, one row per input (or, with `adjoint`, per output) of the real parts then the
/// imaginary parts of its products, so that the mixing loop reads both contiguously. `adjoint`
/// gives `W[k]ᴴ` (rows are outputs, values conjugated).
fn split_weights<T: Real>(w: &[T], k: usize, ci: usize, co: usize, adjoint: bool) -> Vec<T> {
    let (rows, cols) = if adjoint { (co, ci) } else { (ci, co) };
    let mut out = vec![T::zero(); 2 * k * ci * co];
    out.par_chunks_mut(2 * rows * cols)
        .zip(w.par_chunks(2 * ci * co))
        .for_each(|(dst, wk)| {
            for (r, row) in dst.chunks_exact_mut(2 * cols).enumerate() {
                let (re, im) = row.split_at_mut(cols);
                for c in 0..cols {
                    let (i, o) = if adjoint { (c, r) } else { (r, c) };
                    let at = 2 * (i * co + o);
                    re[c] = wk[at];
                    im[c] = if adjoint { -wk[at + 1] } else { wk[at + 1] };
                }
            }
        });
    out
}

/// `out[b][k][:] = Σ_r a[b][k][r]·M_k[r][:]` for every sample `b` and kept mode `k`: `a` is
/// `[batch][k][rows]`, `m` holds `M_k` (`rows × cols`) as [`split_weights`] lays them out, and
/// `out` is `[batch][k][cols]`. Each product is formed as `num_complex` forms it, so the sums
/// are the same, value for value, as plain complex arithmetic.
fn mix_modes<T: Real>(
    a: &[Complex<T>],
    m: &[T],
    k: usize,
    rows: usize,
    cols: usize,
) -> Vec<Complex<T>> {
    let batch = a.len() / (k * rows).max(1);
    let mut out = vec![Complex::default(); batch * k * cols];
    out.par_chunks_mut(k * cols)
        .zip(a.par_chunks(k * rows))
        .for_each(|(ob, ab)| {
            let (mut re, mut im) = (vec![T::zero(); cols], vec![T::zero(); cols]);
            vectorised(
                #[inline(always)]
                || {
                    for ((yk, ak), mk) in ob
                        .chunks_exact_mut(cols)
                        .zip(ab.chunks_exact(rows))
                        .zip(m.chunks_exact(2 * rows * cols))
                    {
                        vector_matrix_product(yk, ak, mk, &mut re, &mut im);
                    }
                },
            );
        });
    out
}

/// `y = a·M` for one mode, with `M` a split matrix (see [`split_weights`]) and `re`, `im` as
/// scratch. Inlined so that it is compiled for the wide vector units of [`vectorised`].
#[inline(always)]
fn vector_matrix_product<T: Real>(
    y: &mut [Complex<T>],
    a: &[Complex<T>],
    m: &[T],
    re: &mut [T],
    im: &mut [T],
) {
    let cols = y.len();
    re.fill(T::zero());
    im.fill(T::zero());
    for (x, row) in a.iter().zip(m.chunks_exact(2 * cols)) {
        let (wr, wi) = row.split_at(cols);
        for (((r, i), &u), &v) in re.iter_mut().zip(im.iter_mut()).zip(wr).zip(wi) {
            *r = *r + (x.re * u - x.im * v);
            *i = *i + (x.re * v + x.im * u);
        }
    }
    for ((y, &r), &i) in y.iter_mut().zip(&*re).zip(&*im) {
        *y = Complex::new(r, i);
    }
}

/// `g[i][o] += conj(x[i])·d[o]`; inlined for the same reason as [`vector_matrix_product`].
#[inline(always)]
fn outer_product_add<T: Real>(g: &mut [Complex<T>], x: &[Complex<T>], d: &[Complex<T>]) {
    for (gi, xi) in g.chunks_exact_mut(d.len()).zip(x) {
        let xc = xi.conj();
        for (gv, dv) in gi.iter_mut().zip(d) {
            *gv = *gv + xc * *dv;
        }
    }
}

/// Points per block in the channels-last ↔ channel-major transposes: a block of every channel
/// stays in L1.
const TRANSPOSE_BLOCK: usize = 64;

/// The fields of `x` channel-major, `[b][c][points]`, by a blocked transpose of each sample.
fn channel_major<T: Real>(x: &Tensor<T>) -> Vec<T> {
    let c = x.channels();
    let batch = x.shape[0];
    let points = x.data.len() / (batch * c).max(1);
    // SAFETY: each sample's run of c·points values is written whole, one value per (ch, p).
    let out = unsafe {
        Tensor::par_written(&[x.data.len()], (c * points).max(1), |b, dst| {
            let src = &x.data[b * c * points..][..c * points];
            for p0 in (0..points).step_by(TRANSPOSE_BLOCK) {
                let p1 = (p0 + TRANSPOSE_BLOCK).min(points);
                for ch in 0..c {
                    for p in p0..p1 {
                        dst[ch * points + p].write(src[p * c + ch]);
                    }
                }
            }
        })
    };
    out.data
}

/// The truncated spectra of every (sample, channel) field of `x`, laid out `[b][k][c]`.
fn spectra_of<T: Real>(x: &Tensor<T>, plans: &Plans<T>, modes: &[usize]) -> Vec<Complex<T>> {
    let (batch, c) = (x.shape[0], x.channels());
    let points: usize = x.grid().iter().product();
    let k = kept_count(modes);
    let fields = channel_major(x);
    let spectra: Vec<Vec<Complex<T>>> = fields
        .par_chunks(points)
        .map(|f| truncated_forward(f, plans, modes))
        .collect();
    let mut out = vec![Complex::default(); batch * k * c];
    out.par_chunks_mut(k * c)
        .zip(spectra.par_chunks(c))
        .for_each(|(ob, sb)| {
            for (ch, s) in sb.iter().enumerate() {
                for (kk, v) in s.iter().enumerate() {
                    ob[kk * c + ch] = *v;
                }
            }
        });
    out
}

/// One sample's fields (one per channel, `points` values each) in channels-last order, by
/// blocked transposes: `put(p·c + ch, field[ch][p])`.
#[inline(always)]
fn scatter_sample<T: Copy>(fields: &[Vec<T>], points: usize, mut put: impl FnMut(usize, T)) {
    let c = fields.len();
    for p0 in (0..points).step_by(TRANSPOSE_BLOCK) {
        let p1 = (p0 + TRANSPOSE_BLOCK).min(points);
        for (ch, f) in fields.iter().enumerate() {
            for (p, v) in f.iter().enumerate().take(p1).skip(p0) {
                put(p * c + ch, *v);
            }
        }
    }
}

/// Adds one field per (sample, channel), in that order, into the channels-last tensor `t`.
fn add_fields<T: Real>(fields: &[Vec<T>], t: &mut Tensor<T>) {
    let c = t.channels();
    let points = t.data.len() / (t.shape[0] * c).max(1);
    t.data
        .par_chunks_mut(c * points)
        .zip(fields.par_chunks(c))
        .for_each(|(dst, fs)| scatter_sample(fs, points, |at, v| dst[at] = dst[at] + v));
}

/// A channels-last tensor of `grid` from one field per (sample, channel), in that order.
fn from_fields<T: Real>(fields: &[Vec<T>], batch: usize, grid: &[usize], c: usize) -> Tensor<T> {
    let mut shape = vec![batch];
    shape.extend(grid);
    shape.push(c);
    let points: usize = grid.iter().product();
    assert!(
        fields.len() == batch * c && fields.iter().all(|f| f.len() == points),
        "one field of {points} values per (sample, channel)"
    );
    // SAFETY: a sample's c fields of `points` values (asserted) write all its c·points values.
    unsafe {
        Tensor::par_written(&shape, c * points, |b, dst| {
            scatter_sample(&fields[b * c..(b + 1) * c], points, |at, v| {
                dst[at].write(v);
            })
        })
    }
}

impl<T: Real> Layer<T> for SpectralConv<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.check_grid(x, self.c_in, "input")?;
        let grid = x.grid().to_vec();
        let batch = x.shape[0];
        let modes = self.modes.clone();
        let k = kept_count(&modes);
        let (ci, co) = (self.c_in, self.c_out);
        // Rebuilt only when the factors may have changed: an MG-TFNO's patch groups, a
        // recomputed forward and an evaluation's batches all share one reconstruction.
        if let (Some(f), false) = (&self.factorized, self.weight_current) {
            self.weight = f.reconstruct();
            self.weight_current = true;
        }
        self.plan(&grid);
        let plans = self.plans.as_ref().expect("planned");
        let xhat = spectra_of(x, plans, &modes);
        // Ŷ[b][k][o] = Σ_i X̂[b][k][i]·W[k][i][o].
        let mixed = mix_modes(
            &xhat,
            &split_weights(&self.weight, k, ci, co, false),
            k,
            ci,
            co,
        );
        let yhat: Vec<Vec<Complex<T>>> = (0..batch * co)
            .into_par_iter()
            .map(|bo| {
                let (b, o) = (bo / co, bo % co);
                (0..k).map(|kk| mixed[(b * k + kk) * co + o]).collect()
            })
            .collect();
        let fields: Vec<Vec<T>> = yhat
            .par_iter()
            .map(|s| truncated_inverse(s, plans, &modes))
            .collect();
        self.saved = Some((batch, xhat));
        Ok(from_fields(&fields, batch, &grid, co))
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.backward_into(dy, None)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        if let Some(f) = &mut self.factorized {
            if self.grad_pending {
                f.backward(&self.weight_grad);
                self.weight_grad.iter_mut().for_each(|g| *g = T::zero());
                self.grad_pending = false;
            }
            self.weight_current = false;
            return prefixed("weight", f.parameters());
        }
        vec![Param {
            name: "weight".into(),
            value: &mut self.weight,
            grad: &mut self.weight_grad,
        }]
    }
}

impl<T: Real> SpectralConv<T> {
    /// The backward pass with the input gradient added to `acc` (which is returned).
    pub fn backward_add(&mut self, dy: &Tensor<T>, acc: Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.backward_into(dy, Some(acc))
    }

    fn backward_into(
        &mut self,
        dy: &Tensor<T>,
        acc: Option<Tensor<T>>,
    ) -> Result<Tensor<T>, NnError> {
        self.check_grid(dy, self.c_out, "output-gradient")?;
        let (batch, xhat) = self.saved.take().ok_or(NnError::NoForward {
            layer: "spectral conv",
        })?;
        let grid = dy.grid().to_vec();
        let points: usize = grid.iter().product();
        let modes = self.modes.clone();
        let k = kept_count(&modes);
        let (ci, co) = (self.c_in, self.c_out);
        let w_double = doubling::<T>(&modes, *grid.last().expect("a grid axis"));
        let n = T::lit(points as f64);
        self.plan(&grid);
        let plans = self.plans.as_ref().expect("planned");
        // dŶ[b][k][o] = w·FFT(dy) (unnormalised = N × the normalised forward).
        let mut dyhat = spectra_of(dy, plans, &modes);
        for (at, v) in dyhat.iter_mut().enumerate() {
            *v = *v * (n * w_double[(at / co) % k]);
        }
        // dW[k][i][o] += Σ_b conj(X̂[b][k][i])·dŶ[b][k][o].
        let grads: Vec<Vec<Complex<T>>> = (0..k)
            .into_par_iter()
            .map(|kk| {
                let mut g = vec![Complex::default(); ci * co];
                vectorised(
                    #[inline(always)]
                    || {
                        for b in 0..batch {
                            let at = b * k + kk;
                            outer_product_add(
                                &mut g,
                                &xhat[at * ci..][..ci],
                                &dyhat[at * co..][..co],
                            );
                        }
                    },
                );
                g
            })
            .collect();
        for (kk, g) in grads.iter().enumerate() {
            let base = 2 * kk * ci * co;
            let acc = &mut self.weight_grad[base..base + 2 * g.len()];
            for (a, v) in acc.chunks_exact_mut(2).zip(g) {
                a[0] = a[0] + v.re;
                a[1] = a[1] + v.im;
            }
        }
        // A factorised weight's dense gradient is pulled back when the parameters are next
        // read, once for all the backward passes since (see `parameters`).
        self.grad_pending = self.factorized.is_some();
        // dX̂[b][k][i] = Σ_o dŶ[b][k][o]·conj(W[k][i][o]); then dx = (1/N)·IFFT(dX̂ / w).
        let dxhat = mix_modes(
            &dyhat,
            &split_weights(&self.weight, k, ci, co, true),
            k,
            co,
            ci,
        );
        let fields: Vec<Vec<T>> = (0..batch * ci)
            .into_par_iter()
            .map(|bi| {
                let (b, i) = (bi / ci, bi % ci);
                let spectrum: Vec<Complex<T>> = (0..k)
                    .map(|kk| dxhat[(b * k + kk) * ci + i] / (w_double[kk] * n))
                    .collect();
                truncated_inverse(&spectrum, plans, &modes)
            })
            .collect();
        match acc {
            None => Ok(from_fields(&fields, batch, &grid, ci)),
            Some(mut acc) => {
                if acc.shape.len() != grid.len() + 2 || acc.grid() != grid || acc.channels() != ci {
                    return Err(NnError::Shape {
                        layer: "spectral conv",
                        expected: format!(
                            "an input-gradient accumulator of grid {grid:?} and {ci} channels"
                        ),
                        got: format!("{:?}", acc.shape),
                    });
                }
                add_fields(&fields, &mut acc);
                Ok(acc)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{check, random};
    use super::*;

    /// Two channels of a periodic field on an n×n grid over [0, 1)², made of frequencies up to 5.
    fn band_limited(n: usize) -> Tensor<f64> {
        let tau = std::f64::consts::TAU;
        let mut t = Tensor::zeros(&[1, n, n, 2]);
        for i in 0..n {
            for j in 0..n {
                let (x, y) = (i as f64 / n as f64, j as f64 / n as f64);
                t.data[(i * n + j) * 2] = (tau * x).sin() * (2.0 * tau * y).cos() + 0.3;
                t.data[(i * n + j) * 2 + 1] = (3.0 * tau * x + 1.0).cos() + (5.0 * tau * y).sin();
            }
        }
        t
    }

    #[test]
    fn a_band_limited_field_gives_the_same_values_on_a_grid_twice_as_fine() {
        // The discretisation invariance zero-shot super-resolution rests on: the kept modes of a
        // field that the grid resolves do not depend on the grid (frequency 5 is dropped on both).
        let mut conv = SpectralConv::<f64>::new(2, 3, &[4, 4], 7).unwrap();
        let coarse = conv.forward(&band_limited(12)).unwrap();
        let fine = conv.forward(&band_limited(24)).unwrap();
        let scale = coarse.data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 1e-2, "the layer must not vanish: {scale}");
        for i in 0..12 {
            for j in 0..12 {
                for c in 0..3 {
                    let (u, v) = (
                        coarse.data[(i * 12 + j) * 3 + c],
                        fine.data[(2 * i * 24 + 2 * j) * 3 + c],
                    );
                    assert!((u - v).abs() < 1e-12 * scale, "({i}, {j}, {c}): {u} vs {v}");
                }
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences_in_one_two_and_three_dimensions() {
        // Odd and even sizes, and a last axis that keeps its Nyquist mode (m = n/2 + 1).
        let cases: Vec<(Vec<usize>, Vec<usize>)> = vec![
            (vec![8], vec![3]),
            (vec![6], vec![4]),
            (vec![6, 7], vec![2, 3]),
            (vec![4, 6], vec![2, 4]),
            (vec![4, 4, 5], vec![1, 2, 2]),
        ];
        for (grid, modes) in cases {
            let mut layer = SpectralConv::<f64>::new(2, 3, &modes, 5).unwrap();
            let mut shape = vec![2];
            shape.extend(&grid);
            shape.push(2);
            let worst = check(&mut layer, &random(&shape, 6));
            assert!(worst < 1e-6, "grid {grid:?} modes {modes:?}: {worst:e}");
        }
    }

    #[test]
    fn tucker_and_cp_layers_have_gradients_that_match_finite_differences() {
        use crate::layers::factorized::Rank;
        let kinds = [
            Factorization::Tucker(Rank::Explicit(vec![2, 2, 2, 2])),
            Factorization::Cp(Rank::Explicit(vec![3])),
        ];
        for kind in &kinds {
            let mut layer =
                SpectralConv::<f64>::with_factorization(2, 3, &[2, 3], kind, 5).unwrap();
            let names: Vec<String> = layer.parameters().iter().map(|p| p.name.clone()).collect();
            assert!(names.iter().all(|n| n.starts_with("weight.")), "{names:?}");
            let worst = check(&mut layer, &random(&[2, 6, 7, 2], 6));
            assert!(worst < 1e-6, "{kind:?}: {worst:e}");
        }
    }

    #[test]
    fn all_modes_with_identity_weights_reproduce_the_input() {
        // With every mode kept and W = I, the layer is the identity on real fields.
        let (n0, n1) = (4, 6);
        let mut layer = SpectralConv::<f64>::new(1, 1, &[2, 4], 0).unwrap();
        layer.weight.iter_mut().enumerate().for_each(|(i, w)| {
            *w = if i % 2 == 0 { 1.0 } else { 0.0 };
        });
        let x = random(&[1, n0, n1, 1], 3);
        let y = layer.forward(&x).unwrap();
        for (a, b) in x.data.iter().zip(&y.data) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }

    #[test]
    fn a_trained_layer_runs_at_another_resolution_with_the_same_low_modes() {
        // cos(2πx) through a 2-mode layer is the same function on 16 and 32 points.
        let mut layer = SpectralConv::<f64>::new(1, 1, &[3], 4).unwrap();
        let eval = |layer: &mut SpectralConv<f64>, n: usize| -> Vec<f64> {
            let x: Vec<f64> = (0..n)
                .map(|j| (2.0 * std::f64::consts::PI * j as f64 / n as f64).cos())
                .collect();
            layer
                .forward(&Tensor::from_vec(&[1, n, 1], x).unwrap())
                .unwrap()
                .data
        };
        let coarse = eval(&mut layer, 16);
        let fine = eval(&mut layer, 32);
        for (j, v) in coarse.iter().enumerate() {
            assert!((v - fine[2 * j]).abs() < 1e-12, "point {j}");
        }
    }

    #[test]
    fn bad_shapes_are_clear_errors() {
        let mut layer = SpectralConv::<f32>::new(2, 2, &[4, 4], 0).unwrap();
        let err = layer.forward(&Tensor::zeros(&[1, 6, 8, 2])).unwrap_err();
        assert!(err.to_string().contains("4 modes along axis 0"), "{err}");
        let err = layer.forward(&Tensor::zeros(&[1, 8, 8, 3])).unwrap_err();
        assert!(err.to_string().contains("2 input channels"), "{err}");
        assert!(SpectralConv::<f32>::new(1, 1, &[2, 0], 0).is_err());
    }
}
