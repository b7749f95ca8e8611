//! Compositions and small layers: sequences, channel MLPs, soft gating and the grid-coordinate
//! embedding.

use super::linear::{gelu_backward, gelu_in_place, PointwiseLinear};
use super::{Layer, Param};
use crate::tensor::{vectorised, NnError, Real, Tensor, PARALLEL_CHUNK};
use rayon::prelude::*;

/// Names a sub-layer's parameters `prefix.name`.
pub fn prefixed<'a, T>(prefix: &str, params: Vec<Param<'a, T>>) -> Vec<Param<'a, T>> {
    params
        .into_iter()
        .map(|p| Param {
            name: format!("{prefix}.{}", p.name),
            ..p
        })
        .collect()
}

/// `acc += other`, elementwise (in parallel blocks).
pub fn add_into<T: Real>(acc: &mut Tensor<T>, other: &Tensor<T>) {
    debug_assert_eq!(acc.shape, other.shape);
    acc.data
        .par_chunks_mut(PARALLEL_CHUNK)
        .zip(other.data.par_chunks(PARALLEL_CHUNK))
        .for_each(|(a, b)| {
            for (x, y) in a.iter_mut().zip(b) {
                *x = *x + *y;
            }
        });
}

/// Layers applied one after another.
pub struct Sequential<T: Real> {
    pub layers: Vec<(String, Box<dyn Layer<T>>)>,
}

impl<T: Real> Layer<T> for Sequential<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let mut h: Option<Tensor<T>> = None;
        for (_, layer) in &mut self.layers {
            h = Some(layer.forward(h.as_ref().unwrap_or(x))?);
        }
        Ok(h.unwrap_or_else(|| x.clone()))
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let mut g: Option<Tensor<T>> = None;
        for (_, layer) in self.layers.iter_mut().rev() {
            g = Some(layer.backward(g.as_ref().unwrap_or(dy))?);
        }
        Ok(g.unwrap_or_else(|| dy.clone()))
    }

    fn forward_owned(&mut self, x: Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.layers
            .iter_mut()
            .try_fold(x, |h, (_, layer)| layer.forward_owned(h))
    }

    fn backward_owned(&mut self, dy: Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.layers
            .iter_mut()
            .rev()
            .try_fold(dy, |g, (_, layer)| layer.backward_owned(g))
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        self.layers
            .iter_mut()
            .flat_map(|(name, layer)| prefixed(name, layer.parameters()))
            .collect()
    }
}

/// Two pointwise linear layers with a GELU between: `fc2(GELU(fc1(x)))`. One layer rather than a
/// [`Sequential`] so that it keeps its intermediate tensors without copying them.
pub struct ChannelMlp<T: Real> {
    pub fc1: PointwiseLinear<T>,
    pub fc2: PointwiseLinear<T>,
    /// The input, `GELU'(z)` at `z = fc1(x)`, and `h = GELU(z)` of the last forward pass.
    saved: Option<(Tensor<T>, Tensor<T>, Tensor<T>)>,
}

pub fn channel_mlp<T: Real>(c_in: usize, hidden: usize, c_out: usize, seed: u64) -> ChannelMlp<T> {
    ChannelMlp {
        fc1: PointwiseLinear::new(c_in, hidden, true, seed),
        fc2: PointwiseLinear::new(hidden, c_out, true, seed + 1),
        saved: None,
    }
}

impl<T: Real> Layer<T> for ChannelMlp<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        self.forward_owned(x.clone())
    }

    /// Keeps `x` itself for the backward pass.
    fn forward_owned(&mut self, x: Tensor<T>) -> Result<Tensor<T>, NnError> {
        let mut h = self.fc1.apply(&x)?;
        let slope = gelu_in_place(&mut h);
        let y = self.fc2.apply(&h)?;
        self.saved = Some((x, slope, h));
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let (x, slope, h) = self.saved.take().ok_or(NnError::NoForward {
            layer: "channel mlp",
        })?;
        self.fc2.accumulate_grads(&h, dy)?;
        let mut dz = self.fc2.input_grad(dy, None)?;
        gelu_backward(&slope, &mut dz)?;
        self.fc1.accumulate_grads(&x, &dz)?;
        let dx = self.fc1.input_grad(&dz, None);
        self.saved = Some((x, slope, h));
        dx
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let mut out = prefixed("fc1", self.fc1.parameters());
        out.extend(prefixed("fc2", self.fc2.parameters()));
        out
    }
}

