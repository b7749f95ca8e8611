//! 2-D Helmholtz `−Δu − k(x)²u = f` on the unit square, five-point finite differences on an
//! `m × m` interior grid (h = 1/(m + 1)). Indefinite once k exceeds the lowest Dirichlet
//! eigenvalue's √(2π²): solve it with GMRES-type methods, not CG.
//!
//! Boundary conditions:
//! - Dirichlet `u = 0`: a real system.
//! - First-order absorbing (Sommerfeld) `∂u/∂n − iku = g`: the solution is complex. The condition
//!   is discretised one-sided, `(u_b − u_p)/h − ik u_b = g_b`, which eliminates each boundary value
//!   `u_b = c(u_p + h g_b)`, `c = 1/(1 − ikh)`, into its interior neighbour's row (first order in h
//!   at the boundary). The complex system `A z = b` is solved in its real equivalent form
//!   `[[A_r, −A_i], [A_i, A_r]] [x; y] = [b_r; b_i]` with the unknowns interleaved, `(x_r, y_r)`
//!   at positions `(2r, 2r + 1)`: each point's 2 × 2 block stays on the diagonal, where ILU(0)
//!   sees it (with all real parts first, ILU(0) of this system stalls GMRES). `A_i` is diagonal.

use super::poisson::solve_one;
use super::{
    laplacian_2d_with, vertex_coords, Family, LinearSystem, ProblemError, ProblemParams, Sample,
    SampleLayout,
};
use crate::field::{GrfParams, GrfSampler2d};
use crate::krylov::SolveParams;
use crate::param::{positive, require, InvalidParam};
use crate::rng::sample_rng;
use crate::sequence::SolverSpec;
use crate::sequence::{Method, PrecondKind};
use ndarray::Array2;
use rand::Rng;
use rustfft::num_complex::Complex64;
use std::time::Instant;

/// The system for wavenumber `k` and source `f`, both sampled at the interior points, scaled by h².
pub fn assemble(k: &Array2<f64>, f: &Array2<f64>) -> LinearSystem {
    let m = k.nrows();
    assert!(
        k.dim() == (m, m) && f.dim() == (m, m),
        "Helmholtz fields must be m × m"
    );
    let h = 1.0 / (m + 1) as f64;
    let k2: Vec<f64> = k.iter().map(|v| v * v * h * h).collect();
    LinearSystem {
        matrix: laplacian_2d_with(m, |i| -k2[i], |_| 1.0),
        rhs: f.iter().map(|v| v * h * h).collect(),
    }
}

/// `c = 1/(1 − ikh)` of the one-sided absorbing condition.
fn absorbing_factor(k: f64, h: f64) -> Complex64 {
    Complex64::new(1.0, 0.0) / Complex64::new(1.0, -k * h)
}

/// The four neighbours of interior point `(p, q)` of an `m × m` grid that lie on the boundary,
/// as `(i, j)` indices of the `(m + 2)²` vertex grid.
fn boundary_neighbours(p: usize, q: usize, m: usize) -> impl Iterator<Item = (usize, usize)> {
    let (i, j) = (p + 1, q + 1);
    [
        (p == 0).then_some((0, j)),
        (p + 1 == m).then_some((m + 1, j)),
        (q == 0).then_some((i, 0)),
        (q + 1 == m).then_some((i, m + 1)),
    ]
    .into_iter()
    .flatten()
}

/// The real equivalent system (2m² unknowns) of `−Δu − k²u = f` with `∂u/∂n − iku = g`: `k` and
/// `f` at the `m × m` interior points, `g` on the ring of the `(m + 2)²` vertex grid (its interior
/// is unused). Scaled by h².
pub fn assemble_absorbing(k: &Array2<f64>, f: &Array2<f64>, g: &Array2<Complex64>) -> LinearSystem {
    let m = k.nrows();
    assert!(
        k.dim() == (m, m) && f.dim() == (m, m) && g.dim() == (m + 2, m + 2),
        "Helmholtz fields must be m × m (k, f) and (m + 2) × (m + 2) (g)"
    );
    let n = m * m;
    let h = 1.0 / (m + 1) as f64;
    let mut shift = vec![0.0; n];
    let mut imag = vec![0.0; n];
    let mut rhs = vec![0.0; 2 * n];
    for p in 0..m {
        for q in 0..m {
            let r = p * m + q;
            let kk = k[[p, q]];
            let c = absorbing_factor(kk, h);
            let mut diag = Complex64::new(-kk * kk * h * h, 0.0);
            let mut b = Complex64::new(f[[p, q]] * h * h, 0.0);
            for (bi, bj) in boundary_neighbours(p, q, m) {
                diag -= c;
                b += c * h * g[[bi, bj]];
            }
            shift[r] = diag.re;
            imag[r] = diag.im;
            rhs[2 * r] = b.re;
            rhs[2 * r + 1] = b.im;
        }
    }
    let real = laplacian_2d_with(m, |r| shift[r], |_| 1.0);
    let mut tri = sprs::TriMat::with_capacity((2 * n, 2 * n), 2 * real.nnz() + 2 * n);
    for (&v, (r, c)) in real.iter() {
        tri.add_triplet(2 * r, 2 * c, v);
        tri.add_triplet(2 * r + 1, 2 * c + 1, v);
    }
    for (r, &v) in imag.iter().enumerate() {
        if v != 0.0 {
            tri.add_triplet(2 * r, 2 * r + 1, -v);
            tri.add_triplet(2 * r + 1, 2 * r, v);
        }
    }
    LinearSystem {
        matrix: tri.to_csr(),
        rhs,
    }
}

