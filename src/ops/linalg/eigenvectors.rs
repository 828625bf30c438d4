//! The eigenvectors of a symmetric matrix (or, complex, a Hermitian one), alone
//! or with the eigenvalues, and their derivatives (see [`linalg`](super) for the
//! formulas).

use num_traits::Zero;

#[cfg(feature = "std")]
use crate::autodiff::{TracedOutput, Var, record_unary_in_place};
use crate::error::{ShapeError, or_panic};
use crate::product::MatMul;
use crate::scalar::{ComplexScalar, RealScalar, RealSymmetric, Scalar};
use crate::shape::Dim;
use crate::tensor::{Storage, Tensor};

use super::singular::times_columns;
use super::{
    add_phase_cotangent, anchor_row, check_square, diagonalize, divided_by_gap, each_tangent_level,
    fix_signs, hermitize, phase_turn, with_conjugate,
};

impl<T: Scalar, N: Dim, K: Storage<T, (N, N)>> Tensor<T, (N, N), K> {
    /// The orthonormal eigenvectors of ½(A + Aᵀ) (A itself when symmetric), the
    /// columns of V, in the order of
    /// [`symmetric_eigenvalues`](Self::symmetric_eigenvalues): A = V·diag(λ)·Vᵀ
    /// (`torch.linalg.eigh`'s and `jnp.linalg.eigh`'s second output). Each column's
    /// entry of largest magnitude (the first of equal ones) is positive, so that
    /// the sign, which the matrix leaves free, is fixed, and its derivative is this
    /// choice's; where two entries of a column have equal magnitude, rounding picks
    /// the one made positive. From the same reduction and QR steps as the
    /// eigenvalues, their transformations accumulated; NaN everywhere
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
    #[rustfmt::skip] // The bound on one line: its error quotes it.
    pub fn symmetric_eigenvectors(&self) -> Self where T: RealSymmetric {
        or_panic(check_square("symmetric_eigenvectors", self.dims()));
        eigendecomposition(self).1
    }
}

