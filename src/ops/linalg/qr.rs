//! The QR factorisation of a matrix with at least as many rows as columns, and the
//! least-squares solution through it (see [`linalg`](super) for the formulas).

use core::ops::Range;

use num_traits::{One, Zero};

#[cfg(feature = "std")]
use crate::autodiff::{Operand, TracedOutput, Var, record_binary_in_place, record_unary_in_place};
use crate::error::{ShapeError, or_panic};
use crate::ops::reduce::euclidean_norm;
use crate::product::MatMul;
use crate::scalar::{RealScalar, Scalar};
use crate::shape::constraint::{NoFewerRowsThan, RightHandSide};
use crate::shape::{Dim, Dims, Shape};
use crate::tensor::{Storage, Tensor};

use super::parts::{Divisor, over_real, polar, times_real};
use super::{LinAlgError, Triangle, each_tangent_level, substitute, with_conjugate};

/// The solution of least squares with an `(M, N)` matrix for the right-hand side
/// shape `B`: `(N,)` for `(M,)`, `(N, C)` for `(M, C)`.
pub type LeastSquaresSolution<B, M, N> = <B as RightHandSide<M>>::WithRows<N>;

impl<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)>> Tensor<T, (M, N), K> {
    /// The reduced QR factorisation A = Q·R of this m×n matrix, m ≥ n: Q (m×n) with
    /// orthonormal columns (QᴴQ = I; QᵀQ = I for a real A) and R (n×n) upper
    /// triangular with a diagonal that is real and not negative (`torch.linalg.qr`,
    /// `jnp.linalg.qr` in their default reduced mode, whose LAPACK factors may differ
    /// from these by the signs, or phases, of a column of Q and the matching row of
    /// R; these are the unique factors of a matrix of full column rank). By
    /// Householder reflections, in a copy of A (no other memory; inline tensors:
    /// nothing on the heap), on any scalar: real or complex, duals included (the
    /// factors of the values, each level of tangents added by [`qr_push`] at the
    /// levels inside it, so that nested duals get every order).
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// let a: Matrix<f64, 3, 2> = Matrix::from_array([[3.0, 1.0], [4.0, 2.0], [0.0, 2.0]]);
    /// let (q, r) = a.qr();
    /// assert!((q.transposed_matmul(&q) - Matrix::<f64, 2, 2>::identity()).norm() < 1e-15);
    /// assert!((q.matmul(&r) - &a).norm() < 1e-14);
    /// // R's first column is (‖a₁‖, 0): the first column of A has length 5.
    /// assert!((r[[0, 0]] - 5.0).abs() < 1e-15 && r[[1, 0]] == 0.0);
    ///
    /// // A complex matrix: Q's columns orthonormal under the inner product aᴴb.
    /// let i = Complex64::new(0.0, 1.0);
    /// let c: Matrix<Complex64, 2, 1> = Matrix::from_array([[i * 3.0], [Complex64::new(4.0, 0.0)]]);
    /// let (q, r) = c.qr();
    /// assert!((r[[0, 0]] - 5.0).norm() < 1e-15 && (q[[0, 0]] - i * 0.6).norm() < 1e-15);
    /// ```
    ///
    /// A matrix of static shape with fewer rows than columns does not compile:
    ///
    /// ```compile_fail
    /// use fluxion::prelude::*;
    ///
    /// let wide: Matrix<f64, 2, 3> = Matrix::zeros();
    /// let (q, r) = wide.qr();
    /// ```
    ///
    /// # Panics
    /// For a `Dyn` matrix with fewer rows than columns; on duals, also where R has a
    /// zero on its diagonal (linearly dependent columns: no derivative).
    #[track_caller]
    pub fn qr(&self) -> (Self, Tensor<T, (N, N), K>)
    where
        M: NoFewerRowsThan<N>,
        K: Storage<T, (N, N)>,
    {
        let () = <M as NoFewerRowsThan<N>>::CHECK;
        or_panic(check_tall("qr", self.dims(), FACTORISABLE));
        if !T::CARRIES_TANGENT {
            return Householder::new(self).factors();
        }
        let values = self.map(|x| x.without_tangent());
        let (mut q, mut r) = Householder::new(&values).factors();
        each_tangent_level(self, values, |_, change| {
            let (q_dot, r_dot) = qr_push(&q, &r, change);
            (q, r) = (&q + &q_dot, &r + &r_dot);
        });
        (q, r)
    }

