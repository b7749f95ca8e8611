//! The figures of `train`: the learning curves and the test predictions.

use super::PlotError;
use super::{figure_path, heatmap_panel, line_chart, series, shared_range, Axis, Heatmap, Line};
use crate::config::ImageFormat;
use ndarray::Array2;
use pdekit_operators::train::trainer::EpochRecord;
use std::path::{Path, PathBuf};

/// `loss`: train loss (named `loss_name`) and test relative L2 and H1 against epoch, on a log axis.
pub fn curves(
    dir: &Path,
    format: ImageFormat,
    loss_name: &str,
    history: &[EpochRecord],
) -> Result<PathBuf, PlotError> {
    let series_of = |f: fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
        history
            .iter()
            .map(|r| ((r.epoch + 1) as f64, f(r)))
            .collect()
    };
    line_chart(
        &figure_path(dir, "loss", format),
        format,
        "training",
        Axis::counts("epoch"),
        Axis::log("loss and relative error"),
        &[
            Line::new(
                format!("train loss ({loss_name})"),
                series_of(|r| r.train_loss),
                series(0),
            ),
            Line::new("test relative L2", series_of(|r| r.test_l2), series(1)),
            Line::new("test relative H1", series_of(|r| r.test_h1), series(2)),
        ],
    )
}

/// One test sample's input channel, true output and predicted output (and, from a GP, the
/// predicted standard deviation).
pub struct Prediction {
    pub input: Array2<f64>,
    pub truth: Array2<f64>,
    pub prediction: Array2<f64>,
    pub std: Option<Array2<f64>>,
}

/// `predictions`: a row per sample of input, truth, prediction and |error|, and σ when the model
/// predicts one. Truth and prediction share one colour scale so they compare by eye; |error| and σ
/// share another, so an error larger than its σ shows as a brighter error panel; the input has its
/// own.
pub fn predictions(
    dir: &Path,
    format: ImageFormat,
    samples: &[Prediction],
) -> Result<PathBuf, PlotError> {
    let errors: Vec<Array2<f64>> = samples
        .iter()
        .map(|s| (&s.prediction - &s.truth).mapv(f64::abs))
        .collect();
    let columns = if samples.iter().any(|s| s.std.is_some()) {
        5
    } else {
        4
    };
    heatmap_panel(
        &figure_path(dir, "predictions", format),
        format,
        "test samples",
        columns,
        &prediction_maps(samples, &errors),
    )
}

/// `calibration`: the fraction of test values inside the central interval of each nominal
/// probability, against that probability; a calibrated model lies on the diagonal.
pub fn calibration(
    dir: &Path,
    format: ImageFormat,
    nominal: &[f64],
    observed: &[f64],
) -> Result<PathBuf, PlotError> {
    line_chart(
        &figure_path(dir, "calibration", format),
        format,
        "calibration on the test set",
        Axis::linear("nominal probability of the central interval"),
        Axis::linear("observed fraction of test values inside"),
        &[
            Line::new(
                "ideal",
                vec![(0.0, 0.0), (1.0, 1.0)],
                super::theme::REFERENCE,
            ),
            Line::scatter(
                "GP",
                nominal
                    .iter()
                    .copied()
                    .zip(observed.iter().copied())
                    .collect(),
                series(0),
            ),
        ],
    )
}

fn prediction_maps<'a>(samples: &'a [Prediction], errors: &'a [Array2<f64>]) -> Vec<Heatmap<'a>> {
    let mut maps = Vec::with_capacity(4 * samples.len());
    for (b, (s, err)) in samples.iter().zip(errors).enumerate() {
        let both = shared_range(&[s.truth.view(), s.prediction.view()]);
        maps.push(Heatmap::new(format!("test {b}: input"), s.input.view()));
        maps.push(Heatmap::new("truth", s.truth.view()).with_range(both));
        maps.push(Heatmap::new("prediction", s.prediction.view()).with_range(both));
        match &s.std {
            None => maps.push(Heatmap::new("|error|", err.view())),
            Some(sd) => {
                let spread = shared_range(&[err.view(), sd.view()]);
                maps.push(Heatmap::new("|error|", err.view()).with_range(spread));
                maps.push(Heatmap::new("σ (predicted)", sd.view()).with_range(spread));
            }
        }
    }
    maps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_and_prediction_share_their_colour_limits_and_the_error_has_its_own() {
        let s = Prediction {
            input: Array2::from_elem((2, 2), 5.0),
            truth: ndarray::arr2(&[[0.0, 0.014], [0.002, 0.01]]),
            prediction: ndarray::arr2(&[[0.001, 0.012], [0.0, -0.001]]),
            std: None,
        };
        let errors = vec![(&s.prediction - &s.truth).mapv(f64::abs)];
        let samples = [s];
        let maps = prediction_maps(&samples, &errors);
        assert_eq!(maps.len(), 4);
        assert_eq!(maps[1].range, Some((-0.001, 0.014)));
        assert_eq!(maps[1].range, maps[2].range);
        assert_eq!(maps[0].range, None);
        assert_eq!(maps[3].range, None);
    }
}
