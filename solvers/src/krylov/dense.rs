//! Small dense helpers for the recycling methods: tall-skinny QR of vector blocks, combinations of
//! vector blocks, and the harmonic Ritz and Ritz problems (a few dozen unknowns, via nalgebra).

use crate::linalg::{axpy, dot, norm2};
use nalgebra::{Complex, DMatrix, DVector};

/// Orthonormalises the `data.len() / n` columns of a column-major block in place by modified
/// Gram–Schmidt (run twice for stability) and returns R with `old columns = Q·R`; `None` if the
/// block is numerically rank-deficient.
pub fn thin_qr(data: &mut [f64], n: usize) -> Option<DMatrix<f64>> {
    let k = data.len() / n.max(1);
    let mut r = DMatrix::zeros(k, k);
    for j in 0..k {
        let (done, rest) = data.split_at_mut(j * n);
        let cj = &mut rest[..n];
        let before = norm2(cj);
        for _ in 0..2 {
            for (i, q) in done.chunks_exact(n).enumerate() {
                let c = dot(cj, q);
                r[(i, j)] += c;
                axpy(-c, q, cj);
            }
        }
        let nrm = norm2(cj);
        if nrm <= 1e-12 * before || !nrm.is_finite() {
            return None;
        }
        r[(j, j)] = nrm;
        cj.iter_mut().for_each(|v| *v /= nrm);
    }
    Some(r)
}

/// `cols ← cols · R⁻¹` for upper-triangular R, on a column-major block.
pub fn right_solve_upper_block(data: &mut [f64], n: usize, r: &DMatrix<f64>) {
    let k = data.len() / n.max(1);
    for j in 0..k {
        let (done, rest) = data.split_at_mut(j * n);
        let cj = &mut rest[..n];
        for (i, ui) in done.chunks_exact(n).enumerate() {
            axpy(-r[(i, j)], ui, cj);
        }
        let d = r[(j, j)];
        cj.iter_mut().for_each(|v| *v /= d);
    }
}

/// Rows per block in [`combine`]: the inputs' and outputs' slices of one block stay in L1/L2.
const COMBINE_ROWS: usize = 512;

/// `block · coeffs`: column j of the result is Σᵢ coeffs[i, j]·block[i]. Computed block of rows
/// by block of rows, four outputs at a time, so each input element is loaded once per four
/// multiply-adds and the outputs stay in L1.
pub fn combine(block: &[&[f64]], coeffs: &DMatrix<f64>) -> Vec<Vec<f64>> {
    let n = block.first().map_or(0, |v| v.len());
    let cols = coeffs.ncols();
    let mut out = vec![vec![0.0; n]; cols];
    let mut start = 0;
    while start < n {
        let end = (start + COMBINE_ROWS).min(n);
        for (g, group) in out.chunks_mut(4).enumerate() {
            let j0 = 4 * g;
            match group {
                [o0, o1, o2, o3] => {
                    let (o0, o1, o2, o3) = (
                        &mut o0[start..end],
                        &mut o1[start..end],
                        &mut o2[start..end],
                        &mut o3[start..end],
                    );
                    for (i, v) in block.iter().enumerate() {
                        let c = [
                            coeffs[(i, j0)],
                            coeffs[(i, j0 + 1)],
                            coeffs[(i, j0 + 2)],
                            coeffs[(i, j0 + 3)],
                        ];
                        for (t, &x) in v[start..end].iter().enumerate() {
                            o0[t] += c[0] * x;
                            o1[t] += c[1] * x;
                            o2[t] += c[2] * x;
                            o3[t] += c[3] * x;
                        }
                    }
                }
                rest => {
                    for (dj, o) in rest.iter_mut().enumerate() {
                        let o = &mut o[start..end];
                        for (i, v) in block.iter().enumerate() {
                            axpy(coeffs[(i, j0 + dj)], &v[start..end], o);
                        }
                    }
                }
            }
        }
        start = end;
    }
    out
}