    /// x minimising ‖A·x − b‖ for this m×n matrix A, m ≥ n, of full column rank, and
    /// b a vector of m entries or a matrix of m rows (each column its own problem):
    /// x = R⁻¹·(Qᴴb) from A's QR factorisation, never forming AᴴA
    /// (`torch.linalg.lstsq`, `jnp.linalg.lstsq`, LAPACK's `gels`, for a matrix of
    /// full column rank), on real or complex scalars (on duals, x of the values and
    /// each level of tangents from [`least_squares_push`]). For a square A it is
    /// A⁻¹b. An error names the shapes when a size known only when it runs does not
    /// fit (a `Dyn` matrix with fewer rows than columns, a right-hand side with
    /// another number of rows), or the first column that is a combination of the
    /// earlier ones to working precision: its diagonal entry of R is at most
    /// max(m, n)·ε times R's largest, the `rcond` of `torch.linalg.lstsq` and
    /// `jnp.linalg.lstsq` (which then return a minimum-norm solution: here
    /// [`a.pseudo_inverse().matmul(&b)`](Self::pseudo_inverse)). Without column
    /// pivoting this test can miss a nearly dependent column whose dependence R's
    /// diagonal does not show; such a matrix gives the large values its
    /// conditioning implies.
    ///
    /// ```
    /// use fluxion::ops::linalg::LinAlgError;
    /// use fluxion::prelude::*;
    ///
    /// // The line c₀ + c₁·t through (0, 1), (1, 3), (2, 4) closest in squares.
    /// let a: Matrix<f64, 3, 2> = Matrix::from_array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]);
    /// let b: Vector<f64, 3> = Vector::from_array([1.0, 3.0, 4.0]);
    /// let c = a.try_least_squares(&b)?.to_array();
    /// assert!((c[0] - 7.0 / 6.0).abs() < 1e-15 && (c[1] - 1.5).abs() < 1e-15);
    /// // A design with its t column twice: the third column repeats the second.
    /// let twice: Matrix<f64, 3, 3> = Matrix::from_array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 2.0, 2.0]]);
    /// let error = twice.try_least_squares(&b).unwrap_err();
    /// assert_eq!(error, LinAlgError::RankDeficient { operation: "least_squares", column: 2 });
    /// # Ok::<(), LinAlgError>(())
    /// ```
    pub fn try_least_squares<B: RightHandSide<M>>(
        &self,
        b: &Tensor<T, B, K>,
    ) -> Result<Tensor<T, LeastSquaresSolution<B, M, N>, K>, LinAlgError>
    where
        M: NoFewerRowsThan<N>,
        K: Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
    {
        let () = <M as NoFewerRowsThan<N>>::CHECK;
        check_problem(self.dims(), b.dims())?;
        if T::CARRIES_TANGENT {
            return least_squares_of_duals(self, b);
        }
        Ok(least_squares_factors(self, b)?.1)
    }

    /// [`try_least_squares`](Self::try_least_squares)'s x.
    ///
    /// # Panics
    /// With `try_least_squares`'s error message: shapes that do not fit, or
    /// linearly dependent columns.
    #[track_caller]
    #[doc(alias = "lstsq")]
    pub fn least_squares<B: RightHandSide<M>>(
        &self,
        b: &Tensor<T, B, K>,
    ) -> Tensor<T, LeastSquaresSolution<B, M, N>, K>
    where
        M: NoFewerRowsThan<N>,
        K: Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
    {
        or_panic(self.try_least_squares(b))
    }
}

/// A's factors and the least-squares x = R⁻¹·(Qᴴb)'s first n rows, the
/// reflections applied to b as they are found; an error for a column that depends
/// on the earlier ones (shapes checked by the caller).
#[inline(always)]
fn least_squares_factors<T: Scalar, M: Dim, N: Dim, B: RightHandSide<M>, K>(
    a: &Tensor<T, (M, N), K>,
    b: &Tensor<T, B, K>,
) -> Result<(Householder<T, M, N, K>, Tensor<T, LeastSquaresSolution<B, M, N>, K>), LinAlgError>
where
    K: Storage<T, (M, N)> + Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
{
    let (mut rotated, c) = (b.clone(), columns_of(b));
    let factors = Householder::reflecting(a, rotated.as_mut_slice(), c);
    if let Some(column) = factors.dependent_column() {
        return Err(LinAlgError::RankDeficient { operation: "least_squares", column });
    }
    let mut x = factors.top_rows(&rotated);
    factors.solve_with_r(false, x.as_mut_slice(), c);
    Ok((factors, x))
}

/// x on duals: that of the values (an error for dependent columns), each level of
/// tangents of A and b added by [`least_squares_push`] at the levels inside it.
fn least_squares_of_duals<T: Scalar, M: Dim, N: Dim, B: RightHandSide<M>, K>(
    a: &Tensor<T, (M, N), K>,
    b: &Tensor<T, B, K>,
) -> Result<Tensor<T, LeastSquaresSolution<B, M, N>, K>, LinAlgError>
where
    K: Storage<T, (M, N)> + Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
{
    let values = a.map(|x| x.without_tangent());
    let mut x = least_squares_factors(&values, &b.map(|x| x.without_tangent()))?.1;
    let mut levels = 0;
    each_tangent_level(a, values, |a_inner, a_change| {
        let b_inner = b.map(|x| x.keep_inner_tangents(levels));
        levels += 1;
        let b_change = b.map(|x| x.keep_inner_tangents(levels)) - &b_inner;
        x = &x + &least_squares_push(a_inner, &b_inner, &x, Some(a_change), Some(&b_change));
    });
    Ok(x)
}

/// The requirement of a factorisation (`qr`, `svd`, …) given a wide matrix.
pub(super) const FACTORISABLE: &str = "at least as many rows as columns; factorise the conjugate transpose";

/// The requirement of the derivatives of a factorisation given factors of the
/// wrong shape.
pub(super) const TALL_FACTORS: &str = "at least as many rows as columns";

