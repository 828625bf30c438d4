//! The CUDA driver, NVRTC and cuBLAS calls fluxion makes, answered on the host, so
//! that fluxion's GPU tests run on a machine without a GPU.
//!
//! Built as a shared library and linked under the three libraries' names
//! (`scripts/cuda-emulator.sh` does both and prints the `LD_LIBRARY_PATH` to use),
//! it is what cudarc loads in place of libcuda, libnvrtc and libcublas:
//!
//! - [`driver`]: device memory is host memory; a launch runs the kernel's CUDA C,
//!   compiled for the host by `g++` ([`kernels`]), block by block;
//! - [`nvrtc`]: "compiling" a kernel compiles it for the host;
//! - [`blas`]: strided batched products computed in `f64`.
//!
//! It checks what fluxion does on the GPU — every kernel it generates, run on the
//! data; copies and fills against their allocations; the products' types, transpose
//! flags, leading dimensions and strides — but not the GPU itself: NVRTC's compiler
//! (CI compiles every built-in kernel with the real one), the GPU's arithmetic and
//! rounding, races between threads of a launch, asynchronous streams and speed all
//! need a GPU, and a kernel's reads and writes are not checked against its buffers.
//! The device's name says what it is ([`driver::DEVICE_NAME`]).

pub mod blas;
pub mod driver;
pub mod kernels;
pub mod nvrtc;
