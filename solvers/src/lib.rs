//! `pdekit-solvers`: PDE discretisations, random fields and sparse linear solvers.
//!
//! This crate is a pure library: it takes and returns plain numbers (`ndarray` arrays, `sprs` matrices,
//! slices) and knows nothing of files, configs or progress bars.

pub mod fd;
pub mod field;
pub mod grid;
pub mod krylov;
pub mod linalg;
pub mod multiscale;
pub mod param;
pub mod precond;
pub mod problem;
pub mod relax;
pub mod rng;
pub mod sequence;
pub mod spectral;

pub use krylov::{SolveError, SolveInfo, SolveParams};
pub use param::InvalidParam;
