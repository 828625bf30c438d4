//! Everything a typical program needs: `use fluxion::prelude::*;`.

pub use crate::autodiff::rules::stop_gradient;
#[cfg(feature = "cuda")]
pub use crate::autodiff::{
    CudaAttentionVarOps, CudaChannelVarOps, CudaComplexElementaryVarOps, CudaComplexMatrixVarOps,
    CudaComplexVarOps, CudaElementaryVarOps, CudaImageVarOps, CudaMatrixVarOps, CudaRealMatrixVarOps,
    CudaRealVarOps, CudaVarOps, CudaVectorVarOps,
};
pub use crate::autodiff::{Differentiable, Dual, RealLeaves, VectorSpace, differentiable};
pub use crate::autodiff::{Lift, jacfwd, jvp, linearize};
#[cfg(feature = "std")]
pub use crate::autodiff::{Trace, Var, grad, hessian, hvp, jacrev, value_and_grad, value_and_grad_into, vjp};
#[cfg(feature = "cuda")]
pub use crate::backend::cuda::Cuda;
pub use crate::error::ShapeError;
#[cfg(feature = "cuda")]
pub use crate::nn::layer::{ToDevice, ToHost};
#[cfg(feature = "cuda")]
pub use crate::ops::cuda::{
    CudaAttentionOps, CudaChannelOps, CudaComplexElementaryOps, CudaComplexMatrixOps, CudaComplexOps,
    CudaElementaryOps, CudaImageOps, CudaMatrixOps, CudaRealMatrixOps, CudaRealOps, CudaTensorOps,
    CudaVectorOps,
};
pub use crate::ops::functions::{ElementwiseFunctions, MapFunction};
pub use crate::product::{MatMul, MatMulTransposed, TransposedMatMul};
pub use crate::scalar::{Complex32, Complex64, ComplexScalar, RealScalar, Scalar};
pub use crate::shape::constraint::{Axes, Axis};
pub use crate::shape::{Const, Dim, Dyn, Shape, StaticShape};
#[cfg(feature = "alloc")]
pub use crate::tensor::{DMatrix, DVector};
pub use crate::tensor::{
    Heap, Inline, Matrix, Storage, StorageKind, Tensor, Tensor0, Tensor3, Tensor4, Vector,
};
