//! Factorised (axial) attention, the FactFormer's layer (Li, Shu and Barati Farimani, NeurIPS
//! 2023). Instead of one kernel over all N grid points (N² entries), each axis m gets its own
//! kernel `K_m` of `S_m × S_m` entries per head, computed from a summary of the field along that
//! axis, and the kernels are applied one axis at a time. The cost is O(Σ_m S_m²·d) per head for
//! the kernels and O(N·Σ_m S_m·d) for applying them.
//!
//! - [`Rotary`]: the rotary position embedding of one axis.
//! - [`AxialProjection`]: a field `[b, S_1…S_D, c]` to `[b, S_m, latent]`: the mean over the
//!   other axes, a linear map, LayerNorm and a gated-GELU MLP.
//! - [`AxialKernel`]: `[b, S_m, latent]` to the kernel `K_m = scale·q kᵀ / S_m` of each head, with
//!   rotary-embedded queries and keys. The `1/S_m` is the quadrature weight of the integral the
//!   kernel stands for (the reference code omits it), so a model trained on one grid means the
//!   same on another. There is no softmax.
//! - [`FactAttention`]: the whole layer: LayerNorm, values, the kernels applied chained
//!   (`K_D(…K_1 V)`) or in parallel (`Linear[K_1 V, …, K_D V]`), then InstanceNorm, Linear, GELU,
//!   Linear.

use super::compose::prefixed;
use super::linear::{gelu_backward, gelu_in_place, PointwiseLinear};
use super::norm::{InstanceNorm, LayerNorm};
use super::{Layer, Param};
use crate::tensor::{NnError, Real, Tensor};
use rayon::prelude::*;

/// How the axial kernels are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Mixing {
    /// `z = K_D(…(K_1 V))`: the Kronecker product of the axes' kernels (FactFormer).
    #[default]
    Chained,
    /// `z = Linear([K_1 V, …, K_D V])`, each kernel on its own axis (IFactFormer-m).
    Parallel,
}

impl Mixing {
    pub fn name(self) -> &'static str {
        match self {
            Mixing::Chained => "chained",
            Mixing::Parallel => "parallel",
        }
    }
}

/// The rotary position embedding (Su et al. 2021) on one axis, as the FactFormer uses it: the
/// channels of each head are rotated in pairs `(c, c + d/2)` by the angle `64·x·10000^(−2c/d)`
/// at the coordinate `x = i/S` of point i, so `q_i·k_j` depends on the positions only through
/// `x_i − x_j`. Input `[b, S, heads·d]`.
#[derive(Debug, Clone)]
pub struct Rotary {
    /// Channels per head (even).
    pub dim: usize,
}

impl Rotary {
    /// `(sin, cos)` of every point's angles, `[S, dim/2]`.
    fn angles(&self, points: usize) -> Vec<(f64, f64)> {
        let freqs: Vec<f64> = (0..self.dim / 2)
            .map(|c| 10000f64.powf(-((2 * c) as f64) / self.dim as f64))
            .collect();
        (0..points)
            .flat_map(|i| {
                let x = i as f64 / points as f64;
                freqs.iter().map(move |f| (64.0 * x * f).sin_cos())
            })
            .collect()
    }

    /// Rotates `x` (`[b, S, channels]`, `channels` a multiple of `dim`) in place, backwards when
    /// `inverse` (its transpose).
    pub fn rotate<T: Real>(&self, x: &mut [T], points: usize, channels: usize, inverse: bool) {
        let (d, half) = (self.dim, self.dim / 2);
        let table: Vec<(T, T)> = self
            .angles(points)
            .into_iter()
            .map(|(s, c)| (T::lit(if inverse { -s } else { s }), T::lit(c)))
            .collect();
        x.par_chunks_mut((channels * points).max(1))
            .for_each(|sample| {
                for (i, point) in sample.chunks_mut(channels.max(1)).enumerate() {
                    let angles = &table[i * half..(i + 1) * half];
                    for head in point.chunks_mut(d) {
                        let (a, b) = head.split_at_mut(half);
                        for ((a, b), &(s, c)) in a.iter_mut().zip(b).zip(angles) {
                            let (x1, x2) = (*a, *b);
                            *a = x1 * c - x2 * s;
                            *b = x2 * c + x1 * s;
                        }
                    }
                }
            });
    }

    fn check<T: Real>(&self, x: &Tensor<T>) -> Result<(), NnError> {
        if x.shape.len() != 3
            || !self.dim.is_multiple_of(2)
            || !x.channels().is_multiple_of(self.dim.max(1))
        {
            return Err(NnError::Shape {
                layer: "rotary embedding",
                expected: format!(
                    "[batch, points, heads × {}] (an even width per head)",
                    self.dim
                ),
                got: format!("{:?}", x.shape),
            });
        }
        Ok(())
    }
}

impl<T: Real> Layer<T> for Rotary {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.check(x)?;
        let mut y = x.clone();
        self.rotate(&mut y.data, x.shape[1], x.channels(), false);
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.check(dy)?;
        let mut dx = dy.clone();
        self.rotate(&mut dx.data, dy.shape[1], dy.channels(), true);
        Ok(dx)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        Vec::new()
    }
}

/// Where `axis` sits in a `[batch, grid…, c]` array: `(outer, S, inner)` with `outer` the points
/// of the axes before it and `inner` those after it times `c`.
fn split_at_axis(grid: &[usize], axis: usize, c: usize) -> (usize, usize, usize) {
    let outer = grid[..axis].iter().product();
    let inner = grid[axis + 1..].iter().product::<usize>() * c;
    (outer, grid[axis], inner)
}

