//! The Moore–Penrose pseudo-inverse of a matrix of any shape and its derivatives
//! (see [`linalg`](super) for the formulas).

use num_traits::Zero;

#[cfg(feature = "std")]
use crate::autodiff::{Var, record_unary_in_place};
use crate::error::{ShapeError, or_panic};
use crate::product::MatMul;
use crate::scalar::{RealScalar, Scalar};
use crate::shape::Dim;
use crate::tensor::{Storage, Tensor};

use super::parts::over_real;
use super::singular::{decompose_scaled, times_columns};
use super::{each_tangent_level, with_conjugate};

/// The storage a pseudo-inverse needs: the matrix, its transpose and the factors of
/// whichever of the two has at least as many rows as columns (the singular values
/// real).
pub trait PseudoInverseStorage<T: Scalar, M: Dim, N: Dim>:
    Storage<T, (M, N)>
    + Storage<T, (N, M)>
    + Storage<T::Real, (M,)>
    + Storage<T::Real, (N,)>
    + Storage<T, (M, M)>
    + Storage<T, (N, N)>
{
}

impl<T: Scalar, M: Dim, N: Dim, K> PseudoInverseStorage<T, M, N> for K where
    K: Storage<T, (M, N)>
        + Storage<T, (N, M)>
        + Storage<T::Real, (M,)>
        + Storage<T::Real, (N,)>
        + Storage<T, (M, M)>
        + Storage<T, (N, N)>
{
}

impl<T: Scalar, M: Dim, N: Dim, K: PseudoInverseStorage<T, M, N>> Tensor<T, (M, N), K> {
    /// A⁺, the Moore–Penrose pseudo-inverse of this m×n matrix (n×m;
    /// `torch.linalg.pinv`, `jnp.linalg.pinv`), real or complex: V·diag(σ⁺)·Uᴴ from
    /// the thin SVD of A, or of Aᴴ when A has fewer rows than columns, with σᵢ⁺ = 1/σᵢ
    /// and 0 for a
    /// singular value at most max(m, n)·ε·σ₁ (PyTorch's default `rtol` and the rank
    /// test of [`try_least_squares`](Self::try_least_squares); JAX's is 10 times
    /// larger, NumPy's a fixed 1e-15). A⁺·b is the least-squares solution of least
    /// norm, for a wide or rank-deficient system too; for a tall one of full rank,
    /// `least_squares` is cheaper and as accurate. Worked out on A scaled by its
    /// largest |entry|, so that subnormal entries give infinities only where A⁺'s
    /// entries are; NaN everywhere for a matrix with a NaN or infinite entry.
    ///
    /// The derivatives ([`pseudo_inverse_push`]) are those of A ↦ A⁺ at the rank the
    /// cutoff leaves: where it drops a σ that is not exactly 0, they are the
    /// derivatives of the truncated matrix's pseudo-inverse, as PyTorch's and JAX's
    /// are (A⁺ itself jumps where the rank changes). On duals, the value is the
    /// pseudo-inverse of the values and each level of tangents is added by the
    /// first-order formula at the levels inside it, so nested duals (forward over
    /// forward) get every order, and repeated singular values, where the vectors
    /// have no derivative, are no obstacle.
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// // x₁ + x₂ = 2 has many solutions; the one of least norm is (1, 1).
    /// let a: Matrix<f64, 1, 2> = Matrix::from_array([[1.0, 1.0]]);
    /// let x = a.pseudo_inverse().matmul(&Vector::from_array([2.0]));
    /// assert!((x[[0]] - 1.0).abs() < 1e-15 && (x[[1]] - 1.0).abs() < 1e-15);
    /// // A rank-deficient matrix: A·A⁺·A = A.
    /// let b: Matrix<f64, 3, 2> = Matrix::from_array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]);
    /// let back = b.matmul(&b.pseudo_inverse()).matmul(&b);
    /// assert!((back - b).as_slice().iter().all(|x| x.abs() < 1e-14));
    /// ```
    #[doc(alias = "pinv")]
    pub fn pseudo_inverse(&self) -> Tensor<T, (N, M), K> {
        if !T::CARRIES_TANGENT {
            return pseudo_inverse_of(self);
        }
        let values = self.map(|x| x.without_tangent());
        let mut y = pseudo_inverse_of(&values);
        each_tangent_level(self, values, |inner, change| y = &y + &pseudo_inverse_push(inner, &y, change));
        y
    }
}

