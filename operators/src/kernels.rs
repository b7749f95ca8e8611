//! Matrix products shaped like the pointwise layers' (very many rows, 16 to 64 columns), with
//! AVX-512 kernels that read the operands where they lie.
//!
//! A general GEMM (matrixmultiply) first copies ("packs") both operands into panels. When one
//! operand is a whole activation tensor and the other a 32 × 32 weight, that copy costs about as
//! much as the multiply. These kernels keep a block of rows × the whole output width in
//! registers, broadcast the activation values from memory and stream the small matrix from L1,
//! so nothing is packed. They cover `n` = 16, 32, 64 and 128; the callers fall back to the general
//! GEMM for other widths, for f64 and on CPUs without AVX-512.

use std::mem::MaybeUninit;

/// Whether the kernels can run here.
fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `C ← A·B`, or `C ← C + A·B` with `accumulate`, for row-major `A` (m × k), `B` (k × n) and
/// `C` (m × n), plus the row `bias` (n values) on every row when given. Returns false, having
/// touched nothing, when no kernel fits (see the module docs).
///
/// # Safety
/// With `accumulate`, the first m·n values of `c` must be initialised. Without it they may not
/// be, and all are written.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    c: &mut [MaybeUninit<f32>],
    accumulate: bool,
) -> bool {
    if !matches!(n, 16 | 32 | 64 | 128) || !available() {
        return false;
    }
    assert!(a.len() >= m * k, "product: A too short");
    assert!(b.len() >= k * n, "product: B too short");
    assert!(c.len() >= m * n, "product: C too short");
    assert!(
        bias.is_none_or(|b| b.len() == n),
        "product: bias of the wrong length"
    );
    #[cfg(target_arch = "x86_64")]
    {
        let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr().cast::<f32>());
        let bias = bias.map(|b| b.as_ptr());
        // SAFETY: the CPU has AVX-512F, the operands hold what the kernel reads and writes
        // (asserted above), and `c` is a distinct borrow.
        unsafe {
            match n {
                16 => avx512::rows::<1, 16>(m, k, a, b, bias, c, accumulate),
                32 => avx512::rows::<2, 8>(m, k, a, b, bias, c, accumulate),
                64 => avx512::rows::<4, 4>(m, k, a, b, bias, c, accumulate),
                _ => avx512::rows::<8, 2>(m, k, a, b, bias, c, accumulate),
            }
        }
    }
    true
}

