//! 1-D viscous Burgers `u_t + u u_x = ν u_xx` on the periodic unit interval, as in the FNO benchmark:
//! initial data from a Gaussian random field (FNO: `N(0, 625(−Δ + 25 I)^(−2))`), output at `t = T`
//! and optionally a trajectory.
//!
//! Pseudo-spectral in space with the 2/3 rule, ETDRK4 in time (Cox & Matthews 2002): the stiff
//! diffusion is integrated exactly and the nonlinear term `−½(u²)_x` by a fourth-order exponential
//! Runge–Kutta scheme. The φ-function coefficients are evaluated by contour integrals (Kassam &
//! Trefethen 2005), which avoids the cancellation of their series near `Lh = 0`.

use super::{
    periodic_coords, Family, ProblemError, ProblemParams, Sample, SampleLayout, SampleReport,
};
use crate::field::{GrfParams, GrfSampler1d};
use crate::param::{require, InvalidParam};
use crate::rng::sample_rng;
use crate::spectral::{derivative_wavenumber, Plans1, Rfft1};
use rustfft::num_complex::Complex64;
use std::f64::consts::PI;
use std::time::Instant;

/// Parameters of a random Burgers family: the `[generate.burgers]` table.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct BurgersParams {
    /// Grid points on [0, 1).
    pub resolution: usize,
    pub viscosity: f64,
    /// Final time T.
    pub final_time: f64,
    /// Largest time step; the step used is `T / steps` with `steps` the smallest count (a multiple
    /// of `snapshots`) that keeps it at most this.
    #[cfg_attr(feature = "serde", serde(rename = "dt"))]
    pub max_dt: f64,
    /// Snapshots of the trajectory at `T·j/snapshots`, `j = 1..=snapshots`; 0 stores only `u(T)`.
    pub snapshots: usize,
    /// Initial-condition field.
    #[cfg_attr(feature = "serde", serde(rename = "initial"))]
    pub field: GrfParams,
}

impl Default for BurgersParams {
    /// The FNO benchmark: ν = 0.1, T = 1, u₀ ~ N(0, 625(−Δ + 25 I)^(−2)).
    fn default() -> Self {
        Self {
            resolution: 1024,
            viscosity: 0.1,
            final_time: 1.0,
            max_dt: 1e-4,
            snapshots: 0,
            field: GrfParams::new(2.0, 5.0, Some(25.0)),
        }
    }
}

impl ProblemParams for BurgersParams {
    const NAME: &'static str = "burgers";

    fn validate(&self) -> Result<(), InvalidParam> {
        super::check_spectral_stepping(
            self.resolution,
            self.viscosity,
            self.final_time,
            self.max_dt,
        )?;
        require(
            self.snapshots <= 100_000,
            "snapshots",
            "an integer from 0 (only u(T)) to 100000",
            self.snapshots,
        )?;
        self.field.validate().map_err(|e| e.within("initial"))
    }
}

impl BurgersParams {
    /// Time steps per snapshot interval and in total.
    pub fn steps(&self) -> (usize, usize) {
        super::snapshot_steps(self.final_time, self.snapshots, self.max_dt)
    }
}

/// The ETDRK4 stepper for one resolution, viscosity and step; `Sync`, one per family.
#[derive(Debug, Clone)]
pub struct Etdrk4 {
    n: usize,
    plans: Plans1,
    /// Per mode: e^{Lh}, e^{Lh/2}, Q, f1, f2, f3 (all real: L is real).
    e: Vec<f64>,
    e2: Vec<f64>,
    q: Vec<f64>,
    f1: Vec<f64>,
    f2: Vec<f64>,
    f3: Vec<f64>,
    /// `−½·2πik/n²` on kept modes, 0 on the dealiased ones; the 1/n² normalises the square of
    /// the unnormalised inverse transform.
    nl: Vec<Complex64>,
}