/// A⁺ from the thin SVD of A (m ≥ n) or of Aᴴ, with σ⁺ worked out for A/s, s A's
/// largest |entry|, and the result divided by s (so that 1/σ does not overflow
/// where A⁺'s entries need not).
fn pseudo_inverse_of<T: Scalar, M: Dim, N: Dim, K: PseudoInverseStorage<T, M, N>>(
    a: &Tensor<T, (M, N), K>,
) -> Tensor<T, (N, M), K> {
    let (m, n) = (a.shape().0.size(), a.shape().1.size());
    let cutoff = T::Real::from_f64(m.max(n) as f64) * T::Real::epsilon();
    let (y, scale) = if m >= n {
        // A = U·diag(σ)·Vᴴ: A⁺ = V·diag(σ⁺)·Uᴴ.
        let (u, sigma, v, scale) = decompose_scaled("pseudo_inverse", a);
        let scaled = times_columns(&v, &reciprocals(sigma, cutoff));
        (with_conjugate(&u, |conjugate| scaled.matmul_transposed(conjugate)), scale)
    } else {
        // Aᴴ = U·diag(σ)·Vᴴ: A⁺ = ((Aᴴ)⁺)ᴴ = U·diag(σ⁺)·Vᴴ.
        let (u, sigma, v, scale) = decompose_scaled("pseudo_inverse", &a.conj_transpose());
        let scaled = times_columns(&u, &reciprocals(sigma, cutoff));
        (with_conjugate(&v, |conjugate| scaled.matmul_transposed(conjugate)), scale)
    };
    // A zero matrix's A⁺ is 0 as it stands.
    if scale == T::Real::zero() { y } else { y.map(|x| over_real(x, scale)) }
}

/// σᵢ⁺: 1/σᵢ, or 0 where σᵢ ≤ `relative`·σ₁ (NaN stays NaN).
fn reciprocals<T: RealScalar, N: Dim, K: Storage<T, (N,)>>(
    mut sigma: Tensor<T, (N,), K>,
    relative: T,
) -> Tensor<T, (N,), K> {
    let threshold = relative * sigma.as_slice().first().copied().unwrap_or(T::zero());
    for s in sigma.iter_mut() {
        *s = if *s <= threshold { T::zero() } else { T::one() / *s };
    }
    sigma
}

/// Checks that Y has A's transposed shape and X, the tangent, A's.
#[track_caller]
fn check_shapes<T: Scalar, M: Dim, N: Dim, K: PseudoInverseStorage<T, M, N>>(
    operation: &'static str,
    a: &Tensor<T, (M, N), K>,
    y: &Tensor<T, (N, M), K>,
) {
    let (m, n) = (a.shape().0.size(), a.shape().1.size());
    if y.shape().0.size() != n || y.shape().1.size() != m {
        panic!(
            "{}",
            ShapeError::new(operation, a.dims(), y.dims(), "a pseudo-inverse of the transposed shape")
        );
    }
}

/// The tangent of Y = A⁺ given Y, for A of constant rank (Golub and Pereyra): Ẏ =
/// −Y·Ȧ·Y + Y·Yᴴ·Ȧᴴ·(I − A·Y) + (I − Y·A)·Ȧᴴ·Yᴴ·Y (ᵀ for real A; products only; the
/// second term vanishes for a matrix of full row rank, the third for one of full
/// column rank). The products are grouped so that no m×m matrix is formed when
/// m ≥ n (a wide A goes through its conjugate transpose: (Aᴴ)⁺ = (A⁺)ᴴ).
///
/// # Panics
/// When the shapes do not fit.
#[track_caller]
pub fn pseudo_inverse_push<T: Scalar, M: Dim, N: Dim, K: PseudoInverseStorage<T, M, N>>(
    a: &Tensor<T, (M, N), K>,
    y: &Tensor<T, (N, M), K>,
    a_dot: &Tensor<T, (M, N), K>,
) -> Tensor<T, (N, M), K> {
    check_shapes("pseudo_inverse_push", a, y);
    or_panic(a.check_same_shape(a_dot, "pseudo_inverse_push"));
    if a.shape().0.size() < a.shape().1.size() {
        return tall_push(&a.conj_transpose(), &y.conj_transpose(), &a_dot.conj_transpose()).conj_transpose();
    }
    tall_push(a, y, a_dot)
}

