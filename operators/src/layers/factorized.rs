//! Factorised complex weight tensors for the spectral convolution (TFNO): Tucker and CP.
//!
//! The dense weight `W` of a spectral convolution is a complex tensor with axes
//! `[kept modes…, c_in, c_out]`. A factorised weight stores instead
//! - **Tucker**: a core `G` (ranks `r_0 × … × r_{N−1}`) and one factor `U_k` (`n_k × r_k`) per
//!   axis, `W = G ×_0 U_0 ×_1 U_1 ⋯ ×_{N−1} U_{N−1}`;
//! - **CP**: `R` rank-one terms, `W[i_0, …] = Σ_r Π_k F_k[i_k, r]`.
//!
//! `W` is rebuilt from the factors on every forward pass (it is small next to the activations),
//! and the dense gradient is pulled back onto the factors. With the gradient convention
//! `g = ∂L/∂Re + i·∂L/∂Im` and `W` multilinear in each factor, the pull-back of `g_W` through
//! `W = M(θ)` is `M^H(g_W)`: for Tucker `g_G = g_W ×_k U_kᴴ` (all k) and
//! `g_{U_k} = g_{W(k)}·Y_{(k)}ᴴ` with `Y = G ×_{j≠k} U_j`; for CP the same with the other factors'
//! Khatri–Rao product in place of `Y`. All contractions are complex GEMMs on planar (re, im) arrays.

use super::Param;
use crate::param::{require, InvalidParam};
use crate::tensor::{unravel, NnError, Real};
use rand::{Rng, SeedableRng};

/// How a spectral weight is stored (in a checkpoint: `{ kind = "tucker", rank = 0.1 }`).
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(tag = "kind", rename_all = "lowercase"))]
pub enum Factorization {
    #[default]
    Dense,
    Tucker(Rank),
    Cp(Rank),
}

/// The size of a factorisation (`rank = 0.1` or `ranks = [...]`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Rank {
    /// Parameters as a fraction of the dense weight's (as tensorly-torch reads a float rank).
    #[cfg_attr(feature = "serde", serde(rename = "rank"))]
    Fraction(f64),
    /// Tucker: one rank per weight axis (`[modes…, c_in, c_out]`); CP: a single rank.
    #[cfg_attr(feature = "serde", serde(rename = "ranks"))]
    Explicit(Vec<usize>),
}

impl Factorization {
    /// Checks the ranks against a dense weight of `shape` and returns the concrete ranks (one per
    /// axis for Tucker, one for CP; empty for dense). The error names `rank` (a fraction) or
    /// `ranks` (explicit ones).
    pub fn ranks(&self, shape: &[usize]) -> Result<Vec<usize>, InvalidParam> {
        let dense: usize = shape.iter().product();
        match self {
            Factorization::Dense => Ok(Vec::new()),
            Factorization::Cp(Rank::Fraction(f)) | Factorization::Tucker(Rank::Fraction(f))
                if !(*f > 0.0 && *f <= 1.0) =>
            {
                Err(InvalidParam {
                    field: "rank".into(),
                    expected: "a fraction in (0, 1] of the dense spectral weight's parameters"
                        .into(),
                    got: f.to_string(),
                })
            }
            Factorization::Cp(Rank::Fraction(f)) => {
                let per_rank: usize = shape.iter().sum();
                Ok(vec![((f * dense as f64 / per_rank as f64).round()
                    as usize)
                    .max(1)])
            }
            Factorization::Cp(Rank::Explicit(r)) => {
                require(
                    r.len() == 1 && r[0] > 0,
                    "ranks",
                    "one positive rank for CP",
                    format!("{r:?}"),
                )?;
                Ok(r.clone())
            }
            Factorization::Tucker(Rank::Fraction(f)) => Ok(tucker_ranks(shape, *f)),
            Factorization::Tucker(Rank::Explicit(r)) => {
                require(
                    r.len() == shape.len()
                        && r.iter().zip(shape).all(|(&rk, &nk)| rk >= 1 && rk <= nk),
                    "ranks",
                    &format!("one rank per weight axis {shape:?} (modes…, c_in, c_out), each from 1 to that axis' size"),
                    format!("{r:?}"),
                )?;
                Ok(r.clone())
            }
        }
    }
}