/// The mean of `x` (`[b, grid…, c]`) over every grid axis but `axis`: `[b, S_axis, c]`.
pub fn axis_mean<T: Real>(x: &Tensor<T>, axis: usize) -> Tensor<T> {
    let (grid, c, b) = (x.grid(), x.channels(), x.shape[0]);
    let (outer, s, inner) = split_at_axis(grid, axis, c);
    let weight = T::one() / T::lit((outer * inner / c.max(1)) as f64);
    let mut out = Tensor::zeros(&[b, s, c]);
    out.data
        .par_chunks_mut(s * c)
        .zip(x.data.par_chunks(outer * s * inner))
        .for_each(|(m, sample)| {
            for block in sample.chunks(s * inner) {
                for (row, line) in m.chunks_mut(c).zip(block.chunks(inner)) {
                    for point in line.chunks(c) {
                        for (acc, &v) in row.iter_mut().zip(point) {
                            *acc = *acc + v;
                        }
                    }
                }
            }
            m.iter_mut().for_each(|v| *v = *v * weight);
        });
    out
}

/// The adjoint of [`axis_mean`], added: `acc[b, …, i, …, :] += dm[b, i, :] / (points per row)`.
fn axis_mean_backward_add<T: Real>(dm: &Tensor<T>, axis: usize, acc: &mut Tensor<T>) {
    let (c, s) = (acc.channels(), dm.shape[1]);
    let (outer, _, inner) = split_at_axis(acc.grid(), axis, c);
    let weight = T::one() / T::lit((outer * inner / c.max(1)) as f64);
    acc.data
        .par_chunks_mut(outer * s * inner)
        .zip(dm.data.par_chunks(s * c))
        .for_each(|(sample, m)| {
            for block in sample.chunks_mut(s * inner) {
                for (line, row) in block.chunks_mut(inner).zip(m.chunks(c)) {
                    for point in line.chunks_mut(c) {
                        for (v, &g) in point.iter_mut().zip(row) {
                            *v = *v + g * weight;
                        }
                    }
                }
            }
        });
}

/// The FactFormer's learnable projection of a field onto one axis: `[b, grid…, c]` to
/// `[b, S_axis, latent]` by the mean over the other axes, a linear map (no bias), LayerNorm, and
/// an MLP with a gated GELU: `W_2 (GELU(g_1) ⊙ g_2) + b_2` with `[g_1, g_2] = W_1 h + b_1`.
///
/// The mean comes first: a linear map without bias commutes with it, so this equals the
/// reference's map-then-mean at `S_axis / N` of the cost. The reference's second map before this
/// one (shared by the axes, nothing between them) is the same linear map factored in two, and is
/// left out.
pub struct AxialProjection<T: Real> {
    pub axis: usize,
    to_in: PointwiseLinear<T>,
    norm: LayerNorm<T>,
    gate: PointwiseLinear<T>,
    out: PointwiseLinear<T>,
    saved: Option<ProjectionSaved<T>>,
}

struct ProjectionSaved<T> {
    /// The input's shape.
    shape: Vec<usize>,
    mean: Tensor<T>,
    normed: Tensor<T>,
    /// The gate's output `[g_1, g_2]` and the MLP's hidden values `GELU(g_1) ⊙ g_2`.
    gates: Tensor<T>,
    hidden: Tensor<T>,
}

impl<T: Real> AxialProjection<T> {
    pub fn new(axis: usize, channels: usize, latent: usize, seed: u64) -> Self {
        Self {
            axis,
            to_in: PointwiseLinear::new(channels, channels, false, seed),
            norm: LayerNorm::new(channels),
            gate: PointwiseLinear::new(channels, 2 * channels, true, seed + 1),
            out: PointwiseLinear::new(channels, latent, true, seed + 2),
            saved: None,
        }
    }

    /// [`Layer::backward`] with the input gradient added to `acc` rather than returned.
    pub fn backward_add(&mut self, dy: &Tensor<T>, acc: &mut Tensor<T>) -> Result<(), NnError> {
        let s = self.saved.take().ok_or(NnError::NoForward {
            layer: "axial projection",
        })?;
        if acc.shape != s.shape {
            return Err(NnError::Shape {
                layer: "axial projection",
                expected: format!("input gradient of shape {:?}", s.shape),
                got: format!("{:?}", acc.shape),
            });
        }
        self.out.accumulate_grads(&s.hidden, dy)?;
        let dh = self.out.input_grad(dy, None)?;
        let c = self.to_in.c_out;
        let mut dg = Tensor::zeros(&s.gates.shape);
        for ((dg, g), dh) in dg
            .data
            .chunks_mut(2 * c)
            .zip(s.gates.data.chunks(2 * c))
            .zip(dh.data.chunks(c))
        {
            let (g1, g2) = g.split_at(c);
            let (d1, d2) = dg.split_at_mut(c);
            for k in 0..c {
                let (cdf, pdf) = g1[k].normal_cdf_pdf();
                d1[k] = dh[k] * g2[k] * (cdf + g1[k] * pdf);
                d2[k] = dh[k] * g1[k] * cdf;
            }
        }
        self.gate.accumulate_grads(&s.normed, &dg)?;
        let dn = self.gate.input_grad(&dg, None)?;
        let da = self.norm.backward(&dn)?;
        self.to_in.accumulate_grads(&s.mean, &da)?;
        let dm = self.to_in.input_grad(&da, None)?;
        axis_mean_backward_add(&dm, self.axis, acc);
        self.saved = Some(s);
        Ok(())
    }
}

