//! The ML-VMS hierarchy: the coarse mesh and the nested refined boxes, the coefficient numbering
//! (a hierarchical basis: level l keeps only the functions at its new nodes), and the maps `T_m`
//! from all coefficients to nodal values on mesh m. See [`super::multilevel`] for the method.

use super::chidenn::{ChidennParams, ChidennSpace, ElementValues};
use super::fem::{point, shape, shape_gradients};
use super::mesh::BoxMesh;
use super::multilevel::MultiscaleError;
use rayon::prelude::*;
use sprs::{CsMat, TriMat};
use std::collections::HashMap;

/// A refined box around a feature, as a config gives it: its half width (snapped outwards to the
/// level above's nodes) and the cells of this level per cell of the level above, per axis.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BoxLevel {
    pub half_width: f64,
    pub refine: usize,
}

impl BoxLevel {
    pub fn validate(&self) -> Result<(), crate::InvalidParam> {
        crate::param::require(
            self.half_width > 0.0 && self.half_width < 0.5 && (1..=16).contains(&self.refine),
            "",
            "half_width in (0, 0.5) and refine from 1 to 16",
            format!("half_width = {}, refine = {}", self.half_width, self.refine),
        )
    }

    /// Every level of a list, with its index in the field: `levels[1]`.
    pub fn validate_all(levels: &[BoxLevel]) -> Result<(), crate::InvalidParam> {
        for (i, l) in levels.iter().enumerate() {
            l.validate().map_err(|mut e| {
                e.field = format!("levels[{i}]");
                e
            })?;
        }
        Ok(())
    }
}

/// A refined box: `[lo, hi]` must lie on nodes of the level above and strictly inside it, and its
/// mesh refines that level's cells by `refine` per axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelSpec<const D: usize> {
    pub lo: [f64; D],
    pub hi: [f64; D],
    pub refine: usize,
}

impl<const D: usize> LevelSpec<D> {
    /// The box `centre ± half_width` snapped outwards to nodes of `parent` and kept at least one
    /// cell inside it, refined by `refine`.
    pub fn around(parent: &BoxMesh<D>, centre: [f64; D], half_width: f64, refine: usize) -> Self {
        let h = parent.h();
        let mut lo = [0.0; D];
        let mut hi = [0.0; D];
        for k in 0..D {
            let a = ((centre[k] - half_width - parent.lo[k]) / h[k]).floor();
            let b = ((centre[k] + half_width - parent.lo[k]) / h[k]).ceil();
            let last = parent.cells[k] as f64 - 1.0;
            let (a, b) = (a.clamp(1.0, last - 1.0), b.clamp(2.0, last));
            let b = b.max(a + 1.0);
            lo[k] = parent.lo[k] + a * h[k];
            hi[k] = parent.lo[k] + b * h[k];
        }
        Self { lo, hi, refine }
    }

    /// The mesh this level gets inside `parent`.
    pub fn mesh(&self, parent: &BoxMesh<D>) -> BoxMesh<D> {
        let h = parent.h();
        let cells = std::array::from_fn(|k| {
            ((self.hi[k] - self.lo[k]) / h[k]).round() as usize * self.refine
        });
        BoxMesh::new(self.lo, self.hi, cells)
    }
}

/// The functions a level contributes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Basis {
    /// Multilinear hats (Q1).
    #[default]
    Linear,
    /// The convolution-patch basis of [`super::chidenn`] on the level's mesh.
    ///
    /// Use it on every level. Below a linear level it loses its order: the hierarchical
    /// C-HiDeNN functions vanish at the coarse nodes and are smooth, so they cannot cancel the
    /// kinks of the coarse hats (measured on the 1 %-wide bump, 32² + two ×4 boxes: linear,
    /// linear, C-HiDeNN gives 1.6e-2 against 7.7e-3 with linear everywhere and 1.3e-3 with
    /// C-HiDeNN everywhere).
    Chidenn(ChidennParams),
}

/// Gauss points per axis, at least, wherever a C-HiDeNN level is integrated: its functions are
/// not polynomials.
pub const CHIDENN_QUADRATURE: usize = 4;

