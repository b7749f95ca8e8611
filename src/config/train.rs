//! `[train]`: a model learnt from a dataset. The model is exactly one table `[train.<kind>]`, the
//! library's section of that model: a neural operator (every one is listed in [`ModelConfig`]),
//! trained with the library's [`TrainParams`] as the other keys of `[train]`, or GP operator
//! regression (`[train.gp]`, a [`GpSection`]), which is fitted, not trained, and takes only
//! `seed` of those keys.

use super::source::Source;
use super::{ConfigError, ImageFormat};
use pdekit_operators::models::gp::GpSection;
use pdekit_operators::models::{Io, ModelConfig};
use pdekit_operators::tensor::NnError;
use pdekit_operators::train::trainer::TrainParams;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A validated `[train]` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainPlan {
    #[serde(flatten)]
    pub run: TrainRun,
    #[serde(flatten)]
    pub learner: Learner,
}

/// What learns from the data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Learner {
    Neural(NeuralPlan),
    Gp(GpRegressionPlan),
}

/// A neural operator and how it is trained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NeuralPlan {
    #[serde(flatten)]
    pub params: TrainParams,
    /// Printed as the `[train.<kind>]` table.
    #[serde(flatten)]
    pub model: ModelConfig,
}

/// GP operator regression: `[train.gp]` and the seed of its random subsets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpRegressionPlan {
    pub seed: u64,
    pub gp: GpSection,
}

/// The keys of `[train]` about the data and the outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainRun {
    pub data: PathBuf,
    /// Field names in the dataset (e.g. `inputs/coefficient`); empty: the first input or output.
    #[serde(default)]
    pub input: String,
    #[serde(default)]
    pub output: String,
    pub train_samples: usize,
    pub test_samples: usize,
    /// A separate test file (neuraloperator's and PDEBench's layout): the test samples are its
    /// rows `test_start..test_start + test_samples`, not the rows after the training ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_data: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub test_start: usize,
    /// Train and test on every `subsample`-th grid point of each axis (1: the data's grid), as
    /// the FNO paper trains at 85² on its 421² solutions.
    #[serde(default = "one")]
    pub subsample: usize,
    pub output_dir: PathBuf,
    /// Test samples drawn as prediction panels.
    #[serde(default = "three")]
    pub panels: usize,
    /// Write TensorBoard event files into `output_dir` (scalars per batch and per epoch).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tensorboard: bool,
    #[serde(default)]
    pub format: ImageFormat,
}

