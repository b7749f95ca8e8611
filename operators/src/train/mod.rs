//! Training: optimisers, losses, normalisers and the training loop.

pub mod loss;
pub mod normalizer;
pub mod optim;
pub mod trainer;
