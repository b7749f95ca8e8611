//! The training loop: shuffled mini-batches, Adam or AdamW, a learning-rate schedule, relative L2
//! or H1 loss on decoded predictions, evaluation every epoch, early stopping, and a stop with a
//! clear error when the loss stops being finite.
//!
//! Sample order in epoch e depends only on `(seed, e)`, and [`TrainState`] holds everything else
//! that changes (optimiser moments, learning rate, plateau and early-stopping counters), so a run
//! resumed from a saved state continues exactly as an uninterrupted one.

use super::loss::{relative_h1, relative_l2};
use super::normalizer::UnitGaussian;
use super::optim::{Adam, AdamParams};
use crate::layers::Layer;
use crate::param::{require, InvalidParam};
use crate::tensor::{NnError, Real, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::time::Instant;
use thiserror::Error;

/// The training loss (`loss = "l2"` or `"h1"`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum LossKind {
    #[default]
    L2,
    H1,
}

/// The learning-rate schedule. In a config: `schedule = "step"` with `step_size` and `gamma`,
/// `"cosine"` with `min_learning_rate`, `"plateau"` with `patience` and `factor`, or
/// `"constant"`; the keys of the other schedules do not apply.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(from = "ScheduleKeys", into = "ScheduleKeys"))]
pub enum Schedule {
    Constant,
    /// Multiply by `gamma` every `step_size` epochs (PyTorch's StepLR).
    Step {
        step_size: usize,
        gamma: f64,
    },
    /// Cosine decay to `min_lr` over the run.
    Cosine {
        min_lr: f64,
    },
    /// Multiply by `factor` when the test error has not improved for `patience` epochs.
    Plateau {
        patience: usize,
        factor: f64,
    },
}

impl Default for Schedule {
    /// The FNO paper's StepLR(100, 0.5).
    fn default() -> Self {
        Schedule::Step {
            step_size: 100,
            gamma: 0.5,
        }
    }
}

/// The keys a schedule is read from and written to, with their defaults.
#[cfg(feature = "serde")]
#[derive(Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct ScheduleKeys {
    schedule: ScheduleName,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gamma: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_learning_rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patience: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    factor: Option<f64>,
}

#[cfg(feature = "serde")]
#[derive(Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum ScheduleName {
    Constant,
    #[default]
    Step,
    Cosine,
    Plateau,
}

#[cfg(feature = "serde")]
impl From<ScheduleKeys> for Schedule {
    fn from(k: ScheduleKeys) -> Self {
        match k.schedule {
            ScheduleName::Constant => Schedule::Constant,
            ScheduleName::Step => Schedule::Step {
                step_size: k.step_size.unwrap_or(100),
                gamma: k.gamma.unwrap_or(0.5),
            },
            ScheduleName::Cosine => Schedule::Cosine {
                min_lr: k.min_learning_rate.unwrap_or(0.0),
            },
            ScheduleName::Plateau => Schedule::Plateau {
                patience: k.patience.unwrap_or(10),
                factor: k.factor.unwrap_or(0.5),
            },
        }
    }
}

#[cfg(feature = "serde")]
impl From<Schedule> for ScheduleKeys {
    fn from(s: Schedule) -> Self {
        let keys = ScheduleKeys::default();
        match s {
            Schedule::Constant => ScheduleKeys {
                schedule: ScheduleName::Constant,
                ..keys
            },
            Schedule::Step { step_size, gamma } => ScheduleKeys {
                schedule: ScheduleName::Step,
                step_size: Some(step_size),
                gamma: Some(gamma),
                ..keys
            },
            Schedule::Cosine { min_lr } => ScheduleKeys {
                schedule: ScheduleName::Cosine,
                min_learning_rate: Some(min_lr),
                ..keys
            },
            Schedule::Plateau { patience, factor } => ScheduleKeys {
                schedule: ScheduleName::Plateau,
                patience: Some(patience),
                factor: Some(factor),
                ..keys
            },
        }
    }
}

/// How a model is trained: the training keys of a `[train]` section.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct TrainParams {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub adam: AdamParams,
    #[cfg_attr(feature = "serde", serde(flatten))]
    pub schedule: Schedule,
    pub loss: LossKind,
    pub seed: u64,
    /// Stop when the test error has not improved for this many epochs (in a config: 0 for
    /// never).
    #[cfg_attr(feature = "serde", serde(with = "zero_is_none"))]
    pub early_stopping: Option<usize>,
}