/// `y = x ⊙ w` with one learned weight per channel (initially 1).
pub struct SoftGating<T> {
    pub weight: Vec<T>,
    pub(crate) weight_grad: Vec<T>,
    input: Option<Tensor<T>>,
}

impl<T: Real> SoftGating<T> {
    pub fn new(channels: usize) -> Self {
        Self {
            weight: vec![T::one(); channels],
            weight_grad: vec![T::zero(); channels],
            input: None,
        }
    }
}

impl<T: Real> SoftGating<T> {
    /// `out += x ⊙ w`, keeping nothing.
    pub fn apply_add(&self, x: &Tensor<T>, out: &mut Tensor<T>) -> Result<(), NnError> {
        let c = self.weight.len();
        if x.channels() != c || out.shape != x.shape {
            return Err(NnError::Shape {
                layer: "soft gating",
                expected: format!("{c} channels and equal shapes"),
                got: format!("{:?} and {:?}", x.shape, out.shape),
            });
        }
        let rows = (PARALLEL_CHUNK / c).max(1) * c;
        out.data
            .par_chunks_mut(rows)
            .zip(x.data.par_chunks(rows))
            .for_each(|(o, xs)| {
                vectorised(
                    #[inline(always)]
                    || {
                        for (or, xr) in o.chunks_mut(c).zip(xs.chunks(c)) {
                            for ((v, xv), w) in or.iter_mut().zip(xr).zip(&self.weight) {
                                *v = *v + *xv * *w;
                            }
                        }
                    },
                )
            });
        Ok(())
    }

    /// The backward pass for the input `x` of a forward pass: `dw += Σ dy ⊙ x`, returns `dy ⊙ w`.
    pub fn backward_with(&mut self, x: &Tensor<T>, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let c = self.weight.len();
        if dy.shape != x.shape {
            return Err(NnError::Shape {
                layer: "soft gating",
                expected: format!("an output gradient of shape {:?}", x.shape),
                got: format!("{:?}", dy.shape),
            });
        }
        let n = dy.data.len();
        let rows = (PARALLEL_CHUNK / c).max(1) * c;
        let w = &self.weight;
        // dx is written straight into fresh memory, in the same pass that sums dw.
        let mut dx = Vec::with_capacity(n);
        let partial: Vec<Vec<T>> = dx.spare_capacity_mut()[..n]
            .par_chunks_mut(rows)
            .zip(dy.data.par_chunks(rows))
            .zip(x.data.par_chunks(rows))
            .map(|((out, d), xs)| {
                let mut g = vec![T::zero(); c];
                vectorised(
                    #[inline(always)]
                    || gate_backward_kernel(out, d, xs, w, &mut g),
                );
                g
            })
            .collect();
        // SAFETY: the kernel wrote one value per gradient value, and the chunks cover all n.
        unsafe { dx.set_len(n) };
        let dx = Tensor {
            shape: dy.shape.clone(),
            data: dx,
        };
        for g in partial {
            for (acc, v) in self.weight_grad.iter_mut().zip(g) {
                *acc = *acc + v;
            }
        }
        Ok(dx)
    }
}

/// Per row of `c = w.len()` channels: `out = d ⊙ w` and `g += d ⊙ x`.
#[inline(always)]
fn gate_backward_kernel<T: Real>(
    out: &mut [std::mem::MaybeUninit<T>],
    d: &[T],
    x: &[T],
    w: &[T],
    g: &mut [T],
) {
    let c = w.len();
    for ((o, dr), xr) in out.chunks_mut(c).zip(d.chunks(c)).zip(x.chunks(c)) {
        for k in 0..c {
            g[k] = g[k] + dr[k] * xr[k];
            o[k].write(dr[k] * w[k]);
        }
    }
}

impl<T: Real> Layer<T> for SoftGating<T> {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let c = self.weight.len();
        if x.channels() != c {
            return Err(NnError::Shape {
                layer: "soft gating",
                expected: format!("{c} channels"),
                got: format!("shape {:?}", x.shape),
            });
        }
        let mut y = x.clone();
        for row in y.data.chunks_mut(c) {
            for (v, w) in row.iter_mut().zip(&self.weight) {
                *v = *v * *w;
            }
        }
        self.input = Some(x.clone());
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let x = self.input.take().ok_or(NnError::NoForward {
            layer: "soft gating",
        })?;
        let dx = self.backward_with(&x, dy);
        self.input = Some(x);
        dx
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        vec![Param {
            name: "weight".into(),
            value: &mut self.weight,
            grad: &mut self.weight_grad,
        }]
    }
}