/// Tucker parameters for `ranks`: the core plus the factors.
fn tucker_count(shape: &[usize], ranks: &[usize]) -> usize {
    ranks.iter().product::<usize>() + shape.iter().zip(ranks).map(|(n, r)| n * r).sum::<usize>()
}

/// Ranks `r_k = round(s·n_k)` (at least 1) with the common scale `s` whose parameter count comes
/// closest to `fraction` of the dense count.
fn tucker_ranks(shape: &[usize], fraction: f64) -> Vec<usize> {
    let target = fraction * shape.iter().product::<usize>() as f64;
    let at = |s: f64| -> Vec<usize> {
        shape
            .iter()
            .map(|&n| ((s * n as f64).round() as usize).clamp(1, n))
            .collect()
    };
    (1..=2000)
        .map(|i| at(i as f64 / 2000.0))
        .min_by(|a, b| {
            let da = (tucker_count(shape, a) as f64 - target).abs();
            let db = (tucker_count(shape, b) as f64 - target).abs();
            da.total_cmp(&db)
        })
        .expect("a candidate")
}

/// A complex array as separate real and imaginary parts.
#[derive(Debug, Clone, Default)]
struct Planar<T> {
    re: Vec<T>,
    im: Vec<T>,
}

impl<T: Real> Planar<T> {
    fn zeros(n: usize) -> Self {
        Self {
            re: vec![T::zero(); n],
            im: vec![T::zero(); n],
        }
    }

    fn from_interleaved(v: &[T]) -> Self {
        Self {
            re: v.iter().step_by(2).copied().collect(),
            im: v.iter().skip(1).step_by(2).copied().collect(),
        }
    }

    fn add_to_interleaved(&self, out: &mut [T]) {
        for (i, (r, m)) in self.re.iter().zip(&self.im).enumerate() {
            out[2 * i] = out[2 * i] + *r;
            out[2 * i + 1] = out[2 * i + 1] + *m;
        }
    }

    fn to_interleaved(&self) -> Vec<T> {
        let mut out = vec![T::zero(); 2 * self.re.len()];
        self.add_to_interleaved(&mut out);
        out
    }
}

/// A complex matrix operand: data from `offset`, (row, column) strides, conjugated or not.
#[derive(Clone, Copy)]
struct Op<'a, T> {
    m: &'a Planar<T>,
    offset: usize,
    strides: (isize, isize),
    conj: bool,
}

/// An operand from the start of `m`.
fn op<T>(m: &Planar<T>, strides: (isize, isize), conj: bool) -> Op<'_, T> {
    Op {
        m,
        offset: 0,
        strides,
        conj,
    }
}

/// `C = A·B + beta·C` for complex `A` (`rows × k`), `B` (`k × cols`), `C` row-major from
/// `c_offset` with row stride `c_row`.
#[allow(clippy::too_many_arguments)]
fn cgemm<T: Real>(
    rows: usize,
    k: usize,
    cols: usize,
    a: Op<'_, T>,
    b: Op<'_, T>,
    beta: T,
    c: &mut Planar<T>,
    c_offset: usize,
    c_row: usize,
) {
    let sa = if a.conj { -T::one() } else { T::one() };
    let sb = if b.conj { -T::one() } else { T::one() };
    let cs = (c_row as isize, 1);
    let (ar, ai) = (&a.m.re[a.offset..], &a.m.im[a.offset..]);
    let (br, bi) = (&b.m.re[b.offset..], &b.m.im[b.offset..]);
    let (cr, ci) = (&mut c.re[c_offset..], &mut c.im[c_offset..]);
    // (ar + i·sa·ai)(br + i·sb·bi) = ar·br − sa·sb·ai·bi + i(sb·ar·bi + sa·ai·br).
    T::gemm(
        rows,
        k,
        cols,
        T::one(),
        ar,
        a.strides,
        br,
        b.strides,
        beta,
        cr,
        cs,
    );
    T::gemm(
        rows,
        k,
        cols,
        -(sa * sb),
        ai,
        a.strides,
        bi,
        b.strides,
        T::one(),
        cr,
        cs,
    );
    T::gemm(
        rows, k, cols, sb, ar, a.strides, bi, b.strides, beta, ci, cs,
    );
    T::gemm(
        rows,
        k,
        cols,
        sa,
        ai,
        a.strides,
        br,
        b.strides,
        T::one(),
        ci,
        cs,
    );
}

