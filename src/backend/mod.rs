//! Compute kernels that the operations call: the CPU matrix product.

pub mod cpu;
