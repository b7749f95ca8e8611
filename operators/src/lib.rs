//! `pdekit-operators`: neural operators, their training, and Gaussian-process PDE solvers.
//!
//! - [`gp`]: the GP-HM solver (spectral-mixture kernels on grids, analytic gradients).
//! - [`nn`]: neural-operator layers with explicit forward and backward passes.
//!
//! The dependency rule holds: `pdekit` → `solvers`, `pdekit` → `operators`, never `solvers` ↔
//! `operators`.

pub mod gp;
pub mod nn;
