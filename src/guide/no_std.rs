//! # Without `std` or an allocator
//!
//! With `default-features = false` the crate is `no_std` and needs no allocator:
//!
//! - inline tensors of static shape and every operation on them;
//! - `#[derive(Differentiable)]`, with the tangent and forward-mode twins;
//! - forward mode: `Dual`, `jvp`, `linearize`, `jacfwd` (nothing is allocated on
//!   inline tensors, which a counting allocator asserts in the tests);
//! - static mode (`#[differentiable]`), the layers' plain and static forms (a
//!   `Sequential` of layers, a layer of one's own written once with `#[module]`),
//!   the per-example losses and the optimisers.
//!
//! Reverse mode (`Var`, `grad`, `hessian`) needs `std`: the tape lives in the heap,
//! per thread. The feature `alloc` adds heap tensors and dynamic dimensions without
//! `std`. The `nostd-check` crate in the repository is a `#![no_std]` user without an
//! allocator; CI builds and tests it.
