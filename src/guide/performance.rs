//! # Performance: what costs what, and the choices that matter
//!
//! The numbers below come from the criterion benchmarks in `benches/` (run one group
//! with `cargo bench --bench main -- <group>`; `BENCHMARKS.md` records each run with
//! its machine: here 2 cores of an AMD EPYC with AVX-512, December 2026, unless
//! said). Each sits beside a hand-written baseline: fixed-size arrays and fused loops.
//!
//! ## The mode of differentiation
//!
//! | mode | cost | for |
//! | --- | --- | --- |
//! | static mode, `#[differentiable]` | about the hand-written backpropagation's (`w1/mlp_gradient`: 0.69–0.71 µs against 0.89–0.91 µs, whose hand-written code calls the C library's `tanh`) | fixed-size models in real-time loops, no heap |
//! | the tape, `value_and_grad_into` | about 2× that on a tiny model (1.63–1.68 µs), within a few % once products dominate (`attention/block_gradient`: 1.04 ms, static mode 1.11 ms) | models whose shape of computation changes, any code over `Var` |
//! | forward mode, `jvp`/`jacfwd` | one pass per direction (static mode's `jacfwd` pushes eight per pass) | few inputs, many outputs (a robot arm's Jacobian) |
//!
//! The `_into` forms (`value_and_grad_into`, `matmul_into`, a static function's
//! `value_and_grad_into`) write into buffers you keep; the returning forms allocate
//! their results. A static function's `value_and_grad_into` on inline tensors
//! allocates nothing; the tape's allocates three small things per gradient after the
//! first (`tests/w1_mlp.rs` counts both).
//!
//! ## Storage
//!
//! - `Inline` tensors are arrays: no heap, sizes the compiler knows (small products
//!   unroll). They move by value, so a large one is copied each time static mode
//!   keeps a value: a small CNN's static gradient takes 33–36 µs on inline tensors of
//!   25 KB and 26–28 µs on `Heap` ones (`w8/cnn_gradient`). Inline suits vectors and
//!   matrices of up to a few hundred elements.
//! - `Heap` tensors share their buffer between clones until one writes. With `std`, a
//!   buffer of 16 KiB or more is kept by the thread that drops its last tensor (up to
//!   256 MiB per thread) and reused for that thread's next tensor of the same element
//!   type and about its size, so a gradient reuses the previous one's memory;
//!   [`Heap::release_spares`](crate::tensor::Heap::release_spares) hands it back.
//!
//! ## Element types and the processor
//!
//! The crate builds for its target's baseline (SSE2 on x86-64). Matrix products pick
//! the processor's widest kernels at run time: `matmul_into` runs at 0.98–1.08× the
//! speed of the `gemm` crate called directly (a Xeon with AVX-512, November 2026).
//! The elementary functions of `f32` (`exp`, `ln`, `tanh`, `erf`, `erfc`, and
//! `sigmoid`, softplus, GELU and softmax through them) are branch-free polynomials;
//! with `std` on x86-64, the loops of `f32` maps, softmax and the losses run in a copy
//! compiled for AVX-512, or AVX2 with FMA, when the processor has them: `tanh` of
//! 65536 elements 55 µs against 0.8 ms for the C library's. One at a time (elsewhere,
//! or outside those loops) the polynomial `exp` costs about 1.7× the C library's.
//! `f64`'s `tanh` is fluxion's own too (within 1.5 ulp, as accurate as the C
//! library's, whose stated bound is 2) and `f64` loops run in the same wide copy:
//! `tanh` of 65536 `f64` elements 83 µs against 0.78 ms for the C library's, and the
//! static-mode gradient of a small `f64` tanh network (`w1/mlp_gradient/static_into`)
//! 0.78× its hand-written baseline, which calls the C library's tanh. The other `f64`
//! functions are the C library's (`erf` and `erfc`: the `libm` crate's), one element
//! at a time: a branch-free `f64` `exp` would be slower one at a time, where dual
//! numbers call it.
//!
//! Large matrix products use every processor (from 2²³ multiply-adds); after one, a
//! thread spins for 1 ms waiting for the next. Both are settings:
//!
//! ```
//! use fluxion::backend::cpu::{set_num_threads, set_spin_time};
//! set_num_threads(1); // products on the calling thread alone
//! set_spin_time(std::time::Duration::ZERO); // helper threads sleep at once
//! ```
//!
//! ## Operations
//!
//! - Reductions and normalisations along the last axis read contiguous lines and are
//!   the fastest (softmax of 256 rows of 256: 100–104 µs, against 208–220 µs for a
//!   hand-written loop calling the C library's `exp`); along another axis they go
//!   block by block, as fast (the columns: 101–104 µs, 0.9× a row-at-a-time loop).
//! - A map's closure may capture values (`t.map(|x| x * a + b)`): it runs as fast as
//!   one that captures nothing (`t * 2.0` on 65536 `f32`: 2.1 µs, against 3.2–4.1 µs
//!   for a hand-written loop collecting a `Vec`).
//! - Layout changes (`narrow_range`, `concat`, `index_select`, `gather_rows`,
//!   `broadcast_axis`, `reshape`) copy contiguous runs: the four measured
//!   (`layout/*`) within 1.1× of a hand-written copy, `broadcast_axis` 1.6×.
//! - Attention keeps no L×L matrix: each query's probabilities are computed again in
//!   the gradient, at the speed of hand-written loops over packed heads that keep it
//!   (`attention/primitive`).
//! - Gradient checkpointing ([`Checkpointed`](crate::nn::layer::Checkpointed)) trades
//!   one more forward pass of a block for not keeping its inner values.
