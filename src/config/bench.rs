//! `[solver_bench]`: one sequence of systems solved by every method of its
//! `[[solver_bench.methods]]` list (`pdekit bench solvers`).

use super::solver::{check_amg, over};
use super::source::Source;
use super::ConfigError;
use super::ImageFormat;
use pdekit_solvers::krylov::SolveParams;
use pdekit_solvers::sequence::{Method, Ordering, PrecondKind, SolverSpec};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use toml::Value;

/// The systems of a solver benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenchProblem {
    /// −∇·(K∇u) = 1, flux form, K = exp(GRF).
    DarcyFlux,
    /// The SKR paper's A = L·diag(K), K = exp(GRF).
    DarcyPaper,
    /// −Δu = f with f a GRF: one matrix, many right-hand sides.
    Poisson,
    /// −Δu − k(x)²u = 1 with k = k₀(1 + ¼·tanh(GRF)).
    Helmholtz,
}

/// One method of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BenchMethodPlan {
    #[serde(flatten)]
    pub spec: SolverSpec,
    /// Overrides the benchmark's order for this method.
    pub ordering: Option<Ordering>,
    /// Forget the recycle space (and previous solution) before every system: the same method
    /// started fresh, to measure what recycling itself buys.
    #[serde(default)]
    pub fresh: bool,
}

/// A validated `[solver_bench]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolverBenchPlan {
    pub problem: BenchProblem,
    /// Interior points per side; the systems have grid² unknowns.
    pub grid: usize,
    #[serde(default = "systems")]
    pub systems: usize,
    #[serde(default)]
    pub seed: u64,
    /// The stopping rule of every method that does not give its own.
    #[serde(flatten)]
    pub stop: SolveParams,
    /// Order for methods that carry state (a method's own `ordering` overrides it).
    #[serde(default = "greedy")]
    pub ordering: Ordering,
    /// Rayon threads for every method (scipy and pyamg run on one).
    #[serde(default = "one")]
    pub threads: usize,
    /// The random field: α and τ of `N(0, (−Δ + τ²)^(−α))`.
    #[serde(default = "alpha")]
    pub alpha: f64,
    #[serde(default = "tau")]
    pub tau: f64,
    /// Helmholtz: mean wavenumber k₀.
    #[serde(default = "wavenumber")]
    pub wavenumber: f64,
    #[serde(default = "output_dir")]
    pub output_dir: PathBuf,
    /// The figures' format (`png` or `svg`).
    #[serde(default)]
    pub format: ImageFormat,
    /// Where `--peers` writes the systems as MatrixMarket files.
    #[serde(default = "export_dir")]
    pub export_dir: PathBuf,
    pub methods: Vec<BenchMethodPlan>,
}

fn systems() -> usize {
    20
}

fn greedy() -> Ordering {
    Ordering::Greedy
}

fn one() -> usize {
    1
}

/// The SKR paper's log-normal field.
fn alpha() -> f64 {
    2.5
}

fn tau() -> f64 {
    7.0
}

fn wavenumber() -> f64 {
    20.0
}

/// Where every benchmark writes its JSON and charts, relative to the working directory.
pub const RESULTS_DIR: &str = "bench/results";
/// Where benchmarks write scratch data (exported systems, sample files).
pub const SCRATCH_DIR: &str = "data/bench";

fn output_dir() -> PathBuf {
    PathBuf::from(RESULTS_DIR)
}

fn export_dir() -> PathBuf {
    PathBuf::from(SCRATCH_DIR)
}

