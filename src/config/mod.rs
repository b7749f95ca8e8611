//! TOML configs, validated once into typed plans.
//!
//! One module per section: [`generate`] (with the families' tables, which are the solver
//! library's parameter types, and [`solver`]), [`train`] (whose model tables are the operator
//! library's sections), [`relax`], [`gp`], [`mlvms`], [`plot`] and [`bench`]. Each reads its
//! table with serde, fills in the defaults that depend on other keys, lets the library validate
//! the parameters, and maps any error to the file, line and key ([`source::Source`]). A key that
//! no section uses is an error too, and because every plan prints as the config it was read
//! from, `pdekit run --dry-run` prints a config that reads back to the same plan.

pub mod bench;
mod error;
pub mod generate;
pub mod gp;
pub mod mlvms;
pub mod plot;
pub mod relax;
pub mod solver;
mod source;
pub mod train;

pub use bench::{BenchMethodPlan, BenchProblem, SolverBenchPlan};
pub use error::ConfigError;
pub use generate::{DatasetPlan, GeneratePlan, OnFailure, Precision};
pub use gp::{GpPde, GpPlan};
pub use mlvms::{MlvmsChidennPlan, MlvmsPlan, MlvmsTransientPlan};
pub use plot::PlotPlan;
pub use relax::{RelaxPlan, RelaxSequenceKind};
pub use solver::SolverPlan;
pub use train::TrainPlan;

use serde::{Deserialize, Serialize};
use source::Source;
use std::path::{Path, PathBuf};

/// Declares the stages, in pipeline order, and the plan with one section a stage: [`Stage`],
/// its names, and [`Plan`]'s fields come from this one list.
macro_rules! stages {
    ($($(#[$doc:meta])* $stage:ident: $field:ident, $plan:ty;)*) => {
        /// A stage of a run, in pipeline order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Stage {
            $($(#[$doc])* $stage,)*
        }

        impl Stage {
            pub const ALL: &'static [Stage] = &[$(Stage::$stage),*];

            /// The stage's section, e.g. `mlvms_transient`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Stage::$stage => stringify!($field),)*
                }
            }
        }

        /// A validated config: everything a run needs, with defaults filled in and paths
        /// resolved. Each section is `None` when the config has none.
        #[derive(Debug, Clone, Serialize)]
        pub struct Plan {
            /// Empty only for a config with just `[solver_bench]` (run by `pdekit bench
            /// solvers`).
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub stages: Vec<Stage>,
            $(pub $field: Option<$plan>,)*
            pub solver_bench: Option<SolverBenchPlan>,
            /// The config file and its text, stored in every dataset it produces.
            #[serde(skip)]
            pub source_path: PathBuf,
            #[serde(skip)]
            pub source_text: String,
        }

        impl Plan {
            /// Whether the plan has the section of `stage`.
            pub fn has(&self, stage: Stage) -> bool {
                match stage {
                    $(Stage::$stage => self.$field.is_some(),)*
                }
            }
        }
    };
}

stages! {
    /// Draw and solve samples into a dataset.
    Generate: generate, GeneratePlan;
    /// Train a neural operator.
    Train: train, TrainPlan;
    /// Figures of a dataset.
    Plot: plot, PlotPlan;
    /// Learned relaxation.
    Relax: relax, RelaxPlan;
    /// GP-HM on a manufactured solution.
    Gp: gp, GpPlan;
    /// Multilevel VMS, steady.
    Mlvms: mlvms, MlvmsPlan;
    /// Multilevel VMS with a moving source.
    MlvmsTransient: mlvms_transient, MlvmsTransientPlan;
}

/// The format of every figure a stage draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    #[default]
    Png,
    Svg,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Svg => "svg",
        }
    }
}