impl Etdrk4 {
    pub fn new(n: usize, viscosity: f64, dt: f64) -> Self {
        let plans = Plans1::new(n);
        let m = plans.modes();
        let contour = 32;
        let (mut e, mut e2, mut q, mut f1, mut f2, mut f3) = (
            vec![0.0; m],
            vec![0.0; m],
            vec![0.0; m],
            vec![0.0; m],
            vec![0.0; m],
            vec![0.0; m],
        );
        let cutoff = n as f64 / 3.0;
        let mut nl = vec![Complex64::default(); m];
        for k in 0..m {
            let kk = 2.0 * PI * k as f64;
            let lh = -viscosity * kk * kk * dt;
            e[k] = lh.exp();
            e2[k] = (lh / 2.0).exp();
            let (mut sq, mut s1, mut s2, mut s3) = (0.0, 0.0, 0.0, 0.0);
            for j in 0..contour {
                let theta = PI * (j as f64 + 0.5) / contour as f64;
                let z = Complex64::new(lh, 0.0) + Complex64::from_polar(1.0, theta);
                let ez = z.exp();
                let z3 = z * z * z;
                sq += (((z / 2.0).exp() - 1.0) / z).re;
                s1 += ((-4.0 - z + ez * (4.0 - 3.0 * z + z * z)) / z3).re;
                s2 += ((2.0 + z + ez * (z - 2.0)) / z3).re;
                s3 += ((-4.0 - 3.0 * z - z * z + ez * (4.0 - z)) / z3).re;
            }
            // The contour is the upper half circle; the lower half is its conjugate, so the mean
            // of the real parts over the half is the mean over the whole circle.
            let c = contour as f64;
            q[k] = dt * sq / c;
            f1[k] = dt * s1 / c;
            f2[k] = dt * s2 / c;
            f3[k] = dt * s3 / c;
            let kd = derivative_wavenumber(k, n);
            nl[k] = if (k as f64) < cutoff {
                Complex64::new(0.0, -0.5 * 2.0 * PI * kd / (n * n) as f64)
            } else {
                Complex64::default()
            };
        }
        Self {
            n,
            plans,
            e,
            e2,
            q,
            f1,
            f2,
            f3,
            nl,
        }
    }

    /// Advances `u` (length n) by `steps` steps, calling `snapshot(step, u)` every `every` steps.
    /// Returns false if the state stopped being finite.
    pub fn run(
        &self,
        u: &mut [f64],
        steps: usize,
        every: usize,
        mut snapshot: impl FnMut(usize, &[f64]),
    ) -> bool {
        let m = self.plans.modes();
        let mut ws = Workspace::new(self, m);
        ws.fft.forward(u, &mut ws.v);
        let mut finite = true;
        for step in 1..=steps {
            self.step(&mut ws);
            if step % every == 0 || step == steps {
                ws.tmp.copy_from_slice(&ws.v);
                ws.fft.inverse(&mut ws.tmp, u);
                finite = u.iter().all(|x| x.is_finite());
                if step % every == 0 {
                    snapshot(step, u);
                }
                if !finite {
                    break;
                }
            }
        }
        finite
    }

    fn nonlinear(&self, ws: &mut Workspace, which: Stage) {
        let Workspace {
            fft,
            tmp,
            real,
            v,
            a,
            b,
            c,
            nv,
            na,
            nb,
            nc,
        } = ws;
        let (src, dst) = match which {
            Stage::V => (&*v, nv),
            Stage::A => (&*a, na),
            Stage::B => (&*b, nb),
            Stage::C => (&*c, nc),
        };
        tmp.copy_from_slice(src);
        fft.inverse_unnormalised(tmp, real);
        for x in real.iter_mut() {
            *x *= *x;
        }
        fft.forward(real, dst);
        for (d, &w) in dst.iter_mut().zip(&self.nl) {
            *d *= w;
        }
    }