/// Harmonic Ritz vectors for GCRO-DR: the `k` eigenvectors of `Gᵀ G z = θ Gᵀ VW z` with the
/// smallest |θ|, returned as the columns of a real m×k' matrix (a complex pair contributes its real
/// and imaginary parts, so k' may be k + 1). `None` if the small problem is singular.
pub fn harmonic_ritz(g: &DMatrix<f64>, vw: &DMatrix<f64>, k: usize) -> Option<DMatrix<f64>> {
    let m = g.ncols();
    let k = k.min(m);
    if k == 0 {
        return None;
    }
    // θ small ⇔ μ = 1/θ large in (GᵀG)⁻¹ Gᵀ VW z = μ z; GᵀG is SPD, so this side is the stable one.
    let gtg = g.transpose() * g;
    let chol = gtg.cholesky()?;
    let n_mat = chol.solve(&(g.transpose() * vw));
    let eig = n_mat.complex_eigenvalues();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| eig[b].norm().total_cmp(&eig[a].norm()));
    let nc: DMatrix<Complex<f64>> = n_mat.map(|v| Complex::new(v, 0.0));
    let mut vectors: Vec<DVector<f64>> = Vec::with_capacity(k + 1);
    let mut taken: Vec<Complex<f64>> = Vec::new();
    for &idx in &order {
        if vectors.len() >= k {
            break;
        }
        let mu = eig[idx];
        let scale = mu.norm().max(1e-300);
        // The conjugate of a pair already taken adds nothing new.
        if taken
            .iter()
            .any(|t| (t.conj() - mu).norm() <= 1e-10 * scale)
        {
            continue;
        }
        taken.push(mu);
        let z = inverse_iteration(&nc, mu)?;
        let re = z.map(|c| c.re);
        vectors.push(re);
        if mu.im.abs() > 1e-10 * scale {
            vectors.push(z.map(|c| c.im));
        }
    }
    let cols = vectors.len();
    Some(DMatrix::from_fn(m, cols, |i, j| vectors[j][i]))
}

/// An eigenvector of `a` for the eigenvalue nearest `mu`, by shifted inverse iteration.
fn inverse_iteration(a: &DMatrix<Complex<f64>>, mu: Complex<f64>) -> Option<DVector<Complex<f64>>> {
    let m = a.nrows();
    let scale = a.norm().max(1e-300);
    for perturb in [1e-10, 1e-7, 1e-4] {
        let shift = mu + Complex::new(perturb * scale, perturb * scale * 0.5);
        let shifted = a - DMatrix::from_diagonal_element(m, m, shift);
        let lu = shifted.lu();
        let mut z = DVector::from_fn(m, |i, _| Complex::new(1.0 + 0.1 * i as f64, 0.0));
        let mut ok = true;
        for _ in 0..3 {
            match lu.solve(&z) {
                Some(next) => {
                    let nrm = next.norm();
                    if !nrm.is_finite() || nrm == 0.0 {
                        ok = false;
                        break;
                    }
                    z = next / Complex::new(nrm, 0.0);
                }
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            return Some(z);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thin_qr_reconstructs_block() {
        let n = 10;
        let cols: Vec<f64> = (0..3)
            .flat_map(|j| (0..n).map(move |i| ((i * (j + 2)) as f64).sin() + j as f64))
            .collect();
        let mut q = cols.clone();
        let r = thin_qr(&mut q, n).unwrap();
        let col = |m: &[f64], j: usize| m[j * n..(j + 1) * n].to_vec();
        for j in 0..3 {
            for i in 0..3 {
                assert!((dot(&col(&q, i), &col(&q, j)) - f64::from(i == j)).abs() < 1e-13);
            }
            let refs: Vec<Vec<f64>> = (0..3).map(|i| col(&q, i)).collect();
            let refs: Vec<&[f64]> = refs.iter().map(|v| v.as_slice()).collect();
            let back = combine(&refs, &r);
            for (x, y) in back[j].iter().zip(&col(&cols, j)) {
                assert!((x - y).abs() < 1e-12);
            }
        }
        let mut dependent = col(&cols, 0);
        dependent.extend(col(&cols, 0).iter().map(|v| 2.0 * v));
        assert!(thin_qr(&mut dependent, n).is_none());
    }

    #[test]
    fn harmonic_ritz_of_square_problem_finds_smallest_eigenvectors() {
        // With G square and VW = I the problem is Gᵀ G z = θ Gᵀ z, i.e. G z = θ z.
        let g = DMatrix::from_diagonal(&DVector::from_vec(vec![5.0, 0.5, 3.0, 0.1]));
        let p = harmonic_ritz(&g, &DMatrix::identity(4, 4), 2).unwrap();
        assert_eq!(p.ncols(), 2);
        // The span is that of e₁ and e₃ (eigenvalues 0.5 and 0.1).
        for j in 0..2 {
            assert!(p[(0, j)].abs() < 1e-8 && p[(2, j)].abs() < 1e-8);
        }
    }
}
