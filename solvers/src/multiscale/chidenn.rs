//! The convolution-patch (C-HiDeNN) basis on a structured box mesh: high-order functions with the
//! unknowns of linear elements.
//!
//! On an element with corner nodes `i`, `u(x) = Σ_i N_i(x) Σ_{j ∈ A_i} W^i_j(x) u_j`, where `N_i`
//! are the multilinear shape functions and `W^i` interpolates the values on the patch `A_i` of
//! nodes within `s` element layers of node `i` (clipped at the mesh boundary). `W^i` is a radial
//! basis interpolant with a cubic-spline kernel of dilation `a` (in units of the element size)
//! augmented by the complete polynomials of degree `p`:
//!
//! ```text
//! [R  P] [α]   [u_A]          R_jk = φ(|y_j − y_k| / a),  P_jq = y_j^q,
//! [Pᵀ 0] [β] = [ 0 ],   W(y) = r(y)ᵀα + p(y)ᵀβ.
//! ```
//!
//! `W^i` interpolates (`W^i_j(y_k) = δ_jk`) and reproduces degree-p polynomials, and `Σ_i N_i = 1`,
//! so the combined functions keep the Kronecker-delta property of linear elements and reproduce
//! every polynomial of degree p. Coordinates are in element units relative to the node, which
//! keeps the systems well scaled on any mesh; polynomial reproduction is unaffected by that affine
//! map. The functions are continuous across element faces: on a face only the face's nodes have
//! `N_i ≠ 0`, and their `W^i` are shared by both elements.
//!
//! **Boundary nodes** take the tensor product of one-dimensional patches (the same construction
//! along each axis) instead of the radial patch. Along an axis where the node sits on the boundary
//! the 1-D factor interpolates, so on that face `W^i` involves face nodes only: a function whose
//! boundary values are zero vanishes on the whole boundary face. That keeps Dirichlet conditions
//! and the nested ML-VMS levels (`u_l = 0` on `∂Ω_l`) conforming, and the tensor product still
//! reproduces every polynomial of degree p.

use super::mesh::BoxMesh;
use crate::param::{positive, require, InvalidParam};
use nalgebra::DMatrix;
use std::collections::HashMap;

/// Parameters of the convolution patch; the defaults are those of the C-HiDeNN tutorials.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct ChidennParams {
    /// `s`: element layers around a node whose nodes form its patch.
    pub patch_layers: usize,
    /// `p`: degree of the complete polynomial the patch reproduces.
    pub degree: usize,
    /// `a`: support radius of the cubic-spline kernel, in element sizes.
    pub dilation: f64,
}

impl Default for ChidennParams {
    fn default() -> Self {
        Self {
            patch_layers: 2,
            degree: 2,
            dilation: 10.0,
        }
    }
}

impl ChidennParams {
    /// Checks the parameters for a `D`-dimensional mesh. The smallest patch, at a corner of the
    /// mesh, has `(s + 1)^D` nodes and must hold at least as many nodes as there are monomials.
    pub fn validate<const D: usize>(&self) -> Result<(), InvalidParam> {
        let s = self.patch_layers;
        require(
            (1..=4).contains(&s),
            "patch_layers",
            "an integer from 1 to 4",
            s,
        )?;
        let a = self.dilation;
        require(
            positive(a),
            "dilation",
            "a positive number of element sizes",
            a,
        )?;
        let smallest = (s + 1).pow(D as u32);
        let monomials = monomials::<D>(self.degree).len();
        require(
            (1..=s).contains(&self.degree) && monomials <= smallest,
            "degree",
            &format!(
                "a degree from 1 to patch_layers = {s} that a corner patch can reproduce (degree {} needs {monomials} patch nodes in {D}-D, a corner patch with s = {s} has {smallest}; raise patch_layers or lower degree)",
                self.degree
            ),
            self.degree,
        )?;
        Ok(())
    }

    /// Nodes per axis of an element's union of patches.
    pub fn width(&self) -> usize {
        2 * self.patch_layers + 2
    }
}

