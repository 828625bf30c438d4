//! # GPU tensors (feature `cuda`)
//!
//! `Tensor<T, S, Cuda>` keeps `f32` or `f64` elements in NVIDIA GPU memory, with the
//! same shapes, products and compile-time errors as the host kinds. Data moves only
//! when asked (`to_device`, `to_host`); mixing a host and a GPU tensor in one
//! operation does not compile. Operations keep their names, and `Var`s of GPU tensors
//! record GPU rules, so a model whose storage type says `Cuda` trains on the GPU
//! (written with `Var` operations: the `nn::loss` functions and plain tensors beside
//! traced ones in `+`, `−`, `hadamard` are host-only still; wrap such a tensor in
//! `Var::constant`).
//!
//! Elementwise kernels are generated from the Rust definitions the CPU runs (the
//! elementary functions' table, a `ScalarFunction`): the definition runs once on a
//! symbolic scalar and the recorded formula is compiled by NVRTC. Reductions along
//! an axis, softmax and its relatives, broadcasts and transposes have kernels too;
//! matrix products call cuBLAS. See the module `backend::cuda` (with the feature on)
//! and the README's GPU section for what is there, what is not yet, and the numbers.
