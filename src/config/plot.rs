//! `[plot]`: figures of a dataset (by default the one `[generate]` writes).

use super::generate::GeneratePlan;
use super::source::Source;
use super::{ConfigError, ImageFormat};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A validated `[plot]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlotPlan {
    /// The dataset to plot.
    pub input: PathBuf,
    pub output_dir: PathBuf,
    /// Samples in the panel.
    #[serde(default = "four")]
    pub samples: usize,
    #[serde(default)]
    pub format: ImageFormat,
}

fn four() -> usize {
    4
}

pub(super) fn check(
    src: &Source,
    generate: Option<&GeneratePlan>,
) -> Result<Option<PlotPlan>, ConfigError> {
    if src.get("plot").is_none() {
        return Ok(None);
    }
    let defaults = match generate {
        Some(g) => vec![(
            "input",
            toml::Value::String(g.dataset.output.to_string_lossy().into_owned()),
        )],
        None if !src.has("plot.input") => return Err(src.err(
            "plot.input",
            "missing key: without a [generate] section, [plot] needs `input`, the dataset to plot",
        )),
        None => Vec::new(),
    };
    let p: PlotPlan = src.section("plot", &defaults)?;
    let samples_ok = (1..=16).contains(&p.samples);
    src.ensure(
        samples_ok,
        "plot.samples",
        "an integer from 1 to 16",
        p.samples,
    )?;
    // The generated dataset's path is resolved already; a given one is relative to the config.
    let input = match src.has("plot.input") {
        true => src.path(&p.input.to_string_lossy()),
        false => p.input,
    };
    Ok(Some(PlotPlan {
        input,
        output_dir: src.path(&p.output_dir.to_string_lossy()),
        ..p
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{assert_errors, read_at};
    use std::path::Path;

    #[test]
    fn plot_defaults_to_the_generated_dataset_and_needs_one_otherwise() {
        let text = "[generate]\nproblem = \"darcy\"\noutput = \"../data/a.h5\"\nsamples = 2\n[plot]\noutput_dir = \"figs\"\n";
        let plot = read_at("cfg/c.toml", text).plot.unwrap();
        assert_eq!(plot.input, Path::new("data/a.h5"));
        assert_eq!(plot.output_dir, Path::new("cfg/figs"));
        assert_errors([
            (
                "[plot]\noutput_dir = \"figs\"\n",
                "key `plot.input`: missing key",
            ),
            (
                "[plot]\ninput = \"a.h5\"\noutput_dir = \"f\"\nsamples = 40\n",
                "key `plot.samples`: expected an integer from 1 to 16, got 40",
            ),
        ]);
    }
}