impl<T: Real> Layer<T> for AxialProjection<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        if x.shape.len() < self.axis + 3 || x.channels() != self.to_in.c_in {
            return Err(NnError::Shape {
                layer: "axial projection",
                expected: format!(
                    "[batch, grid axes (at least {}), {} channels]",
                    self.axis + 1,
                    self.to_in.c_in
                ),
                got: format!("{:?}", x.shape),
            });
        }
        let mean = axis_mean(x, self.axis);
        let normed = self.norm.forward(&self.to_in.apply(&mean)?)?;
        let gates = self.gate.apply(&normed)?;
        let c = self.to_in.c_out;
        let mut hidden = Tensor::zeros(&[mean.shape[0], mean.shape[1], c]);
        for (h, g) in hidden.data.chunks_mut(c).zip(gates.data.chunks(2 * c)) {
            let (g1, g2) = g.split_at(c);
            for k in 0..c {
                h[k] = g1[k] * g1[k].normal_cdf_pdf().0 * g2[k];
            }
        }
        let y = self.out.apply(&hidden)?;
        self.saved = Some(ProjectionSaved {
            shape: x.shape.clone(),
            mean,
            normed,
            gates,
            hidden,
        });
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let shape = self
            .saved
            .as_ref()
            .ok_or(NnError::NoForward {
                layer: "axial projection",
            })?
            .shape
            .clone();
        let mut dx = Tensor::zeros(&shape);
        self.backward_add(dy, &mut dx)?;
        Ok(dx)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let mut out = prefixed("to_in", self.to_in.parameters());
        out.extend(prefixed("norm", self.norm.parameters()));
        out.extend(prefixed("gate", self.gate.parameters()));
        out.extend(prefixed("out", self.out.parameters()));
        out
    }
}

/// One axis's kernel per head: `K[b, h, i, j] = q_i·k_j / (√d·S)` from `[b, S, latent]`, with
/// `q = W_q u` and `k = W_k u` rotary-embedded (`d` channels per head). Output `[b, heads, S, S]`.
pub struct AxialKernel<T: Real> {
    pub heads: usize,
    /// Query and key channels per head.
    pub dim: usize,
    to_q: PointwiseLinear<T>,
    to_k: PointwiseLinear<T>,
    rotary: Rotary,
    /// The input and the embedded queries and keys of the last forward pass.
    saved: Option<(Tensor<T>, Tensor<T>, Tensor<T>)>,
}

impl<T: Real> AxialKernel<T> {
    pub fn new(latent: usize, heads: usize, dim: usize, seed: u64) -> Self {
        Self {
            heads,
            dim,
            to_q: PointwiseLinear::new(latent, heads * dim, false, seed),
            to_k: PointwiseLinear::new(latent, heads * dim, false, seed + 1),
            rotary: Rotary { dim },
            saved: None,
        }
    }

    fn scale(&self, points: usize) -> T {
        T::lit(1.0 / ((self.dim as f64).sqrt() * points as f64))
    }
}

/// For each sample b and head h: `C_bh ← α·A_bh·B_bhᵀ` (`transpose_b`) or `α·A_bh·B_bh`, where
/// `A_bh` and `B_bh` are head h's columns of `[S, heads·d]` rows; `C` is `[b, h, S, S]` or
/// `[b, S, heads·d]` to match.
fn per_head_products<T: Real>(
    a: &[T],
    b: &[T],
    out: &mut [T],
    (points, heads, d): (usize, usize, usize),
    alpha: T,
    form: HeadProduct,
) {
    let row = (heads * d) as isize;
    let sample = points * heads * d;
    match form {
        // K = Q Kᵀ: one S × S block per head.
        HeadProduct::Kernel => {
            out.par_chunks_mut(points * points)
                .enumerate()
                .for_each(|(bh, c)| {
                    let (bi, h) = (bh / heads, bh % heads);
                    let (qa, ka) = (&a[bi * sample + h * d..], &b[bi * sample + h * d..]);
                    T::gemm(
                        points,
                        d,
                        points,
                        alpha,
                        qa,
                        (row, 1),
                        ka,
                        (1, row),
                        T::zero(),
                        c,
                        (points as isize, 1),
                    );
                })
        }
        // dQ = dK·K (or dK = dKᵀ·Q): head h's columns of each sample's rows.
        HeadProduct::Rows { transpose } => {
            out.par_chunks_mut(sample).enumerate().for_each(|(bi, c)| {
                for h in 0..heads {
                    let kern = &a[(bi * heads + h) * points * points..][..points * points];
                    let strides = if transpose {
                        (1, points as isize)
                    } else {
                        (points as isize, 1)
                    };
                    T::gemm(
                        points,
                        points,
                        d,
                        alpha,
                        kern,
                        strides,
                        &b[bi * sample + h * d..],
                        (row, 1),
                        T::zero(),
                        &mut c[h * d..],
                        (row, 1),
                    );
                }
            })
        }
    }
}

#[derive(Clone, Copy)]
enum HeadProduct {
    Kernel,
    Rows { transpose: bool },
}

