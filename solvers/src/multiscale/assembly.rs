//! Assembly of the multilevel Galerkin system, `A = Σ_m T_mᵀ K_m^{R_m} T_m` and
//! `F = Σ_m T_mᵀ F_m^{R_m}`, and the elimination of Dirichlet coefficients that the steady and
//! transient solves share.

use super::fem::{assemble, gauss, point};
use super::hierarchy::{Active, Hierarchy, CHIDENN_QUADRATURE};
use rayon::prelude::*;
use sprs::{CsMat, TriMat};
use std::collections::BTreeMap;

/// Assembled multilevel matrices and load over all coefficients.
pub struct System {
    pub stiffness: CsMat<f64>,
    pub mass: CsMat<f64>,
    pub load: Vec<f64>,
}

/// One element group's stiffness and mass triplets and load entries.
type GroupPart = (
    Vec<(u32, u32, f64)>,
    Vec<(u32, u32, f64)>,
    Vec<(usize, f64)>,
);

/// Adds the Gram matrix of the rows of `rows` (each `len` long) into the dense `n × n` matrix
/// `dense`, row a going to the group function `local[a]`: both triangles, from one product each.
fn add_gram(dense: &mut [f64], n: usize, local: &[usize], rows: &[f64], len: usize) {
    for a in 0..local.len() {
        let ra = &rows[a * len..(a + 1) * len];
        for b in a..local.len() {
            let rb = &rows[b * len..(b + 1) * len];
            let v: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
            dense[local[a] * n + local[b]] += v;
            if b != a {
                dense[local[b] * n + local[a]] += v;
            }
        }
    }
}

/// A CSR matrix from triplets, summing duplicates.
fn csr_from_triplets(n: usize, mut triplets: Vec<(u32, u32, f64)>) -> CsMat<f64> {
    // A stable sort: duplicates are summed in the order they were produced, so the matrix is the
    // same from run to run.
    triplets.par_sort_by_key(|&(r, c, _)| (r, c));
    let mut indptr = vec![0usize; n + 1];
    let mut indices: Vec<usize> = Vec::new();
    let mut data: Vec<f64> = Vec::new();
    let mut last = None;
    for (r, c, v) in triplets {
        if last == Some((r, c)) {
            *data.last_mut().expect("a previous entry") += v;
        } else {
            indices.push(c as usize);
            data.push(v);
            indptr[r as usize + 1] += 1;
            last = Some((r, c));
        }
    }
    for i in 0..n {
        indptr[i + 1] += indptr[i];
    }
    CsMat::new((n, n), indptr, indices, data)
}

