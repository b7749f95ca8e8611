//! pdekit: configs, pipeline stages, HDF5 datasets, plots and the CLI around the `pdekit-solvers`
//! and `pdekit-operators` libraries.

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod expr;
pub mod files;
pub mod interop;
pub mod meta;
pub mod pipeline;
pub mod plot;
pub mod progress;
pub mod tensorboard;

pub use error::PdekitError;
