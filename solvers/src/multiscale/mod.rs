//! Multilevel variational multiscale (ML-VMS) finite elements for localized heat sources.
//!
//! - [`mesh`]: structured box meshes in 2-D and 3-D.
//! - [`fem`]: multilinear (Q1) elements, Gauss rules, stiffness, mass and load assembly.
//! - [`hierarchy`]: nested refined boxes around a feature, the coefficients of `u = Σ_l u_l` with
//!   duplicated functions removed (a hierarchical basis), and the maps to nodal values.
//! - [`assembly`]: the Galerkin system over all levels, and the elimination of Dirichlet values.
//! - [`multilevel`]: the method, and steady solves by AMG-preconditioned CG.
//! - [`transient`]: a moving Gaussian beam, θ-method steps, boxes re-centred on the beam, and an
//!   energy ledger.
//! - [`chidenn`]: the convolution-patch (C-HiDeNN) basis, usable on any level.

pub mod assembly;
pub mod chidenn;
pub mod fem;
pub mod hierarchy;
pub mod mesh;
pub mod multilevel;
pub mod transient;