impl<const D: usize> Hierarchy<D> {
    /// Stiffness, mass and load by quadrature on each region's mesh, with every level's
    /// functions evaluated at the points: the assembly for hierarchies with C-HiDeNN levels.
    ///
    /// Elements are taken in groups (the children of one element of the level above, or 4^D
    /// tiles on the coarse mesh) whose contributions are summed in a dense matrix over the
    /// group's functions before they become triplets: a coarse function meets every fine element
    /// of its group, so per-element triplets would repeat each pair many times.
    fn assemble_by_quadrature(
        &self,
        conductivity: f64,
        source: &(dyn Fn([f64; D]) -> f64 + Sync),
        quadrature: usize,
        with_stiffness: bool,
        with_mass: bool,
    ) -> System {
        let total = self.total;
        let rule = gauss::<D>(quadrature.max(CHIDENN_QUADRATURE));
        let q = rule.len();
        let mut k_all = Vec::new();
        let mut m_all = Vec::new();
        let mut load = vec![0.0; total];
        for (m, mesh) in self.meshes.iter().enumerate() {
            let elements: Vec<usize> = (0..mesh.elements())
                .filter(|&e| self.in_region(m, e))
                .collect();
            let tables = self.chidenn_tables(m, &elements, &rule);
            let volume: f64 = mesh.h().iter().product();
            let mut groups: BTreeMap<[usize; D], Vec<usize>> = BTreeMap::new();
            for &e in &elements {
                let cell = mesh.cell(e);
                let key = if m == 0 {
                    std::array::from_fn(|k| cell[k] / 4)
                } else {
                    self.placement(m - 1, m, cell).corner
                };
                groups.entry(key).or_default().push(e);
            }
            let groups: Vec<Vec<usize>> = groups.into_values().collect();
            let parts: Vec<GroupPart> = groups
                .par_iter()
                .map(|group| {
                    let acts: Vec<Active<D>> = group
                        .iter()
                        .map(|&e| self.active(m, e, &rule, &tables))
                        .collect();
                    let mut dofs: Vec<usize> =
                        acts.iter().flat_map(|a| a.dofs.iter().copied()).collect();
                    dofs.sort_unstable();
                    dofs.dedup();
                    let n = dofs.len();
                    let mut kd = vec![0.0; if with_stiffness { n * n } else { 0 }];
                    let mut md = vec![0.0; if with_mass { n * n } else { 0 }];
                    let mut fd = vec![0.0; n];
                    let mut scaled: Vec<f64> = Vec::new();
                    let mut weighted: Vec<f64> = Vec::new();
                    for (&e, act) in group.iter().zip(&acts) {
                        let local: Vec<usize> = act
                            .dofs
                            .iter()
                            .map(|d| dofs.binary_search(d).expect("a group dof"))
                            .collect();
                        let na = local.len();
                        for (i, (xi, w)) in rule.iter().enumerate() {
                            let src = source(point(mesh, e, *xi));
                            if src != 0.0 {
                                for a in 0..na {
                                    fd[local[a]] += src * act.values[a * q + i] * w * volume;
                                }
                            }
                        }
                        if with_stiffness {
                            // Rows of √(w k |E|)·∇φ, so each entry is one contiguous dot.
                            scaled.clear();
                            for a in 0..na {
                                for (i, (_, w)) in rule.iter().enumerate() {
                                    let c = (w * volume * conductivity).sqrt();
                                    scaled.extend(act.gradients[a * q + i].iter().map(|g| g * c));
                                }
                            }
                            add_gram(&mut kd, n, &local, &scaled, q * D);
                        }
                        if with_mass {
                            weighted.clear();
                            for a in 0..na {
                                for (i, (_, w)) in rule.iter().enumerate() {
                                    weighted.push(act.values[a * q + i] * (w * volume).sqrt());
                                }
                            }
                            add_gram(&mut md, n, &local, &weighted, q);
                        }
                    }
                    let emit = |dense: &[f64]| -> Vec<(u32, u32, f64)> {
                        let mut out = Vec::new();
                        for (i, row) in dense.chunks(n.max(1)).enumerate() {
                            for (j, &v) in row.iter().enumerate() {
                                if v != 0.0 {
                                    out.push((dofs[i] as u32, dofs[j] as u32, v));
                                }
                            }
                        }
                        out
                    };
                    let f: Vec<(usize, f64)> = dofs
                        .iter()
                        .copied()
                        .zip(fd)
                        .filter(|(_, v)| *v != 0.0)
                        .collect();
                    (emit(&kd), emit(&md), f)
                })
                .collect();
            for (kt, mt, f) in parts {
                k_all.extend(kt);
                m_all.extend(mt);
                for (d, v) in f {
                    load[d] += v;
                }
            }
        }
        System {
            stiffness: csr_from_triplets(total, k_all),
            mass: csr_from_triplets(total, m_all),
            load,
        }
    }