impl<T: Scalar, N: Dim, K> Tensor<T, (N, N), K>
where
    K: Storage<T, (N, N)> + Storage<T, (N,)> + Storage<T::Real, (N,)>,
{
    /// The eigenvalues of ½(A + Aᵀ) (A itself when symmetric) in ascending order
    /// (`torch.linalg.eigvalsh`, `jnp.linalg.eigvalsh`, nalgebra's
    /// `symmetric_eigenvalues`), by Householder tridiagonalisation and implicit QR
    /// steps (LAPACK's `sytrd` and `steqr`): accurate to rounding relative to the
    /// matrix's largest entry, in about 4n³/3 operations. An entry that is NaN or
    /// infinite makes every eigenvalue NaN, as would QR steps that had not converged
    /// after 30n (two or three per eigenvalue are the rule).
    ///
    /// # Panics
    /// For a `Dyn` matrix that is not square.
    #[track_caller]
    #[doc(alias = "eigvalsh")]
    #[rustfmt::skip] // The bound on one line: its error quotes it.
    pub fn symmetric_eigenvalues(&self) -> Tensor<T, (N,), K> where T: RealSymmetric {
        or_panic(check_square("symmetric_eigenvalues", self.dims()));
        eigenvalues_on_diagonal(self).diagonal()
    }

    /// The eigenvalues and eigenvectors of ½(A + Aᵀ) together, (λ, V) with λ
    /// ascending and A = V·diag(λ)·Vᵀ (`torch.linalg.eigh`, `jnp.linalg.eigh`): one
    /// run of the reduction and QR steps for both, equal to
    /// [`symmetric_eigenvalues`](Self::symmetric_eigenvalues) and
    /// [`symmetric_eigenvectors`](Self::symmetric_eigenvectors) (the same signs).
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// let a: Matrix<f64, 2, 2> = Matrix::from_array([[2.0, 1.0], [1.0, 2.0]]);
    /// let (values, vectors) = a.symmetric_eigen();
    /// assert!((values[[0]] - 1.0).abs() < 1e-15 && (values[[1]] - 3.0).abs() < 1e-15);
    /// // A·V = V·diag(λ).
    /// let gap = a.matmul(&vectors) - vectors.mul_rows(&values);
    /// assert!(gap.as_slice().iter().all(|x| x.abs() < 1e-15));
    /// ```
    ///
    /// # Panics
    /// For a `Dyn` matrix that is not square.
    #[track_caller]
    #[doc(alias = "eigh")]
    #[rustfmt::skip] // The bound on one line: its error quotes it.
    pub fn symmetric_eigen(&self) -> (Tensor<T, (N,), K>, Self) where T: RealSymmetric {
        or_panic(check_square("symmetric_eigen", self.dims()));
        let (rotated, vectors) = eigendecomposition(self);
        (rotated.diagonal(), vectors)
    }

    /// The eigenvalues of the Hermitian ½(A + Aᴴ) (A itself when Hermitian), real and
    /// ascending (`torch.linalg.eigvalsh` and `jnp.linalg.eigvalsh` on complex
    /// matrices; a Hamiltonian's energy levels), by Householder reflections to a
    /// tridiagonal matrix made real by phases, then implicit QR steps (LAPACK's
    /// `hetrd` and `steqr`): accurate to rounding relative to the largest entry, in
    /// O(n³). An entry that is NaN or infinite makes every
    /// eigenvalue NaN. For real matrices, see
    /// [`symmetric_eigenvalues`](Self::symmetric_eigenvalues).
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// // The Pauli matrix σ_y has eigenvalues ∓1.
    /// let i = Complex64::i();
    /// let zero = Complex64::new(0.0, 0.0);
    /// let sigma_y: Matrix<Complex64, 2, 2> = Matrix::from_array([[zero, -i], [i, zero]]);
    /// let values = sigma_y.hermitian_eigenvalues();
    /// assert!((values[[0]] + 1.0).abs() < 1e-15 && (values[[1]] - 1.0).abs() < 1e-15);
    /// ```
    ///
    /// # Panics
    /// For a `Dyn` matrix that is not square.
    #[track_caller]
    #[doc(alias = "eigvalsh")]
    #[rustfmt::skip] // The bound on one line: its error quotes it.
    pub fn hermitian_eigenvalues(&self) -> Tensor<T::Real, (N,), K> where T: ComplexScalar {
        or_panic(check_square("hermitian_eigenvalues", self.dims()));
        eigenvalues_on_diagonal(self).diagonal().re()
    }

    /// The eigenvalues and orthonormal eigenvectors of the Hermitian ½(A + Aᴴ)
    /// together, (λ, V) with λ real and ascending and A = V·diag(λ)·Vᴴ
    /// (`torch.linalg.eigh`, `jnp.linalg.eigh` on complex matrices), from one run
    /// of the reduction and QR steps. An eigenvector's phase is free (any e^(iθ)·v is one): each
    /// column's entry of largest magnitude (the first of equal ones; where entries
    /// have one magnitude, as a circulant's eigenvectors do, rounding picks) is made
    /// real and positive, which fixes it, and V's derivative is this choice's (a
    /// loss that does not depend on the phases, such as |vᵢⱼ|² or V·diag(f(λ))·Vᴴ,
    /// gets the same gradient under any choice). A repeated eigenvalue leaves its
    /// eigenvectors free within their space.
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// let c = Complex64::new;
    /// let h: Matrix<Complex64, 2, 2> = Matrix::from_array([[c(2.0, 0.0), c(0.0, 1.0)], [c(0.0, -1.0), c(2.0, 0.0)]]);
    /// let (values, vectors) = h.hermitian_eigen();
    /// assert!((values[[0]] - 1.0).abs() < 1e-15 && (values[[1]] - 3.0).abs() < 1e-15);
    /// // H·V = V·diag(λ).
    /// let gap = h.matmul(&vectors) - vectors.mul_rows(&values.map(|x| c(x, 0.0)));
    /// assert!(gap.iter().all(|x| x.norm() < 1e-15));
    /// ```
    ///
    /// # Panics
    /// For a `Dyn` matrix that is not square.
    #[track_caller]
    #[doc(alias = "eigh")]
    #[rustfmt::skip] // The bound on one line: its error quotes it.
    pub fn hermitian_eigen(&self) -> (Tensor<T::Real, (N,), K>, Self) where T: ComplexScalar {
        or_panic(check_square("hermitian_eigen", self.dims()));
        let (rotated, vectors) = eigendecomposition(self);
        (rotated.diagonal().re(), vectors)
    }
}

