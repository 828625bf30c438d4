//! `kron`: the Kronecker product A ⊗ B of an M×N matrix and a P×Q matrix, the MP×NQ
//! matrix of blocks aᵢⱼ·B, (A ⊗ B)\[iP + k, jQ + l\] = aᵢⱼ·bₖₗ, without conjugation
//! (NumPy's `np.kron`, PyTorch's `torch.kron`).
//!
//! It is bilinear, so (A ⊗ B)˙ = Ȧ ⊗ B + A ⊗ Ḃ, and its cotangents are
//! Āᵢⱼ = Σₖₗ Ȳ\[iP + k, jQ + l\]·conj(bₖₗ) and B̄ₖₗ = Σᵢⱼ conj(aᵢⱼ)·Ȳ\[iP + k, jQ + l\].

use crate::error::{ShapeError, or_panic};
use crate::scalar::Scalar;
use crate::shape::constraint::MultipliesTo;
use crate::shape::{Dim, Dims};
use crate::tensor::{Storage, Tensor};

impl<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)>> Tensor<T, (M, N), K> {
    /// The Kronecker product A ⊗ B, the blocks aᵢⱼ·B side by side. Its static
    /// sizes MP and NQ come from how the result is used (a type on its `let`) and are
    /// compared with M·P and N·Q when the program is built (`cargo build`: `cargo
    /// check` stops before that step); a `Dyn` size on either side makes that axis
    /// `Dyn`. A chain of products names the size of each step (a `let` with its type).
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// // σₓ on the first of two qubits: σₓ ⊗ I.
    /// let sigma_x: Matrix<f64, 2, 2> = Matrix::from_array([[0.0, 1.0], [1.0, 0.0]]);
    /// let identity = Matrix::<f64, 2, 2>::identity();
    /// let x_on_first: Matrix<f64, 4, 4> = sigma_x.kron(&identity);
    /// assert_eq!(x_on_first.to_array()[0], [0.0, 0.0, 1.0, 0.0]);
    /// // A chain names each step's size: σₓ ⊗ I ⊗ I on three qubits.
    /// let x_on_first_of_three: Matrix<f64, 8, 8> = x_on_first.kron(&identity);
    /// assert_eq!(x_on_first_of_three.to_array()[0][4], 1.0);
    /// ```
    ///
    /// For vectors, `a.outer(&b).reshape()` is NumPy's `np.kron(a, b)`.
    pub fn kron<P: Dim, Q: Dim, MP: Dim, NQ: Dim>(
        &self,
        other: &Tensor<T, (P, Q), K>,
    ) -> Tensor<T, (MP, NQ), K>
    where
        M: MultipliesTo<P, MP>,
        N: MultipliesTo<Q, NQ>,
        K: Storage<T, (P, Q)> + Storage<T, (MP, NQ)>,
    {
        let ((), ()) = (<M as MultipliesTo<P, MP>>::CHECK, <N as MultipliesTo<Q, NQ>>::CHECK);
        self.kronecker_blocks(other)
    }

    /// [`Self::kron`] once the sizes are known to multiply (its callers check them,
    /// so that a mistake points at their caller).
    pub(crate) fn kronecker_blocks<P: Dim, Q: Dim, MP: Dim, NQ: Dim>(
        &self,
        other: &Tensor<T, (P, Q), K>,
    ) -> Tensor<T, (MP, NQ), K>
    where
        M: MultipliesTo<P, MP>,
        N: MultipliesTo<Q, NQ>,
        K: Storage<T, (P, Q)> + Storage<T, (MP, NQ)>,
    {
        let ((m, n), (p, q)) = (self.shape(), other.shape());
        let shape = (m.multiply_dims(p), n.multiply_dims(q));
        let mut out = Tensor::zeros_shaped(shape);
        let (a, b, n, q) = (self.as_slice(), other.as_slice(), n.size(), q.size());
        if out.is_empty() {
            return out;
        }
        // Row iP + k of the result: row i of A, each entry times row k of B.
        let rows = a.chunks_exact(n).flat_map(|a_row| b.chunks_exact(q).map(move |b_row| (a_row, b_row)));
        for (out_row, (a_row, b_row)) in out.as_mut_slice().chunks_exact_mut(n * q).zip(rows) {
            for (block, &a_ij) in out_row.chunks_exact_mut(q).zip(a_row) {
                for (out_ijkl, &b_kl) in block.iter_mut().zip(b_row) {
                    *out_ijkl = a_ij * b_kl;
                }
            }
        }
        out
    }
}

/// Reverse-mode rule of `kron` (Y = A ⊗ B): Āᵢⱼ = Σₖₗ Ȳ\[iP + k, jQ + l\]·conj(bₖₗ),
/// B̄ₖₗ = Σᵢⱼ conj(aᵢⱼ)·Ȳ\[iP + k, jQ + l\].
///
/// # Panics
/// When ȳ's shape is not (MP, NQ) (the message names both shapes).
#[track_caller]
pub fn kron_pullback<T: Scalar, M: Dim, N: Dim, P: Dim, Q: Dim, MP: Dim, NQ: Dim, K>(
    a: &Tensor<T, (M, N), K>,
    b: &Tensor<T, (P, Q), K>,
    y_bar: &Tensor<T, (MP, NQ), K>,
) -> (Tensor<T, (M, N), K>, Tensor<T, (P, Q), K>)
where
    K: Storage<T, (M, N)> + Storage<T, (P, Q)> + Storage<T, (MP, NQ)>,
{
    let (m, n) = (a.shape().0.size(), a.shape().1.size());
    let (p, q) = (b.shape().0.size(), b.shape().1.size());
    let product = Dims::new(&[m * p, n * q]);
    if y_bar.dims() != product {
        or_panic(Err(ShapeError::new(
            "kron_pullback",
            y_bar.dims(),
            product,
            "the cotangent must have the product's shape",
        )))
    }
    let (mut a_bar, mut b_bar) = (Tensor::zeros_shaped(a.shape()), Tensor::zeros_shaped(b.shape()));
    let (a, b, y) = (a.as_slice(), b.as_slice(), y_bar.as_slice());
    for i in 0..m {
        for k in 0..p {
            let (y_row, b_row) = (&y[(i * p + k) * n * q..][..n * q], &b[k * q..][..q]);
            for (j, y_block) in y_row.chunks_exact(q.max(1)).take(n).enumerate() {
                let a_ij = a[i * n + j];
                let mut a_bar_ij = T::zero();
                for ((&y_kl, &b_kl), b_bar_kl) in
                    y_block.iter().zip(b_row).zip(&mut b_bar.as_mut_slice()[k * q..][..q])
                {
                    a_bar_ij += y_kl * b_kl.conj();
                    *b_bar_kl += a_ij.conj() * y_kl;
                }
                a_bar.as_mut_slice()[i * n + j] += a_bar_ij;
            }
        }
    }
    (a_bar, b_bar)
}
