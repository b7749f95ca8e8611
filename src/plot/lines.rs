//! Line charts with linear or logarithmic axes.

use super::theme::{
    format_log_seconds, format_log_tick, format_seconds, format_tick, repeated_label, AXIS,
    CAPTION, LEGEND, TICK,
};
use super::{render, Figure, PlotError};
use crate::config::ImageFormat;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// A polyline series of a line chart.
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    /// Draw markers at the points instead of a connected line.
    pub markers: bool,
    /// A dashed line: the series of a second pass through the palette.
    pub dashed: bool,
}

impl Line {
    /// A connected line.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, color: RGBColor) -> Self {
        Self {
            label: label.into(),
            points,
            color,
            markers: false,
            dashed: false,
        }
    }

    /// The `k`-th of many series: colour `k` of [`super::SERIES`], dashed once the colours repeat,
    /// so no two series of a figure look alike.
    pub fn nth(label: impl Into<String>, points: Vec<(f64, f64)>, k: usize) -> Self {
        Self {
            dashed: k >= super::SERIES.len(),
            ..Self::new(label, points, super::series(k))
        }
    }

    /// Markers at the points, unconnected: a scatter series.
    pub fn scatter(label: impl Into<String>, points: Vec<(f64, f64)>, color: RGBColor) -> Self {
        Self {
            markers: true,
            ..Self::new(label, points, color)
        }
    }
}

/// One axis of a chart: its title, whether it is logarithmic (for quantities that span decades:
/// losses, errors, residuals, unknowns, times), and whether its values are seconds. A log axis
/// carries 10ᵏ ticks and leaves out points that are not positive; a time axis reads `0.5 ms`,
/// `1.2 s`.
#[derive(Debug, Clone, Copy)]
pub struct Axis<'a> {
    pub label: &'a str,
    pub log: bool,
    pub seconds: bool,
    /// Whole numbers only (epochs, iterations, positions): no ticks between them.
    pub integer: bool,
}

impl<'a> Axis<'a> {
    pub fn linear(label: &'a str) -> Self {
        Self {
            label,
            log: false,
            seconds: false,
            integer: false,
        }
    }

    /// A linear axis of whole numbers.
    pub fn counts(label: &'a str) -> Self {
        Self {
            integer: true,
            ..Self::linear(label)
        }
    }

    pub fn log(label: &'a str) -> Self {
        Self {
            log: true,
            ..Self::linear(label)
        }
    }

    /// A logarithmic axis of durations in seconds.
    pub fn log_seconds(label: &'a str) -> Self {
        Self {
            seconds: true,
            ..Self::log(label)
        }
    }

    /// How the axis labels its ticks; `span` is the shown range (for a linear axis's digits).
    pub(super) fn tick_formatter(self, span: f64) -> impl Fn(&f64) -> String {
        move |&v| match (self.log, self.seconds) {
            (true, true) => format_log_seconds(v),
            (true, false) => format_log_tick(v),
            (false, true) => format_seconds(v),
            (false, false) if self.integer => {
                if (v - v.round()).abs() < 1e-9 {
                    format!("{}", v.round())
                } else {
                    String::new()
                }
            }
            (false, false) => format_tick(v, span),
        }
    }
}

/// A chart of lines (or marker series) sharing axes. Two series with one label are an error: a
/// reader could not tell them apart.
pub fn line_chart(
    path: &Path,
    format: ImageFormat,
    caption: &str,
    x: Axis<'_>,
    y: Axis<'_>,
    lines: &[Line],
) -> Result<PathBuf, PlotError> {
    if let Some(label) = repeated_label(lines.iter().map(|l| l.label.as_str())) {
        return Err(PlotError {
            path: path.to_path_buf(),
            message: format!("two series are both labelled \"{label}\""),
        });
    }
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
            .caption(self.caption, ("sans-serif", CAPTION).into_font())
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| e.to_string())?;
        let (xr, yr) = (chart.x_range(), chart.y_range());
        let (x_tick, y_tick) = (
            self.x.tick_formatter(xr.end - xr.start),
            self.y.tick_formatter(yr.end - yr.start),
        );
        chart
            .configure_mesh()
            .x_desc(self.x.label)
            .y_desc(self.y.label)
            .axis_desc_style(("sans-serif", AXIS).into_font())
            .label_style(("sans-serif", TICK).into_font())
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
            } else if l.dashed {
                chart
                    .draw_series(DashedLineSeries::new(
                        points.iter().copied(),
                        8,
                        5,
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
            } else {
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
            };
            if l.dashed {
                anno.label(&l.label).legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + Rectangle::new([(0, -2), (6, 2)], color.filled())
                        + Rectangle::new([(10, -2), (16, 2)], color.filled())
                });
            } else {
                anno.label(&l.label).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 3), (x + 16, y + 3)], color.filled())
                });
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", LEGEND).into_font())
            .position(legend)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::series;

    #[test]
    fn a_log_axis_spans_whole_decades() {
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
            &[Line::new("halving", with_zero, series(0))],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for tick in ["10⁰", "10⁻⁶", "10⁻¹¹"] {
            assert!(svg.contains(&format!("\n{tick}\n")), "no tick {tick}");
        }
        assert!(!svg.contains("log10") && svg.contains("\nresidual\n"));
        assert!(!svg.contains("×10"), "a decade tick written as a product");
    }

    #[test]
    fn two_series_with_one_label_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("twins.svg");
        let twin = || Line::new("gcrodr(40,20)", vec![(1.0, 1.0), (2.0, 0.5)], series(0));
        let err = line_chart(
            &path,
            ImageFormat::Svg,
            "twins",
            Axis::counts("iteration"),
            Axis::log("residual"),
            &[twin(), twin()],
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("two series are both labelled \"gcrodr(40,20)\""),
            "{err}"
        );
        assert!(!path.exists());
    }
}
