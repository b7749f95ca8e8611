//! 2-D incompressible Navier–Stokes in vorticity form on the periodic unit torus, as in the FNO
//! benchmark:
//!
//! `ω_t + u·∇ω = ν Δω + f`, `u = (ψ_y, −ψ_x)`, `−Δψ = ω`,
//!
//! with `f = 0.1(sin 2π(x + y) + cos 2π(x + y))` and `ω₀` from a Gaussian random field
//! `N(0, 7^{3}(−Δ + 49 I)^{−2.5})`. Pseudo-spectral in space with the 2/3 rule; Crank–Nicolson for
//! the viscous term and explicit Euler for the advection, the scheme of the FNO authors' data script:
//!
//! `ω̂ⁿ⁺¹ = ((1 − ½Δtν|k|²) ω̂ⁿ − Δt (u·∇ω)^ⁿ + Δt f̂) / (1 + ½Δtν|k|²)`.
//!
//! The mean of `u·∇ω = ∇·(uω)` over the torus is zero; its roundoff is dropped, so the mean
//! vorticity is conserved exactly.

use super::{
    periodic_coords, Family, ProblemError, ProblemParams, Sample, SampleLayout, SampleReport,
};
use crate::field::{wavenumber, GrfParams, GrfSampler2d};
use crate::param::{require, InvalidParam};
use crate::rng::sample_rng;
use crate::spectral::{derivative_wavenumber, Plans2, Rfft2};
use rustfft::num_complex::Complex64;
use std::f64::consts::PI;
use std::time::Instant;

/// The body force. In a config: the amplitude of the FNO forcing, 0 for none.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(from = "f64", into = "f64"))]
pub enum Forcing {
    None,
    /// `amplitude · (sin 2π(x + y) + cos 2π(x + y))`; the FNO benchmark uses 0.1.
    Fno {
        amplitude: f64,
    },
}

impl From<f64> for Forcing {
    fn from(amplitude: f64) -> Self {
        if amplitude == 0.0 {
            Forcing::None
        } else {
            Forcing::Fno { amplitude }
        }
    }
}

impl From<Forcing> for f64 {
    fn from(f: Forcing) -> Self {
        match f {
            Forcing::None => 0.0,
            Forcing::Fno { amplitude } => amplitude,
        }
    }
}

/// Parameters of a random Navier–Stokes family: the `[generate.navier_stokes]` table.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct NavierStokesParams {
    /// Grid points per side of the periodic grid (even).
    pub resolution: usize,
    pub viscosity: f64,
    pub final_time: f64,
    /// Largest time step; the step used is `T/steps` for the smallest step count, a multiple of
    /// `snapshots`, that keeps it at most this.
    #[cfg_attr(feature = "serde", serde(rename = "dt"))]
    pub max_dt: f64,
    /// Snapshots stored at `T·j/snapshots`, `j = 1..=snapshots` (FNO: T = 50, 50 snapshots).
    pub snapshots: usize,
    pub forcing: Forcing,
    /// Initial vorticity field.
    #[cfg_attr(feature = "serde", serde(rename = "initial"))]
    pub field: GrfParams,
}

impl Default for NavierStokesParams {
    /// The FNO benchmark at ν = 1e-3: 64 × 64, T = 50, a snapshot every time unit, Δt = 1e-4.
    fn default() -> Self {
        Self {
            resolution: 64,
            viscosity: 1e-3,
            final_time: 50.0,
            max_dt: 1e-4,
            snapshots: 50,
            forcing: Forcing::Fno { amplitude: 0.1 },
            field: GrfParams::new(2.5, 7.0, None),
        }
    }
}

impl ProblemParams for NavierStokesParams {
    const NAME: &'static str = "navier_stokes";

    fn validate(&self) -> Result<(), InvalidParam> {
        super::check_spectral_stepping(
            self.resolution,
            self.viscosity,
            self.final_time,
            self.max_dt,
        )?;
        require(
            (1..=100_000).contains(&self.snapshots),
            "snapshots",
            "an integer from 1 to 100000",
            self.snapshots,
        )?;
        let forcing = f64::from(self.forcing);
        require(
            forcing.is_finite(),
            "forcing",
            "a finite number (0 for no forcing)",
            forcing,
        )?;
        self.field.validate().map_err(|e| e.within("initial"))
    }
}

impl NavierStokesParams {
    /// Time steps per snapshot and in total.
    pub fn steps(&self) -> (usize, usize) {
        super::snapshot_steps(self.final_time, self.snapshots, self.max_dt)
    }
}

/// The spectral stepper for one resolution, viscosity and step; `Sync`, shared by all threads.
#[derive(Debug, Clone)]
pub struct VorticityStepper {
    n: usize,
    plans: Plans2,
    dt: f64,
    /// Per mode (`[ky][kx]`), each scaled by 1/n² so the inverse transforms need no normalising
    /// pass: the real factors c with `û ↦ i·c·û` giving u = ψ_y, v = −ψ_x, ω_x and ω_y.
    to_u: Vec<f64>,
    to_v: Vec<f64>,
    to_wx: Vec<f64>,
    to_wy: Vec<f64>,
    /// Crank–Nicolson factors; the advection's dealiasing mask (0 or Δt) folded into `adv`.
    cn_num: Vec<f64>,
    cn_inv_den: Vec<f64>,
    adv: Vec<f64>,
    forcing: Vec<Complex64>,
}

