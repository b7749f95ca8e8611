//! Grids of heatmaps, each with a colour bar on a linear or logarithmic scale.

use super::theme::{format_log_tick, format_tick, TICK, TITLE};
use super::{render, viridis, Figure, PlotError};
use crate::config::ImageFormat;
use ndarray::ArrayView2;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// How a heatmap maps values to colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    #[default]
    Linear,
    /// For magnitudes that span decades (pointwise errors): the colour follows log10 of the
    /// value, the bar carries 10ᵏ ticks, and values that are not positive take the lowest colour.
    Log,
}

/// One heatmap of a panel.
pub struct Heatmap<'a> {
    pub title: String,
    pub values: ArrayView2<'a, f64>,
    /// Rectangles drawn over the map, `[x0, y0, x1, y1]` in array-index units.
    pub outlines: Vec<[f64; 4]>,
    /// The colour bar's limits, so maps that should be compared by eye (truth and prediction)
    /// share one scale; `None`: the map's own range.
    pub range: Option<(f64, f64)>,
    pub scale: Scale,
}

impl<'a> Heatmap<'a> {
    /// A map on its own linear colour range, without outlines.
    pub fn new(title: impl Into<String>, values: ArrayView2<'a, f64>) -> Self {
        Self {
            title: title.into(),
            values,
            outlines: Vec::new(),
            range: None,
            scale: Scale::Linear,
        }
    }

    pub fn with_range(self, range: Option<(f64, f64)>) -> Self {
        Self { range, ..self }
    }

    pub fn with_outlines(self, outlines: Vec<[f64; 4]>) -> Self {
        Self { outlines, ..self }
    }

    pub fn with_scale(self, scale: Scale) -> Self {
        Self { scale, ..self }
    }

    /// The colour bar's limits: the given range, else the map's finite values (positive ones on a
    /// log scale, whose limits are whole decades).
    fn limits(&self) -> (f64, f64) {
        match self.scale {
            Scale::Linear => self
                .range
                .or_else(|| shared_range(&[self.values]))
                .unwrap_or((0.0, 1.0)),
            Scale::Log => {
                let (lo, hi) = self
                    .range
                    .or_else(|| {
                        let positive = self.values.mapv(|v| if v > 0.0 { v } else { f64::NAN });
                        shared_range(&[positive.view()])
                    })
                    .unwrap_or((0.1, 1.0));
                let lo = lo.max(hi * 1e-12);
                let (a, b) = (lo.log10().floor(), hi.log10().ceil());
                (10f64.powf(a), 10f64.powf(b.max(a + 1.0)))
            }
        }
    }
}

/// The `(min, max)` over several maps' finite values: a shared [`Heatmap::range`].
pub fn shared_range(maps: &[ArrayView2<'_, f64>]) -> Option<(f64, f64)> {
    let (lo, hi) = maps
        .iter()
        .flat_map(|m| m.iter().copied())
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    (lo <= hi).then_some((lo, hi))
}

/// A grid of heatmaps, `cols` per row, each with its own colour bar, under a caption.
pub fn heatmap_panel(
    path: &Path,
    format: ImageFormat,
    caption: &str,
    cols: usize,
    maps: &[Heatmap],
) -> Result<PathBuf, PlotError> {
    let cols = cols.max(1);
    let rows = maps.len().div_ceil(cols);
    let size = (420 * cols as u32, 340 * rows as u32 + 50);
    render(
        path,
        format,
        size,
        &Panel {
            caption,
            cols,
            rows,
            maps,
        },
    )
}

struct Panel<'a, 'b> {
    caption: &'a str,
    cols: usize,
    rows: usize,
    maps: &'a [Heatmap<'b>],
}

impl Figure for Panel<'_, '_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (title, body) = root.split_vertically(50);
        title
            .titled(self.caption, ("sans-serif", 24).into_font())
            .map_err(|e| e.to_string())?;
        let cells = body.split_evenly((self.rows, self.cols));
        for (cell, map) in cells.iter().zip(self.maps) {
            draw_heatmap(cell, map)?;
        }
        Ok(())
    }
}

fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    map: &Heatmap,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (nx, ny) = map.values.dim();
    let (lo, hi) = map.limits();
    // Where a value sits on the colour scale, from 0 to 1.
    let position = |v: f64| match map.scale {
        Scale::Linear => (v - lo) / if hi > lo { hi - lo } else { 1.0 },
        Scale::Log if v > 0.0 => (v.log10() - lo.log10()) / (hi.log10() - lo.log10()),
        Scale::Log => 0.0,
    };
    let (w, _) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(w.saturating_sub(95));

    let mut chart = ChartBuilder::on(&main)
        .caption(&map.title, ("sans-serif", TITLE).into_font())
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(40)
        .build_cartesian_2d(0.0..nx as f64, 0.0..ny as f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(5)
        .y_labels(5)
        .x_label_formatter(&|v| format!("{}", *v as usize))
        .y_label_formatter(&|v| format!("{}", *v as usize))
        .label_style(("sans-serif", TICK).into_font())
        .draw()
        .map_err(e)?;
    // Array index [ix, iy]: x to the right, y upwards.
    chart
        .draw_series(map.values.indexed_iter().map(|((i, j), &v)| {
            Rectangle::new(
                [(i as f64, j as f64), (i as f64 + 1.0, j as f64 + 1.0)],
                viridis(position(v)).filled(),
            )
        }))
        .map_err(e)?;
    chart
        .draw_series(
            map.outlines
                .iter()
                .map(|r| Rectangle::new([(r[0], r[1]), (r[2], r[3])], WHITE.stroke_width(2))),
        )
        .map_err(e)?;

    let mut bar = ChartBuilder::on(&bar);
    bar.margin_top(34)
        .margin_bottom(36)
        .margin_left(4)
        .right_y_label_area_size(66);
    let steps = 64;
    let swatches = (0..steps).map(|k| {
        let t = |k: usize| k as f64 / steps as f64;
        let (a, b) = match map.scale {
            Scale::Linear => (lo + (hi - lo) * t(k), lo + (hi - lo) * t(k + 1)),
            Scale::Log => {
                let at = |t: f64| 10f64.powf(lo.log10() + (hi.log10() - lo.log10()) * t);
                (at(t(k)), at(t(k + 1)))
            }
        };
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            viridis((k as f64 + 0.5) / steps as f64).filled(),
        )
    });
    match map.scale {
        Scale::Linear => {
            let span = if hi > lo { hi - lo } else { 1.0 };
            let mut cb = bar.build_cartesian_2d(0.0..1.0, lo..lo + span).map_err(e)?;
            cb.configure_mesh()
                .disable_mesh()
                .disable_x_axis()
                .y_labels(6)
                .y_label_formatter(&|v| format_tick(*v, span))
                .label_style(("sans-serif", TICK).into_font())
                .draw()
                .map_err(e)?;
            cb.draw_series(swatches).map_err(e)?;
        }
        Scale::Log => {
            let mut cb = bar
                .build_cartesian_2d(0.0..1.0, (lo..hi).log_scale())
                .map_err(e)?;
            cb.configure_mesh()
                .disable_mesh()
                .disable_x_axis()
                .y_label_formatter(&|v| format_log_tick(*v))
                .label_style(("sans-serif", TICK).into_font())
                .draw()
                .map_err(e)?;
            cb.draw_series(swatches).map_err(e)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_range_spans_every_map_and_skips_non_finite_values() {
        let a = ndarray::arr2(&[[0.0, 2.0], [1.0, f64::NAN]]);
        let b = ndarray::arr2(&[[-1.0, 0.5]]);
        assert_eq!(shared_range(&[a.view(), b.view()]), Some((-1.0, 2.0)));
        let none = ndarray::arr2(&[[f64::NAN]]);
        assert_eq!(shared_range(&[none.view()]), None);
    }

    #[test]
    fn a_log_scale_spans_whole_decades_of_the_positive_values() {
        let a = ndarray::arr2(&[[3e-7, 0.0], [2e-3, -1.0]]);
        let map = Heatmap::new("e", a.view()).with_scale(Scale::Log);
        let (lo, hi) = map.limits();
        assert!((lo / 1e-7 - 1.0).abs() < 1e-12 && (hi / 1e-2 - 1.0).abs() < 1e-12);
    }
}
