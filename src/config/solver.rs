//! `[generate.solver]` and the solver keys of each `[[solver_bench.methods]]` entry: the solver
//! library's [`SolverSpec`] (`method`, `preconditioner` and their parameters, `tolerance`,
//! `max_iterations`, `warm_start`), read over the defaults of its context: the family's own
//! solver for `[generate.solver]` (CG with Jacobi; GMRES(40) with ILU(0) for Helmholtz; CG with
//! AMG for ML-VMS), no preconditioner for a benchmark method.

use super::source::Source;
use super::ConfigError;
use pdekit_solvers::problem::FamilyParams;
use pdekit_solvers::sequence::{Method, Ordering, SolverSpec, DEFAULT_RESTART};
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

/// The keys that belong to a method or a preconditioner: a context's default for them is dropped
/// when the config names another method or preconditioner.
const METHOD_KEYS: [&str; 4] = ["method", "restart", "recycle", "recycle_update"];
const PRECOND_KEYS: [&str; 2] = ["preconditioner", "omega"];

/// Samples up to which the greedy tour (O(N²)) is the default order; beyond, PCA + Hilbert.
const GREEDY_MAX_SAMPLES: u64 = 5000;

/// A validated `[generate.solver]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SolverPlan {
    #[serde(flatten)]
    pub spec: SolverSpec,
    /// Only for methods that carry state across samples: the order the samples are solved in.
    pub ordering: Option<Ordering>,
    /// Only for methods that carry state across samples: contiguous pieces of the sorted order
    /// solved in parallel, each with its own recycle space.
    pub chains: Option<usize>,
}

/// The table at `key` with `base`'s keys filled in where it has none; a method or preconditioner
/// it names replaces `base`'s together with that one's parameters.
pub(super) fn over(src: &Source, key: &str, base: &SolverSpec) -> Table {
    let mut table = match src.get(key) {
        Some(Value::Table(t)) => t.clone(),
        _ => Table::new(),
    };
    let Ok(Value::Table(defaults)) = Value::try_from(base) else {
        unreachable!("a solver spec serialises to a table")
    };
    // `method = "amg"` is AMG as the solver: no preconditioner unless one is named.
    if table.get("method").and_then(Value::as_str) == Some("amg") {
        table
            .entry("preconditioner")
            .or_insert_with(|| Value::String("none".into()));
    }
    for (k, v) in defaults {
        let replaced = (METHOD_KEYS.contains(&k.as_str()) && table.contains_key("method"))
            || (PRECOND_KEYS.contains(&k.as_str()) && table.contains_key("preconditioner"));
        if !replaced {
            table.entry(k).or_insert(v);
        }
    }
    // GCRO-DR's default recycle space shrinks to fit a short restart.
    if table.get("method").and_then(Value::as_str) == Some("gcrodr") {
        let restart = match table.get("restart") {
            Some(r) => r.as_integer().and_then(|r| usize::try_from(r).ok()),
            None => Some(DEFAULT_RESTART),
        };
        if let Some(restart) = restart {
            let recycle = Method::default_gcrodr_recycle(restart) as i64;
            table.entry("recycle").or_insert(Value::Integer(recycle));
        }
    }
    table
}

/// `method = "amg"` takes no preconditioner: naming one is a mistake the user should hear about.
pub(super) fn check_amg(src: &Source, table: &str, spec: &SolverSpec) -> Result<(), ConfigError> {
    use pdekit_solvers::sequence::PrecondKind;
    if spec.method == Method::Amg && spec.precond != PrecondKind::None {
        return Err(src.err(
            &format!("{table}.preconditioner"),
            "method = \"amg\" is AMG V-cycles as the solver; use method = \"cg\" with preconditioner = \"amg\" for AMG-preconditioned CG",
        ));
    }
    Ok(())
}