/// [`pseudo_inverse_push`]'s products for m ≥ n, each intermediate n×n or n×m.
fn tall_push<T: Scalar, M: Dim, N: Dim, K: PseudoInverseStorage<T, M, N>>(
    a: &Tensor<T, (M, N), K>,
    y: &Tensor<T, (N, M), K>,
    a_dot: &Tensor<T, (M, N), K>,
) -> Tensor<T, (N, M), K> {
    let a_dot_h = a_dot.conj_transpose();
    let through = y.matmul(a_dot).matmul(y);
    // Ȧᴴ·(I − A·Y) and (I − Y·A)·Ȧᴴ, without forming either projector.
    let off_range = &a_dot_h - &a_dot_h.matmul(a).matmul(y);
    let off_rows = &a_dot_h - &y.matmul(a).matmul(&a_dot_h);
    with_conjugate(y, |conjugate| {
        y.matmul_transposed(conjugate).matmul(&off_range) + off_rows.matmul_transposed(conjugate).matmul(y)
    }) - through
}

/// The cotangent of Y = A⁺ given Y: Ā = −Yᴴ·Ȳ·Yᴴ + (I − A·Y)·Ȳᴴ·Y·Yᴴ + Yᴴ·Y·Ȳᴴ·(I −
/// Y·A) (ᵀ for real A), grouped as the tangent is.
///
/// # Panics
/// When the shapes do not fit.
#[track_caller]
pub fn pseudo_inverse_pullback<T: Scalar, M: Dim, N: Dim, K: PseudoInverseStorage<T, M, N>>(
    a: &Tensor<T, (M, N), K>,
    y: &Tensor<T, (N, M), K>,
    y_bar: &Tensor<T, (N, M), K>,
) -> Tensor<T, (M, N), K> {
    check_shapes("pseudo_inverse_pullback", a, y);
    or_panic(y.check_same_shape(y_bar, "pseudo_inverse_pullback"));
    if a.shape().0.size() < a.shape().1.size() {
        return tall_pullback(&a.conj_transpose(), &y.conj_transpose(), &y_bar.conj_transpose())
            .conj_transpose();
    }
    tall_pullback(a, y, y_bar)
}

/// [`pseudo_inverse_pullback`]'s products for m ≥ n, each intermediate n×n or m×n.
fn tall_pullback<T: Scalar, M: Dim, N: Dim, K: PseudoInverseStorage<T, M, N>>(
    a: &Tensor<T, (M, N), K>,
    y: &Tensor<T, (N, M), K>,
    y_bar: &Tensor<T, (N, M), K>,
) -> Tensor<T, (M, N), K> {
    let y_bar_h = y_bar.conj_transpose();
    // (I − A·Y)·Ȳᴴ and Ȳᴴ·(I − Y·A).
    let off_range = &y_bar_h - &a.matmul(&y.matmul(&y_bar_h));
    let off_rows = &y_bar_h - &y_bar_h.matmul(&y.matmul(a));
    with_conjugate(y, |conjugate| {
        let through = conjugate.transposed_matmul(&y_bar.matmul_transposed(conjugate));
        off_range.matmul(&y.matmul_transposed(conjugate)) + conjugate.transposed_matmul(&y.matmul(&off_rows))
            - through
    })
}

#[cfg(feature = "std")]
impl<T: Scalar, M: Dim, N: Dim, K: PseudoInverseStorage<T, M, N>> Var<Tensor<T, (M, N), K>> {
    /// A⁺ (see [`Tensor::pseudo_inverse`]), recorded with its pullback
    /// ([`pseudo_inverse_pullback`], from A and A⁺: no factorisation again).
    pub fn pseudo_inverse(&self) -> Var<Tensor<T, (N, M), K>> {
        let a = self.shared_value();
        record_unary_in_place(self, a.pseudo_inverse(), move |y, y_bar, a_bar| {
            a_bar.add(|| pseudo_inverse_pullback(&a, y, y_bar));
        })
    }
}
