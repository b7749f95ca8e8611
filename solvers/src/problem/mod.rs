//! Problem families that assemble sparse systems.

pub mod darcy;

use sprs::CsMat;

/// A sparse linear system `A x = b`.
#[derive(Debug, Clone)]
pub struct LinearSystem {
    pub matrix: CsMat<f64>,
    pub rhs: Vec<f64>,
}
