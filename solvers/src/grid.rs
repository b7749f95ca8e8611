//! Structured grids on the unit square.

use std::fmt;

/// Where the unknowns of a finite-difference grid sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Centring {
    /// `s` vertices per side including the boundary, spacing `1/(s-1)`; boundary values are the
    /// Dirichlet data and the unknowns are the `(s-2)²` interior vertices.
    #[default]
    Vertex,
    /// `s` cells per side, spacing `1/s`, unknowns at the cell centres `(i+½)/s`; the Dirichlet data
    /// act on the boundary faces, half a cell away from the outermost centres.
    Cell,
}

impl fmt::Display for Centring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Centring::Vertex => "vertex",
            Centring::Cell => "cell",
        })
    }
}

/// A uniform `s × s` grid on `[0, 1]²`; arrays on it are indexed `[ix, iy]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct Grid2d {
    pub resolution: usize,
    pub centring: Centring,
}

impl Default for Grid2d {
    /// The FNO Darcy benchmark's 64 × 64 vertex grid.
    fn default() -> Self {
        Self::new(64, Centring::Vertex)
    }
}

impl Grid2d {
    pub fn new(resolution: usize, centring: Centring) -> Self {
        Self {
            resolution,
            centring,
        }
    }

    /// Grid spacing.
    pub fn h(&self) -> f64 {
        match self.centring {
            Centring::Vertex => 1.0 / (self.resolution - 1) as f64,
            Centring::Cell => 1.0 / self.resolution as f64,
        }
    }

    /// Coordinates of the points along one axis.
    pub fn coords(&self) -> Vec<f64> {
        let h = self.h();
        (0..self.resolution)
            .map(|i| match self.centring {
                Centring::Vertex => i as f64 * h,
                Centring::Cell => (i as f64 + 0.5) * h,
            })
            .collect()
    }
}