/// `t ×_mode M` for `M` given as an operand of `new × shape[mode]`; returns the new shape too.
fn mode_product<T: Real>(
    t: &Planar<T>,
    shape: &[usize],
    mode: usize,
    m: Op<'_, T>,
    new: usize,
) -> (Planar<T>, Vec<usize>) {
    let n = shape[mode];
    let inner: usize = shape[mode + 1..].iter().product();
    let outer: usize = shape[..mode].iter().product();
    let mut out = Planar::zeros(outer * new * inner);
    let tt = |offset: usize, strides| Op {
        m: t,
        offset,
        strides,
        conj: false,
    };
    if inner == 1 {
        // One product: (outer × n)·Mᵀ.
        let mt = Op {
            strides: (m.strides.1, m.strides.0),
            ..m
        };
        cgemm(
            outer,
            n,
            new,
            tt(0, (n as isize, 1)),
            mt,
            T::zero(),
            &mut out,
            0,
            new,
        );
    } else {
        for o in 0..outer {
            let src = tt(o * n * inner, (inner as isize, 1));
            cgemm(
                new,
                n,
                inner,
                m,
                src,
                T::zero(),
                &mut out,
                o * new * inner,
                inner,
            );
        }
    }
    let mut s = shape.to_vec();
    s[mode] = new;
    (out, s)
}

/// `Σ_{other indices} a[…, i, …]·conj(b[…, j, …])` along `mode`: an `a_n × b_n` matrix.
fn mode_gram<T: Real>(
    a: &Planar<T>,
    a_shape: &[usize],
    b: &Planar<T>,
    b_shape: &[usize],
    mode: usize,
) -> Planar<T> {
    let (na, nb) = (a_shape[mode], b_shape[mode]);
    let inner: usize = a_shape[mode + 1..].iter().product();
    let outer: usize = a_shape[..mode].iter().product();
    let mut out = Planar::zeros(na * nb);
    for o in 0..outer {
        let at = Op {
            m: a,
            offset: o * na * inner,
            strides: (inner as isize, 1),
            conj: false,
        };
        // bᴴ: element (l, j) of the inner × nb operand is conj(b[o, j, l]).
        let bt = Op {
            m: b,
            offset: o * nb * inner,
            strides: (1, inner as isize),
            conj: true,
        };
        let beta = if o == 0 { T::zero() } else { T::one() };
        cgemm(na, inner, nb, at, bt, beta, &mut out, 0, nb);
    }
    out
}

/// A factorised complex weight tensor with its gradients; parameters are interleaved (re, im).
pub struct FactorizedWeight<T: Real> {
    pub kind: Factorization,
    /// The dense weight's shape.
    pub shape: Vec<usize>,
    /// Concrete ranks (one per axis for Tucker, one for CP).
    pub ranks: Vec<usize>,
    /// Tucker core (empty for CP).
    core: Vec<T>,
    core_grad: Vec<T>,
    /// Factor k is `shape[k] × rank_k`, row-major.
    factors: Vec<Vec<T>>,
    factor_grads: Vec<Vec<T>>,
}

/// `n` complex normals with RMS modulus `rms`, interleaved.
fn complex_normals<T: Real>(n: usize, rms: f64, rng: &mut impl Rng) -> Vec<T> {
    let sd = rms / std::f64::consts::SQRT_2;
    (0..2 * n)
        .map(|_| {
            // Box–Muller.
            let (u, v): (f64, f64) = (rng.gen::<f64>().max(1e-300), rng.gen());
            T::lit(sd * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos())
        })
        .collect()
}

