//! `[generate]`: a dataset of one problem family. The family's table `[generate.<problem>]` is
//! the solver library's parameter type for it (every family is listed in
//! [`FamilyParams`]), and `[generate.solver]` ([`super::solver`]) solves its linear systems.

use super::solver::{self, SolverPlan};
use super::source::Source;
use super::ConfigError;
use pdekit_solvers::problem::{FamilyParams, ProblemError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use toml::Value;

/// What to do with a sample whose solver hit its iteration cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop the run with an error (the partial file stays, so the run can be resumed).
    #[default]
    Fail,
    /// Keep the sample with `converged = 0` in `/stats` and report it at the end.
    Keep,
}

/// Floating-point type of the stored fields. Solves always run in f64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    F64,
}

/// The keys of `[generate]` that describe the dataset rather than the problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetPlan {
    /// The family's name; its parameters are the table of that name.
    pub problem: String,
    pub output: PathBuf,
    pub samples: u64,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "checkpoint_every")]
    pub checkpoint_every: u64,
    #[serde(default)]
    pub on_failure: OnFailure,
    #[serde(default)]
    pub precision: Precision,
}

fn checkpoint_every() -> u64 {
    32
}

/// A validated `[generate]` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GeneratePlan {
    #[serde(flatten)]
    pub dataset: DatasetPlan,
    /// The linear solver; `None` for the families that solve no systems. The family's own
    /// `solver` is this one's spec (the pipeline sets it).
    pub solver: Option<SolverPlan>,
    /// Printed as the `[generate.<problem>]` table.
    #[serde(flatten)]
    pub family: FamilyParams,
}

impl GeneratePlan {
    /// The part of the plan that decides the samples' content. A partial file is resumed only if
    /// its stored key equals this one.
    pub fn content_key(&self) -> String {
        serde_json::json!({
            "samples": self.dataset.samples,
            "seed": self.dataset.seed,
            "precision": self.dataset.precision,
            "solver": self.solver,
            "problem": self.family,
        })
        .to_string()
    }

    /// The family's parameters with the plan's solver, ready to build.
    pub fn family_params(&self) -> FamilyParams {
        let mut family = self.family.clone();
        if let (Some(plan), Some(spec)) = (&self.solver, family.solver_mut()) {
            *spec = plan.spec;
        }
        family
    }
}

