//! Blocks of vectors stored column after column in one allocation that is kept from cycle to cycle
//! and from system to system, and the kernels Krylov methods run on them: Gram–Schmidt against a
//! block (MGS one column at a time, or CGS2 as fused block passes) and GEMM for block products.

use crate::linalg::{axpy, dot, norm2, par_axpy, par_dot, with_avx2};

/// Rows per pass of the block kernels: a slice of the new vector this long stays in L1 while the
/// block's columns stream past it.
const ROWS: usize = 512;

/// `n`-vectors stored column-major, `len` of them in use. Capacity only grows, so a block reset
/// to the same shape allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct Block {
    n: usize,
    len: usize,
    data: Vec<f64>,
}

impl Block {
    /// Empties the block for vectors of length `n`, with room for `cols` of them.
    pub fn reset(&mut self, n: usize, cols: usize) {
        self.n = n;
        self.len = 0;
        if self.data.len() < n * cols {
            self.data.resize(n * cols, 0.0);
        }
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn col(&self, j: usize) -> &[f64] {
        debug_assert!(j < self.len);
        &self.data[j * self.n..(j + 1) * self.n]
    }

    pub fn col_mut(&mut self, j: usize) -> &mut [f64] {
        debug_assert!(j < self.len);
        &mut self.data[j * self.n..(j + 1) * self.n]
    }

    /// Columns `lo..hi`, contiguous.
    pub fn range(&self, lo: usize, hi: usize) -> &[f64] {
        debug_assert!(lo <= hi && hi <= self.len);
        &self.data[lo * self.n..hi * self.n]
    }

    /// The first `k` columns, contiguous.
    pub fn first(&self, k: usize) -> &[f64] {
        debug_assert!(k <= self.len);
        &self.data[..k * self.n]
    }

    /// Appends a zero column and returns it (growing the storage only past its capacity).
    pub fn push_zero(&mut self) -> &mut [f64] {
        let (n, j) = (self.n, self.len);
        if self.data.len() < (j + 1) * n {
            self.data.resize((j + 1) * n, 0.0);
        }
        self.len += 1;
        let col = &mut self.data[j * n..(j + 1) * n];
        col.fill(0.0);
        col
    }

    /// Appends `src / divisor` (divided, not multiplied by the reciprocal, so a normalised
    /// Krylov vector is rounded as the textbook algorithm rounds it).
    pub fn push_divided(&mut self, src: &[f64], divisor: f64) {
        let (n, j) = (self.n, self.len);
        if self.data.len() < (j + 1) * n {
            self.data.resize((j + 1) * n, 0.0);
        }
        self.len += 1;
        for (d, x) in self.data[j * n..(j + 1) * n].iter_mut().zip(src) {
            *d = x / divisor;
        }
    }

    /// Keeps the first `len` columns.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Makes room for `cols` columns of length `n` and marks them in use, without clearing them
    /// (for outputs a kernel overwrites).
    pub fn set_len(&mut self, n: usize, cols: usize) {
        self.n = n;
        if self.data.len() < n * cols {
            self.data.resize(n * cols, 0.0);
        }
        self.len = cols;
    }

    /// All columns in use, contiguous, for GEMM.
    pub fn data_mut(&mut self) -> &mut [f64] {
        &mut self.data[..self.len * self.n]
    }
}

/// How a new Krylov vector is orthogonalised against a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Orthogonalization {
    /// Modified Gram–Schmidt: a dot product and an update per column, one after the other.
    #[default]
    Mgs,
    /// Classical Gram–Schmidt, repeated only when the first pass cancels more than 1 − 1/√2 of the
    /// vector's norm (the Daniel–Gragg–Kaufman–Stewart test): two passes over the block (dots with
    /// ‖w‖²; update fused with the new norm), four when it repeats.
    Cgs,
    /// Classical Gram–Schmidt twice, as three passes over the block (dots; update fused with the
    /// second dots; update fused with the norm): each pass reads the block once and keeps a slice
    /// of the new vector in L1.
    Cgs2,
}

/// Orthogonalises `w` against the `k` columns of `v` (column-major, `w.len()` rows), writes the
/// coefficients into `h[..k]` and returns ‖w‖ after. `scratch` needs `k` entries.
pub fn orthogonalize(
    v: &[f64],
    w: &mut [f64],
    h: &mut [f64],
    scratch: &mut [f64],
    how: Orthogonalization,
) -> f64 {
    orthogonalize_on(v, w, h, scratch, how, None)
}