/// The cubic-spline kernel on `z = r / a` (support `z ≤ 1`) and its derivative.
fn cubic_spline(z: f64) -> (f64, f64) {
    if z <= 0.5 {
        (
            2.0 / 3.0 - 4.0 * z * z + 4.0 * z * z * z,
            -8.0 * z + 12.0 * z * z,
        )
    } else if z <= 1.0 {
        let w = 1.0 - z;
        (4.0 / 3.0 * w * w * w, -4.0 * w * w)
    } else {
        (0.0, 0.0)
    }
}

/// Exponents of the complete monomials of total degree ≤ `degree` in `D` variables.
fn monomials<const D: usize>(degree: usize) -> Vec<[u32; D]> {
    let mut out = Vec::new();
    let count = (degree + 1).pow(D as u32);
    for mut i in 0..count {
        let mut e = [0u32; D];
        for ek in e.iter_mut() {
            *ek = (i % (degree + 1)) as u32;
            i /= degree + 1;
        }
        if e.iter().sum::<u32>() as usize <= degree {
            out.push(e);
        }
    }
    out
}

/// `y^e` and its partial derivatives.
fn monomial<const D: usize>(y: [f64; D], e: [u32; D]) -> (f64, [f64; D]) {
    let value = (0..D).map(|k| y[k].powi(e[k] as i32)).product();
    let grad = std::array::from_fn(|j| {
        if e[j] == 0 {
            return 0.0;
        }
        (0..D)
            .map(|k| {
                if k == j {
                    e[k] as f64 * y[k].powi(e[k] as i32 - 1)
                } else {
                    y[k].powi(e[k] as i32)
                }
            })
            .product()
    });
    (value, grad)
}

/// The interpolation weights of one node's patch.
#[derive(Debug, Clone)]
struct Patch<const D: usize> {
    /// Patch nodes relative to the node, in element units (first axis fastest).
    offsets: Vec<[i32; D]>,
    kind: PatchKind,
}

#[derive(Debug, Clone)]
enum PatchKind {
    Radial(RadialPatch),
    /// One 1-D radial patch per axis (for boundary nodes).
    Tensor(Vec<RadialPatch>),
}

/// `W_j(y) = Σ_t v_t(y) coef[t][j]` with `v = [r(y); p(y)]`.
#[derive(Debug, Clone)]
struct RadialPatch {
    /// `(n + m) × n`, row-major: the first n columns of the inverse of the saddle-point matrix.
    coef: Vec<f64>,
}

/// Offsets of the box `[lo, hi]`, first axis fastest.
fn box_offsets<const D: usize>(lo: [i32; D], hi: [i32; D]) -> Vec<[i32; D]> {
    let widths: [usize; D] = std::array::from_fn(|k| (hi[k] - lo[k] + 1) as usize);
    let count: usize = widths.iter().product();
    (0..count)
        .map(|mut i| {
            let mut o = [0i32; D];
            for k in 0..D {
                o[k] = lo[k] + (i % widths[k]) as i32;
                i /= widths[k];
            }
            o
        })
        .collect()
}

impl<const D: usize> Patch<D> {
    fn new(lo: [i32; D], hi: [i32; D], params: &ChidennParams) -> Result<Self, String> {
        let offsets = box_offsets(lo, hi);
        let on_boundary = (0..D).any(|k| lo[k] == 0 || hi[k] == 0);
        let kind = if on_boundary {
            let monos1 = monomials::<1>(params.degree);
            let axes = (0..D)
                .map(|k| RadialPatch::new(&box_offsets([lo[k]], [hi[k]]), params.dilation, &monos1))
                .collect::<Result<Vec<_>, _>>()?;
            PatchKind::Tensor(axes)
        } else {
            PatchKind::Radial(RadialPatch::new(
                &offsets,
                params.dilation,
                &monomials::<D>(params.degree),
            )?)
        };
        Ok(Self { offsets, kind })
    }

