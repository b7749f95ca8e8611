//! Figures: heatmap panels of dataset samples and solver charts, as PNG or SVG.
//!
//! Text uses DejaVu Sans embedded in the binary (the `dejavu` crate through plotters' `ab_glyph`
//! backend), so no system font library is needed. Files are drawn under a temporary name and renamed
//! when complete.

mod colormap;
mod lines;

use lines::format_log_tick;
pub use lines::{line_chart, Axis, Line};

use crate::config::ImageFormat;
use ndarray::ArrayView2;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

pub use colormap::viridis;

#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct PlotError {
    pub path: PathBuf,
    pub message: String,
}

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Both registrations use the same embedded font; failure means the font bytes are corrupt,
        // which the plot tests would catch.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
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

/// Something that can draw itself on any plotters backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Renders `figure` into `path` (PNG or SVG by `format`) through a temporary file.
fn render(
    path: &Path,
    format: ImageFormat,
    size: (u32, u32),
    figure: &impl Figure,
) -> Result<PathBuf, PlotError> {
    register_fonts();
    let err = |message: String| PlotError {
        path: path.to_path_buf(),
        message,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::create_dir(dir).map_err(|e| err(e.to_string()))?;
    }
    let ext = format.extension();
    let tmp = path.with_extension(format!("partial.{ext}"));
    match format {
        ImageFormat::Png => {
            let root = BitMapBackend::new(&tmp, size).into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
            figure.draw(&root).map_err(&err)?;
            root.present().map_err(|e| err(e.to_string()))?;
        }
        ImageFormat::Svg => {
            let root = SVGBackend::new(&tmp, size).into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
            figure.draw(&root).map_err(&err)?;
            root.present().map_err(|e| err(e.to_string()))?;
        }
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| err(format!("cannot rename {}: {e}", tmp.display())))?;
    Ok(path.to_path_buf())
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
    let (lo, hi) = map
        .range
        .or_else(|| shared_range(&[map.values]))
        .unwrap_or((0.0, 1.0));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (w, _) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(w.saturating_sub(95));

    let mut chart = ChartBuilder::on(&main)
        .caption(&map.title, ("sans-serif", 17).into_font())
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
        .label_style(("sans-serif", 12).into_font())
        .draw()
        .map_err(e)?;
    // Array index [ix, iy]: x to the right, y upwards.
    chart
        .draw_series(map.values.indexed_iter().map(|((i, j), &v)| {
            let c = viridis((v - lo) / span);
            Rectangle::new(
                [(i as f64, j as f64), (i as f64 + 1.0, j as f64 + 1.0)],
                c.filled(),
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

    let mut cb = ChartBuilder::on(&bar)
        .margin_top(34)
        .margin_bottom(36)
        .margin_left(4)
        .right_y_label_area_size(66)
        .build_cartesian_2d(0.0..1.0, lo..lo + span)
        .map_err(e)?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&|v| format_tick(*v, span))
        .label_style(("sans-serif", 12).into_font())
        .draw()
        .map_err(e)?;
    let steps = 64;
    cb.draw_series((0..steps).map(|k| {
        let a = lo + span * k as f64 / steps as f64;
        let b = lo + span * (k + 1) as f64 / steps as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            viridis((k as f64 + 0.5) / steps as f64).filled(),
        )
    }))
    .map_err(e)?;
    Ok(())
}

/// A tick label with as many digits as the axis range `span` needs.
fn format_tick(v: f64, span: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs().max(span.abs());
    if !(1e-2..1e5).contains(&a) {
        format!("{v:.1e}")
    } else {
        let digits = (1 - span.abs().log10().floor() as i64).clamp(0, 4) as usize;
        format!("{v:.digits$}")
    }
}

/// One bar of a [`bar_chart`].
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub color: RGBColor,
}

/// Horizontal bars on a logarithmic value axis, one labelled row per bar (top to bottom in the
/// given order). Non-positive or non-finite values are drawn as missing.
pub fn bar_chart(
    path: &Path,
    format: ImageFormat,
    caption: &str,
    value_label: &str,
    bars: &[Bar],
) -> Result<PathBuf, PlotError> {
    let height = 140 + 34 * bars.len() as u32;
    render(
        path,
        format,
        (900, height),
        &Bars {
            caption,
            value_label,
            bars,
        },
    )
}

struct Bars<'a> {
    caption: &'a str,
    value_label: &'a str,
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
            .caption(self.caption, ("sans-serif", 22).into_font())
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(230)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..n as f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(self.value_label)
            .axis_desc_style(("sans-serif", 16).into_font())
            .label_style(("sans-serif", 13).into_font())
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
            .x_label_formatter(&|v| format_log_tick(*v))
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

/// Colours for the many series of one figure (the tab10 cycle without its grey, which is
/// [`PEER`]'s), so no series looks like a peer.
pub const SERIES: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A peer tool's series (scipy, pyamg, PyTorch).
pub const PEER: RGBColor = RGBColor(127, 127, 127);

/// Distinct colours for chart series (matplotlib's tab10 order, grey last).
pub const PALETTE: [RGBColor; 8] = [
    SERIES[0], SERIES[1], SERIES[2], SERIES[3], SERIES[4], SERIES[5], SERIES[6], PEER,
];

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
}