/// [`orthogonalize`]; with `threads` (scratch for partial sums), MGS spreads each dot product and
/// update over rayon's threads.
pub fn orthogonalize_on(
    v: &[f64],
    w: &mut [f64],
    h: &mut [f64],
    scratch: &mut [f64],
    how: Orthogonalization,
    threads: Option<&mut Vec<f64>>,
) -> f64 {
    let n = w.len();
    let k = v.len().checked_div(n).unwrap_or(0);
    if let (Some(partials), Orthogonalization::Mgs) = (threads, how) {
        for (j, hj) in h[..k].iter_mut().enumerate() {
            let vj = &v[j * n..(j + 1) * n];
            *hj = par_dot(w, vj, partials);
            par_axpy(-*hj, vj, w);
        }
        return par_dot(w, w, partials).sqrt();
    }
    match how {
        Orthogonalization::Mgs => {
            for (j, hj) in h[..k].iter_mut().enumerate() {
                let vj = &v[j * n..(j + 1) * n];
                *hj = dot(w, vj);
                axpy(-*hj, vj, w);
            }
            norm2(w)
        }
        Orthogonalization::Cgs => {
            let (h, second) = (&mut h[..k], &mut scratch[..k]);
            let before = dots_norm(v, w, h);
            let after = update_norm(v, h, w);
            // DGKS: keep the pass unless it cancelled most of w (then w has lost digits to
            // rounding and needs a second pass).
            if after >= 0.5 * before {
                return after.sqrt();
            }
            dots(v, w, second);
            let again = update_norm(v, second, w);
            for (a, b) in h.iter_mut().zip(second.iter()) {
                *a += b;
            }
            again.sqrt()
        }
        Orthogonalization::Cgs2 => {
            let (h, second) = (&mut h[..k], &mut scratch[..k]);
            dots(v, w, h);
            update_dots(v, h, w, second);
            let norm_sq = update_norm(v, second, w);
            for (a, b) in h.iter_mut().zip(second.iter()) {
                *a += b;
            }
            norm_sq.sqrt()
        }
    }
}

/// `out = Vᵀ w`, and returns ‖w‖² from the same pass.
fn dots_norm(v: &[f64], w: &[f64], out: &mut [f64]) -> f64 {
    let n = w.len();
    out.fill(0.0);
    let mut sum = 0.0;
    let mut start = 0;
    while start < n {
        let end = (start + ROWS).min(n);
        let ws = &w[start..end];
        add_dots(v, n, start, end, ws, out);
        sum += dot(ws, ws);
        start = end;
    }
    sum
}

/// `out = Vᵀ w`.
pub fn dots(v: &[f64], w: &[f64], out: &mut [f64]) {
    let n = w.len();
    out.fill(0.0);
    let mut start = 0;
    while start < n {
        let end = (start + ROWS).min(n);
        add_dots(v, n, start, end, &w[start..end], out);
        start = end;
    }
}

with_avx2! {
/// `out += V[rows]ᵀ w[rows]` for one slice of rows, four columns at a time (each element of `w`
/// loaded once per four multiply-adds, four partial sums per column).
fn add_dots(v: &[f64], n: usize, start: usize, end: usize, w: &[f64], out: &mut [f64]) {
    let k = out.len();
    let col = |j: usize| &v[j * n + start..j * n + end];
    let split = w.len() - w.len() % 4;
    let mut j = 0;
    while j + 4 <= k {
        let (c0, c1, c2, c3) = (col(j), col(j + 1), col(j + 2), col(j + 3));
        let mut acc = [[0.0f64; 4]; 4];
        for ((x, (a0, a1)), (a2, a3)) in w[..split]
            .chunks_exact(4)
            .zip(c0.chunks_exact(4).zip(c1.chunks_exact(4)))
            .zip(c2.chunks_exact(4).zip(c3.chunks_exact(4)))
        {
            for l in 0..4 {
                acc[0][l] += a0[l] * x[l];
                acc[1][l] += a1[l] * x[l];
                acc[2][l] += a2[l] * x[l];
                acc[3][l] += a3[l] * x[l];
            }
        }
        for (q, c) in [c0, c1, c2, c3].into_iter().enumerate() {
            let tail: f64 = c[split..].iter().zip(&w[split..]).map(|(a, b)| a * b).sum();
            let a = acc[q];
            out[j + q] += ((a[0] + a[2]) + (a[1] + a[3])) + tail;
        }
        j += 4;
    }
    for (q, o) in out.iter_mut().enumerate().skip(j) {
        *o += dot(col(q), w);
    }
}
}