    /// `A = Σ_m T_mᵀ K_m^{R_m} T_m`, `F = Σ_m T_mᵀ F_m^{R_m}` (and the mass matrix the same way when
    /// `with_mass`), over all coefficients, Dirichlet ones included.
    pub fn assemble(
        &self,
        conductivity: f64,
        source: &(dyn Fn([f64; D]) -> f64 + Sync),
        quadrature: usize,
        with_mass: bool,
    ) -> System {
        if !self.is_linear() {
            return self.assemble_by_quadrature(conductivity, source, quadrature, true, with_mass);
        }
        let total = self.total;
        let add = |a: &CsMat<f64>, b: &CsMat<f64>| {
            sprs::binop::csmat_binop(a.view(), b.view(), |x: &f64, y: &f64| x + y)
        };
        let mut stiffness = CsMat::zero((total, total));
        let mut mass = CsMat::zero((total, total));
        let mut load = vec![0.0; total];
        for (m, mesh) in self.meshes.iter().enumerate() {
            let local = assemble(
                mesh,
                conductivity,
                source,
                &|e| self.in_region(m, e),
                quadrature,
            );
            let t = &self.maps[m];
            let tt: CsMat<f64> = t.transpose_view().to_csr();
            let project = |k: &CsMat<f64>| -> CsMat<f64> {
                let kt: CsMat<f64> = k * t;
                &tt * &kt
            };
            stiffness = add(&stiffness, &project(&local.stiffness));
            if with_mass {
                mass = add(&mass, &project(&local.mass));
            }
            sprs::prod::mul_acc_mat_vec_csr(tt.view(), &local.load[..], &mut load[..]);
        }
        System {
            stiffness,
            mass,
            load,
        }
    }

    /// The load vector alone (for a source that changes in time).
    pub fn load(&self, source: &(dyn Fn([f64; D]) -> f64 + Sync), quadrature: usize) -> Vec<f64> {
        if !self.is_linear() {
            return self
                .assemble_by_quadrature(0.0, source, quadrature, false, false)
                .load;
        }
        let mut load = vec![0.0; self.total];
        for (m, mesh) in self.meshes.iter().enumerate() {
            let local = super::fem::load(mesh, source, &|e| self.in_region(m, e), quadrature);
            let tt: CsMat<f64> = self.maps[m].transpose_view().to_csr();
            sprs::prod::mul_acc_mat_vec_csr(tt.view(), &local[..], &mut load[..]);
        }
        load
    }
}

/// The coefficients that stay unknown once the Dirichlet ones are fixed, and the restriction of the
/// system to them.
#[derive(Debug, Clone)]
pub struct Elimination {
    /// Per coefficient, its row in the reduced system (`usize::MAX`: fixed).
    pub index: Vec<usize>,
    /// The free coefficients, in order.
    pub free: Vec<usize>,
}

impl Elimination {
    pub fn new(total: usize, is_fixed: impl Fn(usize) -> bool) -> Self {
        let mut index = vec![usize::MAX; total];
        let mut free = Vec::new();
        for (c, slot) in index.iter_mut().enumerate() {
            if !is_fixed(c) {
                *slot = free.len();
                free.push(c);
            }
        }
        Self { index, free }
    }

    /// `Σ w·A` over the free rows and columns of each `(A, w)`.
    pub fn matrix(&self, terms: &[(&CsMat<f64>, f64)]) -> CsMat<f64> {
        let nnz = terms.iter().map(|(a, _)| a.nnz()).sum();
        let mut tri = TriMat::with_capacity((self.free.len(), self.free.len()), nnz);
        for &(a, w) in terms {
            for (row, vec) in a.outer_iterator().enumerate() {
                let r = self.index[row];
                if r == usize::MAX {
                    continue;
                }
                for (col, &v) in vec.iter() {
                    if self.index[col] != usize::MAX {
                        tri.add_triplet(r, self.index[col], w * v);
                    }
                }
            }
        }
        tri.to_csr()
    }

    /// The reduced right-hand side of `A c = f` with the fixed coefficients moved across:
    /// `f_free − A_{free, fixed} g`.
    pub fn rhs(&self, a: &CsMat<f64>, f: &[f64], fixed: &[Option<f64>]) -> Vec<f64> {
        let mut rhs: Vec<f64> = self.free.iter().map(|&c| f[c]).collect();
        for (row, vec) in a.outer_iterator().enumerate() {
            let r = self.index[row];
            if r == usize::MAX {
                continue;
            }
            for (col, &v) in vec.iter() {
                if let Some(g) = fixed[col] {
                    rhs[r] -= v * g;
                }
            }
        }
        rhs
    }
}
