//! `inner`: ⟨a, b⟩ = Σ conj(aᵢ)·bᵢ, linear in b and conjugate-linear in a, so that
//! ⟨a, a⟩ = Σ |aᵢ|² is real and non-negative and ⟨a, b⟩ = conj⟨b, a⟩.

use crate::error::{ShapeError, or_panic};
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::tensor::{Storage, Tensor};

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// ⟨self, other⟩ = Σ conj(selfᵢ)·otherᵢ; equals [`Tensor::dot`] on real data.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let z: Vector<Complex64, 2> = Vector::from_array([Complex64::new(1., 2.), Complex64::new(0., -1.)]);
    /// assert_eq!(z.inner(&z), Complex64::new(6., 0.));
    /// ```
    #[track_caller]
    pub fn inner(&self, other: &Self) -> T {
        or_panic(self.try_inner(other))
    }

    /// [`Tensor::inner`] that returns an error naming both shapes on a mismatch.
    pub fn try_inner(&self, other: &Self) -> Result<T, ShapeError> {
        self.try_sum_of_products(other, true, "inner")
    }
}

/// Reverse-mode rule of `inner` (s = Σ conj(aᵢ)·bᵢ): ā = b·conj(s̄), b̄ = a·s̄.
pub fn inner_pullback<T: Scalar, S: Shape, K: Storage<T, S>>(
    a: &Tensor<T, S, K>,
    b: &Tensor<T, S, K>,
    s_bar: T,
) -> (Tensor<T, S, K>, Tensor<T, S, K>) {
    (b.map(|b| b * s_bar.conj()), a.map(|a| a * s_bar))
}
