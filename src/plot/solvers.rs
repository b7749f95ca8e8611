//! The figures of `bench solvers`: time per system against the peers, the convergence of every
//! method on one system, and iterations per system along the solve order.

use super::{
    bar_chart, dataset::residual_points, figure_path, line_chart, series, Axis, Bar, Line,
    PlotError, PEER,
};
use crate::config::ImageFormat;
use std::path::{Path, PathBuf};

/// One method's results, in the order it solved the systems.
pub struct MethodResult<'a> {
    /// Says what differs between methods: method, preconditioner, order, fresh or recycled.
    pub label: String,
    pub seconds_per_system: f64,
    /// Iterations per system, in solve order.
    pub iterations: &'a [usize],
    /// The relative residual after each iteration on system 0, and where in the order it came.
    pub system0: Option<(&'a [f64], usize)>,
}

/// A peer tool's time per system.
pub struct PeerResult {
    pub label: String,
    pub seconds_per_system: f64,
}

/// The three figures: `{name}` (bars of time per system, peers in grey),
/// `convergence-{config}` and `sequence-{config}`.
pub fn figures(
    dir: &Path,
    format: ImageFormat,
    name: &str,
    config: &str,
    threads: usize,
    methods: &[MethodResult],
    peers: &[PeerResult],
) -> Result<Vec<PathBuf>, PlotError> {
    let mut bars: Vec<Bar> = methods
        .iter()
        .enumerate()
        .map(|(k, m)| Bar {
            label: m.label.clone(),
            value: m.seconds_per_system,
            color: series(k),
        })
        .collect();
    bars.extend(peers.iter().map(|p| Bar {
        label: p.label.clone(),
        value: p.seconds_per_system,
        color: PEER,
    }));
    let mut out = vec![bar_chart(
        &figure_path(dir, name, format),
        format,
        &format!(
            "{config}: time per system ({threads} thread{})",
            if threads == 1 { "" } else { "s" }
        ),
        Axis::log_seconds("setup + solve time per system"),
        &bars,
    )?];
    let convergence: Vec<Line> = methods
        .iter()
        .enumerate()
        .filter_map(|(k, m)| {
            m.system0.map(|(history, position)| {
                let when = if position == 0 {
                    String::new()
                } else {
                    format!(" (solved {})", ordinal(position + 1))
                };
                Line::nth(format!("{}{when}", m.label), residual_points(history), k)
            })
        })
        .collect();
    out.push(line_chart(
        &figure_path(dir, &format!("convergence-{config}"), format),
        format,
        &format!("{config}: convergence on system 0"),
        Axis::counts("iteration"),
        Axis::log("relative residual ‖b − Ax‖ / ‖b‖"),
        &convergence,
    )?);
    let sequence: Vec<Line> = methods
        .iter()
        .enumerate()
        .map(|(k, m)| {
            Line::nth(
                m.label.clone(),
                m.iterations
                    .iter()
                    .enumerate()
                    .map(|(i, &it)| ((i + 1) as f64, it as f64))
                    .collect(),
                k,
            )
        })
        .collect();
    out.push(line_chart(
        &figure_path(dir, &format!("sequence-{config}"), format),
        format,
        &format!("{config}: iterations per system in solve order"),
        Axis::counts("position in the solve order"),
        Axis::log("iterations"),
        &sequence,
    )?);
    Ok(out)
}

/// 1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, 21st.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ordinals_read_as_words_do() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 102]
            .into_iter()
            .map(super::ordinal)
            .collect();
        assert_eq!(
            got,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "102nd"]
        );
    }
}