/// `Option<usize>` written as a number, 0 for `None`.
#[cfg(feature = "serde")]
mod zero_is_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<usize>, s: S) -> Result<S::Ok, S::Error> {
        v.unwrap_or(0).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
        Ok(Some(usize::deserialize(d)?).filter(|&n| n > 0))
    }
}

impl Default for TrainParams {
    /// The FNO paper's recipe: Adam at 1e-3, StepLR(100, 0.5), 500 epochs, batch 20.
    fn default() -> Self {
        Self {
            epochs: 500,
            batch_size: 20,
            learning_rate: 1e-3,
            adam: AdamParams::default(),
            schedule: Schedule::default(),
            loss: LossKind::L2,
            seed: 0,
            early_stopping: None,
        }
    }
}

impl TrainParams {
    /// Every parameter in range; `field` is its key in a `[train]` section.
    pub fn validate(&self) -> Result<(), InvalidParam> {
        require(self.epochs >= 1, "epochs", "an integer ≥ 1", self.epochs)?;
        require(
            self.batch_size >= 1,
            "batch_size",
            "an integer ≥ 1",
            self.batch_size,
        )?;
        let lr = self.learning_rate;
        require(
            lr > 0.0 && lr < 1.0,
            "learning_rate",
            "a number in (0, 1)",
            lr,
        )?;
        self.adam.validate()?;
        match self.schedule {
            Schedule::Constant => Ok(()),
            Schedule::Step { step_size, gamma } => {
                require(step_size >= 1, "step_size", "an integer ≥ 1", step_size)?;
                require(
                    gamma > 0.0 && gamma <= 1.0,
                    "gamma",
                    "a number in (0, 1]",
                    gamma,
                )
            }
            Schedule::Cosine { min_lr } => require(
                (0.0..lr).contains(&min_lr),
                "min_learning_rate",
                &format!("a number in [0, learning_rate = {lr})"),
                min_lr,
            ),
            Schedule::Plateau { patience, factor } => {
                require(patience >= 1, "patience", "an integer ≥ 1", patience)?;
                require(
                    factor > 0.0 && factor < 1.0,
                    "factor",
                    "a number in (0, 1)",
                    factor,
                )
            }
        }
    }
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EpochRecord {
    pub epoch: usize,
    pub learning_rate: f64,
    /// Mean training loss over the epoch's batches (the configured loss).
    pub train_loss: f64,
    pub test_l2: f64,
    pub test_h1: f64,
    pub seconds: f64,
    /// Peak resident memory of the process during the epoch (training and test), in MiB, as the
    /// observer records it; `None` where it cannot be read (not Linux) or was not kept.
    #[cfg_attr(feature = "serde", serde(default))]
    pub peak_rss_mib: Option<f64>,
}

/// One training batch, as `train`'s `on_batch` sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchRecord {
    /// The batch's index in its epoch.
    pub batch: usize,
    /// Batches in the epoch.
    pub batches: usize,
    /// This batch's loss (the configured loss, before the update).
    pub loss: f64,
    /// The mean loss of the epoch's batches so far.
    pub running_loss: f64,
    pub learning_rate: f64,
}

/// How far an interrupted epoch got: enough to go on with its remaining batches exactly as an
/// uninterrupted run would.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PartialEpoch {
    /// Batches of the epoch's (seeded) order already taken.
    pub batches: usize,
    /// Their summed loss, for the epoch's mean.
    pub loss_sum: f64,
    /// Wall time spent on them.
    pub seconds: f64,
}

/// Everything besides the weights that a resumed run needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainState<T> {
    /// Epochs completed.
    pub epoch: usize,
    pub learning_rate: f64,
    pub adam: Adam<T>,
    pub history: Vec<EpochRecord>,
    pub best_test: f64,
    pub since_best: usize,
    /// Set when training stopped inside epoch `epoch` (see [`train`]'s `on_batch`).
    pub partial: Option<PartialEpoch>,
}

impl<T: Real> TrainState<T> {
    pub fn new(params: &TrainParams) -> Self {
        Self {
            epoch: 0,
            learning_rate: params.learning_rate,
            adam: Adam::new(params.adam),
            history: Vec::new(),
            best_test: f64::INFINITY,
            since_best: 0,
            partial: None,
        }
    }
}

