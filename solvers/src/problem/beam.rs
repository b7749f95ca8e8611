//! Steady heat from a Gaussian beam at a random position and power, solved by multilevel VMS
//! with boxes around each sample's beam: `−k Δu = P exp(−|x − x₀|²/r²)` on the unit square,
//! `u = 0` on the boundary. The dataset maps the source field to the temperature field, both
//! sampled on an `s × s` vertex grid, so neural operators can learn the source → temperature map.

use super::{
    vertex_coords, Family, ProblemError, ProblemParams, Sample, SampleLayout, SampleReport,
};
use crate::krylov::SolveParams;
use crate::multiscale::chidenn::ChidennParams;
use crate::multiscale::mesh::BoxMesh;
use crate::multiscale::multilevel::{
    solve_steady, Basis, BoxLevel, LevelSpec, MultilevelParams, SteadyHeat,
};
use crate::param::{positive, require, InvalidParam};
use crate::rng::sample_rng;
use crate::sequence::{Method, PrecondKind, SolverSpec};
use rand::Rng;
use std::time::Instant;

/// The functions of every level of a beam's hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum LevelBasis {
    /// Multilinear elements.
    #[default]
    Linear,
    /// The C-HiDeNN basis with its default parameters (s = 2, p = 2, a = 10).
    Chidenn,
}

/// Parameters of the beam family (`[generate.mlvms]`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct BeamParams {
    /// Points per side of the output grid (vertices, boundary included).
    pub resolution: usize,
    /// Coarse (level-0) cells per axis.
    pub coarse: usize,
    /// The level boxes, centred on the beam.
    pub levels: Vec<BoxLevel>,
    pub conductivity: f64,
    /// Beam radius `r`.
    pub radius: f64,
    /// The power P is drawn uniformly from `[min, max]`.
    #[cfg_attr(feature = "serde", serde(with = "crate::param::range"))]
    pub power: (f64, f64),
    /// Beam centres are drawn uniformly from `[margin, 1 − margin]²`; `None`: 0.05 beyond the
    /// first box's half width (at most 0.45), so every box stays inside the domain.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub margin: Option<f64>,
    pub basis: LevelBasis,
    /// Only the tolerance and iteration cap are free: the system is solved by AMG-preconditioned
    /// CG.
    #[cfg_attr(feature = "serde", serde(skip))]
    pub solver: SolverSpec,
}

impl Default for BeamParams {
    fn default() -> Self {
        Self {
            resolution: 64,
            coarse: 32,
            levels: vec![
                BoxLevel {
                    half_width: 0.15,
                    refine: 4,
                },
                BoxLevel {
                    half_width: 0.05,
                    refine: 4,
                },
            ],
            conductivity: 1.0,
            radius: 0.02,
            power: (0.5, 2.0),
            margin: None,
            basis: LevelBasis::Linear,
            solver: SolverSpec::new(Method::Cg, PrecondKind::Amg, SolveParams::default()),
        }
    }
}

impl BeamParams {
    fn widest(&self) -> f64 {
        self.levels.first().map_or(0.0, |l| l.half_width)
    }

    /// The margin in force.
    pub fn margin(&self) -> f64 {
        self.margin.unwrap_or((self.widest() + 0.05).min(0.45))
    }
}

impl ProblemParams for BeamParams {
    const NAME: &'static str = "mlvms";

    fn validate(&self) -> Result<(), InvalidParam> {
        require(
            (4..=16384).contains(&self.resolution),
            "resolution",
            "an integer from 4 to 16384",
            self.resolution,
        )?;
        require(
            (4..=4096).contains(&self.coarse),
            "coarse",
            "an integer from 4 to 4096",
            self.coarse,
        )?;
        BoxLevel::validate_all(&self.levels)?;
        require(
            positive(self.conductivity),
            "conductivity",
            "a positive number",
            self.conductivity,
        )?;
        require(
            self.radius > 0.0 && self.radius < 0.5,
            "radius",
            "a number in (0, 0.5)",
            self.radius,
        )?;
        let (lo, hi) = self.power;
        require(
            lo.is_finite() && hi.is_finite() && lo <= hi,
            "power",
            "a number, or [min, max] with min ≤ max",
            format!("[{lo}, {hi}]"),
        )?;
        let widest = self.widest();
        require(
            self.margin() > widest && self.margin() < 0.5,
            "margin",
            &format!("a number in ({widest}, 0.5): wider than the first box's half width, so every box stays inside the domain"),
            self.margin(),
        )
    }

    super::solver_field!();

    fn check_solver(&self, spec: &SolverSpec) -> Result<(), InvalidParam> {
        if spec.method != Method::Cg || spec.precond != PrecondKind::Amg {
            return Err(InvalidParam::new(
                "method",
                "method = \"cg\" with preconditioner = \"amg\": ML-VMS solves its SPD multilevel system with AMG-preconditioned CG (only tolerance and max_iterations are free)",
                spec.label(),
            ));
        }
        super::one_solve_per_sample(Self::NAME, spec)
    }
}

/// Draws beams and solves them by ML-VMS.
#[derive(Debug)]
pub struct BeamGenerator {
    params: BeamParams,
}

impl BeamGenerator {
    pub fn new(params: BeamParams) -> Result<Self, ProblemError> {
        params.checked()?;
        Ok(Self { params })
    }
}