impl VorticityStepper {
    pub fn new(n: usize, viscosity: f64, dt: f64, forcing: Forcing) -> Self {
        let plans = Plans2::new(n);
        let len = plans.spectrum_len();
        let m = n / 2 + 1;
        let cut = (2.0 / 3.0) * (n / 2) as f64;
        let z = || vec![0.0; len];
        let (mut to_u, mut to_v, mut to_wx, mut to_wy) = (z(), z(), z(), z());
        let (mut cn_num, mut cn_inv_den, mut adv) = (z(), z(), z());
        let norm = 1.0 / (n * n) as f64;
        for ky in 0..m {
            for kx in 0..n {
                let p = ky * n + kx;
                let (fx, fy) = (wavenumber(kx, n), ky as f64);
                let lap = 4.0 * PI * PI * (fx * fx + fy * fy);
                let inv_lap = if p == 0 { 0.0 } else { 1.0 / lap };
                let dx = 2.0 * PI * derivative_wavenumber(kx, n);
                let dy = 2.0 * PI * derivative_wavenumber(ky, n);
                to_u[p] = dy * inv_lap * norm;
                to_v[p] = -dx * inv_lap * norm;
                to_wx[p] = dx * norm;
                to_wy[p] = dy * norm;
                cn_num[p] = 1.0 - 0.5 * dt * viscosity * lap;
                cn_inv_den[p] = 1.0 / (1.0 + 0.5 * dt * viscosity * lap);
                let keep = p != 0 && fx.abs() <= cut && fy <= cut;
                adv[p] = if keep { dt } else { 0.0 };
            }
        }
        let mut stepper = Self {
            n,
            plans,
            dt,
            to_u,
            to_v,
            to_wx,
            to_wy,
            cn_num,
            cn_inv_den,
            adv,
            forcing: vec![Complex64::default(); len],
        };
        if let Forcing::Fno { amplitude } = forcing {
            let f: Vec<f64> = (0..n * n)
                .map(|p| {
                    let (x, y) = ((p / n) as f64 / n as f64, (p % n) as f64 / n as f64);
                    let a = 2.0 * PI * (x + y);
                    amplitude * (a.sin() + a.cos())
                })
                .collect();
            let mut fft = Rfft2::new(&stepper.plans);
            let mut fh = vec![Complex64::default(); len];
            fft.forward(&f, &mut fh);
            stepper.forcing = fh;
        }
        stepper
    }

    /// Advances `w` (`n × n`, `[x][y]`) by `steps` steps, calling `snapshot(step, w)` every
    /// `every` steps. Returns false if the state stopped being finite.
    pub fn run(
        &self,
        w: &mut [f64],
        steps: usize,
        every: usize,
        mut snapshot: impl FnMut(usize, &[f64]),
    ) -> bool {
        let len = self.plans.spectrum_len();
        let nn = self.n * self.n;
        let z = || vec![Complex64::default(); len];
        let mut fft = Rfft2::new(&self.plans);
        let (mut wh, mut spec, mut fh) = (z(), z(), z());
        let z = || vec![Complex64::default(); len];
        let (mut u, mut v, mut wx, mut wy) =
            (vec![0.0; nn], vec![0.0; nn], vec![0.0; nn], vec![0.0; nn]);
        let (mut su, mut sv, mut swx, mut swy) = (z(), z(), z(), z());
        fft.forward(w, &mut wh);
        let times_i = |c: f64, w: Complex64| Complex64::new(-c * w.im, c * w.re);
        for step in 1..=steps {
            // u = ψ_y, v = −ψ_x with ψ̂ = ω̂/|k|², and ∇ω, in one pass over ω̂.
            for p in 0..len {
                let w = wh[p];
                su[p] = times_i(self.to_u[p], w);
                sv[p] = times_i(self.to_v[p], w);
                swx[p] = times_i(self.to_wx[p], w);
                swy[p] = times_i(self.to_wy[p], w);
            }
            fft.inverse_unnormalised(&mut su, &mut u);
            fft.inverse_unnormalised(&mut sv, &mut v);
            fft.inverse_unnormalised(&mut swx, &mut wx);
            fft.inverse_unnormalised(&mut swy, &mut wy);
            for q in 0..nn {
                u[q] = u[q] * wx[q] + v[q] * wy[q];
            }
            fft.forward(&u, &mut fh);
            for p in 0..len {
                wh[p] = (wh[p] * self.cn_num[p] + self.forcing[p] * self.dt - fh[p] * self.adv[p])
                    * self.cn_inv_den[p];
            }
            if step % every == 0 || step == steps {
                spec.copy_from_slice(&wh);
                fft.inverse(&mut spec, w);
                if !w.iter().all(|x| x.is_finite()) {
                    return false;
                }
                if step % every == 0 {
                    snapshot(step, w);
                }
            }
        }
        true
    }
}