impl Plan {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|e| ConfigError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            ConfigError::at(path, &text, at, None, "the file is not UTF-8 text".into())
        })?;
        Self::parse(path, &text)
    }

    /// Validates config text; `path` names it in errors and anchors its relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let src = Source::parse(path, text)?;
        let generate = generate::check(&src)?;
        let plan = Plan {
            stages: Vec::new(),
            plot: plot::check(&src, generate.as_ref())?,
            generate,
            train: train::check(&src)?,
            relax: relax::check(&src)?,
            solver_bench: bench::check(&src)?,
            gp: gp::check(&src)?,
            mlvms: mlvms::check(&src)?,
            mlvms_transient: mlvms::check_transient(&src)?,
            source_path: path.to_path_buf(),
            source_text: text.to_string(),
        };
        let listed: Option<Vec<Stage>> = match src.get("stages") {
            None => None,
            Some(v) => Some(src.read("stages", v.clone())?),
        };
        // Keys no section reads come first: a misspelled section is the likely cause of others.
        let plan = Plan {
            stages: listed.clone().unwrap_or_default(),
            ..plan
        };
        let mut used = plan.to_value();
        // Absent sections still name the keys a misspelt one could have meant.
        if let toml::Value::Table(t) = &mut used {
            let sections = Stage::ALL.iter().map(|s| s.name()).chain(["solver_bench"]);
            for name in sections {
                t.entry(name).or_insert(toml::Table::new().into());
            }
            t.entry("stages").or_insert(toml::Value::Array(Vec::new()));
        }
        src.check_used(&used, &APPLIES)?;
        Ok(Plan {
            stages: stages(&src, &plan, listed)?,
            ..plan
        })
    }

    fn to_value(&self) -> toml::Value {
        toml::Value::try_from(self).expect("a plan is plain data")
    }

    /// The plan as TOML, defaults filled in: what `run --dry-run` prints, itself a config that
    /// reads back to the same plan.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a plan is plain data")
    }
}

/// Keys that only some settings use, and which: a key left out of the plan because it does not
/// apply is reported with its reason.
const APPLIES: [(&str, &str); 18] = [
    ("restart", "method = \"gmres\", \"fgmres\" or \"gcrodr\""),
    ("recycle", "method = \"gcrodr\" or \"rcg\""),
    ("recycle_update", "method = \"gcrodr\""),
    ("omega", "preconditioner = \"ssor\""),
    (
        "high",
        "kind = \"threshold\"; a log-normal coefficient is exp(field)",
    ),
    (
        "low",
        "kind = \"threshold\"; a log-normal coefficient is exp(field)",
    ),
    ("step_size", "schedule = \"step\""),
    ("gamma", "schedule = \"step\""),
    ("min_learning_rate", "schedule = \"cosine\""),
    ("patience", "schedule = \"plateau\""),
    ("factor", "schedule = \"plateau\""),
    ("velocity", "the advection equation"),
    ("epochs", NEURAL),
    ("batch_size", NEURAL),
    ("learning_rate", NEURAL),
    ("schedule", NEURAL),
    ("loss", NEURAL),
    ("early_stopping", NEURAL),
];

/// Training keys a fitted GP (`[train.gp]`) does not read.
const NEURAL: &str = "neural operators ([train.fno], …); [train.gp] is fitted, not trained";

/// The stages to run: those listed (in pipeline order), or every stage with a section.
fn stages(
    src: &Source,
    plan: &Plan,
    listed: Option<Vec<Stage>>,
) -> Result<Vec<Stage>, ConfigError> {
    let Some(listed) = listed else {
        let present: Vec<Stage> = Stage::ALL
            .iter()
            .copied()
            .filter(|&s| plan.has(s))
            .collect();
        if present.is_empty() && plan.solver_bench.is_none() {
            return Err(src.err(
                "stages",
                "the config has nothing to run: add a [generate], [train], [plot], [relax], [gp], [mlvms] or [mlvms_transient] section",
            ));
        }
        return Ok(present);
    };
    if listed.is_empty() {
        return Err(src.err("stages", "expected at least one stage"));
    }
    for (i, stage) in listed.iter().enumerate() {
        if listed[..i].contains(stage) {
            return Err(src.err(
                "stages",
                format!("stage \"{}\" is listed twice", stage.name()),
            ));
        }
        if !plan.has(*stage) {
            return Err(src.err(
                "stages",
                format!(
                    "stage \"{0}\" is listed but the config has no [{0}] section",
                    stage.name()
                ),
            ));
        }
    }
    // Stages always run in pipeline order, whatever order the list gives.
    Ok(Stage::ALL
        .iter()
        .copied()
        .filter(|s| listed.contains(s))
        .collect())
}