/// Which grid coordinates a grid operator appends to its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Embedding {
    /// `i / n` on each axis (one channel per axis), as neuraloperator's `GridEmbeddingND`. On a
    /// periodic grid this is a sawtooth: its jump at the boundary aliases differently on grids of
    /// different size, which costs zero-shot super-resolution.
    #[default]
    Linear,
    /// `sin(2π i / n)` and `cos(2π i / n)` on each axis (two channels per axis): smooth and
    /// periodic, so a model trained on one grid of a periodic problem sees the same features
    /// on a finer one.
    Periodic,
}

impl Embedding {
    /// Channels appended for a grid of `dims` axes.
    pub fn channels(self, dims: usize) -> usize {
        match self {
            Embedding::Linear => dims,
            Embedding::Periodic => 2 * dims,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Embedding::Linear => "linear",
            Embedding::Periodic => "periodic",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "linear" => Some(Embedding::Linear),
            "periodic" => Some(Embedding::Periodic),
            _ => None,
        }
    }
}

/// Appends the grid coordinates of an [`Embedding`] to every point's channels.
#[derive(Debug, Clone, Default)]
pub struct GridEmbedding {
    pub kind: Embedding,
    channels: usize,
}

impl GridEmbedding {
    pub fn new(kind: Embedding) -> Self {
        Self { kind, channels: 0 }
    }
}

impl<T: Real> Layer<T> for GridEmbedding {
    fn forward(&mut self, x: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let grid = x.grid().to_vec();
        let (c, d) = (x.channels(), grid.len());
        let e = self.kind.channels(d);
        self.channels = c;
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("a channel axis") = c + e;
        let mut y = Tensor::zeros(&shape);
        // Features per point of each axis, `w` to a point: computed once, not per grid point.
        let w = e / d;
        let tables: Vec<Vec<T>> = grid
            .iter()
            .map(|&n| {
                let mut t = Vec::with_capacity(w * n);
                for i in 0..n {
                    // Point i of n over [0, 1), as linspace(0, 1, n + 1)[:-1] in neuraloperator.
                    let u = i as f64 / n as f64;
                    match self.kind {
                        Embedding::Linear => t.push(T::lit(u)),
                        Embedding::Periodic => {
                            let (sin, cos) = (std::f64::consts::TAU * u).sin_cos();
                            t.extend([T::lit(sin), T::lit(cos)]);
                        }
                    }
                }
                t
            })
            .collect();
        let points: usize = grid.iter().product();
        for (p, (src, dst)) in x.data.chunks(c).zip(y.data.chunks_mut(c + e)).enumerate() {
            dst[..c].copy_from_slice(src);
            let mut rest = p % points;
            for a in (0..d).rev() {
                let i = rest % grid[a];
                rest /= grid[a];
                dst[c + w * a..c + w * (a + 1)].copy_from_slice(&tables[a][w * i..w * (i + 1)]);
            }
        }
        Ok(y)
    }

    fn backward(&mut self, dy: &Tensor<T>) -> Result<Tensor<T>, NnError> {
        let c = self.channels;
        let e = self.kind.channels(dy.shape.len() - 2);
        let mut shape = dy.shape.clone();
        *shape.last_mut().expect("a channel axis") = c;
        let data = dy
            .data
            .chunks(c + e)
            .flat_map(|row| row[..c].iter().copied())
            .collect();
        Tensor::from_vec(&shape, data)
    }

    fn parameters(&mut self) -> Vec<Param<'_, T>> {
        Vec::new()
    }
}