/// Draws and solves random Navier–Stokes problems.
#[derive(Debug)]
pub struct NavierStokesGenerator {
    params: NavierStokesParams,
    sampler: GrfSampler2d,
    stepper: VorticityStepper,
}

impl NavierStokesGenerator {
    pub fn new(params: NavierStokesParams) -> Result<Self, ProblemError> {
        params.checked()?;
        let (_, steps) = params.steps();
        Ok(Self {
            sampler: GrfSampler2d::new(params.resolution, params.field)?,
            stepper: VorticityStepper::new(
                params.resolution,
                params.viscosity,
                params.final_time / steps as f64,
                params.forcing,
            ),
            params,
        })
    }

    pub fn params(&self) -> &NavierStokesParams {
        &self.params
    }

    /// The initial vorticity of sample `index`, `[x][y]` row-major.
    pub fn initial_vorticity(&self, seed: u64, index: u64) -> Vec<f64> {
        self.sampler
            .sample(&mut sample_rng(seed, index))
            .into_raw_vec_and_offset()
            .0
    }
}

impl Family for NavierStokesGenerator {
    fn name(&self) -> &'static str {
        NavierStokesParams::NAME
    }

    fn layout(&self) -> SampleLayout {
        let p = &self.params;
        let n = p.resolution;
        SampleLayout {
            inputs: vec![("initial_vorticity", vec![n, n])],
            outputs: vec![("vorticity", vec![p.snapshots, n, n])],
            params: vec!["viscosity"],
            axes: vec![
                ("x", periodic_coords(n)),
                ("y", periodic_coords(n)),
                (
                    "t",
                    (1..=p.snapshots)
                        .map(|j| p.final_time * j as f64 / p.snapshots as f64)
                        .collect(),
                ),
            ],
            linear_solves: false,
        }
    }

    fn generate(&self, seed: u64, index: u64) -> Result<Sample, ProblemError> {
        let start = Instant::now();
        let p = &self.params;
        let w0 = self.initial_vorticity(seed, index);
        let mut w = w0.clone();
        let (every, steps) = p.steps();
        let frame = p.resolution * p.resolution;
        let mut trajectory = Vec::with_capacity(p.snapshots * frame);
        let finite = self.stepper.run(&mut w, steps, every, |_, snap| {
            trajectory.extend_from_slice(snap)
        });
        trajectory.resize(p.snapshots * frame, f64::NAN);
        Ok(Sample {
            index,
            inputs: vec![w0],
            outputs: vec![trajectory],
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

    #[test]
    fn taylor_green_vortex_decays_at_the_viscous_rate() {
        // ω = cos(2πkx)cos(2πky) is a steady Euler flow (u·∇ω = 0) and an eigenfunction of Δ with
        // eigenvalue −2K², K = 2πk: it decays as exp(−2νK²t).
        let (n, k, nu, t_end, dt) = (32, 2.0, 1e-3, 1.0, 1e-3);
        let stepper = VorticityStepper::new(n, nu, dt, Forcing::None);
        let shape = |p: usize| {
            let (x, y) = ((p / n) as f64 / n as f64, (p % n) as f64 / n as f64);
            (2.0 * PI * k * x).cos() * (2.0 * PI * k * y).cos()
        };
        let mut w: Vec<f64> = (0..n * n).map(shape).collect();
        assert!(stepper.run(&mut w, 1000, 1000, |_, _| {}));
        let big_k = 2.0 * PI * k;
        let decay = (-2.0 * nu * big_k * big_k * t_end).exp();
        let (mut err, mut norm) = (0.0, 0.0);
        for (p, v) in w.iter().enumerate() {
            let exact = decay * shape(p);
            err += (v - exact).powi(2);
            norm += exact * exact;
        }
        let rel = (err / norm).sqrt();
        assert!(rel < 1e-8, "relative L2 error {rel}");
    }

    #[test]
    fn forced_random_flow_conserves_mean_vorticity() {
        let p = NavierStokesParams {
            resolution: 32,
            final_time: 1.0,
            snapshots: 2,
            max_dt: 1e-3,
            ..Default::default()
        };
        let g = NavierStokesGenerator::new(p).unwrap();
        let s = g.generate(7, 3).unwrap();
        assert!(s.report.converged);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let m0 = mean(&s.inputs[0]);
        for snap in s.outputs[0].chunks(32 * 32) {
            assert!((mean(snap) - m0).abs() < 1e-13, "{} vs {m0}", mean(snap));
        }
        // The flow moved: the last snapshot differs from the start.
        let moved: f64 = s.outputs[0][32 * 32..]
            .iter()
            .zip(&s.inputs[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(moved > 1e-3, "{moved}");
    }
}