/// Checks that `matrix` has at least as many rows as columns, else an error with
/// `requirement`.
pub(super) fn check_tall(
    operation: &'static str,
    matrix: Dims,
    requirement: &'static str,
) -> Result<(), ShapeError> {
    if matrix.as_slice()[0] < matrix.as_slice()[1] {
        return Err(ShapeError::wide(operation, matrix, requirement));
    }
    Ok(())
}

/// Checks a least-squares problem: a matrix with at least as many rows as columns,
/// a right-hand side with as many rows.
fn check_problem(matrix: Dims, rhs: Dims) -> Result<(), ShapeError> {
    let wide_system = "at least as many rows as columns; a wide system's least-norm solution is \
        a.pseudo_inverse().matmul(&b)";
    check_tall("least_squares", matrix, wide_system)?;
    if rhs.as_slice()[0] != matrix.as_slice()[0] {
        let requirement = "a right-hand side with as many rows as the matrix";
        return Err(ShapeError::new("least_squares", matrix, rhs, requirement));
    }
    Ok(())
}

/// A = Q·R (m×n, m ≥ n) as Householder reflections leave it, in the layout of
/// LAPACK's `geqrf`: R on and above the diagonal of `packed`, and below the
/// diagonal of column k the entries vᵢ (i > k) of reflector k, Hₖ = I − τₖ·v·vᴴ with
/// vₖ = 1 and τₖ = 2/vᴴv real (recomputed where needed, so nothing else is kept),
/// each Hₖ Hermitian and unitary. Q = H₀·H₁·…·Hₙ₋₁'s first n columns; R's diagonal
/// has signs (phases) of any kind ([`factors`](Self::factors) makes it real and
/// non-negative).
pub(super) struct Householder<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)>> {
    packed: Tensor<T, (M, N), K>,
}

impl<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)>> Householder<T, M, N, K> {
    /// Factorises A (m ≥ n, checked by the caller).
    #[inline(always)]
    fn new(a: &Tensor<T, (M, N), K>) -> Self {
        Self::reflecting(a, &mut [], 0)
    }

    /// Factorises A (m ≥ n, checked by the caller), applying each reflection to y
    /// (m rows of c values) as it is found: y becomes Hₙ₋₁·…·H₀·y, whose first n rows
    /// are Qᴴy. For column k, x its entries from row k down: Hₖ·x = α·e₁ with
    /// α = −φ·‖x‖, φ = x₀/|x₀| the phase of x₀ (its sign on real numbers; 1 for
    /// x₀ = 0), so v = x − α·e₁ adds magnitudes in its first entry (nothing cancels),
    /// and v/v₀ is stored. A column of zeros keeps v = e₁ (τ = 2, a reflection still).
    #[inline(always)]
    fn reflecting(a: &Tensor<T, (M, N), K>, y: &mut [T], c: usize) -> Self {
        let (m, n) = (a.shape().0.size(), a.shape().1.size());
        let mut packed = a.clone();
        let entries = packed.as_mut_slice();
        for k in 0..n {
            let length = euclidean_norm((k..m).map(|i| entries[i * n + k]));
            let head = entries[k * n + k];
            let (head_size, phase) = head_polar(head);
            let scale = if length == T::Real::zero() {
                T::Real::from_f64(2.0)
            } else {
                store_reflector(entries, (m, n, k), (head_size, phase), length)
            };
            entries[k * n + k] = -times_real(phase, length);
            reflect(entries, n, k, k + 1..n, scale, |row, _| row[k]);
            reflect(y, c, k, 0..c, scale, |_, i| entries[i * n + k]);
        }
        Householder { packed }
    }

    /// (m, n).
    fn sizes(&self) -> (usize, usize) {
        (self.packed.shape().0.size(), self.packed.shape().1.size())
    }

    /// The first column that depends on the earlier ones to working precision: its
    /// diagonal entry of R at most max(m, n)·ε times R's largest (the `rcond` of
    /// `torch.linalg.lstsq` and `jnp.linalg.lstsq`). R's smallest diagonal entry
    /// bounds A's smallest singular value from above, so such a column makes A
    /// numerically rank-deficient (the test can miss one, as any without pivoting).
    fn dependent_column(&self) -> Option<usize> {
        let ((m, n), packed) = (self.sizes(), self.packed.as_slice());
        let diagonal = |k: usize| packed[k * n + k].abs();
        let largest = (0..n).fold(T::Real::zero(), |largest, k| largest.max(diagonal(k)));
        let threshold = T::Real::from_f64(m.max(n) as f64) * T::Real::epsilon() * largest;
        (0..n).find(|&k| diagonal(k) <= threshold)
    }

    /// Overwrites x (m rows of c values) with Hₖ·x, for each k from `reflectors`
    /// in turn.
    #[inline(always)]
    fn apply(&self, reflectors: impl Iterator<Item = usize>, x: &mut [T], c: usize) {
        let ((m, n), packed) = (self.sizes(), self.packed.as_slice());
        for k in reflectors {
            let scale = reflector_scale(packed, m, n, k);
            reflect(x, c, k, 0..c, scale, |_, i| packed[i * n + k]);
        }
    }

