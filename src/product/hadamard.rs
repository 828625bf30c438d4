//! `hadamard`: the elementwise product (a ⊙ b)ᵢ = aᵢbᵢ of two tensors of one shape.

use crate::error::{ShapeError, or_panic};
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::tensor::{Storage, Tensor};

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// (self ⊙ other)ᵢ = selfᵢ·otherᵢ.
    #[track_caller]
    pub fn hadamard(&self, other: &Self) -> Self {
        or_panic(self.try_hadamard(other))
    }

    /// [`Tensor::hadamard`] that returns an error naming both shapes on a mismatch.
    pub fn try_hadamard(&self, other: &Self) -> Result<Self, ShapeError> {
        self.try_zip_map_named(other, "hadamard", |a, b| a * b)
    }
}

/// Reverse-mode rule of `hadamard` (y = a ⊙ b): ā = ȳ ⊙ conj(b), b̄ = ȳ ⊙ conj(a).
pub fn hadamard_pullback<T: Scalar, S: Shape, K: Storage<T, S>>(
    a: &Tensor<T, S, K>,
    b: &Tensor<T, S, K>,
    y_bar: &Tensor<T, S, K>,
) -> (Tensor<T, S, K>, Tensor<T, S, K>) {
    (y_bar.zip_map(b, |g, b| g * b.conj()), y_bar.zip_map(a, |g, a| g * a.conj()))
}
