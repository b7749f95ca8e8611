//! `pdekit-operators`: neural operators, their training, and Gaussian-process PDE solvers.
//!
//! - [`gp`]: the GP-HM solver (spectral-mixture kernels on grids, analytic gradients).
//! - [`tensor`]: channels-last tensors, generic over f32/f64.
//! - [`layers`]: layers with explicit forward and backward passes.
//! - [`models`]: neural operators built from serialisable specs (FNO, TFNO, MG-TFNO, F-FNO,
//!   DeepONet, GP operator regression).
//! - [`train`]: optimisers and losses.
//!
//! The dependency rule holds: `pdekit` → `solvers`, `pdekit` → `operators`, never `solvers` ↔
//! `operators`.

pub mod gp;
mod kernels;
pub mod layers;
pub mod models;
pub mod param;
pub mod tensor;
pub mod train;