    /// Weights and their derivatives (element units) at `y`, relative to the node.
    fn eval(
        &self,
        y: [f64; D],
        params: &ChidennParams,
        monos: &[[u32; D]],
        w: &mut Vec<f64>,
        dw: &mut Vec<[f64; D]>,
    ) {
        let n = self.offsets.len();
        w.clear();
        dw.clear();
        match &self.kind {
            PatchKind::Radial(patch) => {
                patch.eval(&self.offsets, y, params.dilation, monos, w, dw);
            }
            PatchKind::Tensor(axes) => {
                let monos1 = monomials::<1>(params.degree);
                let lo: [i32; D] =
                    std::array::from_fn(|k| self.offsets.iter().map(|o| o[k]).min().unwrap_or(0));
                let per_axis: Vec<(Vec<f64>, Vec<[f64; 1]>)> = axes
                    .iter()
                    .enumerate()
                    .map(|(k, patch)| {
                        let hi = self.offsets.iter().map(|o| o[k]).max().unwrap_or(0);
                        let (mut wk, mut dk) = (Vec::new(), Vec::new());
                        patch.eval(
                            &box_offsets([lo[k]], [hi]),
                            [y[k]],
                            params.dilation,
                            &monos1,
                            &mut wk,
                            &mut dk,
                        );
                        (wk, dk)
                    })
                    .collect();
                for o in &self.offsets {
                    let at: [usize; D] = std::array::from_fn(|k| (o[k] - lo[k]) as usize);
                    w.push((0..D).map(|k| per_axis[k].0[at[k]]).product());
                    dw.push(std::array::from_fn(|j| {
                        (0..D)
                            .map(|k| {
                                if k == j {
                                    per_axis[k].1[at[k]][0]
                                } else {
                                    per_axis[k].0[at[k]]
                                }
                            })
                            .product()
                    }));
                }
            }
        }
        debug_assert_eq!(w.len(), n);
    }
}