/// Copies the grid block of `x` that starts at `from_at` into a zero tensor of grid `grid`,
/// starting at `to_at` (per axis; the largest block that fits in both is copied).
fn resize_grid<T: Real>(
    x: &Tensor<T>,
    grid: &[usize],
    from_at: &[usize],
    to_at: &[usize],
) -> Tensor<T> {
    let c = x.channels();
    let from = x.grid().to_vec();
    let mut shape = vec![x.shape[0]];
    shape.extend(grid);
    shape.push(c);
    let mut y = Tensor::zeros(&shape);
    let d = grid.len();
    let common: Vec<usize> = (0..d)
        .map(|k| (from[k] - from_at[k]).min(grid[k] - to_at[k]))
        .collect();
    let lines: usize = x.shape[0] * common[..d - 1].iter().product::<usize>();
    let run = common[d - 1] * c;
    for line in 0..lines {
        // Multi-index of the line over (batch, common axes but the last).
        let mut rest = line;
        let mut idx = vec![0usize; d - 1];
        for k in (0..d - 1).rev() {
            idx[k] = rest % common[k];
            rest /= common[k];
        }
        let b = rest;
        let (mut s_stride, mut d_stride) = (from[d - 1] * c, grid[d - 1] * c);
        let (mut src, mut dst) = (from_at[d - 1] * c, to_at[d - 1] * c);
        for k in (0..d - 1).rev() {
            src += (idx[k] + from_at[k]) * s_stride;
            dst += (idx[k] + to_at[k]) * d_stride;
            s_stride *= from[k];
            d_stride *= grid[k];
        }
        src += b * s_stride;
        dst += b * d_stride;
        y.data[dst..dst + run].copy_from_slice(&x.data[src..src + run]);
    }
    y
}

/// Where [`DomainPadding`] puts its zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum PaddingMode {
    /// `round(fraction · n)` points after the last on every axis: the FNO paper's code (85
    /// points get 9).
    #[default]
    OneSided,
    /// `round(fraction · n)` points before the first and after the last (ties to even, as
    /// Python rounds): neuraloperator 2.x (85 points get 8 on each side). Zero-shot
    /// super-resolution holds up better: the jump to zero is away from both edges.
    Symmetric,
}

impl PaddingMode {
    pub fn name(self) -> &'static str {
        match self {
            PaddingMode::OneSided => "one-sided",
            PaddingMode::Symmetric => "symmetric",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "one-sided" => Some(PaddingMode::OneSided),
            "symmetric" => Some(PaddingMode::Symmetric),
            _ => None,
        }
    }
}

/// Zero padding of every grid axis by a fraction of its points, for problems that are not
/// periodic, and the crop that undoes it.
#[derive(Debug, Clone, Default)]
pub struct DomainPadding {
    pub fraction: f64,
    pub mode: PaddingMode,
    original: Vec<usize>,
    /// Zero points before the first on each axis (0 unless symmetric).
    before: Vec<usize>,
}

impl DomainPadding {
    pub fn new(fraction: f64, mode: PaddingMode) -> Self {
        Self {
            fraction,
            mode,
            original: Vec::new(),
            before: Vec::new(),
        }
    }

    pub fn pad<T: Real>(&mut self, x: &Tensor<T>) -> Tensor<T> {
        self.original = x.grid().to_vec();
        let d = self.original.len();
        let mut padded = self.original.clone();
        self.before = vec![0; d];
        for (k, n) in padded.iter_mut().enumerate() {
            let f = self.fraction * *n as f64;
            match self.mode {
                PaddingMode::OneSided => *n += f.round() as usize,
                PaddingMode::Symmetric => {
                    let p = f.round_ties_even() as usize;
                    self.before[k] = p;
                    *n += 2 * p;
                }
            }
        }
        resize_grid(x, &padded, &vec![0; d], &self.before)
    }

    pub fn crop<T: Real>(&self, x: &Tensor<T>) -> Tensor<T> {
        resize_grid(x, &self.original, &self.before, &vec![0; self.before.len()])
    }

    /// The gradient through [`Self::pad`]: the crop.
    pub fn pad_backward<T: Real>(&self, dy: &Tensor<T>) -> Tensor<T> {
        self.crop(dy)
    }

    /// The gradient through [`Self::crop`]: zeros on the padding.
    pub fn crop_backward<T: Real>(&self, dy: &Tensor<T>, padded: &[usize]) -> Tensor<T> {
        resize_grid(dy, padded, &vec![0; self.before.len()], &self.before)
    }
}

#[cfg(test)]
mod tests {
    use super::super::gradcheck::{check, random};
    use super::*;

