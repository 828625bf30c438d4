//! The eigenvectors of a symmetric matrix and their derivatives (see
//! [`linalg`](super) for the formulas).

#[cfg(feature = "std")]
use crate::autodiff::{Var, record_unary_in_place};
use crate::error::or_panic;
use crate::product::MatMul;
use crate::scalar::RealScalar;
use crate::shape::Dim;
use crate::tensor::{Storage, Tensor};

use super::{check_square, diagonalize, divided_by_gap, fix_signs, symmetrize};

impl<T: RealScalar, N: Dim, K: Storage<T, (N, N)>> Tensor<T, (N, N), K> {
    /// The orthonormal eigenvectors of ½(A + Aᵀ) (A itself when symmetric), the
    /// columns of V, in the order of
    /// [`symmetric_eigenvalues`](Self::symmetric_eigenvalues): A = V·diag(λ)·Vᵀ
    /// (`torch.linalg.eigh`'s and `jnp.linalg.eigh`'s second output). Each column's
    /// entry of largest magnitude (the first of equal ones) is positive, so that
    /// the sign, which the matrix leaves free, is fixed, and its derivative is this
    /// choice's; where two entries of a column have equal magnitude, rounding picks
    /// the one made positive. By the same Jacobi rotations as the eigenvalues; NaN everywhere
    /// for a matrix with a NaN or infinite entry. A repeated eigenvalue leaves its
    /// eigenvectors free within their space: any orthonormal basis of it may come.
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// let a: Matrix<f64, 2, 2> = Matrix::from_array([[2.0, 1.0], [1.0, 2.0]]);
    /// let v = a.symmetric_eigenvectors().to_array();
    /// let half = 0.5f64.sqrt();
    /// // λ = 1 along (1, −1)/√2, λ = 3 along (1, 1)/√2.
    /// assert!((v[0][0] - half).abs() < 1e-15 && (v[1][0] + half).abs() < 1e-15);
    /// assert!((v[0][1] - half).abs() < 1e-15 && (v[1][1] - half).abs() < 1e-15);
    /// ```
    ///
    /// # Panics
    /// For a `Dyn` matrix that is not square.
    #[track_caller]
    pub fn symmetric_eigenvectors(&self) -> Self {
        or_panic(check_square("symmetric_eigenvectors", self.dims()));
        let size = self.shape().0;
        let mut matrix = self.clone();
        let mut vectors = Self::identity_sized(size);
        diagonalize(matrix.as_mut_slice(), size.size(), Some(vectors.as_mut_slice()));
        if T::CARRIES_TANGENT {
            first_order_tangents(self, &mut vectors);
        }
        fix_signs(vectors.as_mut_slice(), size.size(), None);
        vectors
    }
}

/// On duals, sets V's tangents to the first-order ones by adding V·C for
/// C = F∘offdiag(M), M the tangent part of Vᵀ·sym(A)·V (its value, the rounding left
/// off the diagonal, dropped: C's value is exactly 0, V's values stay as they are).
/// Jacobi chooses its rotations by values, so a rotation that only a tangent calls
/// for (a diagonal or block-diagonal A with Ȧ off its blocks) never runs; but its
/// rotations keep VᵀV̇ = Ω antisymmetric, and then Ṁ = Vᵀ·sym(Ȧ)·V + ΛΩ − ΩΛ at
/// Vᵀ·sym(A)·V = Λ, and F∘offdiag(ΛΩ − ΩΛ) = −Ω: V̇ + V·Ċ = V·(F∘offdiag(Vᵀ·sym(Ȧ)·V)),
/// whatever Jacobi's V̇ was. At an exactly repeated eigenvalue the coupling of its
/// pair is left 0 (there is no derivative). Only first-order tangents are set: on
/// nested duals (forward over forward), second derivatives are Jacobi's, which miss
/// the rotations only a tangent calls for.
fn first_order_tangents<T: RealScalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
    vectors: &mut Tensor<T, (N, N), K>,
) {
    let rotated = projected(a, vectors);
    let mut tangent_part = rotated.map(|x| x - x.without_tangent());
    symmetrize(tangent_part.as_mut_slice(), a.shape().0.size());
    let correction = vectors.matmul(&over_eigenvalue_gaps(&rotated, tangent_part));
    for (entry, &change) in vectors.iter_mut().zip(correction.iter()) {
        *entry += change;
    }
}