/// The complex solution on the whole `(m + 2)²` grid from the real-equivalent unknowns: boundary
/// values from the eliminated condition, each corner the mean of its two edge neighbours.
pub fn absorbing_solution(z: &[f64], k: &Array2<f64>, g: &Array2<Complex64>) -> Array2<Complex64> {
    let m = k.nrows();
    let h = 1.0 / (m + 1) as f64;
    let s = m + 2;
    let mut u = Array2::<Complex64>::zeros((s, s));
    for p in 0..m {
        for q in 0..m {
            let r = p * m + q;
            let up = Complex64::new(z[2 * r], z[2 * r + 1]);
            u[[p + 1, q + 1]] = up;
            let c = absorbing_factor(k[[p, q]], h);
            for (bi, bj) in boundary_neighbours(p, q, m) {
                u[[bi, bj]] = c * (up + h * g[[bi, bj]]);
            }
        }
    }
    for (ci, cj, ai, bj) in [
        (0, 0, 1, 1),
        (0, s - 1, 1, s - 2),
        (s - 1, 0, s - 2, 1),
        (s - 1, s - 1, s - 2, s - 2),
    ] {
        u[[ci, cj]] = (u[[ai, cj]] + u[[ci, bj]]) * 0.5;
    }
    u
}

/// The boundary condition of a Helmholtz family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum HelmholtzBoundary {
    #[default]
    Dirichlet,
    Absorbing,
}

/// Parameters of a random Helmholtz family: the `[generate.helmholtz]` table.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct HelmholtzParams {
    /// Vertices per side including the boundary.
    pub resolution: usize,
    /// The mean wavenumber k₀ is drawn uniformly from `[min, max]` per sample (equal: fixed).
    #[cfg_attr(feature = "serde", serde(with = "crate::param::range"))]
    pub wavenumber: (f64, f64),
    /// `k(x) = k₀(1 + variation·tanh(field))`; 0 for a constant k.
    pub variation: f64,
    pub boundary: HelmholtzBoundary,
    /// The field that varies k (unused when `variation` is 0).
    pub field: GrfParams,
    /// Source f.
    pub source: GrfParams,
    #[cfg_attr(feature = "serde", serde(skip))]
    pub solver: SolverSpec,
}

impl Default for HelmholtzParams {
    /// k = 20 on a 64² grid, Dirichlet, solved by GMRES(40) with ILU(0), the pairing that
    /// converges on indefinite systems.
    fn default() -> Self {
        Self {
            resolution: 64,
            wavenumber: (20.0, 20.0),
            variation: 0.0,
            boundary: HelmholtzBoundary::Dirichlet,
            field: GrfParams::new(2.5, 7.0, None),
            source: GrfParams::default(),
            solver: SolverSpec::new(
                Method::Gmres { restart: 40 },
                PrecondKind::Ilu0,
                SolveParams::default(),
            ),
        }
    }
}

impl ProblemParams for HelmholtzParams {
    const NAME: &'static str = "helmholtz";

    fn validate(&self) -> Result<(), InvalidParam> {
        require(
            (4..=16384).contains(&self.resolution),
            "resolution",
            "an integer from 4 to 16384",
            self.resolution,
        )?;
        let (lo, hi) = self.wavenumber;
        require(
            positive(lo) && lo <= hi && hi.is_finite(),
            "wavenumber",
            "a positive number, or [min, max] with 0 < min ≤ max",
            format!("[{lo}, {hi}]"),
        )?;
        require(
            (0.0..1.0).contains(&self.variation),
            "variation",
            "a number in [0, 1), so that k stays positive",
            self.variation,
        )?;
        self.field.validate().map_err(|e| e.within("field"))?;
        self.source.validate().map_err(|e| e.within("source"))
    }

