//! Models built from serialisable specs.

pub mod fno;
