//! Figures: heatmap panels of dataset samples and solver charts, as PNG or SVG.
//!
//! Text uses DejaVu Sans embedded in the binary (the `dejavu` crate through plotters' `ab_glyph`
//! backend), so no system font library is needed. Files are drawn under a temporary name and renamed
//! when complete.

mod colormap;

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

/// A polyline series of a line chart.
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    /// Draw markers at the points instead of a connected line.
    pub markers: bool,
}

/// One axis of a [`line_chart`]: its title, and whether it is logarithmic (for quantities that
/// span decades: losses, errors, residuals, unknowns, times). A log axis carries 10ᵏ ticks and
/// leaves out points that are not positive.
#[derive(Debug, Clone, Copy)]
pub struct Axis<'a> {
    pub label: &'a str,
    pub log: bool,
}

impl<'a> Axis<'a> {
    pub fn linear(label: &'a str) -> Self {
        Self { label, log: false }
    }

    pub fn log(label: &'a str) -> Self {
        Self { label, log: true }
    }
}

/// A chart of lines (or marker series) sharing axes.
pub fn line_chart(
    path: &Path,
    format: ImageFormat,
    caption: &str,
    x: Axis<'_>,
    y: Axis<'_>,
    lines: &[Line],
) -> Result<PathBuf, PlotError> {
    render(
        path,
        format,
        (900, 540),
        &Lines {
            caption,
            x,
            y,
            lines,
        },
    )
}

struct Lines<'a> {
    caption: &'a str,
    x: Axis<'a>,
    y: Axis<'a>,
    lines: &'a [Line],
}

/// The range an axis shows for data in `[lo, hi]`: a log axis spans whole decades; a linear one
/// starts at zero when the data reach near it (counts, probabilities) and otherwise frames them.
fn axis_range(lo: f64, hi: f64, log: bool, pad_zero: bool) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return if log { (0.1, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        let (a, b) = (lo.log10().floor(), hi.log10().ceil());
        return (10f64.powf(a), 10f64.powf(if b > a { b } else { a + 1.0 }));
    }
    if !pad_zero {
        return if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
    }
    let y_lo = if lo >= 0.0 && lo <= 0.3 * hi {
        0.0
    } else {
        lo - 0.05 * (hi - lo).max(1e-9)
    };
    let y_hi = if hi > y_lo {
        hi + 0.08 * (hi - y_lo)
    } else {
        y_lo + 1.0
    };
    (y_lo, y_hi)
}

/// The corner of the plot where a legend of `entries` rows covers the fewest data points (the
/// first of upper left, upper right, lower left, lower right on a tie). `lines` are each series'
/// points and whether they are connected; `axes` each axis's shown range and whether it is
/// logarithmic.
fn legend_corner<'a>(
    lines: impl Iterator<Item = (&'a [(f64, f64)], bool)>,
    axes: [(f64, f64, bool); 2],
    entries: usize,
) -> SeriesLabelPosition {
    // Where a value sits along its axis, from 0 to 1.
    let at = |v: f64, (lo, hi, log): (f64, f64, bool)| {
        if log {
            (v.log10() - lo.log10()) / (hi.log10() - lo.log10())
        } else {
            (v - lo) / (hi - lo)
        }
    };
    // The legend box in those units: about 40 % of the width, a row per 7 % of the height.
    let (w, h) = (0.4, (0.07 * entries as f64 + 0.04).min(0.9));
    let mut covered = [0usize; 4];
    // Each series' points, and for a connected line 8 steps along each of its segments.
    let mut samples = Vec::new();
    for (line, connected) in lines {
        let norm: Vec<(f64, f64)> = line
            .iter()
            .map(|&(x, y)| (at(x, axes[0]), at(y, axes[1])))
            .collect();
        if !connected {
            samples.extend(norm);
            continue;
        }
        samples.extend(norm.first().copied());
        for pair in norm.windows(2) {
            let ((u0, v0), (u1, v1)) = (pair[0], pair[1]);
            samples.extend((1..=8).map(|k| {
                let t = k as f64 / 8.0;
                (u0 + t * (u1 - u0), v0 + t * (v1 - v0))
            }));
        }
    }
    for (u, v) in samples {
        let (left, right, top, bottom) = (u < w, u > 1.0 - w, v > 1.0 - h, v < h);
        for (k, hit) in [left && top, right && top, left && bottom, right && bottom]
            .into_iter()
            .enumerate()
        {
            covered[k] += usize::from(hit);
        }
    }
    let best = (0..4).min_by_key(|&k| covered[k]).unwrap_or(0);
    [
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::LowerLeft,
        SeriesLabelPosition::LowerRight,
    ][best]
        .clone()
}

