//! Multilevel variational multiscale (ML-VMS) finite elements for localized heat sources.
//!
//! - [`mesh`]: structured box meshes in 2-D and 3-D.
//! - [`fem`]: multilinear (Q1) elements, Gauss rules, stiffness, mass and load assembly.
//! - [`multilevel`]: nested refined boxes around a feature, coupled through the Galerkin form on
//!   `u = Σ_l u_l`, with duplicated functions removed (a hierarchical basis); steady solves by
//!   AMG-preconditioned CG.
//! - [`transient`]: a moving Gaussian beam, θ-method steps, boxes re-centred on the beam, and an
//!   energy ledger.
//! - [`chidenn`]: the convolution-patch (C-HiDeNN) basis, usable on any level.

pub mod chidenn;
pub mod fem;
pub mod mesh;
pub mod multilevel;
pub mod transient;