with_avx2! {
/// `w[rows] −= V[rows] h` for one slice of rows, four columns at a time.
fn sub_combination(v: &[f64], n: usize, start: usize, end: usize, h: &[f64], w: &mut [f64]) {
    let k = h.len();
    let col = |j: usize| &v[j * n + start..j * n + end];
    let mut j = 0;
    while j + 4 <= k {
        let (c0, c1, c2, c3) = (col(j), col(j + 1), col(j + 2), col(j + 3));
        let (h0, h1, h2, h3) = (h[j], h[j + 1], h[j + 2], h[j + 3]);
        for ((wi, (a0, a1)), (a2, a3)) in w
            .iter_mut()
            .zip(c0.iter().zip(c1))
            .zip(c2.iter().zip(c3))
        {
            *wi -= (h0 * a0 + h1 * a1) + (h2 * a2 + h3 * a3);
        }
        j += 4;
    }
    for (q, &hq) in h.iter().enumerate().skip(j) {
        axpy(-hq, col(q), w);
    }
}
}

/// `w −= V h`, then `out = Vᵀ w`, slice of rows by slice of rows.
fn update_dots(v: &[f64], h: &[f64], w: &mut [f64], out: &mut [f64]) {
    let n = w.len();
    out.fill(0.0);
    let mut start = 0;
    while start < n {
        let end = (start + ROWS).min(n);
        let ws = &mut w[start..end];
        sub_combination(v, n, start, end, h, ws);
        add_dots(v, n, start, end, ws, out);
        start = end;
    }
}

/// `w −= V h` and returns ‖w‖².
fn update_norm(v: &[f64], h: &[f64], w: &mut [f64]) -> f64 {
    let n = w.len();
    let mut sum = 0.0;
    let mut start = 0;
    while start < n {
        let end = (start + ROWS).min(n);
        let ws = &mut w[start..end];
        sub_combination(v, n, start, end, h, ws);
        sum += dot(ws, ws);
        start = end;
    }
    sum
}

/// `out = V y` (`out` overwritten), V column-major with `out.len()` rows.
pub fn combination(v: &[f64], y: &[f64], out: &mut [f64]) {
    let n = out.len();
    out.fill(0.0);
    for (j, &yj) in y.iter().enumerate() {
        axpy(yj, &v[j * n..(j + 1) * n], out);
    }
}

/// `C = β C + A B` for column-major A (m×k), B (k×n, leading dimension `ldb`) and C (m×n).
pub fn gemm(m: usize, k: usize, a: &[f64], b: &[f64], ldb: usize, beta: f64, c: &mut [f64]) {
    let n = c.len().checked_div(m).unwrap_or(0);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.iter_mut().for_each(|x| *x *= beta);
        return;
    }
    assert!(a.len() >= m * k && b.len() >= ldb * (n - 1) + k && ldb >= k);
    // SAFETY: the asserts above keep every index the strides reach inside the three slices.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            1,
            m as isize,
            b.as_ptr(),
            1,
            ldb as isize,
            beta,
            c.as_mut_ptr(),
            1,
            m as isize,
        );
    }
}

