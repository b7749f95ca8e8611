//! `[gp]`: GP-HM on a manufactured solution. The optimisation keys are the operator library's
//! [`GpParams`]; the problem is an expression for the exact solution.

use super::source::Source;
use super::{ConfigError, ImageFormat};
use crate::expr::Expr;
use pdekit_operators::gp::optim::GpParams;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use toml::Value;

/// The PDE a [`GpPlan`] solves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpPde {
    /// `−Δu = f`.
    Poisson,
    /// `Δu + u(u² − 1) = f`.
    AllenCahn,
    /// `u_t + β u_x = f` on a space-time grid: x is the first axis, t the second (2-D only).
    Advection,
}

/// A validated `[gp]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpPlan {
    pub pde: GpPde,
    /// β of the advection equation.
    pub velocity: Option<f64>,
    /// The exact solution as an expression in x (and y); the source and boundary data follow.
    pub solution: String,
    pub dim: usize,
    /// The interval of every axis.
    pub domain: [f64; 2],
    /// Collocation points per axis, both ends included.
    pub points: usize,
    /// Test points per axis for the errors and plots.
    pub test_points: usize,
    #[serde(flatten)]
    pub params: GpParams,
    /// Error evaluations on the test grid over the run (the error-against-step curve).
    pub checkpoints: usize,
    /// Also solve the 1-D problem by second-order finite differences on the same points.
    pub baseline: bool,
    pub output_dir: PathBuf,
    #[serde(default)]
    pub format: ImageFormat,
}

