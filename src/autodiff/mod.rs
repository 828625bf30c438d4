//! Automatic differentiation.
//!
//! - [`tangent`]: [`Differentiable`] values, their [`VectorSpace`] tangents and the
//!   [`RealLeaves`] coordinate walk.
//! - Static mode, with no heap and no `std`: [`differentiable`], an attribute that
//!   differentiates an ordinary function at compile time (reverse and forward mode,
//!   Jacobians), from the per-primitive [`rules`] (see the
//!   [static-mode guide](crate::guide::static_mode)).
//! - Reverse mode on a tape (with `std`): [`Var`], [`grad`], [`value_and_grad`],
//!   [`vjp`], auxiliary outputs, [`stop_gradient`], and [`record_unary`] /
//!   [`record_binary`] / [`record_many`] (any number of inputs) for new primitives
//!   with their own rules (with `_in_place` forms whose rules [`Write`] their
//!   cotangents straight into the adjoints). `Var::at` reads an element of a traced
//!   tensor and `Var::stack` assembles traced scalars into one. [`checkpoint`]
//!   trades memory for a recomputation (rematerialisation).
//! - Forward mode, with no heap and no `std`: [`Dual`] numbers (a
//!   [`Scalar`](crate::Scalar), so tensors of duals and scalar-generic code compute
//!   Jacobian-vector products), [`jvp`], [`linearize`], [`jacfwd`]; with `std` also
//!   [`jacrev`], [`hessian`], [`hvp`] (they use the tape).
//! - [`check`]: the finite-difference gradient checker.
//!
//! # Complex numbers
//!
//! fluxion follows PyTorch: the tangent inner product is ⟨u, v⟩ = Re Σ conj(uᵢ)·vᵢ,
//! and for a real loss L of z = x + iy the gradient is ∂L/∂x + i·∂L/∂y, so that
//! `z − lr·grad` descends. Every pullback is the adjoint of the differential under
//! that inner product; for a holomorphic f it is x̄ = conj(f′(x))·ȳ.

#[cfg(feature = "cuda")]
mod cuda;
mod dual;
pub mod tangent;

#[cfg(feature = "std")]
pub mod check;
#[cfg(feature = "std")]
mod checkpoint;
mod forward;
#[cfg(feature = "std")]
mod operators;
pub mod rules;
pub use rules::{StopGradient, stop_gradient};
#[cfg(feature = "std")]
mod tape;
#[cfg(feature = "std")]
mod var_ops;

#[cfg(feature = "std")]
pub use crate::backend::cpu::{Write, write_elements};
#[cfg(feature = "std")]
#[doc(hidden)]
pub use checkpoint::Recomputation;
#[cfg(feature = "std")]
pub use checkpoint::{TracedOutput, checkpoint, recomputing, replayable_draw};
#[cfg(feature = "cuda")]
pub use cuda::{
    CudaAttentionVarOps, CudaChannelVarOps, CudaComplexElementaryVarOps, CudaComplexMatrixVarOps,
    CudaComplexVarOps, CudaDual, CudaElementaryVarOps, CudaImageVarOps, CudaMatrixVarOps,
    CudaRealMatrixVarOps, CudaRealVarOps, CudaVarOps, CudaVectorVarOps,
};
pub use dual::Dual;
pub use fluxion_derive::{Differentiable, differentiable};
#[cfg(feature = "std")]
pub use forward::{CoordinateHessian, LeafCoordinates, coordinate_hessian, hessian, hvp, jacrev};
pub use forward::{Lift, Unlift, jacfwd, jvp, linearize};
#[cfg(feature = "std")]
pub use operators::{
    CloneTraced, Pullback, Trace, TracedInput, Whole, grad, grad_with_aux, value_and_grad,
    value_and_grad_into, value_and_grad_into_with_aux, value_and_grad_with_aux, vjp, vjp_with_aux,
};
pub use tangent::{
    CoordinateUpdate, Differentiable, Leaf, LeafVisitor, OwnTangent, RealLeaves, RealOutput, SameShapes,
    VectorSpace,
};
#[cfg(feature = "std")]
pub use tape::{
    Adjoint, BinaryAdjoints, ManyAdjoints, TracedLeaves, Var, record_binary, record_binary_in_place,
    record_many, record_unary, record_unary_in_place, release_tape_memory,
};
#[cfg(feature = "std")]
pub(crate) use tape::{record_own_binary, record_own_unary};
#[cfg(feature = "std")]
pub use var_ops::{Operand, Prediction, SameTracedShape, TracedArithmetic};