/// F∘M: mᵢⱼ/(λⱼ − λᵢ) off the diagonal, 0 on it and where both mᵢⱼ and the gap are
/// 0 (a repeated eigenvalue that the cotangent or tangent does not involve), with λᵢ
/// the diagonal of `projected`, Vᵀ·A·V.
fn over_eigenvalue_gaps<T: RealScalar, N: Dim, K: Storage<T, (N, N)>>(
    projected: &Tensor<T, (N, N), K>,
    mut m: Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    let n = projected.shape().0.size();
    let value = |i: usize| projected.as_slice()[i * (n + 1)];
    for (k, entry) in m.as_mut_slice().iter_mut().enumerate() {
        let (i, j) = (k / n, k % n);
        *entry = if i == j { T::zero() } else { divided_by_gap(*entry, value(j) - value(i)) };
    }
    m
}

/// Vᵀ·A·V, whose diagonal holds the eigenvalues λᵢ = vᵢᵀ·A·vᵢ.
fn projected<T: RealScalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
    vectors: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    vectors.transposed_matmul(&a.matmul(vectors))
}

/// Checks that A is square and V and the other matrix have its shape.
#[track_caller]
fn check_shapes<T: RealScalar, N: Dim, K: Storage<T, (N, N)>>(
    operation: &'static str,
    a: &Tensor<T, (N, N), K>,
    vectors: &Tensor<T, (N, N), K>,
    other: &Tensor<T, (N, N), K>,
) {
    or_panic(check_square(operation, a.dims()));
    or_panic(a.check_same_shape(vectors, operation));
    or_panic(a.check_same_shape(other, operation));
}

/// The tangent of V, the eigenvectors of sym(A), given V: V̇ = V·(F∘(Vᵀ·sym(Ȧ)·V)),
/// F the reciprocal eigenvalue gaps (see [`linalg`](super)).
///
/// # Panics
/// When A is not square or the shapes differ.
#[track_caller]
pub fn symmetric_eigenvectors_push<T: RealScalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
    vectors: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    check_shapes("symmetric_eigenvectors_push", a, vectors, a_dot);
    let mut direction = projected(a_dot, vectors);
    symmetrize(direction.as_mut_slice(), a.shape().0.size());
    vectors.matmul(&over_eigenvalue_gaps(&projected(a, vectors), direction))
}

/// The cotangent of V, the eigenvectors of sym(A), given V: Ā = sym(V·(F∘(Vᵀ·V̄))·Vᵀ).
///
/// # Panics
/// When A is not square or the shapes differ.
#[track_caller]
pub fn symmetric_eigenvectors_pullback<T: RealScalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
    vectors: &Tensor<T, (N, N), K>,
    vectors_bar: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    check_shapes("symmetric_eigenvectors_pullback", a, vectors, vectors_bar);
    let coupled = over_eigenvalue_gaps(&projected(a, vectors), vectors.transposed_matmul(vectors_bar));
    let mut a_bar = vectors.matmul(&coupled).matmul_transposed(vectors);
    symmetrize(a_bar.as_mut_slice(), a.shape().0.size());
    a_bar
}

#[cfg(feature = "std")]
impl<T: RealScalar, N: Dim, K: Storage<T, (N, N)>> Var<Tensor<T, (N, N), K>> {
    /// The eigenvectors of ½(A + Aᵀ), recorded with their pullback
    /// Ā = sym(V·(F∘(Vᵀ·V̄))·Vᵀ) (see [`Tensor::symmetric_eigenvectors`]).
    ///
    /// # Panics
    /// As [`Tensor::symmetric_eigenvectors`].
    #[track_caller]
    pub fn symmetric_eigenvectors(&self) -> Self {
        let a = self.shared_value();
        record_unary_in_place(self, a.symmetric_eigenvectors(), move |v, v_bar, x_bar| {
            x_bar.add(|| symmetric_eigenvectors_pullback(&a, v, v_bar));
        })
    }
}