/// `D ← D + Xᵀ·G` for row-major `X` (m × k), `G` (m × n) and `D` (k × n), and `s ← s + Σ_r G[r]`
/// when `s` (n values) is given: the weight and bias gradients of a pointwise layer, in one pass
/// over `G`. Returns false, having touched nothing, when no kernel fits.
pub(crate) fn transposed_product_add(
    m: usize,
    k: usize,
    n: usize,
    x: &[f32],
    g: &[f32],
    d: &mut [f32],
    s: Option<&mut [f32]>,
) -> bool {
    if !matches!(n, 16 | 32 | 64 | 128) || !available() {
        return false;
    }
    assert!(x.len() >= m * k, "transposed product: X too short");
    assert!(g.len() >= m * n, "transposed product: G too short");
    assert!(d.len() >= k * n, "transposed product: D too short");
    assert!(
        s.as_ref().is_none_or(|s| s.len() == n),
        "transposed product: sum of the wrong length"
    );
    #[cfg(target_arch = "x86_64")]
    {
        let (x, g, d) = (x.as_ptr(), g.as_ptr(), d.as_mut_ptr());
        let s = s.map(|s| s.as_mut_ptr());
        // SAFETY: as in `product`.
        unsafe {
            match n {
                16 => avx512::transposed::<1, 16>(m, k, x, g, d, s),
                32 => avx512::transposed::<2, 8>(m, k, x, g, d, s),
                64 => avx512::transposed::<4, 4>(m, k, x, g, d, s),
                _ => avx512::transposed::<8, 2>(m, k, x, g, d, s),
            }
        }
    }
    true
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// [`super::product`] with `n = 16·V`, `R` rows per register block (`R·V` = 16 accumulators).
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn rows<const V: usize, const R: usize>(
        m: usize,
        k: usize,
        a: *const f32,
        b: *const f32,
        bias: Option<*const f32>,
        c: *mut f32,
        accumulate: bool,
    ) {
        let n = 16 * V;
        let mut start = [_mm512_setzero_ps(); V];
        if let Some(bias) = bias {
            for (v, lane) in start.iter_mut().enumerate() {
                // SAFETY: the bias has n values.
                *lane = unsafe { _mm512_loadu_ps(bias.add(16 * v)) };
            }
        }
        let mut r = 0;
        // SAFETY (all blocks): rows r..r+R of A and C are within the m rows the caller checked.
        while r + R <= m {
            unsafe { rows_block::<V, R>(k, a.add(r * k), b, &start, c.add(r * n), accumulate) };
            r += R;
        }
        while r < m {
            unsafe { rows_block::<V, 1>(k, a.add(r * k), b, &start, c.add(r * n), accumulate) };
            r += 1;
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn rows_block<const V: usize, const R: usize>(
        k: usize,
        a: *const f32,
        b: *const f32,
        start: &[__m512; V],
        c: *mut f32,
        accumulate: bool,
    ) {
        let n = 16 * V;
        let mut acc = [*start; R];
        if accumulate {
            for (r, row) in acc.iter_mut().enumerate() {
                for (v, lane) in row.iter_mut().enumerate() {
                    let old = unsafe { _mm512_loadu_ps(c.add(r * n + 16 * v)) };
                    *lane = _mm512_add_ps(*lane, old);
                }
            }
        }
        for kk in 0..k {
            let mut w = [_mm512_setzero_ps(); V];
            for (v, lane) in w.iter_mut().enumerate() {
                *lane = unsafe { _mm512_loadu_ps(b.add(kk * n + 16 * v)) };
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(unsafe { *a.add(r * k + kk) });
                for (lane, wv) in row.iter_mut().zip(&w) {
                    *lane = _mm512_fmadd_ps(x, *wv, *lane);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, lane) in row.iter().enumerate() {
                unsafe { _mm512_storeu_ps(c.add(r * n + 16 * v), *lane) };
            }
        }
    }

    /// [`super::transposed_product_add`] with `n = 16·V`, `I` rows of `D` per register block.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn transposed<const V: usize, const I: usize>(
        m: usize,
        k: usize,
        x: *const f32,
        g: *const f32,
        d: *mut f32,
        mut s: Option<*mut f32>,
    ) {
        let mut i = 0;
        // SAFETY (all blocks): columns i..i+I of X and rows i..i+I of D are within k. The first
        // block also sums G's rows into `s`, so G is read once for both.
        while i + I <= k {
            unsafe { transposed_block::<V, I>(m, k, i, x, g, d, s.take()) };
            i += I;
        }
        while i < k {
            unsafe { transposed_block::<V, 1>(m, k, i, x, g, d, s.take()) };
            i += 1;
        }
        if let Some(s) = s {
            // k = 0: no block ran.
            unsafe { transposed_block::<V, 0>(m, 0, 0, x, g, d, Some(s)) };
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn transposed_block<const V: usize, const I: usize>(
        m: usize,
        k: usize,
        i0: usize,
        x: *const f32,
        g: *const f32,
        d: *mut f32,
        s: Option<*mut f32>,
    ) {
        let n = 16 * V;
        let mut acc = [[_mm512_setzero_ps(); V]; I];
        for (i, row) in acc.iter_mut().enumerate() {
            for (v, lane) in row.iter_mut().enumerate() {
                *lane = unsafe { _mm512_loadu_ps(d.add((i0 + i) * n + 16 * v)) };
            }
        }
        let mut sum = [_mm512_setzero_ps(); V];
        if let Some(s) = s {
            for (v, lane) in sum.iter_mut().enumerate() {
                *lane = unsafe { _mm512_loadu_ps(s.add(16 * v)) };
            }
        }
        for r in 0..m {
            let mut w = [_mm512_setzero_ps(); V];
            for (v, lane) in w.iter_mut().enumerate() {
                *lane = unsafe { _mm512_loadu_ps(g.add(r * n + 16 * v)) };
            }
            if s.is_some() {
                for (lane, wv) in sum.iter_mut().zip(&w) {
                    *lane = _mm512_add_ps(*lane, *wv);
                }
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(unsafe { *x.add(r * k + i0 + i) });
                for (lane, wv) in row.iter_mut().zip(&w) {
                    *lane = _mm512_fmadd_ps(xv, *wv, *lane);
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, lane) in row.iter().enumerate() {
                unsafe { _mm512_storeu_ps(d.add((i0 + i) * n + 16 * v), *lane) };
            }
        }
        if let Some(s) = s {
            for (v, lane) in sum.iter().enumerate() {
                unsafe { _mm512_storeu_ps(s.add(16 * v), *lane) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// The largest difference from the f64 reference, relative to the reference's largest value.
    fn relative_gap(got: &[f32], want: &[f64]) -> f64 {
        let scale = want.iter().fold(0.0f64, |s, v| s.max(v.abs()));
        let gap = got
            .iter()
            .zip(want)
            .fold(0.0f64, |g, (a, b)| g.max((*a as f64 - b).abs()));
        gap / scale
    }

    #[test]
    fn products_match_a_plain_f64_product_for_every_kernel_width_and_row_remainder() {
        if !available() {
            eprintln!("no AVX-512 here: the kernels decline, and the callers use the general GEMM");
            assert!(!unsafe { product(1, 1, 16, &[0.0], &[0.0; 16], None, &mut [], false) });
            return;
        }
        // m = 37 leaves a remainder after every row block; k = 5 and 33 are not block sizes.
        for (m, k, n) in [
            (37, 5, 16),
            (37, 33, 32),
            (37, 3, 64),
            (37, 7, 128),
            (8, 32, 32),
            (0, 4, 32),
        ] {
            let a = random(m * k, 1);
            let b = random(k * n, 2);
            let c0 = random(m * n, 3);
            let bias = random(n, 4);
            let mut want = vec![0.0f64; m * n];
            for r in 0..m {
                for j in 0..n {
                    want[r * n + j] = (0..k)
                        .map(|kk| a[r * k + kk] as f64 * b[kk * n + j] as f64)
                        .sum();
                }
            }
            let run = |bias: Option<&[f32]>, accumulate: bool| -> Vec<f32> {
                let start = if accumulate {
                    c0.clone()
                } else {
                    vec![f32::NAN; m * n]
                };
                let mut c: Vec<MaybeUninit<f32>> =
                    start.into_iter().map(MaybeUninit::new).collect();
                assert!(unsafe { product(m, k, n, &a, &b, bias, &mut c, accumulate) });
                c.iter().map(|v| unsafe { v.assume_init() }).collect()
            };
            for (with_bias, accumulate) in
                [(false, false), (false, true), (true, false), (true, true)]
            {
                let got = run(with_bias.then_some(&bias[..]), accumulate);
                let expected: Vec<f64> = (0..m * n)
                    .map(|at| {
                        want[at]
                            + if accumulate { c0[at] as f64 } else { 0.0 }
                            + if with_bias { bias[at % n] as f64 } else { 0.0 }
                    })
                    .collect();
                if m > 0 {
                    let gap = relative_gap(&got, &expected);
                    assert!(
                        gap < 1e-6,
                        "{m}×{k}×{n}, bias {with_bias}, accumulate {accumulate}: {gap:e}"
                    );
                }
            }
        }
        // Widths without a kernel are declined and left alone.
        let mut c = vec![MaybeUninit::new(7.0f32); 4 * 24];
        assert!(!unsafe { product(4, 2, 24, &[1.0; 8], &[1.0; 48], None, &mut c, false) });
        assert!(c.iter().all(|v| unsafe { v.assume_init() } == 7.0));
    }

    #[test]
    fn transposed_products_match_a_plain_f64_sum_of_outer_products() {
        if !available() {
            assert!(!transposed_product_add(
                1,
                1,
                16,
                &[0.0],
                &[0.0; 16],
                &mut [0.0; 16],
                None
            ));
            return;
        }
        // k = 0 and k = 3 < the block size: the row sums come from a block of their own.
        for (m, k, n) in [
            (41, 5, 16),
            (41, 35, 32),
            (41, 3, 64),
            (41, 5, 128),
            (9, 17, 16),
            (7, 0, 32),
        ] {
            let x = random(m * k, 4);
            let g = random(m * n, 5);
            let d0 = random(k * n, 6);
            let s0 = random(n, 7);
            let mut want = vec![0.0f64; k * n];
            for i in 0..k {
                for j in 0..n {
                    want[i * n + j] = d0[i * n + j] as f64
                        + (0..m)
                            .map(|r| x[r * k + i] as f64 * g[r * n + j] as f64)
                            .sum::<f64>();
                }
            }
            let want_sum: Vec<f64> = (0..n)
                .map(|j| s0[j] as f64 + (0..m).map(|r| g[r * n + j] as f64).sum::<f64>())
                .collect();
            let mut d = d0.clone();
            assert!(transposed_product_add(m, k, n, &x, &g, &mut d, None));
            if k > 0 {
                assert!(relative_gap(&d, &want) < 1e-6, "{m}×{k}×{n}");
            }
            let (mut d, mut s) = (d0.clone(), s0.clone());
            assert!(transposed_product_add(
                m,
                k,
                n,
                &x,
                &g,
                &mut d,
                Some(&mut s)
            ));
            if k > 0 {
                assert!(relative_gap(&d, &want) < 1e-6, "{m}×{k}×{n} with sums");
            }
            assert!(relative_gap(&s, &want_sum) < 1e-6, "{m}×{k}×{n} sums");
        }
        let mut d = vec![3.0f32; 2 * 8];
        assert!(!transposed_product_add(
            4, 2, 8, &[1.0; 8], &[1.0; 32], &mut d, None
        ));
        assert!(d.iter().all(|&v| v == 3.0));
    }
}