/// What the sections' unit tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::Plan;
    use std::path::Path;

    /// The plan of config text read as `path` (panics with the error if it does not read).
    pub fn read_at(path: &str, text: &str) -> Plan {
        Plan::parse(Path::new(path), text).unwrap_or_else(|e| panic!("{text}\n{e}"))
    }

    /// [`read_at`] `c.toml`.
    pub fn read(text: &str) -> Plan {
        read_at("c.toml", text)
    }

    /// Every `(config text, fragment)`: the text, read as `c.toml`, fails with an error that
    /// contains the fragment.
    pub fn assert_errors<T: AsRef<str>>(cases: impl IntoIterator<Item = (T, &'static str)>) {
        for (text, want) in cases {
            let text = text.as_ref();
            match Plan::parse(Path::new("c.toml"), text) {
                Ok(_) => panic!("no error for:\n{text}"),
                Err(e) => assert!(e.to_string().contains(want), "{text}\n{e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Plan, String> {
        Plan::parse(Path::new("dir/c.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn stages_run_in_pipeline_order_and_must_have_their_sections() {
        let text = "stages = [\"plot\", \"generate\"]\n[generate]\nproblem = \"darcy\"\noutput = \"a.h5\"\nsamples = 2\n[plot]\noutput_dir = \"figs\"\n";
        let plan = parse(text).unwrap();
        assert_eq!(plan.stages, vec![Stage::Generate, Stage::Plot]);
        let err = parse("stages = [\"relax\"]\n[plot]\ninput = \"a.h5\"\noutput_dir = \"f\"\n")
            .unwrap_err();
        assert!(
            err.starts_with("dir/c.toml:1:1: key `stages`: stage \"relax\" is listed but"),
            "{err}"
        );
        let err = parse("").unwrap_err();
        assert!(err.contains("nothing to run"), "{err}");
    }

    /// Every shipped config, with its path as the test runs from the crate root.
    fn shipped_configs() -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "toml") {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(Path::new("configs"), &mut out);
        out.sort();
        out
    }

    #[test]
    fn every_shipped_configs_dry_run_plan_reads_back_to_the_same_plan() {
        let configs = shipped_configs();
        assert!(configs.len() >= 20, "{configs:?}");
        for path in configs {
            let plan = Plan::load(&path).unwrap_or_else(|e| panic!("{e}"));
            let printed = plan.to_toml();
            // The plan's paths are resolved against the working directory, so a plan read from
            // there means the same files.
            let again = Plan::parse(Path::new("plan.toml"), &printed).unwrap_or_else(|e| {
                panic!(
                    "{}: the plan does not read back: {e}\n{printed}",
                    path.display()
                )
            });
            assert_eq!(again.to_toml(), printed, "{}", path.display());
            assert_eq!(again.stages, plan.stages, "{}", path.display());
        }
    }

    #[test]
    fn a_misspelled_top_level_section_is_named() {
        let err = parse("[genrate]\nproblem = \"darcy\"\n").unwrap_err();
        assert!(
            err.starts_with(
                "dir/c.toml:1:2: key `genrate`: unknown field `genrate` (did you mean `generate`?)"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_config_that_is_not_utf8_is_an_error_with_a_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, b"[plot]\noutput_dir = \"\xff\"\n").unwrap();
        let err = Plan::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("c.toml:2:15: key `plot.output_dir`: the file is not UTF-8 text"),
            "{err}"
        );
    }
}