    /// Overwrites x (n rows of c values) with R⁻¹x, or R⁻ᴴx when `adjoint`.
    #[inline(always)]
    fn solve_with_r(&self, adjoint: bool, x: &mut [T], c: usize) {
        let (_, n) = self.sizes();
        if x.is_empty() {
            return;
        }
        substitute(&self.packed.as_slice()[..n * n], n, Triangle::Upper, adjoint, x, c);
    }

    /// The first n rows of y (m rows).
    fn top_rows<B: RightHandSide<M>>(
        &self,
        y: &Tensor<T, B, K>,
    ) -> Tensor<T, LeastSquaresSolution<B, M, N>, K>
    where
        K: Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
    {
        let mut top = Tensor::zeros_shaped(y.shape().with_rows(self.packed.shape().1));
        let count = top.len();
        top.as_mut_slice().copy_from_slice(&y.as_slice()[..count]);
        top
    }

    /// Q·(w; 0) for w of n rows: an m-row tensor of `shape`.
    fn q_times<B: RightHandSide<M>>(
        &self,
        shape: B,
        w: &Tensor<T, LeastSquaresSolution<B, M, N>, K>,
    ) -> Tensor<T, B, K>
    where
        K: Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
    {
        let mut y = Tensor::zeros_shaped(shape);
        y.as_mut_slice()[..w.len()].copy_from_slice(w.as_slice());
        let c = columns_of(&y);
        self.apply((0..self.sizes().1).rev(), y.as_mut_slice(), c);
        y
    }

    /// Q (m×n) and R (n×n), each row k of R with a diagonal entry rₖₖ = |rₖₖ|·φ that
    /// is not real and positive multiplied by conj(φ) and column k of Q by φ (on
    /// real numbers: both negated where rₖₖ < 0), so that R's diagonal is real and
    /// not negative.
    fn factors(&self) -> (Tensor<T, (M, N), K>, Tensor<T, (N, N), K>)
    where
        K: Storage<T, (N, N)>,
    {
        let ((m, n), packed) = (self.sizes(), self.packed.as_slice());
        let (rows, columns) = self.packed.shape();
        let mut r =
            Tensor::from_shape_fn(
                (columns, columns),
                |[i, j]| if i <= j { packed[i * n + j] } else { T::zero() },
            );
        let mut q =
            Tensor::from_shape_fn((rows, columns), |[i, j]| if i == j { T::one() } else { T::zero() });
        // Hₖ changes rows k and below, where Hₖ₊₁·…·Hₙ₋₁ left only columns k and after
        // different from the identity's zeros.
        for k in (0..n).rev() {
            let scale = reflector_scale(packed, m, n, k);
            reflect(q.as_mut_slice(), n, k, k..n, scale, |_, i| packed[i * n + k]);
        }
        let (r_entries, q_entries) = (r.as_mut_slice(), q.as_mut_slice());
        for k in 0..n {
            let (size, phase) = head_polar(r_entries[k * n + k]);
            if phase != T::one() {
                let turn = phase.conj();
                r_entries[k * n + k + 1..(k + 1) * n].iter_mut().for_each(|entry| *entry *= turn);
                (0..m).for_each(|i| q_entries[i * n + k] *= phase);
            }
            r_entries[k * n + k] = T::from_real(size);
        }
        (q, r)
    }
}

/// (|x₀|, φ) for a column's head x₀ = |x₀|·φ, φ = 1 at x₀ = 0. On real numbers φ is
/// x₀'s sign and |x₀| = φ·x₀, which keeps a dual's tangent also where its value is
/// 0, so that the reflections stay smooth on duals (`least_squares_push` factorises
/// the inner levels of nested duals). On complex numbers the phase of a head that
/// is exactly 0 has no derivative: duals take their tangents from [`qr_push`] and
/// [`least_squares_push`] at the values, all but those inner levels of nested
/// complex duals.
#[inline(always)]
fn head_polar<T: Scalar>(head: T) -> (T::Real, T) {
    if !T::IS_COMPLEX {
        let sign = if head.re() < T::Real::zero() { -T::one() } else { T::one() };
        return ((head * sign).re(), sign);
    }
    if head == T::zero() { (T::Real::zero(), T::one()) } else { polar(head) }
}

/// Replaces column k of `entries` (m×n) below the diagonal by v/v₀ for the reflector
/// of the column from row k down, x (x₀ = |x₀|·φ, ‖x‖ > 0), to α·e₁, α = −φ·‖x‖:
/// v₀ = x₀ − α = φ·(|x₀| + ‖x‖), which adds magnitudes, and returns
/// τ = 2|v₀|²/vᴴv = 1 + |x₀|/‖x‖. Where |v₀| overflows (entries near the largest
/// finite value), each entry is divided by ‖x‖ first, then by v₀/‖x‖ = φ·τ (the
/// division itself copes with a subnormal v₀, see [`Divisor`]; a column of
/// subnormal numbers keeps only the precision those numbers have).
#[inline(always)]
fn store_reflector<T: Scalar>(
    entries: &mut [T],
    (m, n, k): (usize, usize, usize),
    (head_size, phase): (T::Real, T),
    length: T::Real,
) -> T::Real {
    let scale = T::Real::one() + head_size / length;
    let lead_size = head_size + length;
    let column = (k + 1..m).map(|i| i * n + k);
    if lead_size < -T::Real::neg_infinity() {
        let lead = times_real(phase, lead_size);
        if !T::IS_COMPLEX && lead_size >= T::Real::min_positive() {
            // One division and products: the reciprocal of a normal number is finite.
            let reciprocal = T::one() / lead;
            column.for_each(|index| entries[index] *= reciprocal);
        } else {
            let lead = Divisor::new(lead);
            column.for_each(|index| entries[index] = lead.divide(entries[index]));
        }
    } else {
        let lead_over_length = Divisor::new(times_real(phase, scale));
        column.for_each(|index| entries[index] = lead_over_length.divide(over_real(entries[index], length)));
    }
    scale
}