/// A matrix whose diagonal holds the eigenvalues of herm(A) in ascending order
/// (its other entries 0): the reduction and QR steps without the vectors, or with
/// them on duals, whose tangents are added by the formulas that need them.
pub(super) fn eigenvalues_on_diagonal<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    if T::CARRIES_TANGENT {
        return eigendecomposition(a).0;
    }
    let mut matrix = a.clone();
    diagonalize(matrix.as_mut_slice(), a.shape().0.size(), None);
    matrix
}

/// (D, V): a matrix whose diagonal holds the eigenvalues in ascending order (real;
/// its other entries 0) and the eigenvectors, each column's largest entry real and
/// positive. The reduction and QR steps run on the values; on duals, each
/// level of tangents is then added by the first-order formulas (λ̇ = diag P, V̇ =
/// V·(F∘P) and, complex, the phase term; P = Vᴴ·herm(Ȧ)·V) at the levels inside it,
/// where it enters linearly: every order of nested duals is exact, including where
/// A is already diagonal and its tangent is not, and an
/// exactly repeated pair's coupling is left 0 (see [`divided_by_gap`]).
pub(super) fn eigendecomposition<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
) -> (Tensor<T, (N, N), K>, Tensor<T, (N, N), K>) {
    let size = a.shape().0;
    let n = size.size();
    let mut rotated = if T::CARRIES_TANGENT { a.map(|x| x.without_tangent()) } else { a.clone() };
    let mut vectors = Tensor::identity_sized(size);
    let values = T::CARRIES_TANGENT.then(|| rotated.clone());
    diagonalize(rotated.as_mut_slice(), n, Some(vectors.as_mut_slice()));
    fix_signs(vectors.as_mut_slice(), n, None);
    if let Some(values) = values {
        each_tangent_level(a, values, |_, change| {
            let (p, vectors_dot) = push_through(diagonal_of(&rotated), &vectors, change);
            for k in 0..n {
                rotated.as_mut_slice()[k * (n + 1)] += p.as_slice()[k * (n + 1)];
            }
            vectors = &vectors + &vectors_dot;
        });
    }
    (rotated, vectors)
}

/// F∘M: mᵢⱼ/(λⱼ − λᵢ) off the diagonal, 0 on it and where both mᵢⱼ and the gap are
/// 0 (a repeated eigenvalue that the cotangent or tangent does not involve), λᵢ =
/// `value(i)`.
fn over_eigenvalue_gaps<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    value: impl Fn(usize) -> T::Real,
    mut m: Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    let n = m.shape().0.size();
    for (k, entry) in m.as_mut_slice().iter_mut().enumerate() {
        let (i, j) = (k / n, k % n);
        *entry = if i == j { T::zero() } else { divided_by_gap(*entry, value(j) - value(i)) };
    }
    m
}

/// Vᴴ·A·V, whose diagonal holds the eigenvalues λᵢ = vᵢᴴ·A·vᵢ.
fn projected<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
    vectors: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    with_conjugate(vectors, |conjugate| conjugate.transposed_matmul(&a.matmul(vectors)))
}

/// Checks that A is square and V and the other matrix have its shape.
#[track_caller]
fn check_shapes<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    operation: &'static str,
    a: &Tensor<T, (N, N), K>,
    vectors: &Tensor<T, (N, N), K>,
    other: &Tensor<T, (N, N), K>,
) {
    or_panic(check_square(operation, a.dims()));
    or_panic(a.check_same_shape(vectors, operation));
    or_panic(a.check_same_shape(other, operation));
}

/// λᵢ = Re (Vᴴ·A·V)ᵢᵢ, read by [`over_eigenvalue_gaps`] from the rotated matrix.
fn diagonal_of<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    m: &Tensor<T, (N, N), K>,
) -> impl Fn(usize) -> T::Real {
    let n = m.shape().0.size();
    move |i| m.as_slice()[i * (n + 1)].re()
}

