//! Preconditioners beyond Jacobi (in [`crate::linalg`]) and SSOR (in [`crate::relax`]): ILU(0) and
//! smoothed-aggregation AMG.

pub mod amg;
pub mod ilu;

pub use amg::{Amg, AmgError, AmgInfo, AmgParams, Smoother};
pub use ilu::{Ilu0, IluError};
// The other two preconditioners live beside the code they grew from; re-exported so that this
// module lists them all.
pub use crate::linalg::Jacobi;
pub use crate::relax::sor::SsorPreconditioner;