    fn step(&self, ws: &mut Workspace) {
        self.nonlinear(ws, Stage::V);
        for k in 0..ws.v.len() {
            ws.a[k] = ws.v[k] * self.e2[k] + ws.nv[k] * self.q[k];
        }
        self.nonlinear(ws, Stage::A);
        for k in 0..ws.v.len() {
            ws.b[k] = ws.v[k] * self.e2[k] + ws.na[k] * self.q[k];
        }
        self.nonlinear(ws, Stage::B);
        for k in 0..ws.v.len() {
            ws.c[k] = ws.a[k] * self.e2[k] + (ws.nb[k] * 2.0 - ws.nv[k]) * self.q[k];
        }
        self.nonlinear(ws, Stage::C);
        for k in 0..ws.v.len() {
            ws.v[k] = ws.v[k] * self.e[k]
                + ws.nv[k] * self.f1[k]
                + (ws.na[k] + ws.nb[k]) * (2.0 * self.f2[k])
                + ws.nc[k] * self.f3[k];
        }
    }
}

#[derive(Clone, Copy)]
enum Stage {
    V,
    A,
    B,
    C,
}

struct Workspace {
    fft: Rfft1,
    tmp: Vec<Complex64>,
    real: Vec<f64>,
    v: Vec<Complex64>,
    a: Vec<Complex64>,
    b: Vec<Complex64>,
    c: Vec<Complex64>,
    nv: Vec<Complex64>,
    na: Vec<Complex64>,
    nb: Vec<Complex64>,
    nc: Vec<Complex64>,
}

impl Workspace {
    fn new(s: &Etdrk4, m: usize) -> Self {
        let z = || vec![Complex64::default(); m];
        Self {
            fft: Rfft1::new(&s.plans),
            tmp: z(),
            real: vec![0.0; s.n],
            v: z(),
            a: z(),
            b: z(),
            c: z(),
            nv: z(),
            na: z(),
            nb: z(),
            nc: z(),
        }
    }
}

/// Draws and solves random Burgers problems.
#[derive(Debug)]
pub struct BurgersGenerator {
    params: BurgersParams,
    sampler: GrfSampler1d,
    stepper: Etdrk4,
}

impl BurgersGenerator {
    pub fn new(params: BurgersParams) -> Result<Self, ProblemError> {
        params.checked()?;
        let (_, steps) = params.steps();
        let dt = params.final_time / steps as f64;
        Ok(Self {
            sampler: GrfSampler1d::new(params.resolution, params.field)?,
            stepper: Etdrk4::new(params.resolution, params.viscosity, dt),
            params,
        })
    }

    pub fn params(&self) -> &BurgersParams {
        &self.params
    }

    /// The initial condition of sample `index`.
    pub fn initial_condition(&self, seed: u64, index: u64) -> Vec<f64> {
        self.sampler.sample(&mut sample_rng(seed, index))
    }
}

