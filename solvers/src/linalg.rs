//! Operator and preconditioner traits, and a parallel CSR mat-vec.

use rayon::prelude::*;
use sprs::CsMat;
use std::borrow::Cow;

/// Rows per rayon task in the CSR mat-vec; below about this much work a thread hand-off costs more
/// than it saves.
const ROWS_PER_TASK: usize = 4096;

/// Defines a function whose body is compiled twice, for baseline x86-64 (SSE2) and with AVX2, and
/// runs the AVX2 build where the CPU has it. Floating-point contraction stays off, so both builds
/// give bitwise equal results: only the vector width differs.
macro_rules! with_avx2 {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, the only feature the build assumes.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use with_avx2;

/// A square linear operator `y = A x`.
pub trait LinearOperator: Sync {
    fn dim(&self) -> usize;
    fn apply(&self, x: &[f64], y: &mut [f64]);

    /// Whether a solver on this operator may spread its vector work over threads: the operator is
    /// large and its caller does not already run one solve per thread.
    fn parallel(&self) -> bool {
        false
    }
}

/// Vectors at least this long have their dot products and updates spread over threads (when the
/// operator allows it); below, a fork–join costs more than the pass it splits.
pub const PARALLEL_VECTORS: usize = 1 << 16;

/// Rows per task of [`par_dot`] and [`par_axpy`]. Fixed, so the partial sums, and with them the
/// result, do not depend on the number of threads.
const VECTOR_TASK: usize = 1 << 13;

/// `a·b` over threads: a [`dot`] per block of rows, summed in order (`partials` is scratch).
pub fn par_dot(a: &[f64], b: &[f64], partials: &mut Vec<f64>) -> f64 {
    a.par_chunks(VECTOR_TASK)
        .zip(b.par_chunks(VECTOR_TASK))
        .map(|(x, y)| dot(x, y))
        .collect_into_vec(partials);
    partials.iter().sum()
}

/// `y += alpha·x` over threads.
pub fn par_axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    y.par_chunks_mut(VECTOR_TASK)
        .zip(x.par_chunks(VECTOR_TASK))
        .for_each(|(yc, xc)| axpy(alpha, xc, yc));
}

/// A preconditioner `z = M⁻¹ r`.
pub trait Preconditioner: Sync {
    fn apply(&self, r: &[f64], z: &mut [f64]);

    /// `z = M⁻¹ r` and returns `r·z`; implementations fuse the two passes where they can.
    fn apply_dot(&self, r: &[f64], z: &mut [f64]) -> f64 {
        self.apply(r, z);
        dot(r, z)
    }
}

/// A CSR matrix with 32-bit column indices. The mat-vec of a sparse matrix is bound by memory
/// traffic, and `u32` indices cut it by a quarter against `usize` (a five-point row: 60 bytes to
/// 80). The values and row pointers are borrowed from the `sprs` matrix.
#[derive(Debug, Clone)]
pub struct Csr32<'a> {
    indptr: Cow<'a, [usize]>,
    indices: Vec<u32>,
    data: Cow<'a, [f64]>,
}

impl<'a> Csr32<'a> {
    /// # Panics
    /// If the matrix is not CSR or has more than 2³² columns: construction bugs, not input errors.
    pub fn new(matrix: &'a CsMat<f64>) -> Self {
        assert!(matrix.is_csr(), "Csr32 needs CSR storage");
        assert!(
            u32::try_from(matrix.cols()).is_ok(),
            "Csr32 needs fewer than 2^32 columns"
        );
        Self {
            indptr: Cow::Borrowed(matrix.indptr().into_raw_storage()),
            indices: matrix.indices().iter().map(|&j| j as u32).collect(),
            data: Cow::Borrowed(matrix.data()),
        }
    }

    /// [`Csr32::new`] with its own copy of everything, for matrices kept beyond the `sprs` one.
    pub fn owned(matrix: &CsMat<f64>) -> Csr32<'static> {
        let c = Csr32::new(matrix);
        Csr32 {
            indptr: Cow::Owned(c.indptr.into_owned()),
            indices: c.indices,
            data: Cow::Owned(c.data.into_owned()),
        }
    }

    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Column indices and values of row `i`.
    #[inline]
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let (lo, hi) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[lo..hi], &self.data[lo..hi])
    }

    #[inline]
    fn row_dot(&self, i: usize, x: &[f64]) -> f64 {
        let (idx, val) = self.row(i);
        idx.iter().zip(val).map(|(&j, &v)| v * x[j as usize]).sum()
    }

    /// `y = A x` on the calling thread.
    pub fn matvec_serial(&self, x: &[f64], y: &mut [f64]) {
        for (i, yi) in y.iter_mut().enumerate() {
            *yi = self.row_dot(i, x);
        }
    }

    /// `y = A x`, in parallel over row blocks for large matrices.
    pub fn matvec(&self, x: &[f64], y: &mut [f64]) {
        if y.len() < 2 * ROWS_PER_TASK {
            return self.matvec_serial(x, y);
        }
        y.par_chunks_mut(ROWS_PER_TASK)
            .enumerate()
            .for_each(|(c, chunk)| {
                let base = c * ROWS_PER_TASK;
                for (k, yi) in chunk.iter_mut().enumerate() {
                    *yi = self.row_dot(base + k, x);
                }
            });
    }

    /// `r = b − A x` on the calling thread.
    pub fn residual_serial(&self, b: &[f64], x: &[f64], r: &mut [f64]) {
        for (i, ri) in r.iter_mut().enumerate() {
            *ri = b[i] - self.row_dot(i, x);
        }
    }
}