/// `out = Aᵀ B` (`ka × kb`, column-major) for column-major blocks A (n×ka) and B (n×kb).
pub fn cross(n: usize, a: &[f64], b: &[f64], out: &mut [f64]) {
    let (ka, kb) = (a.len() / n.max(1), b.len() / n.max(1));
    assert!(out.len() >= ka * kb);
    if ka == 0 || kb == 0 || n == 0 {
        out[..ka * kb].fill(0.0);
        return;
    }
    // SAFETY: A read as its transpose (row stride n), B and out as stored; lengths checked.
    unsafe {
        matrixmultiply::dgemm(
            ka,
            n,
            kb,
            1.0,
            a.as_ptr(),
            n as isize,
            1,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            out.as_mut_ptr(),
            1,
            ka as isize,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_block(n: usize, k: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n * k)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
            })
            .collect()
    }

    /// Orthonormal columns by MGS on a random block.
    fn orthonormal(n: usize, k: usize, seed: u64, how: Orthogonalization) -> Vec<f64> {
        let raw = random_block(n, k, seed);
        let mut q = Block::default();
        q.reset(n, k);
        let (mut h, mut s) = (vec![0.0; k], vec![0.0; k]);
        for j in 0..k {
            let mut w = raw[j * n..(j + 1) * n].to_vec();
            let nrm = orthogonalize(q.first(j), &mut w, &mut h, &mut s, how);
            q.push_divided(&w, nrm);
        }
        q.first(k).to_vec()
    }

    fn loss_of_orthogonality(q: &[f64], n: usize, k: usize) -> f64 {
        let mut g = vec![0.0; k * k];
        cross(n, q, q, &mut g);
        (0..k)
            .flat_map(|i| (0..k).map(move |j| (i, j)))
            .map(|(i, j)| (g[i + j * k] - f64::from(u8::from(i == j))).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn classical_and_modified_gram_schmidt_agree_on_a_well_conditioned_basis() {
        let (n, k) = (1037, 13);
        let v = orthonormal(n, k, 7, Orthogonalization::Mgs);
        let w0 = random_block(n, 1, 99);
        let (mut h1, mut h2, mut s) = (vec![0.0; k], vec![0.0; k], vec![0.0; k]);
        let mut w1 = w0.clone();
        let n1 = orthogonalize(&v, &mut w1, &mut h1, &mut s, Orthogonalization::Mgs);
        for how in [Orthogonalization::Cgs, Orthogonalization::Cgs2] {
            let mut w2 = w0.clone();
            let n2 = orthogonalize(&v, &mut w2, &mut h2, &mut s, how);
            for (a, b) in h1.iter().zip(&h2) {
                assert!((a - b).abs() <= 1e-12, "{how:?}: {a} vs {b}");
            }
            for (a, b) in w1.iter().zip(&w2) {
                assert!((a - b).abs() <= 1e-12, "{how:?}");
            }
            assert!((n1 - n2).abs() <= 1e-12 * n1, "{how:?}");
        }
    }

    #[test]
    fn both_keep_a_hard_basis_orthonormal() {
        // Columns that are nearly parallel: x_j = e + 1e-7·noise_j.
        let (n, k) = (800, 20);
        let noise = random_block(n, k, 3);
        let hard: Vec<f64> = (0..n * k).map(|i| 1.0 + 1e-7 * noise[i]).collect();
        for how in [
            Orthogonalization::Mgs,
            Orthogonalization::Cgs,
            Orthogonalization::Cgs2,
        ] {
            // Two passes for MGS as for CGS2 (a re-orthogonalised MGS), as Arnoldi does not need.
            let mut q = Block::default();
            q.reset(n, k);
            let (mut h, mut s) = (vec![0.0; k], vec![0.0; k]);
            for j in 0..k {
                let mut w = hard[j * n..(j + 1) * n].to_vec();
                orthogonalize(q.first(j), &mut w, &mut h, &mut s, how);
                let nrm = orthogonalize(q.first(j), &mut w, &mut h, &mut s, how);
                q.push_divided(&w, nrm);
            }
            let loss = loss_of_orthogonality(q.first(k), n, k);
            assert!(loss <= 1e-10, "{how:?}: ‖QᵀQ − I‖ = {loss:e}");
        }
        // One CGS2 pass alone holds orthogonality where one MGS pass does not need to.
        let q = orthonormal(n, k, 11, Orthogonalization::Cgs2);
        assert!(loss_of_orthogonality(&q, n, k) <= 1e-12);
    }

    #[test]
    fn gemm_and_cross_match_loops() {
        let (n, ka, kb) = (300, 5, 3);
        let a = random_block(n, ka, 1);
        let b = random_block(ka, kb, 2);
        let mut c = vec![0.0; n * kb];
        gemm(n, ka, &a, &b, ka, 0.0, &mut c);
        for j in 0..kb {
            for i in 0..n {
                let want: f64 = (0..ka).map(|p| a[i + p * n] * b[p + j * ka]).sum();
                assert!((c[i + j * n] - want).abs() < 1e-12);
            }
        }
        let mut g = vec![0.0; ka * kb];
        cross(n, &a, &c, &mut g);
        for j in 0..kb {
            for i in 0..ka {
                let want: f64 = (0..n).map(|r| a[r + i * n] * c[r + j * n]).sum();
                assert!((g[i + j * ka] - want).abs() < 1e-10);
            }
        }
    }
}
