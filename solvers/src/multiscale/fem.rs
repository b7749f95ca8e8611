//! Multilinear (Q1: bilinear in 2-D, trilinear in 3-D) finite elements on a [`BoxMesh`]: shape
//! functions, tensor Gauss rules, and assembly of stiffness, mass and load into CSR.

use super::mesh::BoxMesh;
use sprs::{CsMat, TriMat};

/// Gauss–Legendre points and weights on [0, 1] with `n ≥ 1` points (exact for degree 2n − 1).
/// The roots of the Legendre polynomial are found by Newton's method from Chebyshev guesses.
pub fn gauss_1d(n: usize) -> Vec<(f64, f64)> {
    let n = n.max(1);
    let mut rule = Vec::with_capacity(n);
    for i in 0..n {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            // P_n(x) and P_n'(x) by the three-term recurrence.
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * x * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            dp = n as f64 * (x * p1 - p0) / (x * x - 1.0);
            let step = p1 / dp;
            x -= step;
            if step.abs() < 1e-16 {
                break;
            }
        }
        let w = 2.0 / ((1.0 - x * x) * dp * dp);
        rule.push((0.5 * (1.0 - x), 0.5 * w));
    }
    rule
}

/// The tensor rule on [0, 1]^D: points and weights.
pub fn gauss<const D: usize>(n: usize) -> Vec<([f64; D], f64)> {
    let g = gauss_1d(n);
    let count = g.len().pow(D as u32);
    (0..count)
        .map(|mut i| {
            let mut p = [0.0; D];
            let mut w = 1.0;
            for pk in p.iter_mut() {
                let (x, wx) = g[i % g.len()];
                *pk = x;
                w *= wx;
                i /= g.len();
            }
            (p, w)
        })
        .collect()
}

/// Values of the `2^D` shape functions at local coordinates `xi` (corner `c` has bit k set when it
/// sits at the upper end of axis k).
pub fn shape<const D: usize>(xi: [f64; D]) -> Vec<f64> {
    (0..1usize << D)
        .map(|c| {
            (0..D)
                .map(|k| {
                    if (c >> k) & 1 == 1 {
                        xi[k]
                    } else {
                        1.0 - xi[k]
                    }
                })
                .product()
        })
        .collect()
}

/// Physical gradients of the shape functions at `xi` for cell sizes `h`.
pub fn shape_gradients<const D: usize>(xi: [f64; D], h: [f64; D]) -> Vec<[f64; D]> {
    (0..1usize << D)
        .map(|c| {
            std::array::from_fn(|j| {
                let mut g = if (c >> j) & 1 == 1 { 1.0 } else { -1.0 } / h[j];
                for k in (0..D).filter(|&k| k != j) {
                    g *= if (c >> k) & 1 == 1 {
                        xi[k]
                    } else {
                        1.0 - xi[k]
                    };
                }
                g
            })
        })
        .collect()
}

/// The physical point at local coordinates `xi` of element `e`.
pub fn point<const D: usize>(mesh: &BoxMesh<D>, e: usize, xi: [f64; D]) -> [f64; D] {
    let base = mesh.node_coord(mesh.cell(e));
    let h = mesh.h();
    std::array::from_fn(|k| base[k] + xi[k] * h[k])
}

/// Stiffness `∫ k ∇φ_i·∇φ_j`, mass `∫ φ_i φ_j` and load `∫ Q φ_i` over the elements `include`
/// accepts, with `quadrature` Gauss points per axis.
pub struct Assembled {
    pub stiffness: CsMat<f64>,
    pub mass: CsMat<f64>,
    pub load: Vec<f64>,
}

