//! `pdekit-operators`: neural operators, their training, and Gaussian-process PDE solvers.
//!
//! - [`gp`]: the GP-HM solver (spectral-mixture kernels on grids, analytic gradients).
//!
//! The dependency rule holds: `pdekit` → `solvers`, `pdekit` → `operators`, never `solvers` ↔
//! `operators`.

pub mod gp;
