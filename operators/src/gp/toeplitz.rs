//! Symmetric positive-definite Toeplitz matrices in O(n²): the kernel matrices of a uniform 1-D
//! grid. Levinson's recursion solves systems and gives the log-determinant; the
//! Gohberg–Semencul formula writes the inverse through its first column, which gives the sums of
//! the inverse along its diagonals (what the log-determinant's gradient needs) without forming it.

/// A symmetric Toeplitz matrix given by its first column `t`.
#[derive(Debug, Clone, PartialEq)]
pub struct SymToeplitz {
    pub t: Vec<f64>,
}

/// What one Levinson pass produces.
#[derive(Debug, Clone)]
pub struct Factored {
    /// First column of the inverse.
    pub first_column: Vec<f64>,
    pub log_det: f64,
    /// `T⁻¹ b` for each right-hand side given.
    pub solutions: Vec<Vec<f64>>,
}

impl SymToeplitz {
    pub fn len(&self) -> usize {
        self.t.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    /// `T x`.
    pub fn matvec(&self, x: &[f64]) -> Vec<f64> {
        let n = self.len();
        (0..n)
            .map(|i| (0..n).map(|j| self.t[i.abs_diff(j)] * x[j]).sum())
            .collect()
    }

    /// Levinson's recursion for `T x = b` for every `b` in `rhs`, with the log-determinant and the
    /// first column of `T⁻¹`. `None` if a leading minor is not positive (T is not SPD to working
    /// precision).
    pub fn factor(&self, rhs: &[&[f64]]) -> Option<Factored> {
        let n = self.len();
        let t = &self.t;
        if n == 0 || t[0] <= 0.0 {
            return None;
        }
        // f solves T_k f = e₁; by symmetry its reverse g solves T_k g = e_k.
        let mut f = Vec::with_capacity(n);
        let mut g = Vec::with_capacity(n);
        f.push(1.0 / t[0]);
        g.push(1.0 / t[0]);
        let mut log_det = t[0].ln();
        let mut xs: Vec<Vec<f64>> = rhs.iter().map(|b| vec![b[0] / t[0]]).collect();
        let mut next_f = Vec::with_capacity(n);
        for k in 1..n {
            // T_{k+1} [f; 0] = e₁ + ε e_{k+1}, T_{k+1} [0; g] = ε e₁ + e_{k+1}.
            let eps: f64 = (0..k).map(|i| t[k - i] * f[i]).sum();
            let den = 1.0 - eps * eps;
            if den <= 0.0 {
                return None;
            }
            next_f.clear();
            next_f.push(f[0] / den);
            for i in 1..k {
                next_f.push((f[i] - eps * g[i - 1]) / den);
            }
            next_f.push(-eps * g[k - 1] / den);
            std::mem::swap(&mut f, &mut next_f);
            g.clear();
            g.extend(f.iter().rev());
            // (T_{k+1}⁻¹)_{k+1,k+1} = det T_k / det T_{k+1} = g_k = f₀.
            if f[0].is_nan() || f[0] <= 0.0 {
                return None;
            }
            log_det -= f[0].ln();
            for (x, b) in xs.iter_mut().zip(rhs) {
                let ex: f64 = (0..k).map(|i| t[k - i] * x[i]).sum();
                let c = b[k] - ex;
                x.push(0.0);
                for (xi, gi) in x.iter_mut().zip(&g) {
                    *xi += c * gi;
                }
            }
        }
        Some(Factored {
            first_column: f,
            log_det,
            solutions: xs,
        })
    }
}

/// `S[δ] = Σ_{|i−j| = δ} (T⁻¹)_ij` from the first column `x` of `T⁻¹`, by Gohberg–Semencul:
/// `T⁻¹ = (L(x)L(x)ᵀ − L(y)L(y)ᵀ)/x₀` with `L(a)` lower-triangular Toeplitz with first column
/// `a` and `y = (0, x_{n−1}, …, x₁)`.
pub fn inverse_diagonal_sums(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut y = vec![0.0; n];
    for i in 1..n {
        y[i] = x[n - i];
    }
    let mut s = vec![0.0; n];
    for (d, sd) in s.iter_mut().enumerate() {
        // Σ over the pairs (i, j = i − d) of Σ_{m ≤ j} a_{d+m} a_m: each m counts n − d − m times.
        let mut acc = 0.0;
        for m in 0..n - d {
            acc += (x[d + m] * x[m] - y[d + m] * y[m]) * (n - d - m) as f64;
        }
        *sd = if d == 0 { acc } else { 2.0 * acc } / x[0];
    }
    s
}

/// `T⁻¹ b` from the first column `x` of `T⁻¹` (Gohberg–Semencul, as in
/// [`inverse_diagonal_sums`]): four triangular Toeplitz products, O(n²).
pub fn apply_inverse(x: &[f64], b: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut y = vec![0.0; n];
    for i in 1..n {
        y[i] = x[n - i];
    }
    // L(a)ᵀ b: (Lᵀb)_j = Σ_{i ≥ j} a_{i−j} b_i; then L(a) c: (Lc)_i = Σ_{j ≤ i} a_{i−j} c_j.
    let lt = |a: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|j| (j..n).map(|i| a[i - j] * b[i]).sum())
            .collect()
    };
    let l = |a: &[f64], c: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|i| (0..=i).map(|j| a[i - j] * c[j]).sum())
            .collect()
    };
    let (p, q) = (l(x, &lt(x)), l(&y, &lt(&y)));
    p.iter().zip(&q).map(|(p, q)| (p - q) / x[0]).collect()
}