/// The meshes, the coefficient numbering and the maps `T_m`.
#[derive(Debug, Clone)]
pub struct Hierarchy<const D: usize> {
    pub meshes: Vec<BoxMesh<D>>,
    /// Per level, the mesh nodes that carry coefficients, and their first coefficient index.
    pub dofs: Vec<Vec<usize>>,
    pub offsets: Vec<usize>,
    pub total: usize,
    /// `T_m`: nodal values on mesh m from all coefficients.
    pub maps: Vec<CsMat<f64>>,
    pub bases: Vec<Basis>,
    /// The C-HiDeNN functions of the levels that use them.
    pub(super) spaces: Vec<Option<ChidennSpace<D>>>,
    /// Per level, the coefficient of each mesh node (`usize::MAX`: none).
    pub(super) dof_of: Vec<Vec<usize>>,
}

/// Where element `cell` of a finer mesh sits in a coarser level: that level's element, the
/// sub-cell inside it, and the refinement ratio per axis.
pub(super) struct Placement<const D: usize> {
    pub(super) corner: [usize; D],
    sub: [usize; D],
    ratio: [usize; D],
}

/// A C-HiDeNN table: level, clipping of the element's patches, sub-cell.
pub(super) type TableKey<const D: usize> = (usize, [(usize, usize); D], [usize; D]);

/// The functions of all levels that are non-zero on one element, at a rule's points:
/// `values[a * points + q]`.
pub(super) struct Active<const D: usize> {
    pub(super) dofs: Vec<usize>,
    pub(super) values: Vec<f64>,
    pub(super) gradients: Vec<[f64; D]>,
}

fn tol(h: f64) -> f64 {
    1e-9 * h
}

impl<const D: usize> Hierarchy<D> {
    /// Linear elements on every level.
    pub fn new(coarse: BoxMesh<D>, levels: &[LevelSpec<D>]) -> Result<Self, MultiscaleError> {
        Self::with_bases(coarse, levels, &[])
    }

