//! `pdekit-operators`: neural operators, their training, and Gaussian-process PDE solvers.
//!
//! Nothing lives here yet: the neural-operator and GP-HM issues fill this crate. It exists now so the
//! workspace has its final shape and the dependency rule (`pdekit` → `solvers`, `pdekit` →
//! `operators`, never `solvers` ↔ `operators`) is fixed from the start.
