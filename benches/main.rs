//! fluxion's benchmarks, in one Criterion binary:
//!
//! - `gemm/{f32,f64}/{1thread,2threads}` and `gemm/c64/1thread`: square matrix products
//!   beside the `gemm` and `matrixmultiply` crates, a naive loop and a handwritten one;
//! - `products/{dot,inner,hadamard,outer,matvec}`: the other products beside loops;
//! - `elementwise/{exp,tanh,relu,add,maximum,scale,sum,softmax,transpose,cross_entropy_grad}`: maps
//!   and reductions beside loops;
//! - `layout/{narrow_range,concat,gather_rows,broadcast_axis}`: layout changes beside
//!   copies a block at a time;
//! - `construction/{from_fn,zeros,ones,full,from_array,to_array}`: small static
//!   tensors beside the arrays built directly;
//! - `w1/mlp_gradient`: reverse mode on an MLP beside hand-written backpropagation;
//! - `w2/train_step`: one SGD step of a 784→256→10 MLP on a batch of 128, written by
//!   hand with the `gemm` crate;
//! - `w6/ur5_jacobian`, `w6/distance_hessian`: forward mode on a robot arm beside a
//!   hand-written Jacobian and num-dual;
//! - `w7/rollout_gradient`: static mode's gradient of a long rollout (a run-time step
//!   count) beside a hand-written adjoint and the tape;
//! - `w8/cnn_gradient`: a small CNN's gradient (convolution, ReLU, max pooling, a
//!   linear read-out, cross-entropy) by static mode and the tape beside hand-written
//!   backpropagation;
//! - `checkpoint/residual_tower`: a checkpointed gradient beside the plain tape and the
//!   forward pass alone;
//! - `pool/{max_2x2,max_2x2_pullback,max_stem,avg_2x2}`: pooling of a batch of images
//!   beside handwritten loops;
//! - `attention/{primitive,block_gradient}`: multi-head attention and its pullback
//!   beside loops over fixed-size arrays, and a decoder block's gradient by static mode
//!   and the tape;
//! - `composite/{block_gradient,layer_norm_gradient}`: static mode through a layer
//!   built from layers (a struct's `#[differentiable]` method) beside the same body
//!   written out in the loss; a layer normalisation's gradient by static mode and the
//!   tape;
//! - `linalg/{solve,solve_gradient}`: linear solves and the gradient through one
//!   beside Gaussian elimination written by hand.
//!
//! Run one group with e.g. `cargo bench --bench main -- gemm/f32/1thread`; smoke-test
//! everything (one iteration each) with `cargo test --benches`.
//!
//! The modules live in subdirectories (`gemm/mod.rs`, …) because Cargo would take any
//! `benches/*.rs` file for a bench target of its own.

mod attention;
mod checkpoint;
mod common;
mod composite;
mod construction;
mod elementwise;
mod gemm;
mod layout;
mod linalg;
mod pool;
mod products;
mod w1;
mod w2;
mod w6;
mod w7;
mod w8;

criterion::criterion_main!(
    gemm::benches,
    products::benches,
    elementwise::benches,
    layout::benches,
    construction::benches,
    w1::benches,
    w2::benches,
    w6::benches,
    w7::benches,
    checkpoint::benches,
    pool::benches,
    w8::benches,
    attention::benches,
    composite::benches,
    linalg::benches
);