impl<T: Real> FactorizedWeight<T> {
    /// Random factors whose reconstruction has zero-mean entries of RMS modulus `rms`.
    pub fn new(shape: &[usize], kind: Factorization, rms: f64, seed: u64) -> Result<Self, NnError> {
        let ranks = kind.ranks(shape).map_err(|e| NnError::BadSpec {
            layer: "factorised spectral weight",
            message: e.to_string(),
        })?;
        if ranks.is_empty() {
            return Err(NnError::BadSpec {
                layer: "factorised spectral weight",
                message: "a dense weight is not factorised".into(),
            });
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7F4A_7C15);
        let (core, factors) = match &kind {
            Factorization::Tucker(_) => {
                // Factors with unit-variance rows, so the core carries the scale.
                let factors: Vec<Vec<T>> = shape
                    .iter()
                    .zip(&ranks)
                    .map(|(&n, &r)| complex_normals(n * r, 1.0 / (r as f64).sqrt(), &mut rng))
                    .collect();
                (
                    complex_normals(ranks.iter().product(), rms, &mut rng),
                    factors,
                )
            }
            _ => {
                let r = ranks[0];
                let each = (rms * rms / r as f64).powf(0.5 / shape.len() as f64);
                let factors = shape
                    .iter()
                    .map(|&n| complex_normals(n * r, each, &mut rng))
                    .collect();
                (Vec::new(), factors)
            }
        };
        Ok(Self {
            kind,
            shape: shape.to_vec(),
            ranks,
            core_grad: vec![T::zero(); core.len()],
            core,
            factor_grads: factors.iter().map(|f| vec![T::zero(); f.len()]).collect(),
            factors,
        })
    }

    fn factor_ops(&self) -> Vec<Planar<T>> {
        self.factors
            .iter()
            .map(|f| Planar::from_interleaved(f))
            .collect()
    }

    /// Tucker: `G ×_j U_j` for every `j` in `modes`, starting from the core.
    fn tucker_partial(&self, u: &[Planar<T>], skip: Option<usize>) -> (Planar<T>, Vec<usize>) {
        let mut t = Planar::from_interleaved(&self.core);
        let mut shape = self.ranks.clone();
        for (j, uj) in u.iter().enumerate() {
            if Some(j) == skip {
                continue;
            }
            let op = op(uj, (self.ranks[j] as isize, 1), false);
            (t, shape) = mode_product(&t, &shape, j, op, self.shape[j]);
        }
        (t, shape)
    }

    /// CP: `Z[p, r] = Π_{k < N−1} F_k[i_k(p), r]` over the leading axes' points `p`.
    fn cp_leading(&self, f: &[Planar<T>]) -> Planar<T> {
        let r = self.ranks[0];
        let lead = &self.shape[..self.shape.len() - 1];
        let points: usize = lead.iter().product();
        let mut z = Planar::zeros(points * r);
        let mut idx = vec![0; lead.len()];
        for p in 0..points {
            unravel(p, lead, &mut idx);
            for q in 0..r {
                let (mut re, mut im) = (T::one(), T::zero());
                for (k, &i) in idx.iter().enumerate() {
                    let (fr, fi) = (f[k].re[i * r + q], f[k].im[i * r + q]);
                    (re, im) = (re * fr - im * fi, re * fi + im * fr);
                }
                z.re[p * r + q] = re;
                z.im[p * r + q] = im;
            }
        }
        z
    }

    /// The dense weight, interleaved (re, im), row-major over `shape`.
    pub fn reconstruct(&self) -> Vec<T> {
        let f = self.factor_ops();
        if !self.core.is_empty() {
            return self.tucker_partial(&f, None).0.to_interleaved();
        }
        let r = self.ranks[0];
        let last = *self.shape.last().expect("an axis");
        let z = self.cp_leading(&f);
        let points = z.re.len() / r;
        let mut w = Planar::zeros(points * last);
        let zt = op(&z, (r as isize, 1), false);
        // F_lastᵀ: element (q, c) is F_last[c, q].
        let ft = op(&f[f.len() - 1], (1, r as isize), false);
        cgemm(points, r, last, zt, ft, T::zero(), &mut w, 0, last);
        w.to_interleaved()
    }

