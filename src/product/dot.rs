//! `dot`: the real inner product Σ aᵢbᵢ, and `dotu`: the same sum on complex data,
//! without conjugation (a bilinear form, not an inner product).

use crate::error::{ShapeError, or_panic};
use crate::scalar::{RealDot, Scalar};
use crate::shape::Shape;
use crate::tensor::{Storage, Tensor};

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// Σ aᵢbᵢ over tensors of the same shape, for real data only.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let x: Vector<f64, 3> = Vector::from_array([1., 0., -1.]);
    /// assert_eq!(x.dot(&x), 2.0);
    /// ```
    ///
    /// ```compile_fail
    /// use fluxion::prelude::*;
    /// let z: Vector<Complex64, 1> = Vector::from_array([Complex64::new(1., 2.)]);
    /// z.dot(&z); // complex: use `inner` or `dotu`
    /// ```
    #[track_caller]
    pub fn dot(&self, other: &Self) -> T
    where
        T: RealDot,
    {
        or_panic(self.try_dot(other))
    }

    /// [`Tensor::dot`] that returns an error naming both shapes when a dynamic
    /// dimension differs.
    pub fn try_dot(&self, other: &Self) -> Result<T, ShapeError>
    where
        T: RealDot,
    {
        self.try_sum_of_products(other, false, "dot")
    }

    /// Σ aᵢbᵢ without conjugation, for when the bilinear form is meant on complex data.
    #[track_caller]
    pub fn dotu(&self, other: &Self) -> T {
        or_panic(self.try_dotu(other))
    }

    /// [`Tensor::dotu`] that returns an error naming both shapes on a mismatch.
    pub fn try_dotu(&self, other: &Self) -> Result<T, ShapeError> {
        self.try_sum_of_products(other, false, "dotu")
    }
}

/// Reverse-mode rule of `dot` and `dotu` (s = Σ aᵢbᵢ): ā = conj(b)·s̄, b̄ = conj(a)·s̄.
pub fn dotu_pullback<T: Scalar, S: Shape, K: Storage<T, S>>(
    a: &Tensor<T, S, K>,
    b: &Tensor<T, S, K>,
    s_bar: T,
) -> (Tensor<T, S, K>, Tensor<T, S, K>) {
    (b.map(|b| b.conj() * s_bar), a.map(|a| a.conj() * s_bar))
}
