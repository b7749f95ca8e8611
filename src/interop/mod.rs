//! Files other tools read and write: PyTorch's `torch.save` format ([`torch_file`]),
//! neuraloperator 2.x FNO checkpoints ([`neuralop`]) and NumPy `.npy` arrays ([`npy`]).

pub mod neuralop;
pub mod npy;
pub mod torch_file;

pub use neuralop::InteropError;
