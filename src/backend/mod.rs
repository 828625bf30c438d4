//! Compute kernels that the operations call: the CPU matrix product and, with the
//! `cuda` feature, the GPU device and its generated kernels.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub(crate) mod wide;