/// τₖ = 2/vᴴv for reflector k of `packed` (m×n): v = (1, vₖ₊₁, …), each |vᵢ| ≤ 1.
fn reflector_scale<T: Scalar>(packed: &[T], m: usize, n: usize, k: usize) -> T::Real {
    let squares = (k + 1..m).fold(T::Real::one(), |sum, i| sum + packed[i * n + k].norm_sqr());
    T::Real::from_f64(2.0) / squares
}

/// Overwrites the `columns` of x (rows of c values) with H·x from row k down, H =
/// I − τ·v·vᴴ, v = (1, vₖ₊₁, …) with vᵢ = `vector(row i, i)` (read from the row itself
/// while factorising, from the factors otherwise): each column minus
/// τ·(vᴴ·column)·v.
#[inline(always)]
fn reflect<T: Scalar>(
    x: &mut [T],
    c: usize,
    k: usize,
    columns: Range<usize>,
    scale: T::Real,
    vector: impl Fn(&[T], usize) -> T,
) {
    let (head, below) = x.split_at_mut((k + 1) * c);
    let top = &mut head[k * c..];
    for j in columns {
        let projection = below
            .chunks_exact(c)
            .enumerate()
            .fold(top[j], |total, (r, row)| total + vector(row, k + 1 + r).conj() * row[j]);
        let step = times_real(projection, scale);
        top[j] -= step;
        for (r, row) in below.chunks_exact_mut(c).enumerate() {
            let v = vector(row, k + 1 + r);
            row[j] -= step * v;
        }
    }
}

/// The columns of a right-hand side: 1 for a vector, its second size for a matrix.
fn columns_of<T: Scalar, B: Shape, K: Storage<T, B>>(b: &Tensor<T, B, K>) -> usize {
    b.dims().as_slice().get(1).copied().unwrap_or(1)
}

impl<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)>> Householder<T, M, N, K> {
    /// b̄ = Q·R⁻ᴴx̄ = A⁺ᴴx̄ and z = R⁻¹R⁻ᴴx̄ = (AᴴA)⁻¹x̄, for b of `shape`.
    fn pull<B: RightHandSide<M>>(
        &self,
        shape: B,
        x_bar: &Tensor<T, LeastSquaresSolution<B, M, N>, K>,
    ) -> (Tensor<T, B, K>, Tensor<T, LeastSquaresSolution<B, M, N>, K>)
    where
        K: Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
    {
        let c = columns_of(x_bar);
        let mut z = x_bar.clone();
        self.solve_with_r(true, z.as_mut_slice(), c);
        let b_bar = self.q_times(shape, &z);
        self.solve_with_r(false, z.as_mut_slice(), c);
        (b_bar, z)
    }

    /// ẋ = R⁻¹·((Qᴴ(ḃ − Ȧ·x))'s first n rows + R⁻ᴴ·Ȧᴴ·r), r = b − A·x, a missing
    /// tangent zero.
    fn push<B: RightHandSide<M>>(
        &self,
        (a, b, x): (&Tensor<T, (M, N), K>, &Tensor<T, B, K>, &Tensor<T, LeastSquaresSolution<B, M, N>, K>),
        a_dot: Option<&Tensor<T, (M, N), K>>,
        b_dot: Option<&Tensor<T, B, K>>,
    ) -> Tensor<T, LeastSquaresSolution<B, M, N>, K>
    where
        K: Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
    {
        let (n, c) = (self.sizes().1, columns_of(b));
        let mut change = b_dot.cloned().unwrap_or_else(|| Tensor::zeros_shaped(b.shape()));
        if let Some(a_dot) = a_dot {
            subtract_product(change.as_mut_slice(), a_dot.as_slice(), x.as_slice(), n, c);
        }
        self.apply(0..n, change.as_mut_slice(), c);
        let mut x_dot = self.top_rows(&change);
        // (Nothing to add without elements: n or c is 0.)
        if let Some(a_dot) = a_dot.filter(|_| !x.is_empty()) {
            let residual = residual(a, b, x);
            // Ȧᴴ·r, row by row of Ȧ and r.
            let mut moved: Tensor<T, _, K> = Tensor::zeros_shaped(x.shape());
            let rows = a_dot.as_slice().chunks_exact(n).zip(residual.as_slice().chunks_exact(c));
            for (a_dot_row, residual_row) in rows {
                for (&derivative, moved_row) in a_dot_row.iter().zip(moved.as_mut_slice().chunks_exact_mut(c))
                {
                    for (entry, &value) in moved_row.iter_mut().zip(residual_row) {
                        *entry += derivative.conj() * value;
                    }
                }
            }
            self.solve_with_r(true, moved.as_mut_slice(), c);
            for (entry, &extra) in x_dot.iter_mut().zip(moved.iter()) {
                *entry += extra;
            }
        }
        self.solve_with_r(false, x_dot.as_mut_slice(), c);
        x_dot
    }
}