impl<T: Real> Layer<T> for AxialKernel<T> {
    fn forward(&mut self, u: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        if u.shape.len() != 3 || u.channels() != self.to_q.c_in {
            return Err(NnError::Shape {
                layer: "axial kernel",
                expected: format!("[batch, points, {} channels]", self.to_q.c_in),
                got: format!("{:?}", u.shape),
            });
        }
        let (b, s) = (u.shape[0], u.shape[1]);
        let mut q = self.to_q.apply(u)?;
        let mut k = self.to_k.apply(u)?;
        self.rotary
            .rotate(&mut q.data, s, self.heads * self.dim, false);
        self.rotary
            .rotate(&mut k.data, s, self.heads * self.dim, false);
        let mut kern = Tensor::zeros(&[b, self.heads, s, s]);
        per_head_products(
            &q.data,
            &k.data,
            &mut kern.data,
            (s, self.heads, self.dim),
            self.scale(s),
            HeadProduct::Kernel,
        );
        self.saved = Some((u.clone(), q, k));
        Ok(kern)
    }

    fn backward(&mut self, dk: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let (u, q, k) = self.saved.take().ok_or(NnError::NoForward {
            layer: "axial kernel",
        })?;
        let s = u.shape[1];
        if dk.shape != [u.shape[0], self.heads, s, s] {
            return Err(NnError::Shape {
                layer: "axial kernel",
                expected: format!("kernel gradient [{}, {}, {s}, {s}]", u.shape[0], self.heads),
                got: format!("{:?}", dk.shape),
            });
        }
        let dims = (s, self.heads, self.dim);
        let mut dq = Tensor::zeros(&q.shape);
        let mut dkey = Tensor::zeros(&k.shape);
        let scale = self.scale(s);
        let rows = |transpose| HeadProduct::Rows { transpose };
        per_head_products(&dk.data, &k.data, &mut dq.data, dims, scale, rows(false));
        per_head_products(&dk.data, &q.data, &mut dkey.data, dims, scale, rows(true));
        self.rotary
            .rotate(&mut dq.data, s, self.heads * self.dim, true);
        self.rotary
            .rotate(&mut dkey.data, s, self.heads * self.dim, true);
        self.to_q.accumulate_grads(&u, &dq)?;
        self.to_k.accumulate_grads(&u, &dkey)?;
        let du = self.to_q.input_grad(&dq, None)?;
        let du = self.to_k.input_grad(&dkey, Some(du));
        self.saved = Some((u, q, k));
        du
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let mut out = prefixed("to_q", self.to_q.parameters());
        out.extend(prefixed("to_k", self.to_k.parameters()));
        out
    }
}

/// The shape of a head-major array `[b, heads, grid…, d]`.
#[derive(Debug, Clone)]
struct HeadLayout {
    batch: usize,
    heads: usize,
    grid: Vec<usize>,
    d: usize,
}

impl HeadLayout {
    fn points(&self) -> usize {
        self.grid.iter().product()
    }

    /// Channels `offset + h·d + c` of each point of `src` (`[b, grid…, stride]`) into
    /// `[b, heads, grid…, d]`.
    fn gather<T: Real>(&self, src: &[T], stride: usize, offset: usize) -> Vec<T> {
        let (p, d, heads) = (self.points(), self.d, self.heads);
        let mut out = vec![T::zero(); self.batch * heads * p * d];
        out.par_chunks_mut(p * d).enumerate().for_each(|(bh, dst)| {
            let (b, h) = (bh / heads, bh % heads);
            let sample = &src[b * p * stride..(b + 1) * p * stride];
            for (row, point) in dst.chunks_mut(d).zip(sample.chunks(stride)) {
                row.copy_from_slice(&point[offset + h * d..offset + (h + 1) * d]);
            }
        });
        out
    }

    /// The inverse of [`HeadLayout::gather`]: `src` into channels `offset + h·d + c` of `dst`.
    fn scatter<T: Real>(&self, src: &[T], dst: &mut [T], stride: usize, offset: usize) {
        let (p, d, heads) = (self.points(), self.d, self.heads);
        dst.par_chunks_mut(p * stride)
            .enumerate()
            .for_each(|(b, sample)| {
                for h in 0..heads {
                    let block = &src[(b * heads + h) * p * d..][..p * d];
                    for (point, row) in sample.chunks_mut(stride).zip(block.chunks(d)) {
                        point[offset + h * d..offset + (h + 1) * d].copy_from_slice(row);
                    }
                }
            });
    }

