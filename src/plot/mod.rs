//! Every figure pdekit draws, as PNG or SVG.
//!
//! Four typed helpers draw: [`line_chart`] (lines or scatter on linear or log axes),
//! [`heatmap_panel`] (grids of maps with shared or separate colour scales, linear or log),
//! [`bar_chart`] and their common look in [`theme`] (font, colour-blind-safe palette with peers in
//! grey, tick labels such as 10⁻³ and 0.5 ms, legends in the emptiest corner). The figures of each
//! stage are built from its results in the modules below, so the stages hand over data, not
//! drawing code.
//!
//! Text uses DejaVu Sans embedded in the binary (the `dejavu` crate through plotters' `ab_glyph`
//! backend), so no system font library is needed. Files are drawn under a temporary name and
//! renamed when complete.

mod bars;
mod colormap;
pub mod dataset;
pub mod gp_hm;
mod heatmap;
mod lines;
pub mod mlvms;
pub mod relax;
pub mod solvers;
pub mod theme;
pub mod training;

pub use bars::{bar_chart, Bar};
pub use colormap::viridis;
pub use heatmap::{heatmap_panel, shared_range, Heatmap, Scale};
pub use lines::{line_chart, Axis, Line};
pub use theme::{series, PEER, REFERENCE, SERIES};

use crate::config::ImageFormat;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct PlotError {
    pub path: PathBuf,
    pub message: String,
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
    theme::register_fonts();
    let err = |message: String| PlotError {
        path: path.to_path_buf(),
        message,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::create_dir(dir).map_err(|e| err(e.to_string()))?;
    }
    let ext = format.extension();
    let tmp = path.with_extension(format!("partial.{ext}"));
    let drawn = match format {
        ImageFormat::Png => {
            let root = BitMapBackend::new(&tmp, size).into_drawing_area();
            root.fill(&WHITE)
                .map_err(|e| e.to_string())
                .and_then(|()| figure.draw(&root))
                .and_then(|()| root.present().map_err(|e| e.to_string()))
        }
        ImageFormat::Svg => {
            let root = SVGBackend::new(&tmp, size).into_drawing_area();
            root.fill(&WHITE)
                .map_err(|e| e.to_string())
                .and_then(|()| figure.draw(&root))
                .and_then(|()| root.present().map_err(|e| e.to_string()))
        }
    };
    if let Err(message) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(message));
    }
    std::fs::rename(&tmp, path)
        .map_err(|e| err(format!("cannot rename {}: {e}", tmp.display())))?;
    Ok(path.to_path_buf())
}

/// `dir/NAME.EXT` for a figure named `name` in `format`.
pub fn figure_path(dir: &Path, name: &str, format: ImageFormat) -> PathBuf {
    dir.join(format!("{name}.{}", format.extension()))
}