/// `10⁻³` for a power of ten, `2×10⁻³` and `5×10⁻³` between them, and no label elsewhere.
pub fn format_log_tick(v: f64) -> String {
    if v <= 0.0 || !v.is_finite() {
        return String::new();
    }
    // Tick values come from repeated products, so 1 may arrive as 0.9999999999999999.
    let nearest = v.log10().round();
    if (v / 10f64.powf(nearest) - 1.0).abs() < 1e-9 {
        return format!("10{}", superscript(nearest as i64));
    }
    // Within a decade, label 2 and 5 only: labels at every multiple would overlap.
    let k = (v.log10() + 1e-9).floor();
    let mantissa = v / 10f64.powf(k);
    if [2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6) {
        format!("{}×10{}", mantissa.round(), superscript(k as i64))
    } else {
        String::new()
    }
}

fn superscript(k: i64) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let digits: String = k
        .unsigned_abs()
        .to_string()
        .chars()
        .map(|c| DIGITS[c as usize - '0' as usize])
        .collect();
    if k < 0 {
        format!("⁻{digits}")
    } else {
        digits
    }
}

impl Figure for Lines<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        // Bounds of what each axis can show (a log axis only positive values).
        let mut b = [
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let shown = |&(x, y): &(f64, f64)| {
            x.is_finite() && y.is_finite() && (!self.x.log || x > 0.0) && (!self.y.log || y > 0.0)
        };
        for &(x, y) in self
            .lines
            .iter()
            .flat_map(|l| l.points.iter())
            .filter(|p| shown(p))
        {
            b = [b[0].min(x), b[1].max(x), b[2].min(y), b[3].max(y)];
        }
        let (x0, x1) = axis_range(b[0], b[1], self.x.log, false);
        let (y0, y1) = axis_range(b[2], b[3], self.y.log, true);
        let lines: Vec<(&Line, Vec<(f64, f64)>)> = self
            .lines
            .iter()
            .map(|l| (l, l.points.iter().copied().filter(|p| shown(p)).collect()))
            .collect();
        let legend = legend_corner(
            lines.iter().map(|(l, p)| (p.as_slice(), !l.markers)),
            [(x0, x1, self.x.log), (y0, y1, self.y.log)],
            self.lines.len(),
        );
        let linear = |lo: f64, hi: f64| lo..hi;
        match (self.x.log, self.y.log) {
            (false, false) => self.draw_on(root, linear(x0, x1), linear(y0, y1), &lines, legend),
            (false, true) => {
                self.draw_on(root, linear(x0, x1), (y0..y1).log_scale(), &lines, legend)
            }
            (true, false) => {
                self.draw_on(root, (x0..x1).log_scale(), linear(y0, y1), &lines, legend)
            }
            (true, true) => self.draw_on(
                root,
                (x0..x1).log_scale(),
                (y0..y1).log_scale(),
                &lines,
                legend,
            ),
        }
    }
}