/// `S[δ] = Σ_{|i−j| = δ} a_i b_j`: the diagonal sums of the outer product `a bᵀ`.
pub fn outer_diagonal_sums(a: &[f64], b: &[f64]) -> Vec<f64> {
    let n = a.len();
    let mut s = vec![0.0; n];
    for i in 0..n {
        s[0] += a[i] * b[i];
    }
    for d in 1..n {
        let mut acc = 0.0;
        for i in 0..n - d {
            acc += a[i + d] * b[i] + a[i] * b[i + d];
        }
        s[d] = acc;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    fn kernel_like(n: usize) -> SymToeplitz {
        // A smooth, badly conditioned SPD kernel with jitter, like the GP's.
        let h = 1.0 / (n - 1) as f64;
        let mut t: Vec<f64> = (0..n)
            .map(|d| {
                let x = d as f64 * h;
                (-x * x / (2.0 * 0.05f64.powi(2))).exp()
                    * (2.0 * std::f64::consts::PI * 3.0 * x).cos()
                    + 0.3 * (-x * x / 0.5).exp()
            })
            .collect();
        t[0] += 1e-6;
        SymToeplitz { t }
    }

    #[test]
    fn levinson_matches_dense_cholesky() {
        let n = 60;
        let tz = kernel_like(n);
        let dense = DMatrix::from_fn(n, n, |i, j| tz.t[i.abs_diff(j)]);
        let chol = dense.clone().cholesky().unwrap();
        let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.3).sin()).collect();
        let fac = tz.factor(&[&b]).unwrap();
        let want = chol.solve(&nalgebra::DVector::from_column_slice(&b));
        let want_norm = want.norm();
        let rel =
            (nalgebra::DVector::from_column_slice(&fac.solutions[0]) - &want).norm() / want.norm();
        assert!(rel < 1e-6, "solve: relative difference {rel}");
        let logdet: f64 = 2.0
            * chol
                .l_dirty()
                .diagonal()
                .iter()
                .map(|v| v.ln())
                .sum::<f64>();
        assert!(
            (fac.log_det - logdet).abs() < 1e-7 * logdet.abs().max(1.0),
            "{} vs {logdet}",
            fac.log_det
        );
        let inv = chol.inverse();
        let mut sums = vec![0.0; n];
        for i in 0..n {
            for j in 0..n {
                sums[i.abs_diff(j)] += inv[(i, j)];
            }
        }
        let got = inverse_diagonal_sums(&fac.first_column);
        let scale = sums.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for d in 0..n {
            assert!(
                (got[d] - sums[d]).abs() < 1e-6 * scale,
                "δ = {d}: {} vs {}",
                got[d],
                sums[d]
            );
        }
        // Diagonal sums of an outer product.
        let c: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).cos()).collect();
        let s = outer_diagonal_sums(&b, &c);
        let mut want = vec![0.0; n];
        for i in 0..n {
            for j in 0..n {
                want[i.abs_diff(j)] += b[i] * c[j];
            }
        }
        for d in 0..n {
            assert!((s[d] - want[d]).abs() < 1e-12);
        }
        let again = apply_inverse(&fac.first_column, &b);
        let rel = again
            .iter()
            .zip(&fac.solutions[0])
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt()
            / want_norm;
        assert!(rel < 1e-6, "Gohberg–Semencul solve: {rel}");
        let back = tz.matvec(&fac.solutions[0]);
        for (x, y) in back.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6);
        }
    }

    #[test]
    fn not_positive_definite_is_reported() {
        let tz = SymToeplitz {
            t: vec![1.0, 2.0, 0.0],
        };
        assert!(tz.factor(&[]).is_none());
    }
}