/// P = Vᴴ·herm(Ȧ)·V and V̇ = V·(F∘P), F the reciprocal gaps of λᵢ = `value(i)`;
/// for complex V, plus vⱼ·iωⱼ, the turn of each column's phase that keeps its
/// anchor (the entry [`fix_signs`] made real, vᵣⱼ, found by [`anchor_row`]) real: ωⱼ = −Im(V·(F∘P))ᵣⱼ / vᵣⱼ.
fn push_through<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    value: impl Fn(usize) -> T::Real,
    vectors: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (N, N), K>,
) -> (Tensor<T, (N, N), K>, Tensor<T, (N, N), K>) {
    let n = vectors.shape().0.size();
    let mut p = projected(a_dot, vectors);
    hermitize(p.as_mut_slice(), n);
    let mut vectors_dot = vectors.matmul(&over_eigenvalue_gaps(value, p.clone()));
    if T::IS_COMPLEX {
        let (v, v_dot) = (vectors.as_slice(), vectors_dot.as_mut_slice());
        for j in 0..n {
            let anchor = anchor_row(v, n, j);
            let turn = phase_turn(v_dot[anchor * n + j].im(), v[anchor * n + j]);
            for i in 0..n {
                v_dot[i * n + j] += v[i * n + j] * turn;
            }
        }
    }
    (p, vectors_dot)
}

/// Ā = herm(V·(diag(λ̄) + F∘(J + G))·Vᴴ) with J = Vᴴ·V̄, F the reciprocal gaps of
/// λᵢ = `value(i)`, λ̄ = `values_bar` (0 when there is none) and G the phase term's
/// part, 0 for real V: gₖⱼ = −i·conj(vᵣₖ)·Im(jⱼⱼ)/vᵣⱼ, r column j's anchor (see
/// [`push_through`]).
fn pull_through<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    value: impl Fn(usize) -> T::Real,
    vectors: &Tensor<T, (N, N), K>,
    values_bar: Option<&[T::Real]>,
    vectors_bar: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    let n = vectors.shape().0.size();
    let mut j = with_conjugate(vectors, |conjugate| conjugate.transposed_matmul(vectors_bar));
    if T::IS_COMPLEX {
        add_phase_cotangent(vectors.as_slice(), n, j.as_mut_slice(), |_| T::Real::zero());
    }
    let mut inner = over_eigenvalue_gaps(value, j);
    for (k, &bar) in values_bar.into_iter().flatten().enumerate() {
        inner.as_mut_slice()[k * (n + 1)] += T::from_real(bar);
    }
    let mut a_bar = with_conjugate(vectors, |conjugate| vectors.matmul(&inner).matmul_transposed(conjugate));
    hermitize(a_bar.as_mut_slice(), n);
    a_bar
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
    push_through(diagonal_of(&projected(a, vectors)), vectors, a_dot).1
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
    pull_through(diagonal_of(&projected(a, vectors)), vectors, None, vectors_bar)
}