/// out (m rows of c) −= A·X for A m×n and X n×c.
fn subtract_product<T: Scalar>(out: &mut [T], a: &[T], x: &[T], n: usize, c: usize) {
    if n == 0 || c == 0 {
        return;
    }
    for (out_row, a_row) in out.chunks_exact_mut(c).zip(a.chunks_exact(n)) {
        for (&coefficient, x_row) in a_row.iter().zip(x.chunks_exact(c)) {
            for (entry, &value) in out_row.iter_mut().zip(x_row) {
                *entry -= coefficient * value;
            }
        }
    }
}

/// r = b − A·x.
fn residual<T: Scalar, M: Dim, N: Dim, B: RightHandSide<M>, K>(
    a: &Tensor<T, (M, N), K>,
    b: &Tensor<T, B, K>,
    x: &Tensor<T, LeastSquaresSolution<B, M, N>, K>,
) -> Tensor<T, B, K>
where
    K: Storage<T, (M, N)> + Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
{
    let mut r = b.clone();
    subtract_product(r.as_mut_slice(), a.as_slice(), x.as_slice(), a.shape().1.size(), columns_of(b));
    r
}

/// Ā = r·zᴴ − b̄·xᴴ (summed over the right-hand side's columns), r = b − A·x.
fn matrix_cotangent<T: Scalar, M: Dim, N: Dim, B: RightHandSide<M>, K>(
    (a, b, x): (&Tensor<T, (M, N), K>, &Tensor<T, B, K>, &Tensor<T, LeastSquaresSolution<B, M, N>, K>),
    b_bar: &Tensor<T, B, K>,
    z: &Tensor<T, LeastSquaresSolution<B, M, N>, K>,
) -> Tensor<T, (M, N), K>
where
    K: Storage<T, (M, N)> + Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
{
    let (n, c) = (a.shape().1.size(), columns_of(b));
    let residual = residual(a, b, x);
    let mut a_bar = Tensor::zeros_shaped(a.shape());
    if n == 0 || c == 0 {
        return a_bar;
    }
    let rows = residual.as_slice().chunks_exact(c).zip(b_bar.as_slice().chunks_exact(c));
    for (a_bar_row, (residual_row, b_bar_row)) in a_bar.as_mut_slice().chunks_exact_mut(n).zip(rows) {
        for (entry, (z_row, x_row)) in
            a_bar_row.iter_mut().zip(z.as_slice().chunks_exact(c).zip(x.as_slice().chunks_exact(c)))
        {
            *entry = (0..c).fold(T::zero(), |total, k| {
                total + residual_row[k] * z_row[k].conj() - b_bar_row[k] * x_row[k].conj()
            });
        }
    }
    a_bar
}

/// Checks a least-squares problem and its solution's shape.
#[track_caller]
fn check_solution<T: Scalar, M: Dim, N: Dim, B: RightHandSide<M>, K>(
    operation: &'static str,
    a: &Tensor<T, (M, N), K>,
    b: &Tensor<T, B, K>,
    x: &Tensor<T, LeastSquaresSolution<B, M, N>, K>,
) where
    K: Storage<T, (M, N)> + Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
{
    or_panic(check_problem(a.dims(), b.dims()));
    if x.shape() != b.shape().with_rows(a.shape().1) {
        let requirement = "a solution with a row per column of the matrix and the right-hand side's columns";
        panic!("{}", ShapeError::new(operation, a.dims(), x.dims(), requirement));
    }
}

/// The cotangents of the least-squares solution x of A·x ≈ b given x and x̄:
/// (Ā, b̄) = (r·zᴴ − b̄·xᴴ, Q·R⁻ᴴx̄) with z = (AᴴA)⁻¹x̄ and r = b − A·x (see
/// [`linalg`](super)); A factorised again.
///
/// # Panics
/// When the shapes do not fit (as [`Tensor::least_squares`]'s) or A's columns are
/// linearly dependent.
#[track_caller]
pub fn least_squares_pullback<T: Scalar, M: Dim, N: Dim, B: RightHandSide<M>, K>(
    a: &Tensor<T, (M, N), K>,
    b: &Tensor<T, B, K>,
    x: &Tensor<T, LeastSquaresSolution<B, M, N>, K>,
    x_bar: &Tensor<T, LeastSquaresSolution<B, M, N>, K>,
) -> (Tensor<T, (M, N), K>, Tensor<T, B, K>)
where
    K: Storage<T, (M, N)> + Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
{
    check_solution("least_squares_pullback", a, b, x);
    or_panic(x.check_same_shape(x_bar, "least_squares_pullback"));
    let factors = full_rank_factors("least_squares_pullback", a);
    let (b_bar, z) = factors.pull(b.shape(), x_bar);
    (matrix_cotangent((a, b, x), &b_bar, &z), b_bar)
}

