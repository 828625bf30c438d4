#![doc = include_str!("../README.md")]
//!
//! # Concept map
//!
//! Start with the [`guide`]: one page per topic (reverse mode, forward mode, higher
//! order, custom rules, complex numbers, `no_std`, GPU), each with examples.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`shape`] | dimensions ([`Const`], [`Dyn`]), shapes, constraint traits |
//! | [`scalar`] | element types and the real/complex distinction |
//! | [`tensor`] | [`Tensor`], its storage kinds ([`Inline`], [`Heap`]), aliases |
//! | [`product`] | `dot`, `inner`, `dotu`, `hadamard`, `matmul` (also `matmul_transposed`, `transposed_matmul`), `outer` |
//! | [`ops`] | elementwise maps, reductions, softmax, row-wise and image operations, layout changes |
//! | [`autodiff`] | `Differentiable` types, static mode (`#[differentiable]`: every mode from one ordinary function, compiled), reverse mode (`Var`, `grad`, `value_and_grad`, `vjp`), forward mode (`Dual`, `jvp`, `jacfwd`), higher order (`hessian`, `hvp`), custom rules, the gradient checker |
//! | [`nn`] | layers with typed shapes, optimisers (also without std), losses, initialisers, named parameters and safetensors files |
//! | `data` (with `std`) | in-memory data sets: stratified split, mini-batches |
//! | [`backend`] | the CPU matrix-product kernel; the GPU device and its generated kernels (`cuda`) |
//!
//! # Features
//!
//! - `std` (default): multi-threaded GEMM through the `gemm` crate, seeded random
//!   initialisation. Implies `alloc`.
//! - `alloc`: heap storage and dynamic dimensions.
//! - `nalgebra`: conversions to and from nalgebra's `SMatrix` and `SVector`.
//! - `cuda`: the `Cuda` storage kind, tensors in NVIDIA GPU memory (module
//!   `backend::cuda`, and the [GPU guide](guide::gpu)). CUDA is loaded at run time:
//!   the build needs none.
//!
//! Without default features the crate is `no_std` and needs no allocator: inline
//! tensors of static shape and every operation on them still work.
#![no_std]
#![deny(missing_docs)]

/// The derive macros name `::fluxion` paths, inside this crate too.
extern crate self as fluxion;

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod tuples;

pub mod autodiff;
pub mod backend;
#[cfg(feature = "std")]
pub mod data;
pub mod error;
pub mod guide;
pub mod nn;
pub mod ops;
pub mod prelude;
pub mod product;
pub mod scalar;
pub mod shape;
pub mod tensor;