    super::solver_field!();

    fn check_solver(&self, spec: &SolverSpec) -> Result<(), InvalidParam> {
        if spec.method.needs_spd() {
            return Err(InvalidParam::new(
                "method",
                "\"gmres\", \"fgmres\", \"bicgstab\" or \"gcrodr\": Helmholtz is indefinite (and complex with the absorbing boundary), so CG does not apply",
                format!("\"{}\"", spec.method.label()),
            ));
        }
        super::one_solve_per_sample(Self::NAME, spec)
    }
}

/// Draws and solves random Helmholtz problems.
#[derive(Debug)]
pub struct HelmholtzGenerator {
    params: HelmholtzParams,
    source: GrfSampler2d,
    variation: Option<GrfSampler2d>,
}

impl HelmholtzGenerator {
    pub fn new(params: HelmholtzParams) -> Result<Self, ProblemError> {
        params.checked()?;
        let s = params.resolution;
        Ok(Self {
            source: GrfSampler2d::new(s, params.source)?,
            variation: (params.variation > 0.0)
                .then(|| GrfSampler2d::new(s, params.field))
                .transpose()?,
            params,
        })
    }
}

impl Family for HelmholtzGenerator {
    fn name(&self) -> &'static str {
        "helmholtz"
    }

    fn layout(&self) -> SampleLayout {
        let s = self.params.resolution;
        let outputs = match self.params.boundary {
            HelmholtzBoundary::Dirichlet => vec![("solution", vec![s, s])],
            HelmholtzBoundary::Absorbing => {
                vec![("solution_real", vec![s, s]), ("solution_imag", vec![s, s])]
            }
        };
        SampleLayout {
            inputs: vec![("wavenumber", vec![s, s]), ("source", vec![s, s])],
            outputs,
            params: vec!["mean_wavenumber"],
            axes: vec![("x", vertex_coords(s)), ("y", vertex_coords(s))],
            linear_solves: true,
        }
    }

    fn generate(&self, seed: u64, index: u64) -> Result<Sample, ProblemError> {
        let start = Instant::now();
        let p = &self.params;
        let s = p.resolution;
        let m = s - 2;
        let mut rng = sample_rng(seed, index);
        let (lo, hi) = p.wavenumber;
        let k0 = if hi > lo { rng.gen_range(lo..hi) } else { lo };
        let f = self.source.sample(&mut rng);
        let a = p.variation;
        let k = match &self.variation {
            Some(sampler) => sampler.sample(&mut rng).mapv(|v| k0 * (1.0 + a * v.tanh())),
            None => Array2::from_elem((s, s), k0),
        };
        let interior = |a: &Array2<f64>| a.slice(ndarray::s![1..s - 1, 1..s - 1]).to_owned();
        let (ki, fi) = (interior(&k), interior(&f));
        let (outputs, report) = match p.boundary {
            HelmholtzBoundary::Dirichlet => {
                let sys = assemble(&ki, &fi);
                let (x, report) = solve_one("helmholtz", index, p.solver, &sys.matrix, &sys.rhs)?;
                let mut u = vec![0.0; s * s];
                for r in 0..m {
                    u[(r + 1) * s + 1..(r + 1) * s + 1 + m].copy_from_slice(&x[r * m..(r + 1) * m]);
                }
                (vec![u], report)
            }
            HelmholtzBoundary::Absorbing => {
                let g = Array2::<Complex64>::zeros((s, s));
                let sys = assemble_absorbing(&ki, &fi, &g);
                let (z, report) = solve_one("helmholtz", index, p.solver, &sys.matrix, &sys.rhs)?;
                let u = absorbing_solution(&z, &ki, &g);
                (
                    vec![
                        u.iter().map(|c| c.re).collect(),
                        u.iter().map(|c| c.im).collect(),
                    ],
                    report,
                )
            }
        };
        let mut report = report;
        report.seconds = start.elapsed().as_secs_f64();
        Ok(Sample {
            index,
            inputs: vec![k.iter().copied().collect(), f.iter().copied().collect()],
            outputs,
            params: vec![k0],
            report,
        })
    }
}