/// b̄ = Q·R⁻ᴴx̄ alone, for a constant A.
///
/// # Panics
/// As [`least_squares_pullback`].
#[track_caller]
pub(crate) fn least_squares_rhs_pullback<T: Scalar, M: Dim, N: Dim, B: RightHandSide<M>, K>(
    a: &Tensor<T, (M, N), K>,
    b: &Tensor<T, B, K>,
    x_bar: &Tensor<T, LeastSquaresSolution<B, M, N>, K>,
) -> Tensor<T, B, K>
where
    K: Storage<T, (M, N)> + Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
{
    check_solution("least_squares_pullback", a, b, x_bar);
    full_rank_factors("least_squares_pullback", a).pull(b.shape(), x_bar).0
}

/// The tangent of the least-squares solution x of A·x ≈ b given x:
/// ẋ = A⁺(ḃ − Ȧ·x) + (AᴴA)⁻¹Ȧᴴ(b − A·x), A⁺ = R⁻¹Qᴴ, a missing tangent zero.
///
/// # Panics
/// When the shapes do not fit or A's columns are linearly dependent.
#[track_caller]
pub fn least_squares_push<T: Scalar, M: Dim, N: Dim, B: RightHandSide<M>, K>(
    a: &Tensor<T, (M, N), K>,
    b: &Tensor<T, B, K>,
    x: &Tensor<T, LeastSquaresSolution<B, M, N>, K>,
    a_dot: Option<&Tensor<T, (M, N), K>>,
    b_dot: Option<&Tensor<T, B, K>>,
) -> Tensor<T, LeastSquaresSolution<B, M, N>, K>
where
    K: Storage<T, (M, N)> + Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
{
    check_solution("least_squares_push", a, b, x);
    if let Some(a_dot) = a_dot {
        or_panic(a.check_same_shape(a_dot, "least_squares_push"));
    }
    if let Some(b_dot) = b_dot {
        or_panic(b.check_same_shape(b_dot, "least_squares_push"));
    }
    full_rank_factors("least_squares_push", a).push((a, b, x), a_dot, b_dot)
}

/// A's factors, checked for full column rank.
///
/// # Panics
/// When a column depends on the earlier ones.
#[track_caller]
fn full_rank_factors<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)>>(
    operation: &'static str,
    a: &Tensor<T, (M, N), K>,
) -> Householder<T, M, N, K> {
    let factors = Householder::new(a);
    if let Some(column) = factors.dependent_column() {
        panic!("{}", LinAlgError::RankDeficient { operation, column });
    }
    factors
}

/// Checks Q (m×n), R (n×n) and a pair's shapes, and R's diagonal for a zero.
#[track_caller]
fn check_factors<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)> + Storage<T, (N, N)>>(
    operation: &'static str,
    (q, r): (&Tensor<T, (M, N), K>, &Tensor<T, (N, N), K>),
    (q_other, r_other): (&Tensor<T, (M, N), K>, &Tensor<T, (N, N), K>),
) {
    or_panic(check_tall(operation, q.dims(), TALL_FACTORS));
    if r.dims().as_slice() != [q.shape().1.size(); 2] {
        panic!("{}", ShapeError::new(operation, q.dims(), r.dims(), "Q of m×n and R of n×n"));
    }
    or_panic(q.check_same_shape(q_other, operation));
    or_panic(r.check_same_shape(r_other, operation));
    let n = q.shape().1.size();
    if let Some(column) = (0..n).find(|&k| r.as_slice()[k * n + k] == T::zero()) {
        panic!("{}", LinAlgError::RankDeficient { operation, column });
    }
}

/// Overwrites each row y of x (rows of n values) with y·R⁻¹, or y·R⁻ᴴ when
/// `adjoint`, R (n×n) upper triangular.
fn rows_over_r<T: Scalar, S: Shape, K: Storage<T, S>>(
    r: &[T],
    n: usize,
    adjoint: bool,
    x: &mut Tensor<T, S, K>,
) {
    // z = y·R⁻¹ solves Rᵀ·zᵀ = yᵀ, that is Rᴴ·conj(z)ᵀ = conj(y)ᵀ (substitution with
    // R's conjugate transpose); z = y·R⁻ᴴ solves R·conj(z)ᵀ = conj(y)ᵀ. Real rows
    // need no conjugation.
    let conjugate = |row: &mut [T]| {
        if T::IS_COMPLEX {
            row.iter_mut().for_each(|entry| *entry = entry.conj());
        }
    };
    for row in x.as_mut_slice().chunks_exact_mut(n.max(1)) {
        conjugate(row);
        substitute(r, n, Triangle::Upper, !adjoint, row, 1);
        conjugate(row);
    }
}

