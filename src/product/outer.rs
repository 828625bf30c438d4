//! `outer`: (a ⊗ b)ᵢⱼ = aᵢbⱼ for vectors a ∈ Tᴹ, b ∈ Tᴺ, without conjugation.

use crate::backend::cpu::{MatRef, matmul_into};
use crate::scalar::Scalar;
use crate::shape::Dim;
use crate::tensor::{Storage, Tensor};

impl<T: Scalar, M: Dim, K: Storage<T, (M,)>> Tensor<T, (M,), K> {
    /// The M×N matrix aᵢbⱼ.
    pub fn outer<N: Dim>(&self, other: &Tensor<T, (N,), K>) -> Tensor<T, (M, N), K>
    where
        K: Storage<T, (N,)> + Storage<T, (M, N)>,
    {
        let mut out = Tensor::zeros_shaped((self.shape().0, other.shape().0));
        if other.is_empty() {
            return out;
        }
        for (row, &a_i) in out.as_mut_slice().chunks_exact_mut(other.len()).zip(self.iter()) {
            for (out_ij, &b_j) in row.iter_mut().zip(other.iter()) {
                *out_ij = a_i * b_j;
            }
        }
        out
    }
}

/// Reverse-mode rule of `outer` (Yᵢⱼ = aᵢbⱼ): āᵢ = Σⱼ Ȳᵢⱼ·conj(bⱼ),
/// b̄ⱼ = Σᵢ conj(aᵢ)·Ȳᵢⱼ.
pub fn outer_pullback<T: Scalar, M: Dim, N: Dim, K>(
    a: &Tensor<T, (M,), K>,
    b: &Tensor<T, (N,), K>,
    y_bar: &Tensor<T, (M, N), K>,
) -> (Tensor<T, (M,), K>, Tensor<T, (N,), K>)
where
    K: Storage<T, (M,)> + Storage<T, (N,)> + Storage<T, (M, N)>,
{
    let (m, n) = (a.len(), b.len());
    let (mut a_bar, mut b_bar) = (Tensor::zeros_shaped(a.shape()), Tensor::zeros_shaped(b.shape()));
    let y = MatRef::row_major(y_bar.as_slice(), n);
    matmul_into((m, n, 1), y, MatRef::row_major(b.as_slice(), 1), (false, true), a_bar.as_mut_slice());
    matmul_into(
        (n, m, 1),
        MatRef::transposed(y_bar.as_slice(), n),
        MatRef::row_major(a.as_slice(), 1),
        (false, true),
        b_bar.as_mut_slice(),
    );
    (a_bar, b_bar)
}
