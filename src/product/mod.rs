//! Products, one name per meaning. `*` and `/` take a tensor and a scalar only.
//!
//! | method | meaning | shapes |
//! | --- | --- | --- |
//! | [`dot`](crate::Tensor::dot) | Σ aᵢbᵢ, real data only | same shape → scalar |
//! | [`inner`](crate::Tensor::inner) | ⟨a, b⟩ = Σ conj(aᵢ)·bᵢ (conjugates the left) | same shape → scalar |
//! | [`dotu`](crate::Tensor::dotu) | Σ aᵢbᵢ on complex data, unconjugated | same shape → scalar |
//! | [`hadamard`](crate::Tensor::hadamard) | (a ⊙ b)ᵢ = aᵢbᵢ | same shape → same shape |
//! | [`matmul`](MatMul::matmul) | (AB)ᵢⱼ = Σₖ AᵢₖBₖⱼ | `[M, K]×[K, N]`, `[M, K]×[K]`, `[B, M, K]×[B, K, N]`, `[B, M, K]×[K, N]` |
//! | [`matmul_transposed`](crate::Tensor::matmul_transposed) | (ABᵀ)ᵢⱼ = Σₖ AᵢₖBⱼₖ, B read in place | `[M, K]×[N, K]` → `[M, N]` |
//! | [`transposed_matmul`](crate::Tensor::transposed_matmul) | (AᵀB)ᵢⱼ = Σₖ AₖᵢBₖⱼ, A read in place | `[K, M]×[K, N]` → `[M, N]` |
//! | [`outer`](crate::Tensor::outer) | (a ⊗ b)ᵢⱼ = aᵢbⱼ (no conjugation) | `[M]`, `[N]` → `[M, N]` |
//! | [`kron`](crate::Tensor::kron) | (A ⊗ B)\[iP + k, jQ + l\] = aᵢⱼbₖₗ (no conjugation) | `[M, N]`, `[P, Q]` → `[MP, NQ]` |
//! | [`cross`](crate::Tensor::cross) | a × b (no conjugation); [`cross_matrix`](crate::Tensor::cross_matrix) is \[a\]×, with \[a\]×·b = a × b | `[3]`, `[3]` → `[3]` |
//!
//! On real data `dot`, `inner` and `dotu` agree; on complex data ⟨a, b⟩ = conj⟨b, a⟩.

pub mod cross;
pub mod dot;
pub mod hadamard;
pub mod inner;
pub mod kron;
pub mod matmul;
pub mod outer;
pub mod transposed;

pub use matmul::MatMul;
pub use transposed::{MatMulTransposed, TransposedMatMul};

use crate::error::ShapeError;
use crate::scalar::{RealScalar, Scalar};
use crate::shape::Shape;
use crate::tensor::{Storage, Tensor};
use num_complex::Complex;

/// A value that `*` and `/` accept beside a tensor of `T`: a scalar `T` (or a real
/// scalar beside a complex tensor).
#[diagnostic::on_unimplemented(
    message = "cannot scale a tensor of `{T}` by `{Self}`: `*` and `/` take a tensor and a scalar",
    label = "expected a scalar here",
    note = "to multiply two tensors, say which product you mean: `.hadamard()` (elementwise), `.matmul()` (matrix product), `.dot()` or `.inner()` (inner products), `.outer()`",
    note = "a traced tensor times a traced scalar `s` is `x.scale_by(&s)`"
)]
pub trait ScalarFactor<T> {
    /// The factor as an element of the tensor.
    fn into_element(self) -> T;
}

impl<T: Scalar> ScalarFactor<T> for T {
    #[inline(always)]
    fn into_element(self) -> T {
        self
    }
}

#[diagnostic::do_not_recommend]
impl<R: RealScalar> ScalarFactor<Complex<R>> for R
where
    Complex<R>: Scalar,
{
    #[inline(always)]
    fn into_element(self) -> Complex<R> {
        Complex::new(self, R::zero())
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// Σ op(aᵢ)·bᵢ where op conjugates when `conjugate_left` is set.
    #[inline(always)]
    fn try_sum_of_products(
        &self,
        other: &Self,
        conjugate_left: bool,
        operation: &'static str,
    ) -> Result<T, ShapeError> {
        self.check_same_shape(other, operation)?;
        Ok(self.iter().zip(other.iter()).fold(T::zero(), |acc, (&a, &b)| {
            let left = if conjugate_left { a.conj() } else { a };
            acc + left * b
        }))
    }
}