    /// `K_bh` (or its transpose) applied along grid axis `axis` of `x`, for every sample and
    /// head; `kern` is `[b, heads, S, S]`. One product per sample and head: an axis after the
    /// first is brought to the front first (`[outer, S, inner]` to `[S, outer, inner]`), so the
    /// kernel is packed once rather than once per line.
    fn mix<T: Real>(&self, kern: &[T], x: &[T], axis: usize, transpose: bool) -> Vec<T> {
        let (outer, s, inner) = split_at_axis(&self.grid, axis, self.d);
        let block = outer * s * inner;
        let mut out = vec![T::zero(); x.len()];
        let strides = if transpose {
            (1, s as isize)
        } else {
            (s as isize, 1)
        };
        out.par_chunks_mut(block)
            .zip(x.par_chunks(block))
            .enumerate()
            .for_each(|(bh, (z, x))| {
                let kbh = &kern[bh * s * s..][..s * s];
                let cols = outer * inner;
                let product = |x: &[T], z: &mut [T]| {
                    T::gemm(
                        s,
                        s,
                        cols,
                        T::one(),
                        kbh,
                        strides,
                        x,
                        (cols as isize, 1),
                        T::zero(),
                        z,
                        (cols as isize, 1),
                    )
                };
                if outer == 1 {
                    return product(x, z);
                }
                // Narrow lines (the last axis: `inner` = d): the packing-free kernel takes the
                // kernel matrix as it lies and each line from L1, with no transposes.
                let transposed: Vec<T>;
                let k_rows = match transpose {
                    false => kbh,
                    true => {
                        transposed = (0..s * s).map(|at| kbh[(at % s) * s + at / s]).collect();
                        &transposed[..]
                    }
                };
                let lines = z.chunks_mut(s * inner).zip(x.chunks(s * inner));
                let mut narrow = true;
                for (z, x) in lines {
                    // SAFETY: `z` is initialised (zeros) and holds s × inner values.
                    let z = unsafe { &mut *(z as *mut [T] as *mut [std::mem::MaybeUninit<T>]) };
                    narrow = unsafe { T::rows_product(s, s, inner, k_rows, x, None, z, false) };
                    if !narrow {
                        break;
                    }
                }
                if narrow {
                    return;
                }
                let front = axis_to_front(x, outer, s, inner);
                let mut mixed = vec![T::zero(); block];
                product(&front, &mut mixed);
                axis_from_front(&mixed, z, outer, s, inner);
            });
        out
    }

    /// The kernel gradient of [`HeadLayout::mix`] (not transposed): `dK_bh = Σ dZ·Xᵀ` over the
    /// lines along `axis`, as one product per sample and head (see [`HeadLayout::mix`]).
    fn mix_kernel_grad<T: Real>(&self, dz: &[T], x: &[T], axis: usize) -> Vec<T> {
        let (outer, s, inner) = split_at_axis(&self.grid, axis, self.d);
        let mut dk = vec![T::zero(); self.batch * self.heads * s * s];
        let block = outer * s * inner;
        let cols = outer * inner;
        dk.par_chunks_mut(s * s)
            .zip(dz.par_chunks(block).zip(x.par_chunks(block)))
            .for_each(|(g, (dz, x))| {
                let product = |dz: &[T], x: &[T], g: &mut [T]| {
                    T::gemm(
                        s,
                        cols,
                        s,
                        T::one(),
                        dz,
                        (cols as isize, 1),
                        x,
                        (1, cols as isize),
                        T::zero(),
                        g,
                        (s as isize, 1),
                    )
                };
                if outer == 1 {
                    return product(dz, x, g);
                }
                let (dz, x) = (
                    axis_to_front(dz, outer, s, inner),
                    axis_to_front(x, outer, s, inner),
                );
                product(&dz, &x, g);
            });
        dk
    }
}

/// `[outer, S, inner]` to `[S, outer, inner]`.
fn axis_to_front<T: Real>(x: &[T], outer: usize, s: usize, inner: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len());
    for i in 0..s {
        for o in 0..outer {
            out.extend_from_slice(&x[(o * s + i) * inner..][..inner]);
        }
    }
    out
}

/// `[S, outer, inner]` back to `[outer, S, inner]`, into `z`.
fn axis_from_front<T: Real>(x: &[T], z: &mut [T], outer: usize, s: usize, inner: usize) {
    for (at, line) in x.chunks(inner).enumerate() {
        let (i, o) = (at / outer, at % outer);
        z[(o * s + i) * inner..][..inner].copy_from_slice(line);
    }
}

/// The FactFormer's layer (see the module docs):
///
/// ```text
/// n = LayerNorm(x);  v = W_v n                     (heads × dim_head channels)
/// K_m = AxialKernel_m(AxialProjection_m(n))          (one per grid axis)
/// z = K_D(…K_1 v)  or  z = W_merge [K_1 v, …, K_D v]
/// y = W_2 GELU(W_1 InstanceNorm(z))                  (no biases)
/// ```
pub struct FactAttention<T: Real> {
    pub width: usize,
    pub heads: usize,
    pub dim_head: usize,
    pub mixing: Mixing,
    norm: LayerNorm<T>,
    to_v: PointwiseLinear<T>,
    projections: Vec<AxialProjection<T>>,
    kernels: Vec<AxialKernel<T>>,
    merge: Option<PointwiseLinear<T>>,
    out_norm: InstanceNorm<T>,
    out1: PointwiseLinear<T>,
    out2: PointwiseLinear<T>,
    saved: Option<AttentionSaved<T>>,
}

struct AttentionSaved<T> {
    layout: HeadLayout,
    normed: Tensor<T>,
    kernels: Vec<Tensor<T>>,
    /// Head-major inputs of the axis mixes: `z_0 = v, z_1, …, z_{D−1}` chained, `v` in parallel.
    mixed_in: Vec<Vec<T>>,
    /// The parallel form's concatenation `[K_1 v, …, K_D v]`.
    concat: Option<Tensor<T>>,
    /// GELU's slope and output (InstanceNorm keeps its own output).
    slope: Tensor<T>,
    hidden: Tensor<T>,
}

/// The sizes of a [`FactAttention`] layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactAttentionShape {
    pub dims: usize,
    pub width: usize,
    pub heads: usize,
    pub dim_head: usize,
    pub latent: usize,
    /// Query and key channels per head, in multiples of `dim_head`.
    pub kernel_multiplier: usize,
    pub mixing: Mixing,
}

