//! Training: optimisers and losses.

pub mod loss;
pub mod optim;