/// `[generate.solver]` for `family`; `None` for the families that solve no linear systems.
pub(super) fn check_generate(
    src: &Source,
    family: &FamilyParams,
    samples: u64,
) -> Result<Option<SolverPlan>, ConfigError> {
    const KEY: &str = "generate.solver";
    let Some(base) = family.solver() else {
        if src.has(KEY) {
            return Err(src.err(
                KEY,
                format!(
                    "\"{}\" is solved by a pseudo-spectral time stepper, not a linear solver; remove [generate.solver]",
                    family.name()
                ),
            ));
        }
        return Ok(None);
    };
    let table = over(src, KEY, base);
    let stated: SolverPlan = src.read(KEY, Value::Table(table))?;
    let spec = stated.spec;
    check_amg(src, KEY, &spec)?;
    spec.validate().map_err(|e| src.param(KEY, &e))?;
    family.check_solver(&spec).map_err(|e| src.param(KEY, &e))?;
    // Samples share solver state only in a family that sequences them; elsewhere `ordering` and
    // `chains` are left out of the plan, so naming them is an error.
    let stateful = family.sequences() && spec.carries_state();
    for key in ["ordering", "chains"] {
        let key = format!("{KEY}.{key}");
        if !stateful && src.has(&key) {
            return Err(src.err(
                &key,
                match family.sequences() {
                    true => "only applies to methods that carry state between samples (gcrodr, rcg, or warm_start = true)".to_string(),
                    false => format!("only \"darcy\" carries solver state across samples; each \"{}\" sample is solved afresh, so remove it", family.name()),
                },
            ));
        }
    }
    if stateful && stated.chains == Some(0) {
        return Err(src.err(&format!("{KEY}.chains"), "expected an integer ≥ 1, got 0"));
    }
    Ok(Some(SolverPlan {
        spec,
        // The greedy tour is O(N²); past a few thousand samples the PCA + Hilbert order is the
        // one that finishes.
        ordering: stateful.then(|| {
            stated.ordering.unwrap_or(if samples <= GREEDY_MAX_SAMPLES {
                Ordering::Greedy
            } else {
                Ordering::PcaHilbert
            })
        }),
        chains: stateful.then(|| stated.chains.unwrap_or_else(rayon::current_num_threads)),
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, read};
    use pdekit_solvers::sequence::{Method, Omega, Ordering, PrecondKind};

    /// `[generate.solver]` with `extra` for a dataset of `problem`.
    fn text(extra: &str, problem: &str) -> String {
        let dataset = "output = \"d.h5\"\nsamples = 8";
        format!("[generate]\nproblem = \"{problem}\"\n{dataset}\n[generate.solver]\n{extra}\n")
    }

    fn solver(extra: &str, problem: &str) -> super::SolverPlan {
        read(&text(extra, problem))
            .generate
            .unwrap()
            .solver
            .unwrap()
    }

    #[test]
    fn each_family_fills_in_its_own_default_solver() {
        let darcy = solver("", "darcy");
        assert_eq!(
            (darcy.spec.method, darcy.spec.precond),
            (Method::Cg, PrecondKind::Jacobi)
        );
        assert_eq!(darcy.spec.params.rtol, 1e-8);
        let helmholtz = solver("", "helmholtz");
        assert_eq!(
            (helmholtz.spec.method, helmholtz.spec.precond),
            (Method::Gmres { restart: 40 }, PrecondKind::Ilu0)
        );
        // Naming the method drops the default's parameters, keeps its preconditioner.
        let g = solver("method = \"gcrodr\"\nrestart = 30", "helmholtz");
        assert_eq!(g.spec.precond, PrecondKind::Ilu0);
        assert!(matches!(
            g.spec.method,
            Method::GcroDr {
                restart: 30,
                recycle: 20,
                ..
            }
        ));
        let amg = solver("method = \"amg\"", "darcy");
        assert_eq!(amg.spec.precond, PrecondKind::None);
        // GCRO-DR's default recycle space fits inside a short restart; a stated one is kept.
        let recycle = |extra: &str| match solver(extra, "darcy").spec.method {
            Method::GcroDr { recycle, .. } => recycle,
            other => panic!("{other:?}"),
        };
        assert_eq!(recycle("method = \"gcrodr\""), 20);
        assert_eq!(recycle("method = \"gcrodr\"\nrestart = 8"), 7);
        assert_eq!(recycle("method = \"gcrodr\"\nrestart = 8\nrecycle = 3"), 3);
    }

    #[test]
    fn recycling_darcy_gets_an_order_and_chains_and_others_reject_them() {
        let r = solver("method = \"rcg\"\nchains = 3", "darcy");
        assert_eq!((r.ordering, r.chains), (Some(Ordering::Greedy), Some(3)));
        let learned = solver("preconditioner = \"ssor\"", "darcy");
        assert_eq!(
            learned.spec.precond,
            PrecondKind::Ssor {
                omega: Omega::LEARNED
            }
        );
        assert_eq!(learned.ordering, None);
        assert_errors([
            (
                text("method = \"gcrodr\"\nordering = \"greedy\"", "poisson"),
                "c.toml:7:1: key `generate.solver.ordering`: only \"darcy\" carries",
            ),
            (
                text("chains = 2", "darcy"),
                "key `generate.solver.chains`: only applies to methods that carry state",
            ),
        ]);
    }

    #[test]
    fn solver_errors_name_their_key() {
        let cases = [
            (
                "restart = 30",
                "darcy",
                "key `generate.solver.restart`: only applies to method = \"gmres\"",
            ),
            (
                "method = \"gmres\"\nrestart = 0",
                "darcy",
                "key `generate.solver.restart`: expected an integer from 1 to 1000, got 0",
            ),
            (
                "method = \"gcrodr\"\nrestart = 10\nrecycle = 12",
                "darcy",
                "key `generate.solver.recycle`: expected an integer below restart (10), got 12",
            ),
            (
                "preconditioner = \"ssor\"\nomega = 2.5",
                "darcy",
                "key `generate.solver.omega`: expected a number in (0, 2) or \"learned\", got 2.5",
            ),
            (
                "method = \"cg\"",
                "helmholtz",
                "key `generate.solver.method`: expected \"gmres\"",
            ),
            (
                "method = \"amg\"\npreconditioner = \"jacobi\"",
                "darcy",
                "key `generate.solver.preconditioner`: method = \"amg\" is AMG",
            ),
            (
                "warm_start = true",
                "poisson",
                "key `generate.solver.warm_start`",
            ),
            (
                "method = \"gcrodr\"\npreconditioner = \"ssor\"",
                "darcy",
                "key `generate.solver.omega`: expected a number in (0, 2): a learned ω needs",
            ),
            (
                "tolerance = 2.0",
                "darcy",
                "key `generate.solver.tolerance`: expected a number in (0, 1), got 2",
            ),
            (
                "method = \"bogus\"",
                "darcy",
                "key `generate.solver.method`: unknown variant `bogus`",
            ),
        ];
        assert_errors(cases.map(|(extra, problem, want)| (text(extra, problem), want)));
        assert_errors([(
            text("method = \"cg\"", "burgers"),
            "key `generate.solver`: \"burgers\" is solved by a pseudo-spectral time stepper",
        )]);
    }
}