    /// Adds the pull-back of the dense gradient `g_w` (interleaved) to the factor gradients.
    pub fn backward(&mut self, g_w: &[T]) {
        let g = Planar::from_interleaved(g_w);
        let f = self.factor_ops();
        let n_axes = self.shape.len();
        if !self.core.is_empty() {
            // g_G = g_W ×_k U_kᴴ.
            let mut t = g.clone();
            let mut shape = self.shape.clone();
            for (k, uk) in f.iter().enumerate() {
                let op = op(uk, (1, self.ranks[k] as isize), true);
                (t, shape) = mode_product(&t, &shape, k, op, self.ranks[k]);
            }
            t.add_to_interleaved(&mut self.core_grad);
            for k in 0..n_axes {
                let (y, y_shape) = self.tucker_partial(&f, Some(k));
                let gk = mode_gram(&g, &self.shape, &y, &y_shape, k);
                gk.add_to_interleaved(&mut self.factor_grads[k]);
            }
            return;
        }
        let r = self.ranks[0];
        let last = self.shape[n_axes - 1];
        let z = self.cp_leading(&f);
        let points = z.re.len() / r;
        // g_F_last = g_Wᵀ·conj(Z)  (last × points · points × r).
        let mut g_last = Planar::zeros(last * r);
        let gt = op(&g, (1, last as isize), false);
        let zc = op(&z, (r as isize, 1), true);
        cgemm(last, points, r, gt, zc, T::zero(), &mut g_last, 0, r);
        g_last.add_to_interleaved(&mut self.factor_grads[n_axes - 1]);
        // H = g_W·conj(F_last)  (points × last · last × r), then the other leading factors.
        let mut h = Planar::zeros(points * r);
        let gw = op(&g, (last as isize, 1), false);
        let fc = op(&f[n_axes - 1], (r as isize, 1), true);
        cgemm(points, last, r, gw, fc, T::zero(), &mut h, 0, r);
        let lead = &self.shape[..n_axes - 1];
        let mut grads: Vec<Planar<T>> = lead.iter().map(|&n| Planar::zeros(n * r)).collect();
        let mut idx = vec![0; lead.len()];
        for p in 0..points {
            unravel(p, lead, &mut idx);
            for q in 0..r {
                for k in 0..lead.len() {
                    // conj(Π_{j≠k} F_j)·H.
                    let (mut re, mut im) = (h.re[p * r + q], h.im[p * r + q]);
                    for (j, &i) in idx.iter().enumerate() {
                        if j != k {
                            let (fr, fi) = (f[j].re[i * r + q], -f[j].im[i * r + q]);
                            (re, im) = (re * fr - im * fi, re * fi + im * fr);
                        }
                    }
                    let at = idx[k] * r + q;
                    grads[k].re[at] = grads[k].re[at] + re;
                    grads[k].im[at] = grads[k].im[at] + im;
                }
            }
        }
        for (k, gk) in grads.iter().enumerate() {
            gk.add_to_interleaved(&mut self.factor_grads[k]);
        }
    }