impl Lines<'_> {
    fn draw_on<DB, X, Y>(
        &self,
        root: &DrawingArea<DB, Shift>,
        x_range: X,
        y_range: Y,
        lines: &[(&Line, Vec<(f64, f64)>)],
        legend: SeriesLabelPosition,
    ) -> Result<(), String>
    where
        DB: DrawingBackend,
        X: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
        Y: plotters::coord::ranged1d::AsRangedCoord<Value = f64>,
        X::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
        Y::CoordDescType: plotters::coord::ranged1d::ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption(self.caption, ("sans-serif", 22).into_font())
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| e.to_string())?;
        let (xr, yr) = (chart.x_range(), chart.y_range());
        let tick = |log: bool, span: f64| {
            move |v: &f64| {
                if log {
                    format_log_tick(*v)
                } else {
                    format_tick(*v, span)
                }
            }
        };
        let (x_tick, y_tick) = (
            tick(self.x.log, xr.end - xr.start),
            tick(self.y.log, yr.end - yr.start),
        );
        chart
            .configure_mesh()
            .x_desc(self.x.label)
            .y_desc(self.y.label)
            .axis_desc_style(("sans-serif", 16).into_font())
            .label_style(("sans-serif", 13).into_font())
            .x_label_formatter(&x_tick)
            .y_label_formatter(&y_tick)
            .draw()
            .map_err(|e| e.to_string())?;
        for (l, points) in lines {
            let color = l.color;
            let anno = if l.markers {
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(|e| e.to_string())?
            } else {
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
            };
            anno.label(&l.label).legend(move |(x, y)| {
                Rectangle::new([(x, y - 3), (x + 16, y + 3)], color.filled())
            });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14).into_font())
            .position(legend)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
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

/// Distinct colours for chart series (matplotlib's tab10).
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

pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_read_as_powers_of_ten() {
        assert_eq!(format_log_tick(1e-3), "10⁻³");
        assert_eq!(format_log_tick(100.0), "10²");
        assert_eq!(format_log_tick(1.0), "10⁰");
        assert_eq!(format_log_tick(5e-2), "5×10⁻²");
        assert_eq!(format_log_tick(3e-2), "");
        assert_eq!(format_log_tick(0.9999999999999999), "10⁰");
        assert_eq!(format_log_tick(0.0), "");
        assert_eq!(axis_range(0.003, 0.2, true, true), (1e-3, 1.0));
    }

    #[test]
    fn the_legend_goes_where_the_data_are_not() {
        let axes = [(0.0, 10.0, false), (1e-3, 1.0, true)];
        // A decaying curve fills the upper left and the lower right.
        let decay: Vec<(f64, f64)> = (0..=10).map(|k| (k as f64, 0.5f64.powi(k))).collect();
        let corner = legend_corner([(decay.as_slice(), true)].into_iter(), axes, 3);
        assert!(
            matches!(corner, SeriesLabelPosition::UpperRight),
            "{corner:?}"
        );
        // A rising one leaves the upper left free.
        let rise: Vec<(f64, f64)> = decay.iter().map(|&(x, y)| (10.0 - x, y)).collect();
        let corner = legend_corner([(rise.as_slice(), true)].into_iter(), axes, 3);
        assert!(
            matches!(corner, SeriesLabelPosition::UpperLeft),
            "{corner:?}"
        );
    }

    #[test]
    fn a_shared_range_spans_every_map_and_skips_non_finite_values() {
        let a = ndarray::arr2(&[[0.0, 2.0], [1.0, f64::NAN]]);
        let b = ndarray::arr2(&[[-1.0, 0.5]]);
        assert_eq!(shared_range(&[a.view(), b.view()]), Some((-1.0, 2.0)));
        let none = ndarray::arr2(&[[f64::NAN]]);
        assert_eq!(shared_range(&[none.view()]), None);
    }

    #[test]
    fn a_log_axis_has_power_of_ten_ticks_and_drops_what_it_cannot_show() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.svg");
        let decay: Vec<(f64, f64)> = (0..40).map(|k| (k as f64, 0.5f64.powi(k))).collect();
        let mut with_zero = decay.clone();
        with_zero.push((40.0, 0.0));
        line_chart(
            &path,
            ImageFormat::Svg,
            "decay",
            Axis::linear("step"),
            Axis::log("residual"),
            &[Line {
                label: "halving".into(),
                points: with_zero,
                color: PALETTE[0],
                markers: false,
            }],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for tick in ["10⁰", "10⁻⁶", "10⁻¹¹"] {
            assert!(svg.contains(&format!("\n{tick}\n")), "no tick {tick}");
        }
        assert!(!svg.contains("log10") && svg.contains("\nresidual\n"));
        assert!(!svg.contains("×10"), "a decade tick written as a product");
    }
}