pub fn assemble<const D: usize>(
    mesh: &BoxMesh<D>,
    conductivity: f64,
    source: &(dyn Fn([f64; D]) -> f64 + Sync),
    include: &dyn Fn(usize) -> bool,
    quadrature: usize,
) -> Assembled {
    let n = mesh.nodes();
    let h = mesh.h();
    let volume: f64 = h.iter().product();
    let rule = gauss::<D>(quadrature);
    // Every element of a structured mesh has the same element matrices.
    let corners = 1usize << D;
    let mut ke = vec![0.0; corners * corners];
    let mut me = vec![0.0; corners * corners];
    let tables: Vec<(Vec<f64>, Vec<[f64; D]>, f64)> = rule
        .iter()
        .map(|&(xi, w)| (shape(xi), shape_gradients(xi, h), w * volume))
        .collect();
    for (phi, grad, w) in &tables {
        for a in 0..corners {
            for b in 0..corners {
                let dot: f64 = (0..D).map(|k| grad[a][k] * grad[b][k]).sum();
                ke[a * corners + b] += conductivity * dot * w;
                me[a * corners + b] += phi[a] * phi[b] * w;
            }
        }
    }
    let kept: Vec<usize> = (0..mesh.elements()).filter(|&e| include(e)).collect();
    let mut k_tri = TriMat::with_capacity((n, n), kept.len() * corners * corners);
    let mut m_tri = TriMat::with_capacity((n, n), kept.len() * corners * corners);
    let mut load = vec![0.0; n];
    for &e in &kept {
        let nodes = mesh.element_nodes(e);
        for a in 0..corners {
            for b in 0..corners {
                k_tri.add_triplet(nodes[a], nodes[b], ke[a * corners + b]);
                m_tri.add_triplet(nodes[a], nodes[b], me[a * corners + b]);
            }
        }
        for ((phi, _, w), &(xi, _)) in tables.iter().zip(&rule) {
            let q = source(point(mesh, e, xi));
            if q != 0.0 {
                for a in 0..corners {
                    load[nodes[a]] += q * phi[a] * w;
                }
            }
        }
    }
    Assembled {
        stiffness: k_tri.to_csr(),
        mass: m_tri.to_csr(),
        load,
    }
}

/// The load `∫ Q φ_i` alone over the elements `include` accepts.
pub fn load<const D: usize>(
    mesh: &BoxMesh<D>,
    source: &(dyn Fn([f64; D]) -> f64 + Sync),
    include: &dyn Fn(usize) -> bool,
    quadrature: usize,
) -> Vec<f64> {
    let volume: f64 = mesh.h().iter().product();
    let rule = gauss::<D>(quadrature);
    let phis: Vec<Vec<f64>> = rule.iter().map(|&(xi, _)| shape(xi)).collect();
    let mut out = vec![0.0; mesh.nodes()];
    for e in (0..mesh.elements()).filter(|&e| include(e)) {
        let nodes = mesh.element_nodes(e);
        for (phi, &(xi, w)) in phis.iter().zip(&rule) {
            let q = source(point(mesh, e, xi));
            if q != 0.0 {
                for (a, &n) in nodes.iter().enumerate() {
                    out[n] += q * phi[a] * w * volume;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_functions_partition_unity_and_gradients_match_differences() {
        let xi = [0.3, 0.8, 0.55];
        let phi = shape(xi);
        assert!((phi.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        let h = [0.5, 2.0, 1.0];
        let g = shape_gradients(xi, h);
        let eps = 1e-7;
        for j in 0..3 {
            let mut xp = xi;
            xp[j] += eps;
            let phip = shape(xp);
            for c in 0..8 {
                let fd = (phip[c] - phi[c]) / eps / h[j];
                assert!((g[c][j] - fd).abs() < 1e-6, "corner {c}, axis {j}");
            }
        }
    }

    #[test]
    fn gauss_rules_integrate_polynomials_exactly() {
        for n in 1..=8 {
            let deg = 2 * n - 1;
            let integral: f64 = gauss_1d(n)
                .iter()
                .map(|(x, w)| w * x.powi(deg as i32))
                .sum();
            assert!(
                (integral - 1.0 / (deg as f64 + 1.0)).abs() < 1e-14,
                "{n} points"
            );
        }
        let v: f64 = gauss::<2>(2).iter().map(|(p, w)| w * p[0] * p[1]).sum();
        assert!((v - 0.25).abs() < 1e-15);
    }

    #[test]
    fn stiffness_annihilates_constants_and_mass_sums_to_the_volume() {
        let mesh = BoxMesh::new([0.0, 0.0], [2.0, 1.0], [4, 3]);
        let a = assemble(&mesh, 3.0, &|_| 1.0, &|_| true, 2);
        let ones = vec![1.0; mesh.nodes()];
        let mut ku = vec![0.0; mesh.nodes()];
        sprs::prod::mul_acc_mat_vec_csr(a.stiffness.view(), &ones[..], &mut ku[..]);
        assert!(ku.iter().all(|v| v.abs() < 1e-12));
        let total: f64 = a.mass.data().iter().sum();
        assert!((total - 2.0).abs() < 1e-12);
        assert!((a.load.iter().sum::<f64>() - 2.0).abs() < 1e-12);
    }
}