#[derive(Debug, Error, Clone, PartialEq)]
pub enum TrainError {
    #[error("training: {0}")]
    Invalid(#[from] InvalidParam),
    #[error("training: the training and test splits must both be non-empty")]
    EmptySplit,
    #[error(transparent)]
    Layer(#[from] NnError),
    #[error("the training loss became {value} at epoch {epoch}, batch {batch}; the weights are those after the last finite step (lower the learning rate, or check the data for NaN/Inf)")]
    NonFinite {
        epoch: usize,
        batch: usize,
        value: f64,
    },
}

/// What the observer asks for after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// A split: inputs and targets, raw (not normalised).
pub struct Split<'a, T> {
    pub x: &'a Tensor<T>,
    pub y: &'a Tensor<T>,
}

/// Rows `idx` of `t` as one batch tensor.
pub fn gather_rows<T: Real>(t: &Tensor<T>, idx: &[usize]) -> Tensor<T> {
    let per = t.data.len() / t.shape[0].max(1);
    let mut shape = t.shape.clone();
    shape[0] = idx.len();
    let mut data = Vec::with_capacity(idx.len() * per);
    for &i in idx {
        data.extend_from_slice(&t.data[i * per..(i + 1) * per]);
    }
    Tensor { shape, data }
}

/// Decoded predictions for `x` (raw inputs), in batches.
pub fn predict<T: Real>(
    model: &mut dyn Layer<T>,
    norms: (&UnitGaussian, &UnitGaussian),
    x: &Tensor<T>,
    batch_size: usize,
) -> Result<Tensor<T>, NnError> {
    let n = x.shape[0];
    let mut out: Option<Tensor<T>> = None;
    for start in (0..n).step_by(batch_size.max(1)) {
        let idx: Vec<usize> = (start..(start + batch_size).min(n)).collect();
        let pred = norms
            .1
            .decode(&model.forward(&norms.0.encode(&gather_rows(x, &idx)))?);
        match &mut out {
            None => out = Some(pred),
            Some(o) => {
                o.shape[0] += pred.shape[0];
                o.data.extend(pred.data);
            }
        }
    }
    Ok(out.unwrap_or_else(|| Tensor::zeros(&x.shape)))
}

/// Mean relative L2 and H1 errors of the model on a split.
pub fn evaluate<T: Real>(
    model: &mut dyn Layer<T>,
    norms: (&UnitGaussian, &UnitGaussian),
    split: &Split<'_, T>,
    batch_size: usize,
) -> Result<(f64, f64), NnError> {
    let pred = predict(model, norms, split.x, batch_size)?;
    Ok((
        relative_l2(&pred, split.y)?.0,
        relative_h1(&pred, split.y)?.0,
    ))
}

fn shuffled(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
        seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    idx.shuffle(&mut rng);
    idx
}

/// Trains `model` from `state` (fresh or resumed) until `params.epochs` epochs are done, early
/// stopping triggers, or `observer` returns [`Control::Stop`]. The observer sees each epoch's
/// record, the model and the state (to write checkpoints); `on_batch` sees each batch's
/// [`BatchRecord`] (for progress bars and live metrics). When `on_batch` returns
/// [`Control::Stop`], training returns after that batch with [`TrainState::partial`] set; the
/// state and weights then resume the epoch exactly where it stopped.
pub fn train<T: Real, M: Layer<T>>(
    model: &mut M,
    norms: (&UnitGaussian, &UnitGaussian),
    (train_split, test_split): (&Split<'_, T>, &Split<'_, T>),
    params: &TrainParams,
    mut state: TrainState<T>,
    on_batch: &mut dyn FnMut(&BatchRecord) -> Control,
    mut observer: impl FnMut(&EpochRecord, &mut M, &mut TrainState<T>) -> Control,
) -> Result<TrainState<T>, TrainError> {
    params.validate()?;
    let n = train_split.x.shape[0];
    if n == 0 || test_split.x.shape[0] == 0 {
        return Err(TrainError::EmptySplit);
    }
    let (x_norm, y_norm) = norms;
    while state.epoch < params.epochs {
        let started = Instant::now();
        let epoch = state.epoch;
        let order = shuffled(n, params.seed, epoch);
        let resumed = state.partial.take();
        let (skip, mut loss_sum, earlier) =
            resumed.map_or((0, 0.0, 0.0), |p| (p.batches, p.loss_sum, p.seconds));
        let batches: Vec<&[usize]> = order.chunks(params.batch_size).collect();
        for (bi, idx) in batches.iter().enumerate().skip(skip) {
            let x = x_norm.encode(&gather_rows(train_split.x, idx));
            let y = gather_rows(train_split.y, idx);
            model.zero_grad();
            let pred = y_norm.decode(&model.forward(&x)?);
            let loss_of = |pred: &Tensor<T>, y: &Tensor<T>| match params.loss {
                LossKind::L2 => relative_l2(pred, y),
                LossKind::H1 => relative_h1(pred, y),
            };
            let (loss, grad) = match model.loss_patches() {
                None => loss_of(&pred, &y)?,
                Some(mg) => {
                    let (loss, grad) = loss_of(&mg.split(&pred)?, &mg.split(&y)?)?;
                    (loss, mg.join(&grad, y.grid())?)
                }
            };
            if !loss.is_finite() {
                return Err(TrainError::NonFinite {
                    epoch,
                    batch: bi,
                    value: loss,
                });
            }
            loss_sum += loss;
            model.backward(&y_norm.decode_backward(&grad))?;
            state
                .adam
                .update(&mut model.parameters(), state.learning_rate)?;
            let wants = on_batch(&BatchRecord {
                batch: bi,
                batches: batches.len(),
                loss,
                running_loss: loss_sum / (bi + 1) as f64,
                learning_rate: state.learning_rate,
            });
            if wants == Control::Stop && bi + 1 < batches.len() {
                state.partial = Some(PartialEpoch {
                    batches: bi + 1,
                    loss_sum,
                    seconds: earlier + started.elapsed().as_secs_f64(),
                });
                return Ok(state);
            }
        }
        let (test_l2, test_h1) = evaluate(model, norms, test_split, params.batch_size)?;
        let record = EpochRecord {
            epoch,
            learning_rate: state.learning_rate,
            train_loss: loss_sum / batches.len() as f64,
            test_l2,
            test_h1,
            seconds: earlier + started.elapsed().as_secs_f64(),
            // The caller's to fill (the observer sees the state), as it can read the process.
            peak_rss_mib: None,
        };
        let test = match params.loss {
            LossKind::L2 => test_l2,
            LossKind::H1 => test_h1,
        };
        if test < state.best_test {
            state.best_test = test;
            state.since_best = 0;
        } else {
            state.since_best += 1;
        }
        state.learning_rate = match params.schedule {
            Schedule::Constant => state.learning_rate,
            Schedule::Step { step_size, gamma } => {
                params.learning_rate * gamma.powi(((epoch + 1) / step_size.max(1)) as i32)
            }
            Schedule::Cosine { min_lr } => {
                let t = (epoch + 1) as f64 / params.epochs as f64;
                min_lr
                    + 0.5
                        * (params.learning_rate - min_lr)
                        * (1.0 + (std::f64::consts::PI * t).cos())
            }
            Schedule::Plateau { patience, factor } => {
                if state.since_best > patience && state.since_best.is_multiple_of(patience + 1) {
                    state.learning_rate * factor
                } else {
                    state.learning_rate
                }
            }
        };
        state.epoch += 1;
        state.history.push(record.clone());
        let stop_early = params.early_stopping.is_some_and(|p| state.since_best >= p);
        if observer(&record, model, &mut state) == Control::Stop || stop_early {
            break;
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::fno::{Fno, FnoSpec, GridFrame};
    use rand::Rng;

    fn data(n: usize, s: usize, seed: u64) -> (Tensor<f64>, Tensor<f64>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (a, b): (f64, f64) = (rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0));
            for j in 0..s {
                let t = 2.0 * std::f64::consts::PI * j as f64 / s as f64;
                xs.push(a * t.cos() + b * (2.0 * t).sin() + 2.0);
                ys.push(0.5 * a * t.cos() + 0.2 * b * (2.0 * t).sin());
            }
        }
        (
            Tensor::from_vec(&[n, s, 1], xs).unwrap(),
            Tensor::from_vec(&[n, s, 1], ys).unwrap(),
        )
    }

    fn model() -> Fno<f64> {
        Fno::new(FnoSpec {
            in_channels: 1,
            out_channels: 1,
            width: 6,
            modes: vec![4],
            layers: 2,
            frame: GridFrame::default(),
            factorization: crate::layers::factorized::Factorization::Dense,
            block: Default::default(),
            seed: 3,
        })
        .unwrap()
    }

    #[test]
    fn a_resumed_run_continues_exactly_as_an_uninterrupted_one() {
        let (x, y) = data(12, 16, 1);
        let (tx, ty) = data(4, 16, 2);
        let (xn, yn) = (UnitGaussian::fit(&x), UnitGaussian::fit(&y));
        let params = TrainParams {
            epochs: 6,
            batch_size: 5,
            learning_rate: 5e-3,
            ..TrainParams::default()
        };
        let (tr, te) = (Split { x: &x, y: &y }, Split { x: &tx, y: &ty });
        let mut whole = model();
        let full = train(
            &mut whole,
            (&xn, &yn),
            (&tr, &te),
            &params,
            TrainState::new(&params),
            &mut |_| Control::Continue,
            |_, _, _| Control::Continue,
        )
        .unwrap();
        // Stop after 3 epochs (by the observer), or inside epoch 3 after its second of three
        // batches (by `on_batch`, the 11th call); keep the weights and state, then go on.
        for stop_inside_an_epoch in [false, true] {
            let mut first = model();
            let mut calls = 0;
            let half = train(
                &mut first,
                (&xn, &yn),
                (&tr, &te),
                &params,
                TrainState::new(&params),
                &mut |_| {
                    calls += 1;
                    if stop_inside_an_epoch && calls == 11 {
                        Control::Stop
                    } else {
                        Control::Continue
                    }
                },
                |r, _, _| {
                    if !stop_inside_an_epoch && r.epoch == 2 {
                        Control::Stop
                    } else {
                        Control::Continue
                    }
                },
            )
            .unwrap();
            assert_eq!(half.epoch, 3);
            assert_eq!(
                half.partial.as_ref().map(|p| p.batches),
                stop_inside_an_epoch.then_some(2)
            );
            let weights: Vec<Vec<f64>> = first
                .parameters()
                .iter()
                .map(|p| p.value.to_vec())
                .collect();
            let mut second = model();
            for (p, w) in second.parameters().into_iter().zip(&weights) {
                p.value.copy_from_slice(w);
            }
            let resumed = train(
                &mut second,
                (&xn, &yn),
                (&tr, &te),
                &params,
                half,
                &mut |_| Control::Continue,
                |_, _, _| Control::Continue,
            )
            .unwrap();
            assert_eq!(figures(&resumed.history), figures(&full.history));
            assert_eq!(resumed.adam, full.adam);
            assert_eq!(resumed.partial, None);
        }
        assert!(full.history.last().unwrap().test_l2 < full.history[0].test_l2);
    }

    /// An epoch history's figures, wall times aside.
    fn figures(h: &[EpochRecord]) -> Vec<[f64; 5]> {
        h.iter()
            .map(|r| {
                [
                    r.epoch as f64,
                    r.learning_rate,
                    r.train_loss,
                    r.test_l2,
                    r.test_h1,
                ]
            })
            .collect()
    }

    #[test]
    fn a_non_finite_loss_stops_with_a_clear_error_and_empty_splits_are_refused() {
        let (x, mut y) = data(6, 16, 1);
        y.data[3] = f64::NAN;
        let (xn, yn) = (UnitGaussian::fit(&x), UnitGaussian::fit(&data(6, 16, 1).1));
        let params = TrainParams {
            epochs: 2,
            batch_size: 3,
            ..TrainParams::default()
        };
        let mut m = model();
        let err = train(
            &mut m,
            (&xn, &yn),
            (&Split { x: &x, y: &y }, &Split { x: &x, y: &y }),
            &params,
            TrainState::new(&params),
            &mut |_| Control::Continue,
            |_, _, _| Control::Continue,
        )
        .unwrap_err();
        assert!(
            matches!(err, TrainError::NonFinite { epoch: 0, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("lower the learning rate"));
        let empty = Tensor::<f64>::zeros(&[0, 16, 1]);
        let err = train(
            &mut m,
            (&xn, &yn),
            (
                &Split { x: &x, y: &x },
                &Split {
                    x: &empty,
                    y: &empty,
                },
            ),
            &params,
            TrainState::new(&params),
            &mut |_| Control::Continue,
            |_, _, _| Control::Continue,
        )
        .unwrap_err();
        assert!(err.to_string().contains("non-empty"), "{err}");
    }
}
