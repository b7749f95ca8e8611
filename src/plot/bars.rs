//! Horizontal bar charts on a logarithmic value axis.

use super::lines::Axis;
use super::theme::{repeated_label, AXIS, CAPTION, TICK};
use super::{render, Figure, PlotError};
use crate::config::ImageFormat;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One bar of a [`bar_chart`].
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub color: RGBColor,
}

/// Horizontal bars on a logarithmic value axis (`value`'s label and unit), one labelled row per
/// bar (top to bottom in the given order). Non-positive or non-finite values are drawn as missing.
/// Two bars with one label are an error: a reader could not tell them apart.
pub fn bar_chart(
    path: &Path,
    format: ImageFormat,
    caption: &str,
    value: Axis<'_>,
    bars: &[Bar],
) -> Result<PathBuf, PlotError> {
    if let Some(label) = repeated_label(bars.iter().map(|b| b.label.as_str())) {
        return Err(PlotError {
            path: path.to_path_buf(),
            message: format!("two bars are both labelled \"{label}\""),
        });
    }
    let height = 140 + 34 * bars.len() as u32;
    render(
        path,
        format,
        (670 + label_width(bars), height),
        &Bars {
            caption,
            value,
            bars,
        },
    )
}

/// Room for the longest bar label (about 7 pixels a character at the tick font).
fn label_width(bars: &[Bar]) -> u32 {
    let chars = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    (chars as u32 * 7 + 24).clamp(120, 520)
}

struct Bars<'a> {
    caption: &'a str,
    value: Axis<'a>,
    bars: &'a [Bar],
}

impl Figure for Bars<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let good: Vec<f64> = self
            .bars
            .iter()
            .map(|b| b.value)
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let lo = good.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = good.iter().copied().fold(0.0, f64::max);
        let (lo, hi) = if good.is_empty() {
            (0.1, 1.0)
        } else {
            (lo / 2.0, hi * 2.0)
        };
        let n = self.bars.len();
        let labels: Vec<String> = self.bars.iter().map(|b| b.label.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(self.caption, ("sans-serif", CAPTION).into_font())
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(label_width(self.bars))
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..n as f64)
            .map_err(|e| e.to_string())?;
        let tick = self.value.tick_formatter(hi - lo);
        chart
            .configure_mesh()
            .x_desc(self.value.label)
            .axis_desc_style(("sans-serif", AXIS).into_font())
            .label_style(("sans-serif", TICK).into_font())
            .y_labels(n.max(1) * 2 + 1)
            .y_label_formatter(&|v| {
                // Labels sit at bar centres, k + 0.5 from the top.
                let k = n as f64 - v - 0.5;
                if (k - k.round()).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
                    labels[k.round() as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_label_formatter(&tick)
            .disable_y_mesh()
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                self.bars
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.value.is_finite() && b.value > 0.0)
                    .map(|(k, b)| {
                        let top = n as f64 - k as f64 - 0.15;
                        let bottom = n as f64 - k as f64 - 0.85;
                        Rectangle::new([(lo, bottom), (b.value, top)], b.color.filled())
                    }),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}