/// The default solver: GMRES(40) with ILU(0); Helmholtz is indefinite.
pub fn default_solver() -> SolverSpec {
    SolverSpec::new(
        crate::sequence::Method::Gmres { restart: 40 },
        crate::sequence::PrecondKind::Ilu0,
        crate::krylov::SolveParams::new(1e-8, 20_000),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::krylov::{gmres, GmresParams, SolveParams};
    use crate::linalg::{CsrOperator, Identity};
    use std::f64::consts::PI;

    fn max_error(m: usize) -> f64 {
        let h = 1.0 / (m + 1) as f64;
        let kk = 9.0;
        let u = |x: f64, y: f64| (PI * x).sin() * (PI * y).sin() * (1.0 + x);
        // −Δu = 2π² s(1+x) − 2π cos(πx) sin(πy), with s = sin(πx) sin(πy).
        let lap = |x: f64, y: f64| {
            2.0 * PI * PI * (PI * x).sin() * (PI * y).sin() * (1.0 + x)
                - 2.0 * PI * (PI * x).cos() * (PI * y).sin()
        };
        let pt = |p: usize| (p + 1) as f64 * h;
        let k = Array2::from_elem((m, m), kk);
        let f = Array2::from_shape_fn((m, m), |(p, q)| {
            lap(pt(p), pt(q)) - kk * kk * u(pt(p), pt(q))
        });
        let sys = assemble(&k, &f);
        let mut x = vec![0.0; m * m];
        gmres(
            &CsrOperator::new(&sys.matrix),
            &Identity,
            &sys.rhs,
            &mut x,
            &SolveParams::new(1e-12, 50_000),
            &GmresParams::new(100),
        )
        .unwrap();
        x.iter()
            .enumerate()
            .map(|(i, v)| (v - u(pt(i / m), pt(i % m))).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn indefinite_helmholtz_converges_at_second_order() {
        // k = 9 > √2·π ≈ 4.44: the matrix has negative eigenvalues.
        let (e1, e2) = (max_error(15), max_error(31));
        let order = (e1 / e2).log2();
        assert!(order > 1.8 && order < 2.2, "order {order} ({e1}, {e2})");
    }

    /// A plane wave e^{ik(x cos θ + y sin θ)} with its absorbing data g; returns the max error.
    fn plane_wave_error(m: usize) -> f64 {
        let (kk, th) = (10.0, 0.3f64);
        let s = m + 2;
        let c = vertex_coords(s);
        let u = |x: f64, y: f64| Complex64::new(0.0, kk * (x * th.cos() + y * th.sin())).exp();
        let g = Array2::from_shape_fn((s, s), |(i, j)| {
            let (x, y) = (c[i], c[j]);
            let (nx, ny) = if i == 0 {
                (-1.0, 0.0)
            } else if i == s - 1 {
                (1.0, 0.0)
            } else if j == 0 {
                (0.0, -1.0)
            } else if j == s - 1 {
                (0.0, 1.0)
            } else {
                return Complex64::default();
            };
            let i1 = Complex64::new(0.0, kk);
            u(x, y) * i1 * (nx * th.cos() + ny * th.sin()) - i1 * u(x, y)
        });
        let sys = assemble_absorbing(&Array2::from_elem((m, m), kk), &Array2::zeros((m, m)), &g);
        let mut z = vec![0.0; 2 * m * m];
        gmres(
            &CsrOperator::new(&sys.matrix),
            &crate::precond::Ilu0::new(&sys.matrix).unwrap(),
            &sys.rhs,
            &mut z,
            &SolveParams::new(1e-12, 20_000),
            &GmresParams::new(100),
        )
        .unwrap();
        let sol = absorbing_solution(&z, &Array2::from_elem((m, m), kk), &g);
        sol.indexed_iter()
            .map(|((i, j), v)| (v - u(c[i], c[j])).norm())
            .fold(0.0, f64::max)
    }

    #[test]
    fn absorbing_boundary_converges_at_first_order_on_a_plane_wave() {
        let (e1, e2) = (plane_wave_error(31), plane_wave_error(63));
        let order = (e1 / e2).log2();
        assert!(order > 0.8 && order < 1.4, "order {order} ({e1}, {e2})");
        eprintln!("absorbing plane wave: max error {e1:.3e} (m = 31), {e2:.3e} (m = 63), order {order:.2}");
        assert!(e2 < 0.2, "{e2}");
    }

    #[test]
    fn generator_solves_both_boundaries() {
        for boundary in [HelmholtzBoundary::Dirichlet, HelmholtzBoundary::Absorbing] {
            let params = HelmholtzParams {
                resolution: 18,
                wavenumber: (5.0, 8.0),
                variation: 0.25,
                field: GrfParams::default(),
                boundary,
                source: GrfParams::default(),
                solver: default_solver(),
            };
            let g = HelmholtzGenerator::new(params).unwrap();
            let smp = g.generate(2, 9).unwrap();
            assert!(smp.report.converged, "{boundary:?}");
            assert!((5.0..8.0).contains(&smp.params[0]));
            assert_eq!(smp.outputs.len(), g.layout().outputs.len());
        }
    }
}