/// A CSR matrix as a linear operator; the mat-vec runs over row blocks in parallel when the matrix
/// is large enough to pay for it, unless built with [`CsrOperator::serial`].
#[derive(Debug, Clone)]
pub struct CsrOperator<'a> {
    matrix: Csr32<'a>,
    parallel: bool,
}

impl<'a> CsrOperator<'a> {
    /// Wraps a square CSR matrix.
    ///
    /// # Panics
    /// If the matrix is not square or not in CSR storage: both are construction bugs, not input errors.
    pub fn new(matrix: &'a CsMat<f64>) -> Self {
        assert_eq!(
            matrix.rows(),
            matrix.cols(),
            "CsrOperator needs a square matrix"
        );
        Self {
            matrix: Csr32::new(matrix),
            parallel: true,
        }
    }

    /// Like [`CsrOperator::new`], but the mat-vec never spawns work: for callers that already run
    /// one solve per thread, where nested parallelism would only add overhead.
    pub fn serial(matrix: &'a CsMat<f64>) -> Self {
        Self {
            parallel: false,
            ..Self::new(matrix)
        }
    }
}

impl LinearOperator for CsrOperator<'_> {
    fn dim(&self) -> usize {
        self.matrix.rows()
    }

    fn apply(&self, x: &[f64], y: &mut [f64]) {
        if self.parallel {
            self.matrix.matvec(x, y);
        } else {
            self.matrix.matvec_serial(x, y);
        }
    }

    fn parallel(&self) -> bool {
        self.parallel && self.dim() >= PARALLEL_VECTORS && rayon::current_num_threads() > 1
    }
}

/// A square CSR matrix built row by row, each row's columns in increasing order, so the arrays are
/// written directly, without a triplet sort.
#[derive(Debug, Default)]
pub struct CsrRows {
    indptr: Vec<usize>,
    indices: Vec<usize>,
    data: Vec<f64>,
}

impl CsrRows {
    /// Room for `rows` rows of about `per_row` entries.
    pub fn with_capacity(rows: usize, per_row: usize) -> Self {
        let mut indptr = Vec::with_capacity(rows + 1);
        indptr.push(0);
        Self {
            indptr,
            indices: Vec::with_capacity(rows * per_row),
            data: Vec::with_capacity(rows * per_row),
        }
    }

    /// Appends entry `(row, col) = v` to the current row; returns its position, for [`CsrRows::set`].
    pub fn push(&mut self, col: usize, v: f64) -> usize {
        self.indices.push(col);
        self.data.push(v);
        self.data.len() - 1
    }

    /// Overwrites the value of the entry at `position`.
    pub fn set(&mut self, position: usize, v: f64) {
        self.data[position] = v;
    }

    pub fn end_row(&mut self) {
        self.indptr.push(self.indices.len());
    }

    pub fn finish(self) -> CsMat<f64> {
        let n = self.indptr.len() - 1;
        CsMat::new((n, n), self.indptr, self.indices, self.data)
    }
}

/// `y = A x` for a CSR matrix on the calling thread.
pub fn csr_matvec_serial(a: &CsMat<f64>, x: &[f64], y: &mut [f64]) {
    let indptr = a.indptr();
    let indptr = indptr.raw_storage();
    let (indices, data) = (a.indices(), a.data());
    for (i, yi) in y.iter_mut().enumerate() {
        let (lo, hi) = (indptr[i], indptr[i + 1]);
        *yi = indices[lo..hi]
            .iter()
            .zip(&data[lo..hi])
            .map(|(&j, &v)| v * x[j])
            .sum();
    }
}

/// Jacobi (diagonal) preconditioner.
#[derive(Debug, Clone)]
pub struct Jacobi {
    inv_diag: Vec<f64>,
}

/// A zero or non-finite diagonal entry makes Jacobi (and SOR) undefined.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Jacobi preconditioner: diagonal entry {row} is {value}; it must be non-zero and finite")]
pub struct BadDiagonal {
    pub row: usize,
    pub value: f64,
}

/// The diagonal of a CSR matrix, each entry checked to be non-zero and finite.
pub fn diagonal(a: &CsMat<f64>) -> Result<Vec<f64>, BadDiagonal> {
    (0..a.rows())
        .map(|row| {
            let value = a.get(row, row).copied().unwrap_or(0.0);
            if value == 0.0 || !value.is_finite() {
                Err(BadDiagonal { row, value })
            } else {
                Ok(value)
            }
        })
        .collect()
}