/// Paths used by the code that `fluxion-derive` generates; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::autodiff::tangent::{
        Deferred, OwnTangent, try_add_assign_leaves, try_move_by_leaves, visit_part,
    };
    pub use crate::autodiff::{Differentiable, LeafVisitor, Lift, Unlift, VectorSpace};
    pub use crate::error::ShapeError;
    pub use core::clone::Clone;
    pub use core::cmp::PartialEq;
    pub use core::convert::From;
    pub use core::convert::Into;
    pub use core::fmt::{Debug, Formatter, Result as FmtResult};
    pub use core::result::Result;

    /// A plain operand of static mode's generated code, read by reference. Through
    /// method resolution, a reference to a differentiable value (a loop's `&f64`
    /// item, as `x * w` takes it in Rust) reads as the value ([`DerefPlain`], tried
    /// first), anything else as itself ([`AsPlain`]).
    pub struct Plain<'a, T: ?Sized>(pub &'a T);

    /// [`Plain`] of a reference to a differentiable value: the value.
    pub trait DerefPlain<'a> {
        /// The value referred to.
        type Target: ?Sized + 'a;
        /// The value referred to.
        fn plain(&self) -> &'a Self::Target;
    }

    impl<'a, T: Differentiable> DerefPlain<'a> for Plain<'a, &'a T> {
        type Target = T;
        fn plain(&self) -> &'a T {
            self.0
        }
    }

    /// Marks a static-mode recomputation until dropped (with `std`; nothing without,
    /// where no layer keeps state).
    #[cfg(feature = "std")]
    pub fn recomputation() -> crate::autodiff::Recomputation {
        crate::autodiff::Recomputation::start()
    }

    /// Marks a static-mode recomputation until dropped (with `std`; nothing without,
    /// where no layer keeps state).
    #[cfg(not(feature = "std"))]
    pub fn recomputation() {}

    /// What a `let` annotation of a [`#[module]`](crate::nn::layer::module) body says
    /// in the body's traced form: the value is of the annotated type `T` or a traced
    /// `T` (through [`annotated`]).
    #[cfg(feature = "std")]
    pub trait Annotated<T> {}

    #[cfg(feature = "std")]
    impl<T> Annotated<T> for T {}

    #[cfg(feature = "std")]
    impl<T> Annotated<T> for crate::autodiff::Var<T> {}

    /// `let x: T = value;` of a `#[module]` body, in its traced form.
    #[cfg(feature = "std")]
    #[inline(always)]
    pub fn annotated<T, V: Annotated<T>>(value: V) -> V {
        value
    }

    /// [`Plain`] of anything else: itself.
    pub trait AsPlain<'a> {
        /// The value itself.
        type Target: ?Sized + 'a;
        /// The value itself.
        fn plain(&self) -> &'a Self::Target;
    }

    impl<'a, T: ?Sized> AsPlain<'a> for &Plain<'a, T> {
        type Target = T;
        fn plain(&self) -> &'a T {
            self.0
        }
    }

    #[cfg(feature = "std")]
    pub use crate::autodiff::{CloneTraced, Trace, TracedInput, TracedLeaves};
    #[cfg(feature = "std")]
    pub use crate::nn::params::{ParameterLeaf, ParameterLeafMut, Parameters, ShareState, with_segment};
    #[cfg(feature = "std")]
    pub use core::any::Any;
    #[cfg(feature = "std")]
    pub use std::string::String;
    #[cfg(feature = "std")]
    pub use std::vec::Vec;

    /// Expands to its input when reverse mode is available (`std`), to nothing
    /// otherwise, so derived code compiles either way.
    #[cfg(feature = "std")]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __with_reverse_mode {
        ($($tokens:tt)*) => { $($tokens)* };
    }

    /// Expands to its input when reverse mode is available (`std`), to nothing
    /// otherwise, so derived code compiles either way.
    #[cfg(not(feature = "std"))]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __with_reverse_mode {
        ($($tokens:tt)*) => {};
    }

    pub use crate::__with_reverse_mode as with_reverse_mode;

    /// Expands to its input with the `cuda` feature, to nothing otherwise, so
    /// derived code compiles either way.
    #[cfg(feature = "cuda")]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __with_cuda {
        ($($tokens:tt)*) => { $($tokens)* };
    }

    /// Expands to its input with the `cuda` feature, to nothing otherwise, so
    /// derived code compiles either way.
    #[cfg(not(feature = "cuda"))]
    #[macro_export]
    #[doc(hidden)]
    macro_rules! __with_cuda {
        ($($tokens:tt)*) => {};
    }

    pub use crate::__with_cuda as with_cuda;
}

pub use error::ShapeError;
pub use product::{MatMul, MatMulTransposed, TransposedMatMul};
pub use scalar::{Complex32, Complex64, ComplexScalar, RealScalar, Scalar};
pub use shape::constraint::{Axes, Axis};
pub use shape::{Const, Dim, Dyn, Shape, StaticShape};
#[cfg(feature = "alloc")]
pub use tensor::{DMatrix, DVector};
pub use tensor::{Heap, Inline, Matrix, Storage, StorageKind, Tensor, Tensor0, Tensor3, Tensor4, Vector};

#[cfg(feature = "cuda")]
pub use backend::cuda::Cuda;
