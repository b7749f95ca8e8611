//! The one look every figure shares: the embedded font, the colours, and how ticks read.

use plotters::style::{FontStyle, RGBColor};
use std::sync::Once;

/// Registers DejaVu Sans (embedded in the binary) as the `sans-serif` family, once.
pub(super) fn register_fonts() {
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

/// Font sizes: figure caption, panel title, axis title, tick label, legend entry.
pub(super) const CAPTION: u32 = 22;
pub(super) const TITLE: u32 = 17;
pub(super) const AXIS: u32 = 16;
pub(super) const TICK: u32 = 13;
pub(super) const LEGEND: u32 = 14;

/// Colours for the many series of one figure: the colour-blind-safe tab10 cycle without its grey,
/// which is [`PEER`]'s, so no pdekit series looks like a peer.
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

/// The `k`-th series colour, wrapping around [`SERIES`].
pub fn series(k: usize) -> RGBColor {
    SERIES[k % SERIES.len()]
}

/// A peer tool's series (scipy, pyamg, PyTorch).
pub const PEER: RGBColor = RGBColor(127, 127, 127);

/// A reference a series is judged against (an exact solution, an optimum, an initial value).
pub const REFERENCE: RGBColor = RGBColor(0, 0, 0);

/// A tick label with as many digits as the axis range `span` needs.
pub(super) fn format_tick(v: f64, span: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs().max(span.abs());
    if !(1e-2..1e5).contains(&a) {
        // Scientific, as a reader writes it: 1.5×10⁻³.
        let k = a.log10().floor();
        let mantissa = v / 10f64.powf(k);
        // Enough digits to tell ticks a span apart, when the span is small against the values.
        let digits = if span > 0.0 {
            (k - span.log10().floor() + 1.0).clamp(1.0, 4.0) as usize
        } else {
            1
        };
        format!("{mantissa:.digits$}×10{}", superscript(k as i64))
    } else {
        let digits = (1 - span.abs().log10().floor() as i64).clamp(0, 4) as usize;
        format!("{v:.digits$}")
    }
}

/// Whether a log axis labels `v`: the powers of ten and their 2× and 5× multiples (labels at every
/// multiple would overlap). Returns the mantissa (1, 2 or 5) and the decade.
fn log_tick(v: f64) -> Option<(f64, i64)> {
    if v <= 0.0 || !v.is_finite() {
        return None;
    }
    // Tick values come from repeated products, so 1 may arrive as 0.9999999999999999.
    let k = (v.log10() + 1e-9).floor();
    let mantissa = v / 10f64.powf(k);
    [1.0, 2.0, 5.0]
        .into_iter()
        .find(|m| (mantissa - m).abs() < 1e-6)
        .map(|m| (m, k as i64))
}

/// `10⁻³` for a power of ten, `2×10⁻³` and `5×10⁻³` between them, and no label elsewhere.
pub fn format_log_tick(v: f64) -> String {
    match log_tick(v) {
        Some((m, k)) => {
            let decade = format!("10{}", superscript(k));
            if m == 1.0 {
                decade
            } else {
                format!("{m}×{decade}")
            }
        }
        None => String::new(),
    }
}

/// A duration in seconds as a reader writes it: `0.5 ms`, `20 µs`, `1.2 s`, `3 min`.
pub fn format_seconds(v: f64) -> String {
    if v == 0.0 {
        return "0 s".into();
    }
    if !v.is_finite() || v < 0.0 {
        return String::new();
    }
    let (scaled, unit) = match v {
        v if v < 1e-7 => (v * 1e9, "ns"),
        v if v < 1e-4 => (v * 1e6, "µs"),
        v if v < 0.1 => (v * 1e3, "ms"),
        v if v < 120.0 => (v, "s"),
        v => (v / 60.0, "min"),
    };
    // Three significant digits at most, without trailing zeros.
    let digits = (2 - scaled.log10().floor() as i64).clamp(0, 3) as usize;
    let text = format!("{scaled:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text} {unit}")
}

/// [`format_seconds`] at the ticks a log axis labels (see [`format_log_tick`]).
pub fn format_log_seconds(v: f64) -> String {
    if log_tick(v).is_some() {
        format_seconds(v)
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

/// The first label that appears twice, if any: two series or bars with one label cannot be told
/// apart in a figure.
pub(super) fn repeated_label<'a>(labels: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    labels
        .into_iter()
        .filter(|l| !l.is_empty())
        .find(|l| !seen.insert(*l))
}

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
    }

    #[test]
    fn linear_ticks_of_tiny_or_huge_values_read_as_products() {
        assert_eq!(format_tick(1.5e-3, 2e-3), "1.5×10⁻³");
        assert_eq!(format_tick(-2e6, 4e6), "-2.0×10⁶");
        assert_eq!(format_tick(0.25, 0.5), "0.25");
        assert_eq!(format_tick(0.0, 1e-3), "0");
        assert_eq!(format_tick(4.71e-3, 2e-5), "4.710×10⁻³");
    }

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(format_seconds(5e-4), "0.5 ms");
        assert_eq!(format_seconds(0.0012), "1.2 ms");
        assert_eq!(format_seconds(0.05), "50 ms");
        assert_eq!(format_seconds(0.5), "0.5 s");
        assert_eq!(format_seconds(0.123456), "0.123 s");
        assert_eq!(format_seconds(1.2), "1.2 s");
        assert_eq!(format_seconds(1.0), "1 s");
        assert_eq!(format_seconds(2e-5), "20 µs");
        assert_eq!(format_seconds(300.0), "5 min");
        assert_eq!(format_seconds(0.2 * 0.1 * 10.0), "0.2 s");
        assert_eq!(format_log_seconds(2e-3), "2 ms");
        assert_eq!(format_log_seconds(3e-3), "");
    }

    #[test]
    fn a_repeated_label_is_found() {
        assert_eq!(repeated_label(["a", "b", "a"]), Some("a"));
        assert_eq!(repeated_label(["a", "", "", "b"]), None);
    }
}