impl<T: Real> FactAttention<T> {
    pub fn new(shape: FactAttentionShape, seed: u64) -> Result<Self, NnError> {
        let FactAttentionShape {
            dims,
            width,
            heads,
            dim_head,
            latent,
            kernel_multiplier,
            mixing,
        } = shape;
        let kd = dim_head * kernel_multiplier;
        if dims == 0
            || width == 0
            || heads == 0
            || dim_head == 0
            || latent == 0
            || !kd.is_multiple_of(2)
        {
            return Err(NnError::BadSpec {
                layer: "factorised attention",
                message: format!(
                    "every size must be positive and dim_head × kernel_multiplier even, got \
                     {shape:?}"
                ),
            });
        }
        let hd = heads * dim_head;
        let at = |m: usize, k: u64| seed + 100 * (m as u64 + 1) + k;
        Ok(Self {
            width,
            heads,
            dim_head,
            mixing,
            norm: LayerNorm::new(width),
            to_v: PointwiseLinear::new(width, hd, false, seed),
            projections: (0..dims)
                .map(|m| AxialProjection::new(m, width, latent, at(m, 0)))
                .collect(),
            kernels: (0..dims)
                .map(|m| AxialKernel::new(latent, heads, kd, at(m, 10)))
                .collect(),
            merge: (mixing == Mixing::Parallel)
                .then(|| PointwiseLinear::new(dims * hd, hd, false, seed + 1)),
            out_norm: InstanceNorm::new(),
            out1: PointwiseLinear::new(hd, width, false, seed + 2),
            out2: PointwiseLinear::new(width, width, false, seed + 3),
            saved: None,
        })
    }

    fn dims(&self) -> usize {
        self.projections.len()
    }
}