/// `r = b − A x`.
pub fn residual<A: LinearOperator + ?Sized>(a: &A, b: &[f64], x: &[f64], r: &mut [f64]) {
    a.apply(x, r);
    for (ri, bi) in r.iter_mut().zip(b) {
        *ri = bi - *ri;
    }
}

impl Jacobi {
    pub fn new(a: &CsMat<f64>) -> Result<Self, BadDiagonal> {
        let inv_diag = diagonal(a)?.into_iter().map(|d| 1.0 / d).collect();
        Ok(Self { inv_diag })
    }
}

impl Preconditioner for Jacobi {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        for ((zi, ri), di) in z.iter_mut().zip(r).zip(&self.inv_diag) {
            *zi = ri * di;
        }
    }

    fn apply_dot(&self, r: &[f64], z: &mut [f64]) -> f64 {
        let mut acc = [0.0f64; 8];
        let n = r.len() / 8 * 8;
        for ((zc, rc), dc) in z[..n]
            .chunks_exact_mut(8)
            .zip(r[..n].chunks_exact(8))
            .zip(self.inv_diag[..n].chunks_exact(8))
        {
            for k in 0..8 {
                zc[k] = rc[k] * dc[k];
                acc[k] += rc[k] * zc[k];
            }
        }
        let mut tail = 0.0;
        for i in n..r.len() {
            z[i] = r[i] * self.inv_diag[i];
            tail += r[i] * z[i];
        }
        sum8(&acc) + tail
    }
}

/// The identity preconditioner.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl Preconditioner for Identity {
    fn apply(&self, r: &[f64], z: &mut [f64]) {
        z.copy_from_slice(r);
    }
}

with_avx2! {
/// `a·b`, with eight independent partial sums: a single running sum is bound by the latency of
/// one addition per element, while eight let the CPU pipeline and vectorise the loop.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    sum8(&acc) + tail
}
}

pub fn norm2(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn sum8(acc: &[f64; 8]) -> f64 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

with_avx2! {
/// The CG step `x += α·p`, `r −= α·Ap` in one pass, returning ‖r‖² (eight partial sums, as in
/// [`dot`]).
pub fn cg_step(x: &mut [f64], r: &mut [f64], p: &[f64], ap: &[f64], alpha: f64) -> f64 {
    let n = x.len() / 8 * 8;
    let mut acc = [0.0f64; 8];
    for (((xc, rc), pc), ac) in x[..n]
        .chunks_exact_mut(8)
        .zip(r[..n].chunks_exact_mut(8))
        .zip(p[..n].chunks_exact(8))
        .zip(ap[..n].chunks_exact(8))
    {
        for k in 0..8 {
            xc[k] += alpha * pc[k];
            rc[k] -= alpha * ac[k];
            acc[k] += rc[k] * rc[k];
        }
    }
    let mut tail = 0.0;
    for i in n..x.len() {
        x[i] += alpha * p[i];
        r[i] -= alpha * ap[i];
        tail += r[i] * r[i];
    }
    sum8(&acc) + tail
}
}

with_avx2! {
/// `y += alpha·x`.
pub fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprs::TriMat;

    #[test]
    fn threaded_dot_products_do_not_depend_on_the_thread_count() {
        let n = 3 * VECTOR_TASK + 17;
        let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.013).sin()).collect();
        let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.007).cos()).collect();
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| par_dot(&a, &b, &mut Vec::new()))
        };
        let (one, two) = (on(1), on(2));
        assert_eq!(one.to_bits(), two.to_bits());
        assert!((one - dot(&a, &b)).abs() <= 1e-12 * dot(&a, &a).sqrt() * dot(&b, &b).sqrt());
        let mut y = b.clone();
        par_axpy(0.5, &a, &mut y);
        let mut z = b.clone();
        axpy(0.5, &a, &mut z);
        assert_eq!(y, z);
    }

    #[test]
    fn parallel_matvec_matches_dense_product() {
        // Large enough to take the parallel path.
        let n = 3 * ROWS_PER_TASK + 17;
        let mut t = TriMat::new((n, n));
        for i in 0..n {
            t.add_triplet(i, i, 2.0 + i as f64 * 1e-3);
            if i + 1 < n {
                t.add_triplet(i, i + 1, -1.0);
                t.add_triplet(i + 1, i, -0.5);
            }
        }
        let a: CsMat<f64> = t.to_csr();
        let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut y = vec![0.0; n];
        CsrOperator::new(&a).apply(&x, &mut y);
        for i in 0..n {
            let mut expect = (2.0 + i as f64 * 1e-3) * x[i];
            if i + 1 < n {
                expect -= x[i + 1];
            }
            if i > 0 {
                expect -= 0.5 * x[i - 1];
            }
            assert!((y[i] - expect).abs() < 1e-12, "row {i}");
        }
    }

    #[test]
    fn jacobi_rejects_zero_diagonal() {
        let mut t = TriMat::new((2, 2));
        t.add_triplet(0, 0, 1.0);
        t.add_triplet(1, 0, 1.0);
        let a: CsMat<f64> = t.to_csr();
        assert_eq!(
            Jacobi::new(&a).unwrap_err(),
            BadDiagonal { row: 1, value: 0.0 }
        );
    }
}