impl Family for BeamGenerator {
    fn name(&self) -> &'static str {
        BeamParams::NAME
    }

    fn layout(&self) -> SampleLayout {
        let s = self.params.resolution;
        SampleLayout {
            inputs: vec![("source", vec![s, s])],
            outputs: vec![("temperature", vec![s, s])],
            params: vec!["beam_x", "beam_y", "power", "unknowns"],
            axes: vec![("x", vertex_coords(s)), ("y", vertex_coords(s))],
            linear_solves: true,
        }
    }

    fn generate(&self, seed: u64, index: u64) -> Result<Sample, ProblemError> {
        let start = Instant::now();
        let p = &self.params;
        let mut rng = sample_rng(seed, index);
        let margin = p.margin();
        let centre = [
            rng.gen_range(margin..1.0 - margin),
            rng.gen_range(margin..1.0 - margin),
        ];
        let power = if p.power.1 > p.power.0 {
            rng.gen_range(p.power.0..p.power.1)
        } else {
            p.power.0
        };
        let r2 = p.radius * p.radius;
        let source = move |x: [f64; 2]| {
            let d2 = (x[0] - centre[0]).powi(2) + (x[1] - centre[1]).powi(2);
            power * (-d2 / r2).exp()
        };
        let coarse = BoxMesh::new([0.0; 2], [1.0; 2], [p.coarse; 2]);
        let mut levels = Vec::new();
        let mut parent = coarse;
        for level in &p.levels {
            let spec = LevelSpec::around(&parent, centre, level.half_width, level.refine);
            parent = spec.mesh(&parent);
            levels.push(spec);
        }
        let problem = SteadyHeat {
            conductivity: p.conductivity,
            source: &source,
            dirichlet: &|_| 0.0,
        };
        let params = MultilevelParams {
            tolerance: p.solver.params.rtol,
            max_iterations: p.solver.params.max_iter,
            bases: match p.basis {
                LevelBasis::Linear => Vec::new(),
                LevelBasis::Chidenn => {
                    vec![Basis::Chidenn(ChidennParams::default()); levels.len() + 1]
                }
            },
            ..MultilevelParams::default()
        };
        let (solution, info) =
            solve_steady(coarse, &levels, &problem, &params).map_err(|source| {
                ProblemError::Multiscale {
                    family: BeamParams::NAME,
                    index,
                    source,
                }
            })?;
        let coords = vertex_coords(p.resolution);
        let grid = |f: &dyn Fn([f64; 2]) -> f64| -> Vec<f64> {
            coords
                .iter()
                .flat_map(|&x| coords.iter().map(move |&y| f([x, y])))
                .collect()
        };
        let inputs = vec![grid(&source)];
        let outputs = vec![grid(&|x| solution.value(x))];
        Ok(Sample {
            index,
            inputs,
            outputs,
            params: vec![centre[0], centre[1], power, info.unknowns as f64],
            report: SampleReport {
                iterations: info.iterations,
                matvecs: info.matvecs,
                rel_residual: info.rel_residual,
                converged: info.converged,
                steps: 1,
                seconds: start.elapsed().as_secs_f64(),
                history: Vec::new(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_reproducible_and_the_temperature_peaks_at_the_beam() {
        let params = BeamParams {
            resolution: 33,
            coarse: 16,
            levels: vec![
                BoxLevel {
                    half_width: 0.1,
                    refine: 2,
                },
                BoxLevel {
                    half_width: 0.05,
                    refine: 2,
                },
            ],
            radius: 0.05,
            solver: SolverSpec::new(Method::Cg, PrecondKind::Amg, SolveParams::new(1e-10, 5000)),
            ..BeamParams::default()
        };
        let g = BeamGenerator::new(params).unwrap();
        let a = g.generate(7, 3).unwrap();
        assert_eq!(a, {
            let mut b = g.generate(7, 3).unwrap();
            b.report.seconds = a.report.seconds;
            b
        });
        assert!(a.report.converged && a.report.rel_residual < 1e-9);
        let other = g.generate(7, 4).unwrap();
        assert_ne!(a.params[..3], other.params[..3]);
        // Temperature: zero on the boundary, positive inside, largest near the beam centre.
        let s = 33;
        let u = &a.outputs[0];
        for i in 0..s {
            for &(r, c) in &[(0, i), (s - 1, i), (i, 0), (i, s - 1)] {
                assert!(u[r * s + c].abs() < 1e-12);
            }
        }
        let (imax, _) = u
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .unwrap();
        let h = 1.0 / (s - 1) as f64;
        let at = [(imax / s) as f64 * h, (imax % s) as f64 * h];
        let (bx, by) = (a.params[0], a.params[1]);
        assert!(
            (at[0] - bx).abs() <= h && (at[1] - by).abs() <= h,
            "{at:?} vs {bx}, {by}"
        );
        // A non-negative source heats, never cools (Q1 on squares is an M-matrix).
        assert!(u.iter().all(|v| *v >= -1e-12));
    }

    #[test]
    fn bad_parameters_are_clear_errors() {
        let bad = BeamParams {
            margin: Some(0.1),
            levels: vec![BoxLevel {
                half_width: 0.15,
                refine: 2,
            }],
            ..BeamParams::default()
        };
        let err = BeamGenerator::new(bad).unwrap_err().to_string();
        assert!(
            err.starts_with("mlvms.margin: expected a number in (0.15, 0.5)"),
            "{err}"
        );
    }
}