/// Checks that V is square, the other matrix has its shape and λ one entry per
/// column.
#[track_caller]
fn check_decomposition<T: Scalar, N: Dim, K: Storage<T, (N, N)> + Storage<T::Real, (N,)>>(
    operation: &'static str,
    (values, requirement): (&Tensor<T::Real, (N,), K>, &'static str),
    vectors: &Tensor<T, (N, N), K>,
    other: &Tensor<T, (N, N), K>,
) {
    check_shapes(operation, vectors, vectors, other);
    if values.len() != vectors.shape().0.size() {
        panic!("{}", ShapeError::new(operation, vectors.dims(), values.dims(), requirement));
    }
}

/// The tangent of (λ, V) = eigh(sym(A)) given them: with P = Vᵀ·sym(Ȧ)·V, λ̇ = diag P
/// and V̇ = V·(F∘P).
///
/// # Panics
/// When the shapes do not fit.
#[track_caller]
pub fn symmetric_eigen_push<T: RealScalar, N: Dim, K: Storage<T, (N, N)> + Storage<T, (N,)>>(
    values: &Tensor<T, (N,), K>,
    vectors: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (N, N), K>,
) -> (Tensor<T, (N,), K>, Tensor<T, (N, N), K>) {
    check_decomposition("symmetric_eigen_push", (values, "one eigenvalue per column"), vectors, a_dot);
    let (p, vectors_dot) = push_through(|i| values.as_slice()[i], vectors, a_dot);
    (p.diagonal(), vectors_dot)
}

/// The cotangent of (λ, V) = eigh(sym(A)) given them and (λ̄, V̄): Ā =
/// sym(V·(diag(λ̄) + F∘(Vᵀ·V̄))·Vᵀ).
///
/// # Panics
/// When the shapes do not fit.
#[track_caller]
pub fn symmetric_eigen_pullback<T: RealScalar, N: Dim, K: Storage<T, (N, N)> + Storage<T, (N,)>>(
    values: &Tensor<T, (N,), K>,
    vectors: &Tensor<T, (N, N), K>,
    values_bar: &Tensor<T, (N,), K>,
    vectors_bar: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    check_decomposition(
        "symmetric_eigen_pullback",
        (values, "one eigenvalue per column"),
        vectors,
        vectors_bar,
    );
    check_decomposition(
        "symmetric_eigen_pullback",
        (values_bar, "one cotangent per eigenvalue"),
        vectors,
        vectors_bar,
    );
    pull_through(|i| values.as_slice()[i], vectors, Some(values_bar.as_slice()), vectors_bar)
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
    /// The eigenvalues and eigenvectors of ½(A + Aᵀ) (see
    /// [`Tensor::symmetric_eigen`]), recorded as one node with the pullback
    /// Ā = sym(V·(diag(λ̄) + F∘(Vᵀ·V̄))·Vᵀ); an output that does not reach the result
    /// contributes a zero cotangent.
    ///
    /// # Panics
    /// As [`Tensor::symmetric_eigen`].
    #[track_caller]
    pub fn symmetric_eigen(&self) -> (Var<Tensor<T, (N,), K>>, Self)
    where
        K: Storage<T, (N,)>,
    {
        let decomposition =
            record_unary_in_place(self, self.value().symmetric_eigen(), |(values, vectors), bars, a_bar| {
                a_bar.add(|| symmetric_eigen_pullback(values, vectors, &bars.0, &bars.1));
            });
        TracedOutput::split(decomposition)
    }
}

/// The tangent of (λ, V) = eigh(herm(A)) for complex A given them: with P =
/// Vᴴ·herm(Ȧ)·V, λ̇ = diag P (real) and V̇ = V·(F∘P) + V·diag(iω), the phase turn
/// that keeps each column's anchor real (see [`linalg`](super)).
///
/// # Panics
/// When the shapes do not fit.
#[track_caller]
pub fn hermitian_eigen_push<T: ComplexScalar, N: Dim, K>(
    values: &Tensor<T::Real, (N,), K>,
    vectors: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (N, N), K>,
) -> (Tensor<T::Real, (N,), K>, Tensor<T, (N, N), K>)
where
    K: Storage<T, (N, N)> + Storage<T, (N,)> + Storage<T::Real, (N,)>,
{
    check_decomposition("hermitian_eigen_push", (values, "one eigenvalue per column"), vectors, a_dot);
    let (p, vectors_dot) = push_through(|i| values.as_slice()[i], vectors, a_dot);
    (p.diagonal().re(), vectors_dot)
}

/// The cotangent of (λ, V) = eigh(herm(A)) for complex A given them and (λ̄, V̄):
/// Ā = herm(V·(diag(λ̄) + F∘(Vᴴ·V̄ + G))·Vᴴ), G the phase convention's part (see
/// [`linalg`](super)).
///
/// # Panics
/// When the shapes do not fit.
#[track_caller]
pub fn hermitian_eigen_pullback<T: ComplexScalar, N: Dim, K>(
    values: &Tensor<T::Real, (N,), K>,
    vectors: &Tensor<T, (N, N), K>,
    values_bar: &Tensor<T::Real, (N,), K>,
    vectors_bar: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K>
where
    K: Storage<T, (N, N)> + Storage<T::Real, (N,)>,
{
    check_decomposition(
        "hermitian_eigen_pullback",
        (values, "one eigenvalue per column"),
        vectors,
        vectors_bar,
    );
    check_decomposition(
        "hermitian_eigen_pullback",
        (values_bar, "one cotangent per eigenvalue"),
        vectors,
        vectors_bar,
    );
    pull_through(|i| values.as_slice()[i], vectors, Some(values_bar.as_slice()), vectors_bar)
}

/// The tangent of λ = the eigenvalues of herm(A) for complex A: λ̇ᵢ = Re vᵢᴴ·Ȧ·vᵢ,
/// V the eigenvectors (found anew).
///
/// # Panics
/// When A is not square or the shapes differ.
#[track_caller]
pub fn hermitian_eigenvalues_push<T: ComplexScalar, N: Dim, K>(
    a: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (N, N), K>,
) -> Tensor<T::Real, (N,), K>
where
    K: Storage<T, (N, N)> + Storage<T, (N,)> + Storage<T::Real, (N,)>,
{
    check_shapes("hermitian_eigenvalues_push", a, a, a_dot);
    projected(a_dot, &eigendecomposition(a).1).diagonal().re()
}

/// The cotangent of λ = the eigenvalues of herm(A) for complex A: Ā = V·diag(λ̄)·Vᴴ,
/// V the eigenvectors (found anew).
///
/// # Panics
/// When A is not square or λ̄ has another length.
#[track_caller]
pub fn hermitian_eigenvalues_pullback<T: ComplexScalar, N: Dim, K>(
    a: &Tensor<T, (N, N), K>,
    values_bar: &Tensor<T::Real, (N,), K>,
) -> Tensor<T, (N, N), K>
where
    K: Storage<T, (N, N)> + Storage<T::Real, (N,)>,
{
    or_panic(check_square("hermitian_eigenvalues_pullback", a.dims()));
    check_decomposition("hermitian_eigenvalues_pullback", (values_bar, "one cotangent per eigenvalue"), a, a);
    let vectors = eigendecomposition(a).1;
    let scaled = times_columns(&vectors, values_bar);
    with_conjugate(&vectors, |conjugate| scaled.matmul_transposed(conjugate))
}

#[cfg(feature = "std")]
impl<T: ComplexScalar, N: Dim, K> Var<Tensor<T, (N, N), K>>
where
    K: Storage<T, (N, N)> + Storage<T, (N,)> + Storage<T::Real, (N,)>,
{
    /// The eigenvalues of the Hermitian ½(A + Aᴴ), real and ascending, recorded with
    /// their pullback Ā = V·diag(λ̄)·Vᴴ (see [`Tensor::hermitian_eigenvalues`]).
    ///
    /// # Panics
    /// As [`Tensor::hermitian_eigenvalues`].
    #[track_caller]
    pub fn hermitian_eigenvalues(&self) -> Var<Tensor<T::Real, (N,), K>> {
        let a = self.shared_value();
        record_unary_in_place(self, a.hermitian_eigenvalues(), move |_, y_bar, x_bar| {
            x_bar.add(|| hermitian_eigenvalues_pullback(&a, y_bar));
        })
    }

    /// The eigenvalues and eigenvectors of the Hermitian ½(A + Aᴴ) (see
    /// [`Tensor::hermitian_eigen`]), recorded as one node with the pullback of
    /// [`hermitian_eigen_pullback`]; an output that does not reach the result
    /// contributes a zero cotangent.
    ///
    /// # Panics
    /// As [`Tensor::hermitian_eigen`].
    #[track_caller]
    pub fn hermitian_eigen(&self) -> (Var<Tensor<T::Real, (N,), K>>, Self) {
        let decomposition =
            record_unary_in_place(self, self.value().hermitian_eigen(), |(values, vectors), bars, a_bar| {
                a_bar.add(|| hermitian_eigen_pullback(values, vectors, &bars.0, &bars.1));
            });
        TracedOutput::split(decomposition)
    }
}