    #[test]
    fn padding_then_cropping_is_the_identity_and_pads_with_zeros() {
        let x = random(&[2, 3, 5, 2], 7);
        let mut pad = DomainPadding::new(0.4, PaddingMode::OneSided);
        let p = pad.pad(&x);
        assert_eq!(p.shape, vec![2, 4, 7, 2]);
        assert_eq!(pad.crop(&p), x);
        // The padded corner [b = 1, i = 3, j = 6] is zero; [1, 2, 4] is x's last point.
        let at = |t: &Tensor<f64>, b: usize, i: usize, j: usize, c: usize| {
            let g = t.grid();
            t.data[((b * g[0] + i) * g[1] + j) * 2 + c]
        };
        assert_eq!(at(&p, 1, 3, 6, 1), 0.0);
        assert_eq!(at(&p, 1, 2, 4, 1), at(&x, 1, 2, 4, 1));
        // Symmetric: round(0.4 · 3) = 1 and round(0.4 · 5) = 2 zeros on each side; x's point
        // (i, j) lands at (i + 1, j + 2), and the border is zero.
        let mut sym = DomainPadding::new(0.4, PaddingMode::Symmetric);
        let q = sym.pad(&x);
        assert_eq!(q.shape, vec![2, 5, 9, 2]);
        assert_eq!(sym.crop(&q), x);
        for b in 0..2 {
            for i in 0..5 {
                for j in 0..9 {
                    for c in 0..2 {
                        let inside = (1..4).contains(&i) && (2..7).contains(&j);
                        let want = if inside {
                            at(&x, b, i - 1, j - 2, c)
                        } else {
                            0.0
                        };
                        assert_eq!(at(&q, b, i, j, c), want, "({b}, {i}, {j}, {c})");
                    }
                }
            }
        }
        // Ties go to even, as neuraloperator's Python `round`: 85 · 0.1 = 8.5 → 8 a side.
        let wide = Tensor::<f64>::zeros(&[1, 85, 1]);
        let mut sym = DomainPadding::new(0.1, PaddingMode::Symmetric);
        assert_eq!(sym.pad(&wide).shape, vec![1, 101, 1]);
        let mut one = DomainPadding::new(0.1, PaddingMode::OneSided);
        assert_eq!(one.pad(&wide).shape, vec![1, 94, 1]);
        assert_eq!(
            PaddingMode::from_name("symmetric"),
            Some(PaddingMode::Symmetric)
        );
        assert_eq!(PaddingMode::from_name("both"), None);
    }

    #[test]
    fn soft_gating_and_grid_embedding_gradients_match_finite_differences() {
        let mut gate = SoftGating::<f64>::new(3);
        gate.weight = vec![0.5, -1.0, 2.0];
        assert!(check(&mut gate, &random(&[2, 4, 3], 1)) < 1e-7);
        let mut emb = GridEmbedding::default();
        assert!(check(&mut emb, &random(&[2, 3, 4, 2], 2)) < 1e-7);
        let mut emb = GridEmbedding::new(Embedding::Periodic);
        assert!(check(&mut emb, &random(&[2, 3, 4, 2], 2)) < 1e-7);
    }

    #[test]
    fn grid_embeddings_append_the_coordinates_of_each_point() {
        // One sample on a 2 × 4 grid, one channel holding 10 + point index.
        let x = Tensor::<f64>::from_vec(&[1, 2, 4, 1], (0..8).map(|p| 10.0 + p as f64).collect())
            .unwrap();
        let linear = GridEmbedding::default().forward(&x).unwrap();
        assert_eq!(linear.shape, vec![1, 2, 4, 3]);
        // Point (1, 3): u = 1/2 on the first axis, 3/4 on the second.
        assert_eq!(&linear.data[7 * 3..8 * 3], &[17.0, 0.5, 0.75]);
        let periodic = GridEmbedding::new(Embedding::Periodic).forward(&x).unwrap();
        assert_eq!(periodic.shape, vec![1, 2, 4, 5]);
        let row = &periodic.data[7 * 5..8 * 5];
        // sin, cos of 2π·(1/2), then of 2π·(3/4).
        let want = [17.0, 0.0, -1.0, -1.0, 0.0];
        for (g, w) in row.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{row:?}");
        }
        // Periodic features agree on the points two grids share (every other point of 8 is 4's).
        let fine = Tensor::<f64>::zeros(&[1, 8, 1]);
        let coarse = Tensor::<f64>::zeros(&[1, 4, 1]);
        let mut emb = GridEmbedding::new(Embedding::Periodic);
        let (f, c) = (emb.forward(&fine).unwrap(), emb.forward(&coarse).unwrap());
        for j in 0..4 {
            for k in 0..3 {
                assert!((f.data[2 * j * 3 + k] - c.data[j * 3 + k]).abs() < 1e-15);
            }
        }
        assert_eq!(Embedding::from_name("periodic"), Some(Embedding::Periodic));
        assert_eq!(Embedding::from_name("sawtooth"), None);
    }
}
