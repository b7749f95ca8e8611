//! Krylov subspace methods.

pub mod cg;