impl RadialPatch {
    fn new<const D: usize>(
        offsets: &[[i32; D]],
        dilation: f64,
        monos: &[[u32; D]],
    ) -> Result<Self, String> {
        let (n, m) = (offsets.len(), monos.len());
        let dist = |a: [i32; D], b: [i32; D]| -> f64 {
            (0..D)
                .map(|k| ((a[k] - b[k]) as f64).powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let mut g = DMatrix::<f64>::zeros(n + m, n + m);
        for (j, &oj) in offsets.iter().enumerate() {
            for (k, &ok) in offsets.iter().enumerate() {
                g[(j, k)] = cubic_spline(dist(oj, ok) / dilation).0;
            }
            let y: [f64; D] = std::array::from_fn(|k| oj[k] as f64);
            for (q, &e) in monos.iter().enumerate() {
                let v = monomial(y, e).0;
                g[(j, n + q)] = v;
                g[(n + q, j)] = v;
            }
        }
        let mut rhs = DMatrix::<f64>::zeros(n + m, n);
        for j in 0..n {
            rhs[(j, j)] = 1.0;
        }
        let sol = g.lu().solve(&rhs).ok_or_else(|| {
            format!("the patch interpolation matrix ({n} nodes, {m} monomials) is singular")
        })?;
        let mut coef = vec![0.0; (n + m) * n];
        for t in 0..n + m {
            for j in 0..n {
                coef[t * n + j] = sol[(t, j)];
            }
        }
        if coef.iter().any(|c| !c.is_finite()) {
            return Err("the patch interpolation weights are not finite".into());
        }
        Ok(Self { coef })
    }

    /// Weights and their derivatives (element units) at `y`, relative to the node, appended to
    /// `w` and `dw`.
    fn eval<const D: usize>(
        &self,
        offsets: &[[i32; D]],
        y: [f64; D],
        dilation: f64,
        monos: &[[u32; D]],
        w: &mut Vec<f64>,
        dw: &mut Vec<[f64; D]>,
    ) {
        let n = offsets.len();
        let mut v: Vec<(f64, [f64; D])> = Vec::with_capacity(n + monos.len());
        for o in offsets {
            let d: [f64; D] = std::array::from_fn(|k| y[k] - o[k] as f64);
            let r = d.iter().map(|x| x * x).sum::<f64>().sqrt();
            let (phi, dphi) = cubic_spline(r / dilation);
            let grad = if r > 0.0 {
                std::array::from_fn(|k| dphi / dilation * d[k] / r)
            } else {
                [0.0; D]
            };
            v.push((phi, grad));
        }
        for &e in monos {
            v.push(monomial(y, e));
        }
        let (w0, d0) = (w.len(), dw.len());
        w.resize(w0 + n, 0.0);
        dw.resize(d0 + n, [0.0; D]);
        for (t, (vt, gt)) in v.iter().enumerate() {
            let row = &self.coef[t * n..(t + 1) * n];
            for j in 0..n {
                w[w0 + j] += vt * row[j];
                for k in 0..D {
                    dw[d0 + j][k] += gt[k] * row[j];
                }
            }
        }
    }
}

/// The C-HiDeNN functions of one mesh. Patch weights depend only on how a node's patch is clipped
/// by the mesh boundary, so they are computed once per clipping pattern.
#[derive(Debug, Clone)]
pub struct ChidennSpace<const D: usize> {
    pub params: ChidennParams,
    pub mesh: BoxMesh<D>,
    monos: Vec<[u32; D]>,
    patches: HashMap<([i32; D], [i32; D]), Patch<D>>,
}

/// Values and physical gradients of the functions of an element's union of patches at a list of
/// points. Node `u` of the union sits at `corner + offset(u)`, with offsets in `[−s, s + 1]` per
/// axis (first axis slowest, as in [`BoxMesh::node_index`]); nodes outside the mesh have zeros.
#[derive(Debug, Clone, PartialEq)]
pub struct ElementValues<const D: usize> {
    pub nodes: usize,
    /// `values[q * nodes + u]`.
    pub values: Vec<f64>,
    pub gradients: Vec<[f64; D]>,
}

impl<const D: usize> ChidennSpace<D> {
    pub fn new(mesh: BoxMesh<D>, params: ChidennParams) -> Result<Self, String> {
        params.validate::<D>().map_err(|e| e.to_string())?;
        let s = params.patch_layers as i32;
        if let Some(k) = (0..D).find(|&k| mesh.cells[k] < params.patch_layers) {
            return Err(format!(
                "a C-HiDeNN mesh needs at least s = {s} cells per axis, axis {k} has {}",
                mesh.cells[k]
            ));
        }
        let monos = monomials::<D>(params.degree);
        // The clipping patterns that occur, per axis, then all their combinations.
        let per_axis: Vec<Vec<(i32, i32)>> = (0..D)
            .map(|k| {
                let n = mesh.cells[k] as i32;
                let mut v: Vec<(i32, i32)> =
                    (0..=n).map(|i| (-(i.min(s)), (n - i).min(s))).collect();
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        let mut patterns = vec![([0i32; D], [0i32; D])];
        for (k, axis) in per_axis.iter().enumerate() {
            patterns = patterns
                .iter()
                .flat_map(|&(lo, hi)| {
                    axis.iter().map(move |&(a, b)| {
                        let (mut lo, mut hi) = (lo, hi);
                        lo[k] = a;
                        hi[k] = b;
                        (lo, hi)
                    })
                })
                .collect();
        }
        use rayon::prelude::*;
        let built: Result<Vec<_>, String> = patterns
            .par_iter()
            .map(|&(lo, hi)| Patch::new(lo, hi, &params).map(|p| ((lo, hi), p)))
            .collect();
        Ok(Self {
            params,
            mesh,
            monos,
            patches: built?.into_iter().collect(),
        })
    }

    fn patch_of(&self, node: [usize; D]) -> &Patch<D> {
        let s = self.params.patch_layers as i32;
        let lo = std::array::from_fn(|k| -(node[k] as i32).min(s));
        let hi = std::array::from_fn(|k| (self.mesh.cells[k] as i32 - node[k] as i32).min(s));
        &self.patches[&(lo, hi)]
    }

    /// The functions of element `corner` (its lowest node) at local coordinates `points` in
    /// `[0, 1]^D`.
    pub fn element_values(&self, corner: [usize; D], points: &[[f64; D]]) -> ElementValues<D> {
        let s = self.params.patch_layers as i32;
        let width = self.params.width();
        let nodes = width.pow(D as u32);
        let h = self.mesh.h();
        let mut values = vec![0.0; points.len() * nodes];
        let mut gradients = vec![[0.0; D]; points.len() * nodes];
        let (mut w, mut dw) = (Vec::new(), Vec::new());
        for c in 0..1usize << D {
            let bits: [i32; D] = std::array::from_fn(|k| ((c >> k) & 1) as i32);
            let node: [usize; D] = std::array::from_fn(|k| corner[k] + bits[k] as usize);
            let patch = self.patch_of(node);
            // Union-box index of each patch node.
            let slots: Vec<usize> = patch
                .offsets
                .iter()
                .map(|o| (0..D).fold(0, |acc, k| acc * width + (bits[k] + o[k] + s) as usize))
                .collect();
            for (q, xi) in points.iter().enumerate() {
                let y: [f64; D] = std::array::from_fn(|k| xi[k] - bits[k] as f64);
                // The multilinear shape function of this corner and its gradient in element units.
                let factors: [f64; D] =
                    std::array::from_fn(|k| if bits[k] == 1 { xi[k] } else { 1.0 - xi[k] });
                let big_n: f64 = factors.iter().product();
                let grad_n: [f64; D] = std::array::from_fn(|j| {
                    let sign = if bits[j] == 1 { 1.0 } else { -1.0 };
                    (0..D)
                        .filter(|&k| k != j)
                        .map(|k| factors[k])
                        .product::<f64>()
                        * sign
                });
                patch.eval(y, &self.params, &self.monos, &mut w, &mut dw);
                for (j, &slot) in slots.iter().enumerate() {
                    let at = q * nodes + slot;
                    values[at] += big_n * w[j];
                    for k in 0..D {
                        gradients[at][k] += (grad_n[k] * w[j] + big_n * dw[j][k]) / h[k];
                    }
                }
            }
        }
        ElementValues {
            nodes,
            values,
            gradients,
        }
    }

    /// The mesh node of union slot `u` of element `corner`, if it lies in the mesh.
    pub fn slot_node(&self, corner: [usize; D], u: usize) -> Option<usize> {
        let width = self.params.width();
        let s = self.params.patch_layers as i64;
        let mut m = [0usize; D];
        let mut rest = u;
        for k in (0..D).rev() {
            let i = corner[k] as i64 + (rest % width) as i64 - s;
            rest /= width;
            if i < 0 || i > self.mesh.cells[k] as i64 {
                return None;
            }
            m[k] = i as usize;
        }
        Some(self.mesh.node_index(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(cells: usize, params: ChidennParams) -> ChidennSpace<2> {
        ChidennSpace::new(BoxMesh::new([0.0, 0.0], [1.0, 0.5], [cells, cells]), params).unwrap()
    }

    /// `Σ_j f(x_j) Ñ_j(x)` on every element at a few points, against `f(x)` and its gradient.
    fn reproduction_error(space: &ChidennSpace<2>, f: &dyn Fn([f64; 2]) -> (f64, [f64; 2])) -> f64 {
        let mesh = space.mesh;
        let points = [[0.13, 0.71], [0.5, 0.5], [0.9, 0.05], [0.0, 0.3]];
        let mut worst: f64 = 0.0;
        for e in 0..mesh.elements() {
            let corner = mesh.cell(e);
            let ev = space.element_values(corner, &points);
            for (q, xi) in points.iter().enumerate() {
                let (mut v, mut g) = (0.0, [0.0; 2]);
                for u in 0..ev.nodes {
                    if let Some(node) = space.slot_node(corner, u) {
                        let fj = f(mesh.node_coord(mesh.node_multi(node))).0;
                        v += fj * ev.values[q * ev.nodes + u];
                        for (gk, dk) in g.iter_mut().zip(ev.gradients[q * ev.nodes + u]) {
                            *gk += fj * dk;
                        }
                    } else {
                        assert_eq!(ev.values[q * ev.nodes + u], 0.0);
                    }
                }
                let x = super::super::fem::point(&mesh, e, *xi);
                let (fv, fg) = f(x);
                worst = worst
                    .max((v - fv).abs())
                    .max((g[0] - fg[0]).abs())
                    .max((g[1] - fg[1]).abs());
            }
        }
        worst
    }

    #[test]
    fn complete_polynomials_of_degree_p_are_reproduced_with_their_gradients() {
        let quad = |x: [f64; 2]| {
            (
                1.0 + 2.0 * x[0] - x[1] + 3.0 * x[0] * x[0] - 2.0 * x[0] * x[1] + 5.0 * x[1] * x[1],
                [
                    2.0 + 6.0 * x[0] - 2.0 * x[1],
                    -1.0 - 2.0 * x[0] + 10.0 * x[1],
                ],
            )
        };
        let err = reproduction_error(&space(6, ChidennParams::default()), &quad);
        assert!(err < 1e-9, "p = 2: {err:e}");
        let cubic = |x: [f64; 2]| {
            (
                x[0].powi(3) - x[0] * x[1] * x[1],
                [3.0 * x[0] * x[0] - x[1] * x[1], -2.0 * x[0] * x[1]],
            )
        };
        let p3 = ChidennParams {
            patch_layers: 3,
            degree: 3,
            dilation: 20.0,
        };
        let err = reproduction_error(&space(8, p3), &cubic);
        assert!(err < 1e-8, "p = 3: {err:e}");
        // p = 2 does not reproduce a cubic: the check above can fail.
        let err = reproduction_error(&space(6, ChidennParams::default()), &cubic);
        assert!(err > 1e-4, "{err:e}");
    }

    #[test]
    fn functions_interpolate_nodes_and_are_continuous_across_faces() {
        let sp = space(5, ChidennParams::default());
        let mesh = sp.mesh;
        // Kronecker delta at the corners of an element.
        let corner = [1, 2];
        let ev = sp.element_values(corner, &[[0.0, 0.0], [1.0, 1.0]]);
        let at = |q: usize, node: [usize; 2]| -> f64 {
            (0..ev.nodes)
                .filter(|&u| sp.slot_node(corner, u) == Some(mesh.node_index(node)))
                .map(|u| ev.values[q * ev.nodes + u])
                .sum()
        };
        assert!((at(0, [1, 2]) - 1.0).abs() < 1e-12 && at(0, [2, 3]).abs() < 1e-12);
        assert!((at(1, [2, 3]) - 1.0).abs() < 1e-12 && at(1, [1, 3]).abs() < 1e-12);
        // The same point on the face between elements [1, 2] and [2, 2].
        let left = sp.element_values([1, 2], &[[1.0, 0.37]]);
        let right = sp.element_values([2, 2], &[[0.0, 0.37]]);
        for node in 0..mesh.nodes() {
            let pick = |ev: &ElementValues<2>, c: [usize; 2]| -> f64 {
                (0..ev.nodes)
                    .filter(|&u| sp.slot_node(c, u) == Some(node))
                    .map(|u| ev.values[u])
                    .sum()
            };
            let (a, b) = (pick(&left, [1, 2]), pick(&right, [2, 2]));
            assert!((a - b).abs() < 1e-12, "node {node}: {a} vs {b}");
        }
    }

    #[test]
    fn bad_parameters_are_refused_with_reasons() {
        let mesh = BoxMesh::new([0.0, 0.0], [1.0, 1.0], [4, 4]);
        let p3 = ChidennParams {
            degree: 3,
            ..ChidennParams::default()
        };
        let err = ChidennSpace::new(mesh, p3).unwrap_err();
        assert!(err.contains("degree 3 needs 10 patch nodes"), "{err}");
        let bad_a = ChidennParams {
            dilation: -1.0,
            ..ChidennParams::default()
        };
        assert!(ChidennSpace::new(mesh, bad_a)
            .unwrap_err()
            .contains("dilation"));
        let tiny = BoxMesh::new([0.0, 0.0], [1.0, 1.0], [1, 4]);
        assert!(ChidennSpace::new(tiny, ChidennParams::default())
            .unwrap_err()
            .contains("at least s = 2 cells"));
    }
}