pub(super) fn check(src: &Source) -> Result<Option<GeneratePlan>, ConfigError> {
    if src.get("generate").is_none() {
        return Ok(None);
    }
    let dataset: DatasetPlan = src.section("generate", &[])?;
    let name = dataset.problem.as_str();
    if FamilyParams::default_for(name).is_none() {
        return Err(src.err(
            "generate.problem",
            format!(
                "unknown problem \"{name}\", expected one of: {}",
                FamilyParams::NAMES
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    // A table for another family is a mistake the user should hear about.
    if let Some(other) = FamilyParams::NAMES
        .iter()
        .find(|&&n| n != name && src.has(&format!("generate.{n}")))
    {
        return Err(src.err(
            &format!("generate.{other}"),
            format!("this table configures problem \"{other}\", but generate.problem = \"{name}\""),
        ));
    }
    if dataset.samples == 0 {
        return Err(src.err("generate.samples", "expected an integer ≥ 1, got 0"));
    }
    if dataset.checkpoint_every == 0 {
        return Err(src.err(
            "generate.checkpoint_every",
            "expected an integer ≥ 1, got 0",
        ));
    }
    let output = dataset.output.to_string_lossy().into_owned();
    if !output.ends_with(".h5") || output.trim_end_matches(".h5").trim().is_empty() {
        return Err(src.err(
            "generate.output",
            format!("expected a path ending in .h5, got \"{output}\""),
        ));
    }
    let key = format!("generate.{name}");
    let table = src
        .get(&key)
        .cloned()
        .unwrap_or(Value::Table(Default::default()));
    let family = src.read_with(&key, table, |v| FamilyParams::deserialize_named(name, v))?;
    family.validate().map_err(|e| problem_error(src, &key, e))?;
    let solver = solver::check_generate(src, &family, dataset.samples)?;
    Ok(Some(GeneratePlan {
        dataset: DatasetPlan {
            output: src.path(&output),
            ..dataset
        },
        solver,
        family,
    }))
}

/// A family's error at the key it names (`table` is its `[generate.<problem>]`).
pub(super) fn problem_error(src: &Source, table: &str, e: ProblemError) -> ConfigError {
    match e {
        ProblemError::Invalid { param, .. } => src.param(table, &param),
        other => src.err(table, other),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, read_at};
    use pdekit_solvers::field::CoefficientTransform;
    use pdekit_solvers::problem::FamilyParams;
    use std::path::Path;

    fn text(problem: &str, table: &str) -> String {
        format!(
            "[generate]\nproblem = \"{problem}\"\noutput = \"../data/d.h5\"\nsamples = 3\n{table}"
        )
    }

    fn generate(problem: &str, table: &str) -> super::GeneratePlan {
        read_at("cfg/c.toml", &text(problem, table))
            .generate
            .unwrap()
    }

    #[test]
    fn every_family_reads_its_table_with_the_librarys_defaults() {
        for name in FamilyParams::NAMES {
            let g = generate(name, "");
            assert_eq!(g.family, FamilyParams::default_for(name).unwrap(), "{name}");
            assert_eq!(g.dataset.output, Path::new("data/d.h5"));
            assert_eq!(g.solver.is_some(), g.family.solver().is_some(), "{name}");
        }
        let g = generate(
            "darcy",
            "[generate.darcy]\nresolution = 32\n[generate.darcy.coefficient]\nkind = \"lognormal\"\nalpha = 2.5\n",
        );
        let FamilyParams::Darcy(d) = &g.family else {
            panic!("{:?}", g.family)
        };
        assert_eq!(d.grid.resolution, 32);
        assert_eq!(d.coefficient.transform, CoefficientTransform::LogNormal);
        assert_eq!(
            (d.coefficient.field.alpha, d.coefficient.field.tau),
            (2.5, 3.0)
        );
        // Heat stores a frame every 10 steps, or only the last of fewer; the plan states it.
        for (steps, every) in [(100, 10), (5, 5)] {
            let g = generate("heat", &format!("[generate.heat]\nsteps = {steps}\n"));
            let FamilyParams::Heat(h) = &g.family else {
                panic!("{:?}", g.family)
            };
            assert_eq!(h.every, Some(every));
        }
    }

    #[test]
    fn generate_errors_name_their_key() {
        let cases = [
            (
                "wave",
                "",
                "c.toml:2:1: key `generate.problem`: unknown problem \"wave\"",
            ),
            (
                "burgers",
                "[generate.heat]\nsteps = 3\n",
                "key `generate.heat`: this table configures problem \"heat\"",
            ),
            (
                "darcy",
                "[generate.darcy]\nresolution = 2\n",
                "key `generate.darcy.resolution`: expected an integer from 3 to 8192, got 2",
            ),
            (
                "darcy",
                "[generate.darcy.coefficient]\nkind = \"lognormal\"\nhigh = 4.0\n",
                "key `generate.darcy.coefficient.high`: only applies to kind = \"threshold\"",
            ),
            (
                "darcy",
                "[generate.darcy.coefficient]\nalpha = 0.5\n",
                "key `generate.darcy.coefficient.alpha`: expected a number > 1",
            ),
            (
                "heat",
                "[generate.heat]\nsteps = 10\nevery = 3\n",
                "key `generate.heat.every`: expected an integer ≥ 1 that divides steps = 10, got 3",
            ),
            (
                "heat",
                "[generate.heat]\nkappa = \"wild\"\n",
                "key `generate.heat.kappa`: invalid value: string \"wild\"",
            ),
            (
                "helmholtz",
                "[generate.helmholtz]\nwavenumber = [5.0, 2.0]\n",
                "key `generate.helmholtz.wavenumber`: expected a positive number, or [min, max]",
            ),
            (
                "navier_stokes",
                "[generate.navier_stokes]\nviscosity = \"low\"\n",
                "key `generate.navier_stokes.viscosity`: invalid type: string \"low\"",
            ),
            (
                "mlvms",
                "[generate.mlvms]\nmargin = 0.1\n",
                "key `generate.mlvms.margin`: expected a number in (0.15, 0.5)",
            ),
        ];
        assert_errors(cases.map(|(problem, table, want)| (text(problem, table), want)));
        assert_errors([(
            text("darcy", "").replace("d.h5", "d.txt"),
            "key `generate.output`: expected a path ending in .h5",
        )]);
    }

    #[test]
    fn the_content_key_changes_with_what_decides_the_samples_only() {
        let a = generate("darcy", "");
        let mut b = a.clone();
        b.dataset.checkpoint_every = 7;
        assert_eq!(a.content_key(), b.content_key());
        b.dataset.seed = 1;
        assert_ne!(a.content_key(), b.content_key());
    }
}
