//! `[mlvms]` and `[mlvms_transient]`: multilevel VMS for a localized heat source, steady against
//! uniform meshes, and a moving beam with boxes that follow it.

use super::source::Source;
use super::{ConfigError, ImageFormat};
use pdekit_solvers::multiscale::chidenn::ChidennParams;
use pdekit_solvers::multiscale::multilevel::BoxLevel;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[mlvms.chidenn]`: multilevel runs with the C-HiDeNN basis on every level, the same level
/// boxes, one run per coarse size (default: the `[mlvms]` one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlvmsChidennPlan {
    #[serde(default)]
    pub coarse: Vec<usize>,
    #[serde(flatten)]
    pub params: ChidennParams,
}

/// The `[mlvms]` stage: steady heat conduction with a localized source on the unit square or cube,
/// multilevel against uniform Q1 meshes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlvmsPlan {
    pub dim: usize,
    /// Coarse (level-0) cells per axis.
    #[serde(default = "sixteen")]
    pub coarse: usize,
    #[serde(default = "unit")]
    pub conductivity: f64,
    /// The manufactured solution `u* = amplitude·exp(−|x − centre|²/radius²)`; `Q = −k Δu*`.
    pub centre: Vec<f64>,
    pub radius: f64,
    #[serde(default = "unit")]
    pub amplitude: f64,
    pub levels: Vec<BoxLevel>,
    /// Uniform meshes (cells per axis) solved for comparison.
    #[serde(default)]
    pub uniform: Vec<usize>,
    /// Also solve with the C-HiDeNN basis on every level.
    pub chidenn: Option<MlvmsChidennPlan>,
    pub output_dir: PathBuf,
    #[serde(default)]
    pub format: ImageFormat,
}

/// The `[mlvms_transient]` stage: a Gaussian beam moving on a straight line over the unit square
/// or cube, `ρc u_t − ∇·(k∇u) = Q`, `u = 0` on the boundary and at t = 0, with level boxes that
/// follow the beam.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlvmsTransientPlan {
    pub dim: usize,
    #[serde(default = "sixteen")]
    pub coarse: usize,
    pub levels: Vec<BoxLevel>,
    #[serde(default = "unit")]
    pub conductivity: f64,
    #[serde(default = "unit")]
    pub capacity: f64,
    /// The beam: power P and radius r of `P·exp(−|x − x₀(t)|²/r²)`, starting at `start` and
    /// moving at `velocity`.
    pub power: f64,
    pub radius: f64,
    pub start: Vec<f64>,
    pub velocity: Vec<f64>,
    /// θ-method steps: 1 is implicit Euler, 0.5 Crank–Nicolson.
    #[serde(default = "unit")]
    pub theta: f64,
    pub dt: f64,
    pub steps: usize,
    /// Re-centre when the beam is this fraction of the innermost half width from its centre.
    #[serde(default = "quarter")]
    pub recentre_fraction: f64,
    pub output_dir: PathBuf,
    #[serde(default)]
    pub format: ImageFormat,
}

fn sixteen() -> usize {
    16
}

fn unit() -> f64 {
    1.0
}

fn quarter() -> f64 {
    0.25
}

/// A positive finite number.
fn positive(v: f64) -> bool {
    v > 0.0 && v.is_finite()
}

/// `dim`, the coarse mesh and the level boxes that both stages share.
fn check_mesh(
    src: &Source,
    section: &str,
    dim: usize,
    coarse: usize,
    levels: &[BoxLevel],
) -> Result<(), ConfigError> {
    src.ensure(
        (2..=3).contains(&dim),
        &format!("{section}.dim"),
        "2 or 3",
        dim,
    )?;
    let coarse_ok = (4..=4096).contains(&coarse);
    let key = format!("{section}.coarse");
    src.ensure(coarse_ok, &key, "an integer from 4 to 4096", coarse)?;
    BoxLevel::validate_all(levels).map_err(|e| src.param(section, &e))
}

/// A point: `dim` finite coordinates, inside (0, 1) when `inside`.
fn check_point(
    src: &Source,
    key: &str,
    p: &[f64],
    dim: usize,
    inside: bool,
) -> Result<(), ConfigError> {
    let ok = p.len() == dim
        && p.iter()
            .all(|c| c.is_finite() && (!inside || (0.0 < *c && *c < 1.0)));
    let where_ = if inside { " inside (0, 1)" } else { "" };
    let expected = format!("{dim} finite numbers{where_}");
    src.ensure(ok, key, &expected, format!("{p:?}"))
}

pub(super) fn check(src: &Source) -> Result<Option<MlvmsPlan>, ConfigError> {
    if src.get("mlvms").is_none() {
        return Ok(None);
    }
    let p: MlvmsPlan = src.section("mlvms", &[])?;
    check_mesh(src, "mlvms", p.dim, p.coarse, &p.levels)?;
    check_point(src, "mlvms.centre", &p.centre, p.dim, true)?;
    let radius_ok = p.radius > 0.0 && p.radius < 0.5;
    src.ensure(radius_ok, "mlvms.radius", "a number in (0, 0.5)", p.radius)?;
    let k = p.conductivity;
    src.ensure(positive(k), "mlvms.conductivity", "a positive number", k)?;
    let a = p.amplitude;
    let amp_ok = a.is_finite() && a != 0.0;
    src.ensure(amp_ok, "mlvms.amplitude", "a finite nonzero number", a)?;
    let max_uniform = if p.dim == 2 { 4096 } else { 256 };
    if let Some(&bad) = p.uniform.iter().find(|&&n| !(4..=max_uniform).contains(&n)) {
        let expected = format!("cells per axis from 4 to {max_uniform}");
        src.ensure(false, "mlvms.uniform", &expected, bad)?;
    }
    let chidenn = match p.chidenn {
        None => None,
        Some(c) => {
            let valid = match p.dim {
                2 => c.params.validate::<2>(),
                _ => c.params.validate::<3>(),
            };
            valid.map_err(|e| src.param("mlvms.chidenn", &e))?;
            let coarse = match c.coarse.is_empty() {
                true => vec![p.coarse],
                false => c.coarse,
            };
            let sizes_ok = coarse.iter().all(|n| (4..=4096).contains(n));
            let expected = "coarse sizes from 4 to 4096";
            src.ensure(
                sizes_ok,
                "mlvms.chidenn.coarse",
                expected,
                format!("{coarse:?}"),
            )?;
            Some(MlvmsChidennPlan { coarse, ..c })
        }
    };
    Ok(Some(MlvmsPlan {
        chidenn,
        output_dir: src.path(&p.output_dir.to_string_lossy()),
        ..p
    }))
}

pub(super) fn check_transient(src: &Source) -> Result<Option<MlvmsTransientPlan>, ConfigError> {
    const S: &str = "mlvms_transient";
    if src.get(S).is_none() {
        return Ok(None);
    }
    let p: MlvmsTransientPlan = src.section(S, &[])?;
    check_mesh(src, S, p.dim, p.coarse, &p.levels)?;
    check_point(src, &format!("{S}.start"), &p.start, p.dim, true)?;
    check_point(src, &format!("{S}.velocity"), &p.velocity, p.dim, false)?;
    let radius_ok = p.radius > 0.0 && p.radius < 0.5;
    src.ensure(
        radius_ok,
        &format!("{S}.radius"),
        "a number in (0, 0.5)",
        p.radius,
    )?;
    for (key, v) in [
        ("conductivity", p.conductivity),
        ("capacity", p.capacity),
        ("power", p.power),
        ("dt", p.dt),
    ] {
        src.ensure(positive(v), &format!("{S}.{key}"), "a positive number", v)?;
    }
    let steps_ok = (1..=1_000_000).contains(&p.steps);
    src.ensure(
        steps_ok,
        &format!("{S}.steps"),
        "an integer from 1 to 1000000",
        p.steps,
    )?;
    let theta_ok = (0.5..=1.0).contains(&p.theta);
    src.ensure(
        theta_ok,
        &format!("{S}.theta"),
        "a number in [0.5, 1]",
        p.theta,
    )?;
    let f = p.recentre_fraction;
    let f_ok = f > 0.0 && f <= 1.0;
    src.ensure(
        f_ok,
        &format!("{S}.recentre_fraction"),
        "a number in (0, 1]",
        f,
    )?;
    Ok(Some(MlvmsTransientPlan {
        output_dir: src.path(&p.output_dir.to_string_lossy()),
        ..p
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, read};

    const STEADY: &str = "[mlvms]\ndim = 2\ncentre = [0.5, 0.5]\nradius = 0.05\noutput_dir = \"o\"\nlevels = [{ half_width = 0.2, refine = 2 }]\n";

    #[test]
    fn chidenn_runs_default_to_the_coarse_mesh_of_the_section() {
        let plan = read(&format!("{STEADY}coarse = 12\n[mlvms.chidenn]\n"));
        let c = plan.mlvms.unwrap().chidenn.unwrap();
        assert_eq!((c.coarse, c.params.degree), (vec![12], 2));
    }

    #[test]
    fn mlvms_errors_name_their_key() {
        let transient = "[mlvms_transient]\ndim = 2\nlevels = []\npower = 1.0\nradius = 0.1\nstart = [0.2, 0.5]\nvelocity = [1.0, 0.0]\ndt = 0.01\nsteps = 10\noutput_dir = \"o\"\n";
        let cases = [
            (
                STEADY.replace("[0.5, 0.5]", "[0.5, 1.5]"),
                "key `mlvms.centre`: expected 2 finite numbers inside (0, 1)",
            ),
            (
                STEADY.replace("refine = 2", "refine = 0"),
                "key `mlvms.levels[0]`: expected half_width in (0, 0.5)",
            ),
            (
                format!("{STEADY}[mlvms.chidenn]\ndegree = 3\n"),
                "key `mlvms.chidenn.degree`",
            ),
            (
                transient.replace("dt = 0.01", "dt = -1.0"),
                "key `mlvms_transient.dt`: expected a positive number, got -1",
            ),
            (
                transient.replace("[1.0, 0.0]", "[1.0]"),
                "key `mlvms_transient.velocity`: expected 2 finite numbers",
            ),
        ];
        assert_errors(cases);
    }
}