pub(super) fn check(src: &Source) -> Result<Option<SolverBenchPlan>, ConfigError> {
    const S: &str = "solver_bench";
    if src.get(S).is_none() {
        return Ok(None);
    }
    let b: SolverBenchPlan = {
        // Read without the methods first: each is read over the section's stopping rule.
        let mut table = match src.get(S) {
            Some(Value::Table(t)) => t.clone(),
            _ => Default::default(),
        };
        table.insert("methods".into(), Value::Array(Vec::new()));
        src.read(S, Value::Table(table))?
    };
    b.stop.validate().map_err(|e| src.param(S, &e))?;
    let grid_ok = (4..=4096).contains(&b.grid);
    src.ensure(
        grid_ok,
        "solver_bench.grid",
        "an integer from 4 to 4096",
        b.grid,
    )?;
    let n = b.systems;
    let n_ok = (1..=100_000).contains(&n);
    src.ensure(
        n_ok,
        "solver_bench.systems",
        "an integer from 1 to 100000",
        n,
    )?;
    let t_ok = (1..=1024).contains(&b.threads);
    src.ensure(
        t_ok,
        "solver_bench.threads",
        "an integer from 1 to 1024",
        b.threads,
    )?;
    let alpha_ok = b.alpha > 1.0 && b.alpha.is_finite();
    src.ensure(alpha_ok, "solver_bench.alpha", "a number > 1", b.alpha)?;
    let tau_ok = b.tau > 0.0 && b.tau.is_finite();
    src.ensure(tau_ok, "solver_bench.tau", "a positive number", b.tau)?;
    let k = b.wavenumber;
    src.ensure(
        k >= 0.0 && k.is_finite(),
        "solver_bench.wavenumber",
        "a number ≥ 0",
        k,
    )?;
    let count = match src.get("solver_bench.methods") {
        Some(Value::Array(a)) if !a.is_empty() => a.len(),
        _ => {
            return Err(src.err(
                "solver_bench.methods",
                "expected at least one [[solver_bench.methods]] entry",
            ))
        }
    };
    // A method's defaults: no preconditioner, the section's stopping rule.
    let base = SolverSpec::new(Method::Cg, PrecondKind::None, b.stop);
    let mut methods = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("{S}.methods[{i}]");
        let mut table = over(src, &key, &base);
        if !src.has(&format!("{key}.method")) {
            table.remove("method");
        }
        let m: BenchMethodPlan = src.read(&key, Value::Table(table))?;
        check_amg(src, &key, &m.spec)?;
        m.spec.validate().map_err(|e| src.param(&key, &e))?;
        if m.spec.learns_omega() {
            let omega = format!("{key}.omega");
            return Err(match src.has(&omega) {
                true => src.err(
                    &omega,
                    "expected a number in (0, 2): a benchmark method solves with a fixed ω",
                ),
                false => src.err(
                    &omega,
                    "missing key: preconditioner = \"ssor\" needs omega, a number in (0, 2)",
                ),
            });
        }
        methods.push(m);
    }
    Ok(Some(SolverBenchPlan {
        output_dir: match src.has("solver_bench.output_dir") {
            true => src.path(&b.output_dir.to_string_lossy()),
            false => b.output_dir,
        },
        export_dir: match src.has("solver_bench.export_dir") {
            true => src.path(&b.export_dir.to_string_lossy()),
            false => b.export_dir,
        },
        methods,
        ..b
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, read};
    use pdekit_solvers::sequence::{Method, PrecondKind};
    use std::path::Path;

    const BENCH: &str = "[solver_bench]\nproblem = \"darcy_flux\"\ngrid = 8\ntolerance = 1e-6\n";

    #[test]
    fn methods_take_no_preconditioner_and_the_sections_stopping_rule_by_default() {
        let b = read(&format!("{BENCH}{}", "[[solver_bench.methods]]\nmethod = \"gmres\"\n[[solver_bench.methods]]\nmethod = \"cg\"\npreconditioner = \"amg\"\nmax_iterations = 50\n")).solver_bench.unwrap();
        assert_eq!(b.methods.len(), 2);
        let (g, c) = (b.methods[0].spec, b.methods[1].spec);
        assert_eq!(
            (g.method, g.precond),
            (Method::Gmres { restart: 40 }, PrecondKind::None)
        );
        assert_eq!((g.params.rtol, g.params.max_iter), (1e-6, 10_000));
        assert_eq!((c.precond, c.params.max_iter), (PrecondKind::Amg, 50));
        assert_eq!(b.output_dir, Path::new("bench/results"));
    }

    #[test]
    fn bench_errors_name_their_key() {
        let cases = [
            ("", "key `solver_bench.methods`: expected at least one"),
            ("[[solver_bench.methods]]\npreconditioner = \"jacobi\"\n", "key `solver_bench.methods[0].method`: missing field `method`"),
            ("[[solver_bench.methods]]\nmethod = \"cg\"\n[[solver_bench.methods]]\nmethod = \"gmres\"\nrecycle = 3\n", "key `solver_bench.methods[1].recycle`: only applies to method = \"gcrodr\" or \"rcg\""),
            ("[[solver_bench.methods]]\nmethod = \"cg\"\npreconditioner = \"ssor\"\n", "key `solver_bench.methods[0].omega`: missing key: preconditioner = \"ssor\" needs omega"),
        ];
        assert_errors(cases.map(|(methods, want)| (format!("{BENCH}{methods}"), want)));
    }
}
