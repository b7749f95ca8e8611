//! Steady heat from a Gaussian beam at a random position and power, solved by multilevel VMS
//! with boxes around each sample's beam: `−k Δu = P exp(−|x − x₀|²/r²)` on the unit square,
//! `u = 0` on the boundary. The dataset maps the source field to the temperature field, both
//! sampled on an `s × s` vertex grid, so neural operators can learn the source → temperature map.

use super::{vertex_coords, Family, ProblemError, Sample, SampleLayout, SampleReport};
use crate::multiscale::mesh::BoxMesh;
use crate::multiscale::multilevel::{solve_steady, Basis, LevelSpec, MultilevelParams, SteadyHeat};
use crate::rng::sample_rng;
use rand::Rng;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub struct BeamParams {
    /// Points per side of the output grid (vertices, boundary included).
    pub resolution: usize,
    /// Coarse (level-0) cells per axis.
    pub coarse: usize,
    /// `(half_width, refine)` of each level box, centred on the beam.
    pub levels: Vec<(f64, usize)>,
    pub conductivity: f64,
    /// Beam radius `r`.
    pub radius: f64,
    /// The power P is drawn uniformly from `[min, max]`.
    pub power: (f64, f64),
    /// Beam centres are drawn uniformly from `[margin, 1 − margin]²`.
    pub margin: f64,
    /// One basis per level (coarse first), or empty for linear elements.
    pub bases: Vec<Basis>,
    pub tolerance: f64,
    pub max_iterations: usize,
}

impl Default for BeamParams {
    fn default() -> Self {
        Self {
            resolution: 64,
            coarse: 32,
            levels: vec![(0.15, 4), (0.05, 4)],
            conductivity: 1.0,
            radius: 0.02,
            power: (0.5, 2.0),
            margin: 0.2,
            bases: Vec::new(),
            tolerance: 1e-10,
            max_iterations: 5000,
        }
    }
}

impl BeamParams {
    pub fn validate(&self) -> Result<(), ProblemError> {
        let bad = |message: String| {
            Err(ProblemError::BadParams {
                family: "mlvms",
                message,
            })
        };
        if self.resolution < 4 {
            return bad(format!(
                "resolution must be at least 4, got {}",
                self.resolution
            ));
        }
        if self.coarse < 4 {
            return bad(format!(
                "coarse must be at least 4 cells, got {}",
                self.coarse
            ));
        }
        if !(self.radius > 0.0 && self.radius < 0.5) {
            return bad(format!("radius must be in (0, 0.5), got {}", self.radius));
        }
        let (lo, hi) = self.power;
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return bad(format!(
                "power range must satisfy min ≤ max, got [{lo}, {hi}]"
            ));
        }
        let widest = self.levels.first().map_or(0.0, |l| l.0);
        if !(self.margin > 0.0 && self.margin < 0.5) || self.margin <= widest {
            return bad(format!(
                "margin must be in (0, 0.5) and wider than the first box's half width ({widest}) so the boxes stay inside the domain, got {}",
                self.margin
            ));
        }
        if !(self.conductivity > 0.0 && self.conductivity.is_finite()) {
            return bad(format!(
                "conductivity must be positive, got {}",
                self.conductivity
            ));
        }
        Ok(())
    }
}

/// Draws beams and solves them by ML-VMS.
#[derive(Debug)]
pub struct BeamGenerator {
    params: BeamParams,
}

impl BeamGenerator {
    pub fn new(params: BeamParams) -> Result<Self, ProblemError> {
        params.validate()?;
        Ok(Self { params })
    }
}

impl Family for BeamGenerator {
    fn name(&self) -> &'static str {
        "mlvms"
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
        let centre = [
            rng.gen_range(p.margin..1.0 - p.margin),
            rng.gen_range(p.margin..1.0 - p.margin),
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
        for &(half_width, refine) in &p.levels {
            let spec = LevelSpec::around(&parent, centre, half_width, refine);
            parent = spec.mesh(&parent);
            levels.push(spec);
        }
        let problem = SteadyHeat {
            conductivity: p.conductivity,
            source: &source,
            dirichlet: &|_| 0.0,
        };
        let params = MultilevelParams {
            tolerance: p.tolerance,
            max_iterations: p.max_iterations,
            bases: p.bases.clone(),
            ..MultilevelParams::default()
        };
        let (solution, info) = solve_steady(coarse, &levels, &problem, &params).map_err(|e| {
            ProblemError::BadParams {
                family: "mlvms",
                message: format!("sample {index}: {e}"),
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
            levels: vec![(0.1, 2), (0.05, 2)],
            radius: 0.05,
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
            margin: 0.1,
            levels: vec![(0.15, 2)],
            ..BeamParams::default()
        };
        let err = BeamGenerator::new(bad).unwrap_err().to_string();
        assert!(err.contains("margin must be"), "{err}");
    }
}