impl<T: Real> Layer<T> for FactAttention<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let d = self.dims();
        if x.shape.len() != d + 2 || x.channels() != self.width {
            return Err(NnError::Shape {
                layer: "factorised attention",
                expected: format!("[batch, {d} grid axes, {} channels]", self.width),
                got: format!("{:?}", x.shape),
            });
        }
        let hd = self.heads * self.dim_head;
        let layout = HeadLayout {
            batch: x.shape[0],
            heads: self.heads,
            grid: x.grid().to_vec(),
            d: self.dim_head,
        };
        let normed = self.norm.forward(x)?;
        let v = layout.gather(&self.to_v.apply(&normed)?.data, hd, 0);
        let mut kernels = Vec::with_capacity(d);
        for (p, k) in self.projections.iter_mut().zip(&mut self.kernels) {
            kernels.push(k.forward(&p.forward(&normed)?)?);
        }
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("a channel axis") = hd;
        let mut z = Tensor::zeros(&shape);
        let (mixed_in, concat) = match &self.merge {
            None => {
                let mut chain = Vec::with_capacity(d);
                let mut h = v;
                for (m, kern) in kernels.iter().enumerate() {
                    let next = layout.mix(&kern.data, &h, m, false);
                    chain.push(std::mem::replace(&mut h, next));
                }
                layout.scatter(&h, &mut z.data, hd, 0);
                (chain, None)
            }
            Some(merge) => {
                *shape.last_mut().expect("a channel axis") = d * hd;
                let mut concat = Tensor::zeros(&shape);
                for (m, kern) in kernels.iter().enumerate() {
                    let zm = layout.mix(&kern.data, &v, m, false);
                    layout.scatter(&zm, &mut concat.data, d * hd, m * hd);
                }
                z = merge.apply(&concat)?;
                (vec![v], Some(concat))
            }
        };
        let normed_z = self.out_norm.forward(&z)?;
        let mut hidden = self.out1.apply(&normed_z)?;
        let slope = gelu_in_place(&mut hidden);
        let y = self.out2.apply(&hidden)?;
        self.saved = Some(AttentionSaved {
            layout,
            normed,
            kernels,
            mixed_in,
            concat,
            slope,
            hidden,
        });
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let s = self.saved.take().ok_or(NnError::NoForward {
            layer: "factorised attention",
        })?;
        if dy.shape != s.normed.shape {
            return Err(NnError::Shape {
                layer: "factorised attention",
                expected: format!("output gradient of shape {:?}", s.normed.shape),
                got: format!("{:?}", dy.shape),
            });
        }
        let hd = self.heads * self.dim_head;
        let d = self.dims();
        self.out2.accumulate_grads(&s.hidden, dy)?;
        let mut dh = self.out2.input_grad(dy, None)?;
        gelu_backward(&s.slope, &mut dh)?;
        let normed_z = self.out_norm.output().ok_or(NnError::NoForward {
            layer: "factorised attention",
        })?;
        self.out1.accumulate_grads(normed_z, &dh)?;
        let dz = self.out_norm.backward(&self.out1.input_grad(&dh, None)?)?;
        let layout = &s.layout;
        let mut dkernels = Vec::with_capacity(d);
        let dv = match (&mut self.merge, &s.concat) {
            (Some(merge), Some(concat)) => {
                merge.accumulate_grads(concat, &dz)?;
                let dconcat = merge.input_grad(&dz, None)?;
                let v = &s.mixed_in[0];
                let mut dv = vec![T::zero(); v.len()];
                for (m, kern) in s.kernels.iter().enumerate() {
                    let dzm = layout.gather(&dconcat.data, d * hd, m * hd);
                    dkernels.push(layout.mix_kernel_grad(&dzm, v, m));
                    let back = layout.mix(&kern.data, &dzm, m, true);
                    dv.iter_mut().zip(back).for_each(|(a, b)| *a = *a + b);
                }
                dv
            }
            _ => {
                let mut g = layout.gather(&dz.data, hd, 0);
                let mut grads = Vec::with_capacity(d);
                for (m, kern) in s.kernels.iter().enumerate().rev() {
                    grads.push(layout.mix_kernel_grad(&g, &s.mixed_in[m], m));
                    g = layout.mix(&kern.data, &g, m, true);
                }
                grads.reverse();
                dkernels = grads;
                g
            }
        };
        let mut dv_points = Tensor::zeros(&dz.shape);
        layout.scatter(&dv, &mut dv_points.data, hd, 0);
        self.to_v.accumulate_grads(&s.normed, &dv_points)?;
        let mut dn = self.to_v.input_grad(&dv_points, None)?;
        for ((p, k), (dk, kern)) in self
            .projections
            .iter_mut()
            .zip(&mut self.kernels)
            .zip(dkernels.into_iter().zip(&s.kernels))
        {
            let dk = Tensor::from_vec(&kern.shape, dk)?;
            p.backward_add(&k.backward(&dk)?, &mut dn)?;
        }
        let dx = self.norm.backward(&dn);
        self.saved = Some(s);
        dx
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let mut out = prefixed("norm", self.norm.parameters());
        out.extend(prefixed("to_v", self.to_v.parameters()));
        for (m, (p, k)) in self
            .projections
            .iter_mut()
            .zip(&mut self.kernels)
            .enumerate()
        {
            out.extend(prefixed(&format!("axis{m}.project"), p.parameters()));
            out.extend(prefixed(&format!("axis{m}.kernel"), k.parameters()));
        }
        if let Some(merge) = &mut self.merge {
            out.extend(prefixed("merge", merge.parameters()));
        }
        out.extend(prefixed("out.fc1", self.out1.parameters()));
        out.extend(prefixed("out.fc2", self.out2.parameters()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{check, random};
    use super::*;

    fn shape(dims: usize, mixing: Mixing) -> FactAttentionShape {
        FactAttentionShape {
            dims,
            width: 4,
            heads: 2,
            dim_head: 2,
            latent: 3,
            kernel_multiplier: 2,
            mixing,
        }
    }

    #[test]
    fn rotary_gradients_match_finite_differences_and_scores_depend_on_offsets_only() {
        let mut rot = Rotary { dim: 4 };
        let worst = check(&mut rot, &random(&[2, 5, 8], 1));
        assert!(worst < 1e-8, "{worst:e}");
        // The same vector at every point: q_i·k_j depends on j − i alone.
        let x = Tensor::from_vec(&[1, 8, 4], [0.3, -1.2, 0.7, 0.5].repeat(8)).unwrap();
        let y = rot.forward(&x).unwrap();
        let dot = |i: usize, j: usize| -> f64 {
            (0..4).map(|c| y.data[i * 4 + c] * y.data[j * 4 + c]).sum()
        };
        for shift in 0..4 {
            for i in 0..4 {
                assert!((dot(i, i + shift) - dot(0, shift)).abs() < 1e-12);
            }
        }
        // A rotation keeps norms.
        let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>();
        assert!((norm(&y.data) - norm(&x.data)).abs() < 1e-12);
    }

    #[test]
    fn axial_projection_gradients_match_finite_differences_on_each_axis() {
        for axis in 0..3 {
            let mut p = AxialProjection::<f64>::new(axis, 3, 2, 5);
            let worst = check(&mut p, &random(&[2, 3, 4, 2, 3], 6 + axis as u64));
            assert!(worst < 1e-6, "axis {axis}: {worst:e}");
        }
        // It sees the field only through the means along its axis.
        let mut p = AxialProjection::<f64>::new(1, 2, 2, 5);
        let x = random(&[1, 3, 4, 2], 7);
        let mut shuffled = x.clone();
        // Swap rows 0 and 2 of axis 0 (points (0, j) and (2, j)): the axis-1 means stay.
        for j in 0..4 {
            for c in 0..2 {
                shuffled.data.swap(j * 2 + c, (2 * 4 + j) * 2 + c);
            }
        }
        let (a, b) = (p.forward(&x).unwrap(), p.forward(&shuffled).unwrap());
        assert!(a
            .data
            .iter()
            .zip(&b.data)
            .all(|(u, v)| (u - v).abs() < 1e-12));
    }

    #[test]
    fn axial_kernel_gradients_match_finite_differences() {
        let mut k = AxialKernel::<f64>::new(3, 2, 4, 9);
        let worst = check(&mut k, &random(&[2, 5, 3], 10));
        assert!(worst < 1e-6, "{worst:e}");
    }

    #[test]
    fn factorised_attention_gradients_match_finite_differences_in_both_forms() {
        for mixing in [Mixing::Chained, Mixing::Parallel] {
            let mut layer = FactAttention::<f64>::new(shape(2, mixing), 3).unwrap();
            let worst = check(&mut layer, &random(&[2, 4, 3, 4], 11));
            assert!(worst < 1e-6, "{mixing:?} 2-D: {worst:e}");
            let mut layer = FactAttention::<f64>::new(shape(3, mixing), 4).unwrap();
            let worst = check(&mut layer, &random(&[1, 3, 2, 3, 4], 12));
            assert!(worst < 1e-6, "{mixing:?} 3-D: {worst:e}");
        }
    }

    /// `kern[b, h]` as a dense matrix.
    fn block(kern: &Tensor<f64>, b: usize, h: usize) -> Vec<Vec<f64>> {
        let s = kern.shape[2];
        (0..s)
            .map(|i| {
                (0..s)
                    .map(|j| kern.data[((b * kern.shape[1] + h) * s + i) * s + j])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn chained_mixing_is_the_kronecker_product_and_parallel_the_sum_of_axis_terms() {
        // Grid 3 × 4, 2 heads of 2 channels: z_h = (K_x ⊗ K_y) v_h with v_h the head's values
        // flattened row-major over the grid.
        let layout = HeadLayout {
            batch: 2,
            heads: 2,
            grid: vec![3, 4],
            d: 2,
        };
        let kx = random(&[2, 2, 3, 3], 20);
        let ky = random(&[2, 2, 4, 4], 21);
        let v = random(&[2, 2, 12, 2], 22).data;
        let chained = layout.mix(&ky.data, &layout.mix(&kx.data, &v, 0, false), 1, false);
        let along_x = layout.mix(&kx.data, &v, 0, false);
        let along_y = layout.mix(&ky.data, &v, 1, false);
        for b in 0..2 {
            for h in 0..2 {
                let (a, c) = (block(&kx, b, h), block(&ky, b, h));
                let at = |p: usize, ch: usize| ((b * 2 + h) * 12 + p) * 2 + ch;
                for i in 0..3 {
                    for l in 0..4 {
                        for ch in 0..2 {
                            let (mut kron, mut x_only, mut y_only) = (0.0, 0.0, 0.0);
                            for j in 0..3 {
                                for m in 0..4 {
                                    kron += a[i][j] * c[l][m] * v[at(j * 4 + m, ch)];
                                }
                                x_only += a[i][j] * v[at(j * 4 + l, ch)];
                            }
                            for m in 0..4 {
                                y_only += c[l][m] * v[at(i * 4 + m, ch)];
                            }
                            let p = at(i * 4 + l, ch);
                            assert!((chained[p] - kron).abs() < 1e-12);
                            assert!((along_x[p] - x_only).abs() < 1e-12);
                            assert!((along_y[p] - y_only).abs() < 1e-12);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn f32_mixing_along_the_last_axis_matches_a_plain_sum_with_and_without_transposing() {
        // d = 16 takes the packing-free kernel where the CPU has it; the reference is in f64.
        let layout = HeadLayout {
            batch: 2,
            heads: 3,
            grid: vec![4, 5],
            d: 16,
        };
        let kern: Vec<f32> = random(&[2, 3, 5, 5], 30)
            .data
            .iter()
            .map(|&v| v as f32)
            .collect();
        let v: Vec<f32> = random(&[2, 3, 20, 16], 31)
            .data
            .iter()
            .map(|&v| v as f32)
            .collect();
        for transpose in [false, true] {
            let z = layout.mix(&kern, &v, 1, transpose);
            for bh in 0..6 {
                for i in 0..4 {
                    for l in 0..5 {
                        for c in 0..16 {
                            let want: f64 = (0..5)
                                .map(|m| {
                                    let k = if transpose { m * 5 + l } else { l * 5 + m };
                                    kern[bh * 25 + k] as f64
                                        * v[((bh * 4 + i) * 5 + m) * 16 + c] as f64
                                })
                                .sum();
                            let got = z[((bh * 4 + i) * 5 + l) * 16 + c] as f64;
                            assert!((got - want).abs() < 1e-5, "{transpose}: {got} vs {want}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_hand_computed_kernel_on_two_points() {
        // One head, one latent channel, W_q = W_k = [1, 0]: q_i = k_i = (u_i, 0) before the
        // rotation, which at two points turns point 1 by 64·(1/2) radians (first pair) only.
        let mut k = AxialKernel::<f64>::new(1, 1, 2, 0);
        for p in k.parameters() {
            p.value.copy_from_slice(&[1.0, 0.0]);
        }
        let u = Tensor::from_vec(&[1, 2, 1], vec![2.0, 3.0]).unwrap();
        let kern = k.forward(&u).unwrap();
        let scale = 1.0 / (2f64.sqrt() * 2.0);
        let c = 32f64.cos();
        let want = [4.0, 6.0 * c, 6.0 * c, 9.0].map(|v| v * scale);
        for (a, b) in kern.data.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{:?} vs {want:?}", kern.data);
        }
    }

    #[test]
    fn bad_shapes_and_sizes_are_clear_errors() {
        let mut layer = FactAttention::<f32>::new(shape(2, Mixing::Chained), 1).unwrap();
        let err = layer.forward(&Tensor::zeros(&[1, 4, 4, 3])).unwrap_err();
        assert!(
            err.to_string().contains("[batch, 2 grid axes, 4 channels]"),
            "{err}"
        );
        let err = layer.forward(&Tensor::zeros(&[1, 4, 4])).unwrap_err();
        assert!(err.to_string().contains("got [1, 4, 4]"), "{err}");
        let err = layer.backward(&Tensor::zeros(&[1, 4, 4, 4])).unwrap_err();
        assert!(err.to_string().contains("before forward"), "{err}");
        let odd = FactAttentionShape {
            dim_head: 3,
            kernel_multiplier: 1,
            ..shape(2, Mixing::Chained)
        };
        let err = FactAttention::<f32>::new(odd, 1)
            .err()
            .expect("an odd kernel width");
        assert!(err.to_string().contains("even"), "{err}");
    }
}
