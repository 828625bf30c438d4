//! `outer`: (a ⊗ b)ᵢⱼ = aᵢbⱼ for vectors a ∈ Tᴹ, b ∈ Tᴺ, without conjugation.

use crate::scalar::Scalar;
use crate::shape::Dim;
use crate::tensor::{Storage, Tensor};

impl<T: Scalar, M: Dim, K: Storage<T, (M,)>> Tensor<T, (M,), K> {
    /// The M×N matrix aᵢbⱼ.
    pub fn outer<N: Dim>(&self, other: &Tensor<T, (N,), K>) -> Tensor<T, (M, N), K>
    where
        K: Storage<T, (N,)> + Storage<T, (M, N)>,
    {
        let (a, b) = (self.as_slice(), other.as_slice());
        let n = b.len();
        Tensor::from_flat_fn((self.shape().0, other.shape().0), |flat| a[flat / n] * b[flat % n])
    }
}
