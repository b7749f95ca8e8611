//! Preconditioners and relaxation sweeps: ILU(0), smoothed-aggregation AMG, SOR/SSOR (as solvers
//! and SSOR as a preconditioner), and Jacobi (in [`crate::linalg`], beside the operator traits).

pub mod amg;
pub mod ilu;
pub mod sor;

pub use crate::linalg::Jacobi;
pub use amg::{Amg, AmgError, AmgInfo, AmgParams, Smoother};
pub use ilu::{Ilu0, IluError};
pub use sor::{SorError, SorInfo, SorParams, SsorPreconditioner};