    pub fn parameters(&mut self) -> Vec<Param<'_, T>> {
        let mut out = Vec::new();
        if !self.core.is_empty() {
            out.push(Param {
                name: "core".into(),
                value: &mut self.core,
                grad: &mut self.core_grad,
            });
        }
        for (k, (v, g)) in self
            .factors
            .iter_mut()
            .zip(self.factor_grads.iter_mut())
            .enumerate()
        {
            out.push(Param {
                name: format!("factor.{k}"),
                value: v,
                grad: g,
            });
        }
        out
    }

    /// Real parameters (each complex value counts twice).
    pub fn parameter_count(&self) -> usize {
        self.core.len() + self.factors.iter().map(Vec::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of `L = Re Σ conj(c)·W` against the pulled-back gradient `g_W = c`.
    fn check(kind: Factorization, shape: &[usize]) -> f64 {
        let mut w = FactorizedWeight::<f64>::new(shape, kind, 0.7, 3).unwrap();
        let dense = w.reconstruct().len();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let c: Vec<f64> = (0..dense).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let loss = |w: &FactorizedWeight<f64>| -> f64 {
            w.reconstruct().iter().zip(&c).map(|(a, b)| a * b).sum()
        };
        w.backward(&c);
        let grads: Vec<Vec<f64>> = w.parameters().iter().map(|p| p.grad.to_vec()).collect();
        let eps = 1e-6;
        let mut worst: f64 = 0.0;
        for (pi, g) in grads.iter().enumerate() {
            for (i, &gi) in g.iter().enumerate() {
                let orig = w.parameters()[pi].value[i];
                w.parameters()[pi].value[i] = orig + eps;
                let lp = loss(&w);
                w.parameters()[pi].value[i] = orig - eps;
                let lm = loss(&w);
                w.parameters()[pi].value[i] = orig;
                let fd = (lp - lm) / (2.0 * eps);
                worst = worst.max((fd - gi).abs() / fd.abs().max(gi.abs()).max(1e-2));
            }
        }
        worst
    }

    #[test]
    fn tucker_and_cp_gradients_match_finite_differences() {
        let shape = [4, 3, 2, 3];
        let worst = check(
            Factorization::Tucker(Rank::Explicit(vec![2, 2, 1, 3])),
            &shape,
        );
        assert!(worst < 1e-6, "tucker: {worst:e}");
        let worst = check(Factorization::Cp(Rank::Explicit(vec![3])), &shape);
        assert!(worst < 1e-6, "cp: {worst:e}");
        let worst = check(Factorization::Cp(Rank::Explicit(vec![2])), &[5, 2, 3]);
        assert!(worst < 1e-6, "cp 3-way: {worst:e}");
    }

    #[test]
    fn full_rank_tucker_reproduces_a_dense_tensor_by_hand() {
        // W = G ×_0 U_0 ×_1 U_1 on a 2 × 2 tensor with rank 1 is u_0 ⊗ u_1 · g.
        let mut w = FactorizedWeight::<f64>::new(
            &[2, 2],
            Factorization::Tucker(Rank::Explicit(vec![1, 1])),
            1.0,
            0,
        )
        .unwrap();
        let vals = [
            vec![2.0, 1.0],
            vec![1.0, 0.0, 0.0, 1.0],
            vec![3.0, 0.0, 0.0, -1.0],
        ];
        for (p, v) in w.parameters().into_iter().zip(&vals) {
            p.value.copy_from_slice(v);
        }
        // g = 2 + i, u_0 = (1, i), u_1 = (3, −i): W[a][b] = g·u_0[a]·u_1[b].
        let c = |re: f64, im: f64| rustfft::num_complex::Complex::new(re, im);
        let (g, u0, u1) = (
            c(2.0, 1.0),
            [c(1.0, 0.0), c(0.0, 1.0)],
            [c(3.0, 0.0), c(0.0, -1.0)],
        );
        let got = w.reconstruct();
        for (a, ua) in u0.iter().enumerate() {
            for (b, ub) in u1.iter().enumerate() {
                let want = g * ua * ub;
                let at = 2 * (a * 2 + b);
                assert!((got[at] - want.re).abs() < 1e-14 && (got[at + 1] - want.im).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn fractions_give_the_asked_share_of_parameters() {
        let shape = [24, 12, 32, 32];
        let dense: usize = shape.iter().product();
        for f in [0.05, 0.1, 0.2] {
            let w = FactorizedWeight::<f32>::new(
                &shape,
                Factorization::Tucker(Rank::Fraction(f)),
                1.0,
                0,
            )
            .unwrap();
            let share = w.parameter_count() as f64 / (2 * dense) as f64;
            assert!((share - f).abs() < 0.2 * f, "tucker {f}: {share}");
            let w =
                FactorizedWeight::<f32>::new(&shape, Factorization::Cp(Rank::Fraction(f)), 1.0, 0)
                    .unwrap();
            let share = w.parameter_count() as f64 / (2 * dense) as f64;
            assert!((share - f).abs() < 0.05 * f, "cp {f}: {share}");
        }
    }

    #[test]
    fn bad_ranks_are_clear_errors() {
        let shape = [4, 3, 2, 2];
        let err = Factorization::Tucker(Rank::Explicit(vec![2, 2]))
            .ranks(&shape)
            .unwrap_err();
        assert!(
            err.to_string().contains("one rank per weight axis"),
            "{err}"
        );
        let err = Factorization::Cp(Rank::Fraction(1.5))
            .ranks(&shape)
            .unwrap_err();
        assert!(err.to_string().contains("(0, 1]"), "{err}");
        assert!(Factorization::Cp(Rank::Explicit(vec![0]))
            .ranks(&shape)
            .is_err());
    }
}