/// The tangents of A = Q·R given the factors: with E = Ȧ·R⁻¹, C = QᴴE and U upper
/// triangular with uᵢⱼ = cᵢⱼ + conj(cⱼᵢ) above the diagonal and uᵢᵢ = Re cᵢᵢ,
/// (Q̇, Ṙ) = (E − Q·U, U·R) (see [`linalg`](super)).
///
/// # Panics
/// When the shapes do not fit or R has a zero on its diagonal (A's columns are
/// linearly dependent: the factors have no derivative).
#[track_caller]
pub fn qr_push<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)> + Storage<T, (N, N)>>(
    q: &Tensor<T, (M, N), K>,
    r: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (M, N), K>,
) -> (Tensor<T, (M, N), K>, Tensor<T, (N, N), K>) {
    check_factors("qr_push", (q, r), (a_dot, r));
    let n = r.shape().0.size();
    let mut e = a_dot.clone();
    rows_over_r(r.as_slice(), n, false, &mut e);
    let mut u = with_conjugate(q, |conjugate| conjugate.transposed_matmul(&e));
    let entries = u.as_mut_slice();
    for i in 0..n {
        for j in 0..i {
            entries[j * n + i] += entries[i * n + j].conj();
            entries[i * n + j] = T::zero();
        }
        entries[i * n + i] = T::from_real(entries[i * n + i].re());
    }
    let q_dot = e - q.matmul(&u);
    (q_dot, u.matmul(r))
}

/// The cotangent of A = Q·R given the factors: Ā = (Q̄ + Q·S)·R⁻ᴴ, S the Hermitian
/// matrix whose upper triangle is that of R̄·Rᴴ − QᴴQ̄ but for its diagonal, which
/// is the real part of that one's (see [`linalg`](super)).
///
/// # Panics
/// As [`qr_push`].
#[track_caller]
pub fn qr_pullback<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)> + Storage<T, (N, N)>>(
    q: &Tensor<T, (M, N), K>,
    r: &Tensor<T, (N, N), K>,
    q_bar: &Tensor<T, (M, N), K>,
    r_bar: &Tensor<T, (N, N), K>,
) -> Tensor<T, (M, N), K> {
    check_factors("qr_pullback", (q, r), (q_bar, r_bar));
    let n = r.shape().0.size();
    let mut s = with_conjugate(r, |conjugate| r_bar.matmul_transposed(conjugate))
        - with_conjugate(q, |conjugate| conjugate.transposed_matmul(q_bar));
    let entries = s.as_mut_slice();
    for i in 0..n {
        for j in 0..i {
            entries[i * n + j] = entries[j * n + i].conj();
        }
        entries[i * n + i] = T::from_real(entries[i * n + i].re());
    }
    let mut a_bar = q.matmul(&s) + q_bar;
    rows_over_r(r.as_slice(), n, true, &mut a_bar);
    a_bar
}

#[cfg(feature = "std")]
impl<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)>> Var<Tensor<T, (M, N), K>> {
    /// The QR factors (see [`Tensor::qr`]), recorded with their pullback
    /// Ā = (Q̄ + Q·S)·R⁻ᴴ ([`qr_pullback`]); a factor that does not reach the result
    /// contributes a zero cotangent.
    ///
    /// # Panics
    /// As [`Tensor::qr`]; the backward pass when R has a zero on its diagonal.
    #[track_caller]
    pub fn qr(&self) -> (Self, Var<Tensor<T, (N, N), K>>)
    where
        M: NoFewerRowsThan<N>,
        K: Storage<T, (N, N)>,
    {
        let factors = record_unary_in_place(self, self.value().qr(), |(q, r), (q_bar, r_bar), a_bar| {
            a_bar.add(|| qr_pullback(q, r, q_bar, r_bar));
        });
        TracedOutput::split(factors)
    }

    /// The least-squares solution x of A·x ≈ b (see [`Tensor::least_squares`]),
    /// recorded with its pullback b̄ = Q·R⁻ᴴx̄, Ā = r·zᴴ − b̄·xᴴ
    /// ([`least_squares_pullback`]; the factors kept from the forward pass); `b` a
    /// `Var` or a constant tensor.
    ///
    /// # Panics
    /// As [`Tensor::least_squares`].
    #[track_caller]
    pub fn least_squares<B: RightHandSide<M>>(
        &self,
        b: &impl Operand<Tensor<T, B, K>>,
    ) -> Var<Tensor<T, LeastSquaresSolution<B, M, N>, K>>
    where
        M: NoFewerRowsThan<N>,
        K: Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
    {
        or_panic(self.try_least_squares(b))
    }

    /// [`least_squares`](Self::least_squares), or [`Tensor::try_least_squares`]'s
    /// error with nothing recorded.
    pub fn try_least_squares<B: RightHandSide<M>>(
        &self,
        b: &impl Operand<Tensor<T, B, K>>,
    ) -> Result<Var<Tensor<T, LeastSquaresSolution<B, M, N>, K>>, LinAlgError>
    where
        M: NoFewerRowsThan<N>,
        K: Storage<T, B> + Storage<T, LeastSquaresSolution<B, M, N>>,
    {
        let () = <M as NoFewerRowsThan<N>>::CHECK;
        let b = b.to_var();
        let (a_value, b_value) = (self.shared_value(), b.shared_value());
        check_problem(a_value.dims(), b_value.dims())?;
        let (factors, x) = least_squares_factors(&a_value, &b_value)?;
        Ok(record_binary_in_place(self, &b, x, move |x, x_bar, mut adjoints| {
            let (b_bar, z) = factors.pull(b_value.shape(), x_bar);
            adjoints.lhs().add(|| matrix_cotangent((&a_value, &b_value, x), &b_bar, &z));
            adjoints.rhs().add(|| b_bar);
        }))
    }
}