fn one() -> usize {
    1
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn three() -> usize {
    3
}

impl TrainPlan {
    /// The model's table, e.g. `train.fno`.
    pub fn model_key(&self) -> String {
        match &self.learner {
            Learner::Neural(n) => format!("train.{}", n.model.kind()),
            Learner::Gp(_) => "train.gp".into(),
        }
    }
}

pub(super) fn check(src: &Source) -> Result<Option<TrainPlan>, ConfigError> {
    if src.get("train").is_none() {
        return Ok(None);
    }
    let run: TrainRun = src.section("train", &[])?;
    let params: TrainParams = src.section("train", &[])?;
    for (key, n) in [
        ("train_samples", run.train_samples),
        ("test_samples", run.test_samples),
        ("subsample", run.subsample),
    ] {
        if n == 0 {
            return Err(src.err(&format!("train.{key}"), "expected an integer ≥ 1, got 0"));
        }
    }
    if run.test_start > 0 && run.test_data.is_none() {
        return Err(src.err(
            "train.test_start",
            "only applies with train.test_data (without it the test rows follow the training ones)",
        ));
    }
    let run = TrainRun {
        data: src.path(&run.data.to_string_lossy()),
        test_data: run.test_data.map(|t| src.path(&t.to_string_lossy())),
        output_dir: src.path(&run.output_dir.to_string_lossy()),
        ..run
    };
    if src.get("train.gp").is_some() {
        let key = "train.gp";
        if let Some(other) = src
            .children("train")
            .into_iter()
            .find(|k| ModelConfig::KINDS.contains(k))
        {
            return Err(src.err(
                &format!("train.{other}"),
                "expected exactly one model table, got [train.gp] and this one",
            ));
        }
        if run.tensorboard {
            return Err(src.err(
                "train.tensorboard",
                "a GP operator has no batches or epochs to log; tensorboard = true applies to the neural operators",
            ));
        }
        let gp: GpSection = src.section(key, &[])?;
        gp.validate().map_err(|e| src.param(key, &e))?;
        return Ok(Some(TrainPlan {
            run,
            learner: Learner::Gp(GpRegressionPlan {
                seed: params.seed,
                gp,
            }),
        }));
    }
    params.validate().map_err(|e| src.param("train", &e))?;
    if params.batch_size > run.train_samples {
        return Err(src.err(
            "train.batch_size",
            format!(
                "expected at most train.train_samples = {} (a batch is drawn from the training samples), got {}",
                run.train_samples, params.batch_size
            ),
        ));
    }
    if run.panels > 16 {
        return Err(src.err(
            "train.panels",
            format!("expected an integer from 0 to 16, got {}", run.panels),
        ));
    }
    let given: Vec<&str> = src
        .children("train")
        .into_iter()
        .filter(|k| ModelConfig::KINDS.contains(k))
        .collect();
    let [kind] = given[..] else {
        let key = given
            .get(1)
            .map_or("train".to_string(), |k| format!("train.{k}"));
        let kinds: Vec<String> = ModelConfig::KINDS
            .iter()
            .chain(&["gp"])
            .map(|k| format!("[train.{k}]"))
            .collect();
        return Err(src.err(
            &key,
            format!(
                "expected exactly one model table ({}), got {}",
                kinds.join(", "),
                if given.is_empty() {
                    "none".to_string()
                } else {
                    given
                        .iter()
                        .map(|k| format!("[train.{k}]"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                }
            ),
        ));
    };
    let key = format!("train.{kind}");
    let table = src
        .get(&key)
        .cloned()
        .expect("the table was found among the keys");
    let model = src.read_with(&key, table, |v| ModelConfig::deserialize_kind(kind, v))?;
    // The channel counts come from the data; every other field is checked now.
    let io = Io {
        in_channels: 1,
        out_channels: 1,
        seed: params.seed,
    };
    model.spec(io).map_err(|e| model_error(src, &key, e))?;
    Ok(Some(TrainPlan {
        run,
        learner: Learner::Neural(NeuralPlan { params, model }),
    }))
}

/// A model library error at the key it names inside the model's table `table`.
pub fn model_error(src: &Source, table: &str, e: NnError) -> ConfigError {
    match e {
        NnError::Invalid { param, .. } => src.param(table, &param),
        other => src.err(table, other),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, read};
    use pdekit_operators::models::gp::GpSection;
    use pdekit_operators::models::ModelConfig;
    use pdekit_operators::train::trainer::Schedule;
    use std::path::Path;

    const TRAIN: &str =
        "[train]\ndata = \"d.h5\"\ntrain_samples = 40\ntest_samples = 2\noutput_dir = \"out\"\n";

    fn train(extra: &str, model: &str) -> super::TrainPlan {
        read(&format!("{TRAIN}{extra}\n{model}")).train.unwrap()
    }

    const FNO: &str = "[train.fno]\nwidth = 8\nmodes = [4, 4]\nlayers = 2\n";

    #[test]
    fn defaults_are_the_fno_papers_recipe_and_each_model_reads_its_table() {
        let t = train("", FNO);
        let super::Learner::Neural(n) = &t.learner else {
            panic!("a neural operator")
        };
        assert_eq!((n.params.epochs, n.params.batch_size), (500, 20));
        assert_eq!(
            n.params.schedule,
            Schedule::Step {
                step_size: 100,
                gamma: 0.5
            }
        );
        assert_eq!(t.run.data, Path::new("d.h5"));
        assert!(matches!(n.model, ModelConfig::Fno(_)));
        let tfno = train(
            "",
            "[train.tfno]\nwidth = 8\nmodes = [4, 4]\nlayers = 2\nfactorization = \"cp\"\nrank = 0.2\n",
        );
        assert_eq!(tfno.model_key(), "train.tfno");
        let d = train(
            "",
            "[train.deeponet]\nsensors = [5, 5]\nbranch = [8]\ntrunk = [8]\nbasis = 4\n",
        );
        assert_eq!(d.model_key(), "train.deeponet");
        // An empty [train.gp] is a GP with every default.
        let g = train("seed = 4", "[train.gp]\n");
        assert_eq!(
            g.learner,
            super::Learner::Gp(super::GpRegressionPlan {
                seed: 4,
                gp: GpSection::default()
            })
        );
    }

    #[test]
    fn train_errors_name_their_key() {
        let cases = [
            (
                "epochs = 0",
                FNO,
                "key `train.epochs`: expected an integer ≥ 1, got 0",
            ),
            (
                "learning_rate = 2.0",
                FNO,
                "key `train.learning_rate`: expected a number in (0, 1), got 2",
            ),
            (
                "schedule = \"cosine\"\nstep_size = 5",
                FNO,
                "key `train.step_size`: only applies to schedule = \"step\"",
            ),
            (
                "schedule = \"cosine\"\nmin_learning_rate = 0.5",
                FNO,
                "key `train.min_learning_rate`",
            ),
            ("optimizer = \"sgd\"", FNO, "key `train.optimizer`"),
            (
                "batch_size = 41",
                FNO,
                "key `train.batch_size`: expected at most train.train_samples = 40",
            ),
            ("", "", "key `train`: expected exactly one model table"),
            (
                "",
                "[train.fno]\nwidth = 8\nlayers = 2\n",
                "key `train.fno.modes`: missing field `modes`",
            ),
            (
                "",
                "[train.fno]\nwidth = 8\nmodes = [4, 4]\nlayers = 2\ndomain_padding = 2.0\n",
                "key `train.fno.domain_padding`",
            ),
            (
                "",
                "[train.fno]\nwidth = 8\nmodes = [4, 4]\nlayers = 2\nwdth = 3\n",
                "key `train.fno.wdth`: unknown field `wdth`",
            ),
            (
                "",
                &format!("{FNO}[train.ffno]\nwidth = 8\nmodes = [4, 4]\nlayers = 2\n"),
                "key `train.ffno`: expected exactly one model table",
            ),
            (
                "",
                "[train.factformer]\nwidth = 64\ndepth = 2\nheads = 3\n",
                "key `train.factformer.heads`: expected a divisor of width (64), or dim_head set \
                 explicitly, got 3",
            ),
            (
                "",
                "[train.factformer]\nwidth = 8\ndepth = 2\nheads = 2\nvariant = \"serial\"\n",
                "key `train.factformer.variant`: unknown variant `serial`",
            ),
            (
                "",
                "[train.factformer]\nwidth = 6\ndepth = 2\nheads = 2\nkernel_multiplier = 1\n",
                "key `train.factformer.kernel_multiplier`: expected dim_head × kernel_multiplier \
                 even",
            ),
            (
                "",
                "[train.factformer]\nwidth = 8\ndepth = 2\nheads = 2\ndims = 4\n",
                "key `train.factformer.dims`: expected 1, 2 or 3 grid axes, got 4",
            ),
            (
                "epochs = 10",
                "[train.gp]\n",
                "key `train.epochs`: only applies to neural operators",
            ),
            (
                "",
                "[train.gp]\nkernel = \"gaussian\"\n",
                "key `train.gp.kernel`: unknown variant `gaussian`",
            ),
            (
                "",
                "[train.gp]\nard = true\n",
                "key `train.gp.ard`: expected ard = true only with input_components",
            ),
            (
                "",
                "[train.gp]\nnoize = 0.1\n",
                "key `train.gp.noize`: unknown field `noize` (did you mean `noise`?)",
            ),
            (
                "",
                &format!("[train.gp]\n{FNO}"),
                "key `train.fno`: expected exactly one model table",
            ),
        ];
        assert_errors(cases.map(|(extra, model, want)| (format!("{TRAIN}{extra}\n{model}"), want)));
    }
}