/// Collocation and test points per axis, and the exact-value steps, unless given: in 2-D fewer
/// points, and polishing more often (Adam alone does not converge there).
fn per_dim(dim: usize) -> [(&'static str, Value); 3] {
    let (points, test, polish) = if dim == 1 {
        (200, 1000, 1000)
    } else {
        (64, 200, 500)
    };
    [
        ("points", Value::Integer(points)),
        ("test_points", Value::Integer(test)),
        ("polish_every", Value::Integer(polish)),
    ]
}

pub(super) fn check(src: &Source) -> Result<Option<GpPlan>, ConfigError> {
    if src.get("gp").is_none() {
        return Ok(None);
    }
    let solution: String = match src.get("gp.solution") {
        Some(v) => src.read("gp.solution", v.clone())?,
        None => return Err(src.err("gp.solution", "missing key `solution`")),
    };
    let expr = Expr::parse(&solution)
        .map_err(|e| src.err_in_string("gp.solution", e.column, format!("{e}: {solution}")))?;
    let dim = match src.get("gp.dim") {
        Some(v) => src.read::<usize>("gp.dim", v.clone())?,
        None => expr.dim(),
    };
    src.ensure((1..=2).contains(&dim), "gp.dim", "1 or 2", dim)?;
    if dim < expr.dim() {
        return Err(src.err(
            "gp.dim",
            "the solution uses y, so the problem is 2-D: expected 2, got 1",
        ));
    }
    let base = GpParams::default();
    let learning_rate = match src.get("gp.learning_rate") {
        Some(v) => src.read("gp.learning_rate", v.clone())?,
        None => base.learning_rate,
    };
    let steps: usize = match src.get("gp.steps") {
        Some(v) => src.read("gp.steps", v.clone())?,
        None => base.steps,
    };
    let mut defaults = per_dim(dim).to_vec();
    defaults.extend([
        ("dim", Value::Integer(dim as i64)),
        ("domain", Value::try_from([0.0, 1.0]).expect("numbers")),
        (
            "final_learning_rate",
            Value::Float(base.final_learning_rate.min(learning_rate)),
        ),
        ("checkpoints", Value::Integer(50.min(steps) as i64)),
        ("baseline", Value::Boolean(dim == 1)),
    ]);
    let p: GpPlan = src.section("gp", &defaults)?;
    p.params.validate().map_err(|e| src.param("gp", &e))?;
    let [a, b] = p.domain;
    let domain_ok = a.is_finite() && b.is_finite() && a < b;
    src.ensure(
        domain_ok,
        "gp.domain",
        "[a, b] with finite a < b",
        format!("[{a}, {b}]"),
    )?;
    let (max_points, max_test) = if dim == 1 {
        (4000, 100_000)
    } else {
        (400, 1000)
    };
    let points_ok = (4..=max_points).contains(&p.points);
    let expect_points = format!("an integer from 4 to {max_points} (per axis)");
    src.ensure(points_ok, "gp.points", &expect_points, p.points)?;
    let test_ok = (2..=max_test).contains(&p.test_points);
    let expect_test = format!("an integer from 2 to {max_test} (per axis)");
    src.ensure(test_ok, "gp.test_points", &expect_test, p.test_points)?;
    let cp_ok = (1..=steps).contains(&p.checkpoints);
    let expect_cp = format!("an integer from 1 to gp.steps = {steps}");
    src.ensure(cp_ok, "gp.checkpoints", &expect_cp, p.checkpoints)?;
    let velocity = match (p.pde, p.velocity) {
        (GpPde::Advection, Some(v)) => {
            src.ensure(v.is_finite(), "gp.velocity", "a finite number", v)?;
            Some(v)
        }
        (GpPde::Advection, None) => {
            return Err(src.err_at(
                "gp.pde",
                "gp.velocity",
                "missing key: advection needs `velocity`, the β of u_t + β u_x = f",
            ))
        }
        (_, Some(_)) => {
            return Err(src.err(
                "gp.velocity",
                "only the advection equation takes a velocity",
            ))
        }
        (_, None) => None,
    };
    if p.pde == GpPde::Advection && dim != 2 {
        return Err(src.err(
            "gp.pde",
            "advection is solved on a space-time grid: the solution must use x (space) and y (time)",
        ));
    }
    if p.pde == GpPde::Advection && p.baseline {
        return Err(src.err(
            "gp.baseline",
            "the finite-difference baseline covers Poisson and Allen–Cahn, not advection",
        ));
    }
    let output_dir = src.path(&p.output_dir.to_string_lossy());
    Ok(Some(GpPlan {
        velocity,
        output_dir,
        ..p
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, read};

    const GP: &str = "[gp]\noutput_dir = \"out\"\n";

    #[test]
    fn defaults_follow_the_dimension_of_the_solution() {
        let gp = |extra: &str| read(&format!("{GP}{extra}\n")).gp.unwrap();
        let one = gp("pde = \"poisson\"\nsolution = \"sin(100*x)\"");
        assert_eq!(
            (one.dim, one.points, one.params.polish_every),
            (1, 200, 1000)
        );
        assert!(one.baseline);
        let two = gp("pde = \"poisson\"\nsolution = \"sin(x)*y\"\nsteps = 20");
        assert_eq!((two.dim, two.points, two.params.polish_every), (2, 64, 500));
        assert_eq!(two.checkpoints, 20);
        assert!(!two.baseline);
    }

    #[test]
    fn gp_errors_name_their_key() {
        let cases = [
            ("pde = \"poisson\"\nsolution = \"sin(*x)\"", "c.toml:4:17: key `gp.solution`"),
            ("pde = \"poisson\"\nsolution = \"x*y\"\ndim = 1", "key `gp.dim`: the solution uses y"),
            ("pde = \"advection\"\nsolution = \"sin(x - y)\"", "key `gp.velocity`: missing key"),
            ("pde = \"poisson\"\nsolution = \"x\"\nvelocity = 2.0", "key `gp.velocity`: only the advection equation"),
            ("pde = \"poisson\"\nsolution = \"x\"\njitter = 2.0", "key `gp.jitter`: expected a number in (0, 1), got 2"),
            ("pde = \"poisson\"\nsolution = \"x\"\nlearning_rate = 1e-5\nfinal_learning_rate = 1e-3", "key `gp.final_learning_rate`"),
            ("pde = \"poisson\"\nsolution = \"x\"\nenvelope = \"cauchy\"", "key `gp.envelope`: unknown variant `cauchy`"),
            ("pde = \"allen_cahn\"\nsolution = \"x\"\nnewton_tolerance = 0.0", "key `gp.newton_tolerance`: expected a number in (0, 1), got 0"),
            ("pde = \"poisson\"\nsolution = \"x\"\npolish_max_iterations = 0", "key `gp.polish_max_iterations`: expected an integer ≥ 1, got 0"),
        ];
        assert_errors(cases.map(|(extra, want)| (format!("{GP}{extra}"), want)));
    }
}
