//! The online learners that pick the relaxation parameter ω of SOR and SSOR
//! ([`crate::precond::sor`]).
//!
//! - [`policy`]: the [`policy::OmegaPolicy`] trait and its learners (Tsallis-INF, binned contextual
//!   Tsallis-INF, Chebyshev regression with inverse-gap weighting), all reproducible from a seed.
//! - [`sequence`]: the test sequences of "Learning to Relax" (Khodak et al., ICLR 2024): shifted
//!   Laplacians and a Crank–Nicolson heat equation with time-varying diffusivity.
//! - [`experiment`]: runs policies and the baselines (ω = 1, best fixed ω in hindsight,
//!   instance-optimal ω) over a sequence and reports iteration counts.

pub mod experiment;
pub mod policy;
pub mod sequence;