impl Family for BurgersGenerator {
    fn name(&self) -> &'static str {
        BurgersParams::NAME
    }

    fn layout(&self) -> SampleLayout {
        let p = &self.params;
        let n = p.resolution;
        let mut outputs = vec![("solution", vec![n])];
        let mut axes = vec![("x", periodic_coords(n))];
        if p.snapshots > 0 {
            outputs.push(("trajectory", vec![p.snapshots, n]));
            axes.push((
                "t",
                (1..=p.snapshots)
                    .map(|j| p.final_time * j as f64 / p.snapshots as f64)
                    .collect(),
            ));
        }
        SampleLayout {
            inputs: vec![("initial_condition", vec![n])],
            outputs,
            params: vec!["viscosity"],
            axes,
            linear_solves: false,
        }
    }

    fn generate(&self, seed: u64, index: u64) -> Result<Sample, ProblemError> {
        let start = Instant::now();
        let p = &self.params;
        let u0 = self.initial_condition(seed, index);
        let mut u = u0.clone();
        let (every, steps) = p.steps();
        let mut trajectory = Vec::with_capacity(p.snapshots * p.resolution);
        let finite = self.stepper.run(&mut u, steps, every, |_, snap| {
            if p.snapshots > 0 {
                trajectory.extend_from_slice(snap)
            }
        });
        // A blown-up run stops early; pad so the row still has its shape (the report says why).
        trajectory.resize(p.snapshots * p.resolution, f64::NAN);
        let mut outputs = vec![u];
        if p.snapshots > 0 {
            outputs.push(trajectory);
        }
        Ok(Sample {
            index,
            inputs: vec![u0],
            outputs,
            params: vec![p.viscosity],
            report: SampleReport {
                converged: finite,
                steps,
                seconds: start.elapsed().as_secs_f64(),
                ..SampleReport::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cole–Hopf: with φ_t = ν φ_xx, u = −2ν φ_x/φ solves Burgers. Here
    /// φ = 2 + Σ_k b_k e^{−ν(2πk)²t} cos(2πk x + θ_k), positive since Σ|b_k| < 2.
    fn cole_hopf(x: f64, t: f64, nu: f64) -> f64 {
        let terms = [(1.0, 0.8, 0.3), (2.0, 0.5, 1.1), (3.0, 0.3, -0.4)];
        let (mut phi, mut phi_x) = (2.0, 0.0);
        for (k, b, th) in terms {
            let w = 2.0 * PI * k;
            let decay = (-nu * w * w * t).exp();
            phi += b * decay * (w * x + th).cos();
            phi_x -= b * decay * w * (w * x + th).sin();
        }
        -2.0 * nu * phi_x / phi
    }

    #[test]
    fn matches_cole_hopf_exact_solution() {
        let (n, nu, t_end) = (256, 0.05, 0.5);
        let dt = 1e-3;
        let stepper = Etdrk4::new(n, nu, dt);
        let x = periodic_coords(n);
        let mut u: Vec<f64> = x.iter().map(|&x| cole_hopf(x, 0.0, nu)).collect();
        let steps = (t_end / dt).round() as usize;
        assert!(stepper.run(&mut u, steps, steps, |_, _| {}));
        let exact: Vec<f64> = x.iter().map(|&x| cole_hopf(x, t_end, nu)).collect();
        let err: f64 = u
            .iter()
            .zip(&exact)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = exact.iter().map(|b| b * b).sum::<f64>().sqrt();
        // Stated tolerance: 1e-8 relative L2 (spectral in space, fourth order in time).
        assert!(err / norm < 1e-8, "relative L2 error {}", err / norm);
    }

    #[test]
    fn generator_keeps_the_mean_and_records_snapshots() {
        let p = BurgersParams {
            resolution: 64,
            snapshots: 4,
            max_dt: 1e-3,
            ..Default::default()
        };
        let g = BurgersGenerator::new(p).unwrap();
        let s = g.generate(3, 5).unwrap();
        assert!(s.report.converged);
        assert_eq!(s.report.steps, 1000);
        assert_eq!(s.outputs[1].len(), 4 * 64);
        // The last snapshot is u(T).
        assert_eq!(&s.outputs[1][3 * 64..], &s.outputs[0][..]);
        // Conservation form: the mean of u is invariant.
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean(&s.outputs[0]) - mean(&s.inputs[0])).abs() < 1e-12);
        assert_eq!(
            s,
            g.generate(3, 5)
                .map(|mut t| {
                    t.report.seconds = s.report.seconds;
                    t
                })
                .unwrap()
        );
    }

    #[test]
    fn rejects_bad_params() {
        let p = BurgersParams {
            viscosity: 0.0,
            ..Default::default()
        };
        assert!(matches!(
            BurgersGenerator::new(p),
            Err(ProblemError::Invalid { family: "burgers", param }) if param.field == "viscosity"
        ));
    }
}