    /// `bases`: one per level, the coarse mesh first, or empty for linear everywhere.
    ///
    /// C-HiDeNN levels keep the same coefficients as linear ones: their boundary nodes use
    /// tensor-product patches (see [`super::chidenn`]), so zero values on `∂Ω_l` make `u_l`
    /// vanish on all of `∂Ω_l`, and Dirichlet values on `∂Ω` are exact conditions, not just
    /// nodal ones.
    pub fn with_bases(
        coarse: BoxMesh<D>,
        levels: &[LevelSpec<D>],
        bases: &[Basis],
    ) -> Result<Self, MultiscaleError> {
        let mut meshes = vec![coarse];
        for (l, spec) in levels.iter().enumerate() {
            let parent = meshes[l];
            let h = parent.h();
            let mut cells = [0; D];
            for k in 0..D {
                let a = (spec.lo[k] - parent.lo[k]) / h[k];
                let b = (spec.hi[k] - parent.lo[k]) / h[k];
                let bad = |m: &str| MultiscaleError::BadLevel {
                    level: l + 1,
                    message: m.to_string(),
                };
                if (a - a.round()).abs() > 1e-9 || (b - b.round()).abs() > 1e-9 {
                    return Err(bad("the box must lie on nodes of the level above"));
                }
                if a.round() < 1.0 || b.round() > parent.cells[k] as f64 - 1.0 || b <= a {
                    return Err(bad(
                        "the box must be non-empty and strictly inside the level above (at least one cell from its boundary)",
                    ));
                }
                if spec.refine < 1 {
                    return Err(bad("refine must be at least 1"));
                }
                cells[k] = (b.round() - a.round()) as usize * spec.refine;
            }
            meshes.push(BoxMesh::new(spec.lo, spec.hi, cells));
        }
        let bases = match bases.len() {
            0 => vec![Basis::Linear; meshes.len()],
            n if n == meshes.len() => bases.to_vec(),
            n => {
                return Err(MultiscaleError::BadLevel {
                    level: 0,
                    message: format!(
                        "{n} bases given for {} levels (the coarse mesh included)",
                        meshes.len()
                    ),
                })
            }
        };
        let spaces = bases
            .iter()
            .zip(&meshes)
            .enumerate()
            .map(|(level, (basis, mesh))| match basis {
                Basis::Linear => Ok(None),
                Basis::Chidenn(p) => ChidennSpace::new(*mesh, *p)
                    .map(Some)
                    .map_err(|message| MultiscaleError::BadLevel { level, message }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Coefficients: every level-0 node; at level l ≥ 1 the interior nodes that are not nodes
        // of mesh l − 1.
        let mut dofs = vec![(0..meshes[0].nodes()).collect::<Vec<_>>()];
        for l in 1..meshes.len() {
            let (mesh, parent) = (&meshes[l], &meshes[l - 1]);
            let ph = parent.h();
            let new: Vec<usize> = (0..mesh.nodes())
                .filter(|&i| {
                    let m = mesh.node_multi(i);
                    if mesh.on_boundary(m) {
                        return false;
                    }
                    let x = mesh.node_coord(m);
                    !(0..D).all(|k| {
                        let t = (x[k] - parent.lo[k]) / ph[k];
                        (t - t.round()).abs() < tol(1.0)
                    })
                })
                .collect();
            dofs.push(new);
        }
        let mut offsets = vec![0];
        for d in &dofs {
            offsets.push(offsets.last().unwrap() + d.len());
        }
        let total = *offsets.last().unwrap();
        let mut dof_of: Vec<Vec<usize>> =
            meshes.iter().map(|m| vec![usize::MAX; m.nodes()]).collect();
        for (l, level) in dofs.iter().enumerate() {
            for (c, &node) in level.iter().enumerate() {
                dof_of[l][node] = offsets[l] + c;
            }
        }
        let mut hierarchy = Self {
            meshes,
            dofs,
            offsets,
            total,
            maps: Vec::new(),
            bases,
            spaces,
            dof_of,
        };
        hierarchy.maps = if hierarchy.is_linear() {
            hierarchy.linear_maps()
        } else {
            hierarchy.evaluated_maps()
        };
        Ok(hierarchy)
    }

    /// Whether every level uses linear elements (then `u` is Q1 on each region's mesh).
    pub fn is_linear(&self) -> bool {
        self.bases.iter().all(|b| *b == Basis::Linear)
    }

    /// `T_0 = [I 0]`, `T_m = P_{m−1→m} T_{m−1} + E_m` (exact for nested Q1 levels).
    fn linear_maps(&self) -> Vec<CsMat<f64>> {
        let (meshes, dofs, offsets, total) = (&self.meshes, &self.dofs, &self.offsets, self.total);
        let mut maps: Vec<CsMat<f64>> = Vec::new();
        let mut tri = TriMat::new((meshes[0].nodes(), total));
        for (c, &node) in dofs[0].iter().enumerate() {
            tri.add_triplet(node, c, 1.0);
        }
        maps.push(tri.to_csr());
        for l in 1..meshes.len() {
            let prolong = interpolation(&meshes[l - 1], &meshes[l]);
            let inherited: CsMat<f64> = &prolong * &maps[l - 1];
            let mut own = TriMat::new((meshes[l].nodes(), total));
            for (c, &node) in dofs[l].iter().enumerate() {
                own.add_triplet(node, offsets[l] + c, 1.0);
            }
            let own: CsMat<f64> = own.to_csr();
            maps.push(sprs::binop::csmat_binop(
                inherited.view(),
                own.view(),
                |x: &f64, y: &f64| x + y,
            ));
        }
        maps
    }

    /// `T_m` by evaluating every level's functions at the nodes of mesh m.
    fn evaluated_maps(&self) -> Vec<CsMat<f64>> {
        (0..self.meshes.len())
            .map(|m| {
                let mesh = &self.meshes[m];
                let rows: Vec<Vec<(usize, f64)>> = (0..mesh.nodes())
                    .into_par_iter()
                    .map(|i| {
                        let x = mesh.node_coord(mesh.node_multi(i));
                        let mut row = Vec::new();
                        for l in 0..m {
                            row.extend(self.level_values(l, x));
                        }
                        if self.dof_of[m][i] != usize::MAX {
                            row.push((self.dof_of[m][i], 1.0));
                        }
                        row
                    })
                    .collect();
                let mut tri = TriMat::new((mesh.nodes(), self.total));
                for (i, row) in rows.iter().enumerate() {
                    for &(c, v) in row {
                        if v != 0.0 {
                            tri.add_triplet(i, c, v);
                        }
                    }
                }
                tri.to_csr()
            })
            .collect()
    }

    /// The level-l functions that are non-zero at `x`, with their values (none outside `Ω_l`).
    pub fn level_values(&self, l: usize, x: [f64; D]) -> Vec<(usize, f64)> {
        let mesh = &self.meshes[l];
        if !mesh.contains(x) {
            return Vec::new();
        }
        let (e, xi) = mesh.locate(x);
        let dof_of = &self.dof_of[l];
        match &self.spaces[l] {
            None => mesh
                .element_nodes(e)
                .iter()
                .zip(shape(xi))
                .filter(|(&n, _)| dof_of[n] != usize::MAX)
                .map(|(&n, v)| (dof_of[n], v))
                .collect(),
            Some(space) => {
                let corner = mesh.cell(e);
                let ev = space.element_values(corner, &[xi]);
                (0..ev.nodes)
                    .filter_map(|u| {
                        let n = space.slot_node(corner, u)?;
                        (dof_of[n] != usize::MAX).then(|| (dof_of[n], ev.values[u]))
                    })
                    .collect()
            }
        }
    }

    /// `u(x) = Σ_l u_l(x)`.
    pub fn evaluate(&self, coefficients: &[f64], x: [f64; D]) -> f64 {
        (0..self.meshes.len())
            .flat_map(|l| self.level_values(l, x))
            .map(|(c, v)| coefficients[c] * v)
            .sum()
    }

    pub(super) fn placement(&self, l: usize, m: usize, cell: [usize; D]) -> Placement<D> {
        let (coarse, fine) = (&self.meshes[l], &self.meshes[m]);
        let (hc, hf) = (coarse.h(), fine.h());
        let ratio: [usize; D] = std::array::from_fn(|k| (hc[k] / hf[k]).round() as usize);
        // The fine box starts on a node of the level above it, not necessarily of level l: count
        // in fine cells from level l's origin.
        let at: [usize; D] = std::array::from_fn(|k| {
            ((fine.lo[k] - coarse.lo[k]) / hf[k]).round() as usize + cell[k]
        });
        Placement {
            corner: std::array::from_fn(|k| at[k] / ratio[k]),
            sub: std::array::from_fn(|k| at[k] % ratio[k]),
            ratio,
        }
    }

    pub(super) fn table_key(&self, l: usize, p: &Placement<D>) -> TableKey<D> {
        let s = match self.bases[l] {
            Basis::Chidenn(c) => c.patch_layers,
            Basis::Linear => 0,
        };
        let cells = self.meshes[l].cells;
        let clip =
            std::array::from_fn(|k| (p.corner[k].min(s), (cells[k] - 1 - p.corner[k]).min(s)));
        (l, clip, p.sub)
    }

    pub(super) fn local_points(p: &Placement<D>, rule: &[([f64; D], f64)]) -> Vec<[f64; D]> {
        rule.iter()
            .map(|(xi, _)| std::array::from_fn(|k| (p.sub[k] as f64 + xi[k]) / p.ratio[k] as f64))
            .collect()
    }

    /// C-HiDeNN tables for the rule's points in the given elements of mesh m: one per level,
    /// clipping pattern and sub-cell, since interior elements all look alike.
    pub(super) fn chidenn_tables(
        &self,
        m: usize,
        elements: &[usize],
        rule: &[([f64; D], f64)],
    ) -> HashMap<TableKey<D>, ElementValues<D>> {
        let mut wanted: HashMap<TableKey<D>, Placement<D>> = HashMap::new();
        for &e in elements {
            let cell = self.meshes[m].cell(e);
            for l in (0..=m).filter(|&l| self.spaces[l].is_some()) {
                let p = self.placement(l, m, cell);
                wanted.entry(self.table_key(l, &p)).or_insert(p);
            }
        }
        wanted
            .into_par_iter()
            .map(|(key, p)| {
                let space = self.spaces[key.0].as_ref().expect("a C-HiDeNN level");
                (
                    key,
                    space.element_values(p.corner, &Self::local_points(&p, rule)),
                )
            })
            .collect()
    }

    /// Every level's non-zero functions on element `e` of mesh m, at the rule's points.
    pub(super) fn active(
        &self,
        m: usize,
        e: usize,
        rule: &[([f64; D], f64)],
        tables: &HashMap<TableKey<D>, ElementValues<D>>,
    ) -> Active<D> {
        let q = rule.len();
        let cell = self.meshes[m].cell(e);
        let mut out = Active {
            dofs: Vec::new(),
            values: Vec::new(),
            gradients: Vec::new(),
        };
        for l in 0..=m {
            let mesh = &self.meshes[l];
            let p = self.placement(l, m, cell);
            let dof_of = &self.dof_of[l];
            match &self.spaces[l] {
                None => {
                    let points = Self::local_points(&p, rule);
                    let e_l = mesh.cell_index(p.corner);
                    let h = mesh.h();
                    let phi: Vec<Vec<f64>> = points.iter().map(|&xi| shape(xi)).collect();
                    let grad: Vec<Vec<[f64; D]>> =
                        points.iter().map(|&xi| shape_gradients(xi, h)).collect();
                    for (c, &n) in mesh.element_nodes(e_l).iter().enumerate() {
                        if dof_of[n] == usize::MAX {
                            continue;
                        }
                        out.dofs.push(dof_of[n]);
                        out.values.extend((0..q).map(|i| phi[i][c]));
                        out.gradients.extend((0..q).map(|i| grad[i][c]));
                    }
                }
                Some(space) => {
                    let table = &tables[&self.table_key(l, &p)];
                    for u in 0..table.nodes {
                        let Some(n) = space.slot_node(p.corner, u) else {
                            continue;
                        };
                        if dof_of[n] == usize::MAX {
                            continue;
                        }
                        out.dofs.push(dof_of[n]);
                        out.values
                            .extend((0..q).map(|i| table.values[i * table.nodes + u]));
                        out.gradients
                            .extend((0..q).map(|i| table.gradients[i * table.nodes + u]));
                    }
                }
            }
        }
        out
    }

    /// Whether element `e` of mesh `m` belongs to `R_m` (is not covered by mesh m + 1).
    pub(super) fn in_region(&self, m: usize, e: usize) -> bool {
        match self.meshes.get(m + 1) {
            None => true,
            Some(finer) => {
                let centre = point(&self.meshes[m], e, [0.5; D]);
                !finer.contains(centre)
            }
        }
    }

    /// Coefficients whose function interpolates `values` (a function of position) at the nodes of
    /// every mesh: level 0 takes the nodal values, each finer level the surplus over the coarser
    /// levels' interpolant at its new nodes.
    pub fn interpolate(&self, values: &dyn Fn([f64; D]) -> f64) -> Vec<f64> {
        let mut c = vec![0.0; self.total];
        for (l, mesh) in self.meshes.iter().enumerate() {
            let coarser = if l == 0 {
                vec![0.0; mesh.nodes()]
            } else {
                let mut v = vec![0.0; mesh.nodes()];
                sprs::prod::mul_acc_mat_vec_csr(self.maps[l].view(), &c[..], &mut v[..]);
                v
            };
            for (k, &node) in self.dofs[l].iter().enumerate() {
                let x = mesh.node_coord(mesh.node_multi(node));
                c[self.offsets[l] + k] = values(x) - coarser[node];
            }
        }
        c
    }

    /// Whether coefficient `c` is a level-0 node on `∂Ω` (a Dirichlet value).
    pub fn is_dirichlet(&self, c: usize) -> bool {
        let mesh = &self.meshes[0];
        c < self.dofs[0].len() && mesh.on_boundary(mesh.node_multi(self.dofs[0][c]))
    }

    /// Nodal values on every mesh from the coefficients.
    pub fn nodal_values(&self, coefficients: &[f64]) -> Vec<Vec<f64>> {
        self.maps
            .iter()
            .map(|t| {
                let mut out = vec![0.0; t.rows()];
                sprs::prod::mul_acc_mat_vec_csr(t.view(), coefficients, &mut out[..]);
                out
            })
            .collect()
    }
}

/// Multilinear interpolation from the nodes of `coarse` to the nodes of `fine` (inside it).
fn interpolation<const D: usize>(coarse: &BoxMesh<D>, fine: &BoxMesh<D>) -> CsMat<f64> {
    let mut tri = TriMat::new((fine.nodes(), coarse.nodes()));
    for i in 0..fine.nodes() {
        let x = fine.node_coord(fine.node_multi(i));
        let (e, xi) = coarse.locate(x);
        let nodes = coarse.element_nodes(e);
        for (w, &node) in shape(xi).iter().zip(&nodes) {
            if w.abs() > 1e-14 {
                tri.add_triplet(i, node, *w);
            }
        }
    }
    tri.to_csr()
}
