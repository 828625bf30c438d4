//! The singular values and the thin singular value decomposition of a matrix with
//! at least as many rows as columns, and their derivatives (see [`linalg`](super)
//! for the formulas).

use core::cmp::Ordering;

use num_traits::{One, Zero};

#[cfg(feature = "std")]
use crate::autodiff::{TracedOutput, Var, record_unary_in_place};
use crate::backend::cpu::dot;
use crate::error::{ShapeError, or_panic};
use crate::ops::reduce::euclidean_norm;
use crate::product::MatMul;
use crate::scalar::{RealScalar, Scalar, overtakes};
use crate::shape::Dim;
use crate::shape::constraint::NoFewerRowsThan;
use crate::tensor::{Storage, Tensor};

use super::parts::{largest_part, over_real, polar, times_real};
use super::qr::{FACTORISABLE, TALL_FACTORS, check_tall};
use super::{
    add_phase_cotangent, anchor_row, divided_by_gap, each_tangent_level, fix_signs, hermitize,
    jacobi_rotation, phase_turn, rotated, transpose_in_place, with_conjugate,
};

impl<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)> + Storage<T::Real, (N,)>> Tensor<T, (M, N), K> {
    /// The singular values σ₁ ≥ … ≥ σₙ ≥ 0 of this m×n matrix, m ≥ n: A = U·diag(σ)·Vᴴ with
    /// U (m×n) and V (n×n) orthonormal columns (`torch.linalg.svdvals`, `jnp.linalg.svd(a,
    /// compute_uv=False)`; for a matrix with fewer rows, take its conjugate transpose's,
    /// `a.conj_transpose()`). By one-sided Jacobi rotations of A's columns until each pair
    /// is orthogonal to working precision relative to their lengths (Hestenes' method; it
    /// never forms AᴴA, whose eigenvalues would lose the singular values below √ε·σ₁); σᵢ
    /// the lengths of the columns, real also for a complex A (whose rotations turn one
    /// column's phase first, so that the pair's inner product is real). NaN everywhere for
    /// a matrix with a NaN or infinite entry. In two copies of A, one transposed (inline
    /// tensors: nothing on the heap; the derivatives also accumulate V, n×n), on any scalar, real or complex,
    /// duals included (the rotations run on them: on nested duals, at columns already
    /// orthogonal, the second-order parts miss the rotations only a tangent calls for;
    /// [`svd`](Self::svd)'s σ has every order).
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// // Columns (3, 4, 0) and (0, 0, 2) are orthogonal: σ = (5, 2).
    /// let a: Matrix<f64, 3, 2> = Matrix::from_array([[3.0, 0.0], [4.0, 0.0], [0.0, 2.0]]);
    /// let sigma = a.singular_values().to_array();
    /// assert!((sigma[0] - 5.0).abs() < 1e-15 && (sigma[1] - 2.0).abs() < 1e-15);
    /// // The spectral norm ‖A‖₂ = σ₁ and the condition number σ₁/σₙ.
    /// assert!((sigma[0] / sigma[1] - 2.5).abs() < 1e-15);
    /// ```
    ///
    /// # Panics
    /// For a `Dyn` matrix with fewer rows than columns.
    #[track_caller]
    #[doc(alias = "svdvals")]
    pub fn singular_values(&self) -> Tensor<T::Real, (N,), K>
    where
        M: NoFewerRowsThan<N>,
    {
        let () = <M as NoFewerRowsThan<N>>::CHECK;
        or_panic(check_tall("singular_values", self.dims(), FACTORISABLE));
        let (w, scale) = orthogonalize(self, None);
        column_lengths(&w).scale(scale)
    }

    /// The thin singular value decomposition A = U·diag(σ)·Vᴴ of this m×n matrix, m ≥ n, as
    /// (U, σ, Vᴴ) (Vᵀ for a real A): U m×n and V n×n with orthonormal columns, σ real and
    /// descending as in [`singular_values`](Self::singular_values) (`torch.linalg.svd(a,
    /// full_matrices=False)`, `jnp.linalg.svd(a, full_matrices=False)`, nalgebra's `svd`;
    /// for fewer rows, take the conjugate transpose's, whose factors are V, σ and Uᴴ). Each
    /// column of V has its entry of largest magnitude (the first of equal ones) real and
    /// positive, U's column multiplied by the same sign or phase, so that the signs
    /// (phases) the matrix leaves free are fixed and differentiable (a loss that does not
    /// depend on them, such as U·diag(σ)·Vᴴ or |uᵢⱼ|², gets the same gradient under any
    /// choice); a column of U for σᵢ = 0 is completed to an orthonormal basis. By the same
    /// rotations as the singular values (V accumulated, U = A·V·diag(σ)⁻¹); NaN everywhere
    /// for a matrix with a NaN or infinite entry. Where two singular values are equal,
    /// their vectors are any orthonormal basis of their space; the derivatives need the σᵢ
    /// distinct and, for U when m > n, nonzero (see [`svd_push`]): there is no threshold,
    /// so a σᵢ that is zero but for rounding (a matrix of lower rank than its shape, σᵢ ≈
    /// 1e-16·σ₁) gives U's derivative that size's reciprocal, as PyTorch's and JAX's do.
    /// `u.mul_rows(&sigma)` is U·diag(σ) (each row times σ, entry by entry;
    /// `&sigma.to_complex()` for a complex U).
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// let a: Matrix<f64, 3, 2> = Matrix::from_array([[3.0, 1.0], [1.0, 3.0], [0.0, 0.0]]);
    /// let (u, sigma, v_t) = a.svd();
    /// // σ = (4, 2), along (1, 1)/√2 and (1, −1)/√2.
    /// assert!((sigma[[0]] - 4.0).abs() < 1e-15 && (sigma[[1]] - 2.0).abs() < 1e-15);
    /// let back = u.mul_rows(&sigma).matmul(&v_t);
    /// assert!((back - a).as_slice().iter().all(|x| x.abs() < 1e-14));
    /// // The best rank-1 approximation: σ₁·u₁·v₁ᵀ.
    /// let rank_one = u.narrow::<1, 0, 1>().scale(sigma[[0]]).matmul(&v_t.narrow::<0, 0, 1>());
    /// assert!((rank_one[[0, 1]] - 2.0).abs() < 1e-14);
    /// ```
    ///
    /// Orthogonal Procrustes: the rotation R minimising ‖R·X − Y‖ for point sets X,
    /// Y (one point per column) is U·Vᵀ from the SVD of Y·Xᵀ, with U's last column
    /// negated when det(U·Vᵀ) = −1 (that product is then a reflection, which a
    /// rotation cannot be; Kabsch's correction):
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// // Points rotated by a quarter turn about z.
    /// let x: Matrix<f64, 3, 4> = Matrix::from_array([[1.0, 0.0, 0.0, 1.0], [0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 3.0, 1.0]]);
    /// let turn: Matrix<f64, 3, 3> = Matrix::from_array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]);
    /// let y = turn.matmul(&x);
    /// let (mut u, _, v_t) = y.matmul_transposed(&x).svd();
    /// if u.matmul(&v_t).determinant() < 0.0 {
    ///     for i in 0..3 {
    ///         u[[i, 2]] = -u[[i, 2]];
    ///     }
    /// }
    /// let r = u.matmul(&v_t);
    /// assert!((r - turn).as_slice().iter().all(|e| e.abs() < 1e-14));
    /// ```
    ///
    /// # Panics
    /// For a `Dyn` matrix with fewer rows than columns.
    #[track_caller]
    pub fn svd(&self) -> (Self, Tensor<T::Real, (N,), K>, Tensor<T, (N, N), K>)
    where
        M: NoFewerRowsThan<N>,
        K: Storage<T, (N, N)>,
    {
        let () = <M as NoFewerRowsThan<N>>::CHECK;
        let (u, sigma, v) = decompose("svd", self);
        (u, sigma, v.conj_transpose())
    }
}

/// Replaces U's zero columns (σⱼ = 0, the last ones, as σ descends) by unit
/// vectors orthogonal to the columns before them: for column j, the coordinate
/// axis eₖ that those columns leave longest (the row k of least Σ uₖc², whose
/// residual |eₖ − Σ uₖc·u_c|² = 1 − Σ uₖc² is at least (m − j)/m, so that one
/// Gram–Schmidt pass keeps it orthogonal to working precision), the projections
/// removed one column at a time and the rest normalised.
fn complete_left_vectors<T: Scalar, M: Dim, N: Dim, K>(
    u: &mut Tensor<T, (M, N), K>,
    sigma: &Tensor<T::Real, (N,), K>,
) where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)>,
{
    let (m, n) = (u.shape().0.size(), u.shape().1.size());
    let entries = u.as_mut_slice();
    for (j, _) in sigma.iter().enumerate().filter(|(_, s)| **s == T::Real::zero()) {
        let covered = |entries: &[T], k: usize| {
            (0..j).fold(T::Real::zero(), |total, c| total + entries[k * n + c].norm_sqr())
        };
        let axis =
            (1..m).fold(0, |best, k| if covered(entries, k) < covered(entries, best) { k } else { best });
        entries[axis * n + j] = T::one();
        for c in 0..j {
            let overlap =
                (0..m).fold(T::zero(), |total, i| total + entries[i * n + c].conj() * entries[i * n + j]);
            for i in 0..m {
                let part = overlap * entries[i * n + c];
                entries[i * n + j] -= part;
            }
        }
        let length = euclidean_norm(entries.iter().skip(j).step_by(n).copied());
        for x in entries.iter_mut().skip(j).step_by(n) {
            *x = over_real(*x, length);
        }
    }
}

/// herm(X) = ½(X + Xᴴ) of a square matrix (sym(X) = ½(X + Xᵀ) on real ones).
fn hermitian_part<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    x: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    let mut part = x.clone();
    hermitize(part.as_mut_slice(), x.shape().0.size());
    part
}

/// skew(X) = ½(X − Xᴴ) of a square matrix (asym(X) = ½(X − Xᵀ) on real ones).
fn skew_hermitian_part<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    x: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    x - &hermitian_part(x)
}

/// G∘X + H∘Y: xᵢⱼ/(σⱼ − σᵢ) + yᵢⱼ/(σⱼ + σᵢ) off the diagonal, 0 on it and where σᵢ =
/// σⱼ = 0 (two columns of U completed where A has none: there is no derivative to
/// give, and the other columns do not depend on it); a zero numerator over a zero
/// gap gives 0 (see [`divided_by_gap`]).
fn over_gaps<T: Scalar, N: Dim, K: Storage<T, (N, N)> + Storage<T::Real, (N,)>>(
    by_difference: &Tensor<T, (N, N), K>,
    by_sum: &Tensor<T, (N, N), K>,
    sigma: &Tensor<T::Real, (N,), K>,
) -> Tensor<T, (N, N), K> {
    let sigma = sigma.as_slice();
    let zero = T::Real::zero();
    Tensor::from_shape_fn(by_difference.shape(), |[i, j]| {
        if i == j || (sigma[i] == zero && sigma[j] == zero) {
            T::zero()
        } else {
            divided_by_gap(by_difference[[i, j]], sigma[j] - sigma[i])
                + divided_by_gap(by_sum[[i, j]], sigma[j] + sigma[i])
        }
    })
}

/// (W, s) with W = A·V/s, s the largest |entry| of A (of its real and imaginary
/// parts, complex; so that no square overflows), V unitary (orthogonal for real
/// A), the columns of W orthogonal to working precision and in order of descending
/// length (s times the lengths are the singular values, and W's columns over their
/// lengths the left singular vectors); V accumulated into `vectors` (the identity
/// given, n×n, read as Vᵀ, which it is too) when asked for. s = 0 for a zero matrix, NaN (and W and V
/// NaN) for one with a NaN or infinite entry.
fn orthogonalize<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)>>(
    a: &Tensor<T, (M, N), K>,
    mut vectors: Option<&mut [T]>,
) -> (Tensor<T, (M, N), K>, T::Real) {
    let (m, n) = (a.shape().0.size(), a.shape().1.size());
    let mut w = a.clone();
    let zero = T::Real::zero();
    // max(|Re|, |Im|): |z| of finite parts near the largest number overflows.
    let largest = w.iter().fold(zero, |largest, &x| {
        let size = largest_part(x);
        if overtakes(size, largest) { size } else { largest }
    });
    if largest == zero {
        return (w, largest);
    }
    // Not below infinity: infinite or NaN.
    if largest.partial_cmp(&-T::Real::neg_infinity()) != Some(Ordering::Less) {
        let nan = T::Real::from_f64(f64::NAN);
        w.as_mut_slice().fill(T::from_real(nan));
        if let Some(v) = vectors {
            v.fill(T::from_real(nan));
        }
        return (w, nan);
    }
    // The columns of A/s as the n rows of `columns` (m entries each, in W's buffer),
    // and V as the rows of Vᵀ: a rotation combines two rows, which lie in memory
    // together.
    let columns = w.as_mut_slice();
    for (k, &x) in a.as_slice().iter().enumerate() {
        columns[(k % n) * m + k / n] = over_real(x, largest);
    }
    for _ in 0..64 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let (first, second, pivot) = gram_entries(columns, m, (p, q));
                // Orthogonal to working precision relative to the two lengths (each
                // root taken alone: their product may underflow).
                if pivot.abs() <= T::Real::epsilon() * first.sqrt() * second.sqrt() {
                    continue;
                }
                rotated = true;
                // A complex pivot |γ|·φ: column q turned by conj(φ) first makes it |γ|,
                // and the rotation real.
                let (coupling, turn) = if T::IS_COMPLEX {
                    let (size, phase) = polar(pivot);
                    (size, phase.conj())
                } else {
                    (pivot.re(), T::one())
                };
                let rotation = jacobi_rotation(first, second, coupling);
                rotate_rows(columns, m, (p, q), turn, rotation);
                if let Some(v) = vectors.as_deref_mut() {
                    rotate_rows(v, n, (p, q), turn, rotation);
                }
            }
        }
        if !rotated {
            break;
        }
    }
    // Descending lengths, by selection (the squares of the scaled columns are
    // finite): each longest remaining column (and its column of V) swapped into
    // place.
    let squared_length =
        |x: &[T], k: usize| x[k * m..(k + 1) * m].iter().fold(zero, |total, x| total + x.norm_sqr());
    for j in 0..n {
        let longest = (j + 1..n).fold(j, |best, k| {
            if squared_length(columns, k) > squared_length(columns, best) { k } else { best }
        });
        if longest != j {
            swap_rows(columns, m, (j, longest));
            if let Some(v) = vectors.as_deref_mut() {
                swap_rows(v, n, (j, longest));
            }
        }
    }
    if let Some(v) = vectors {
        transpose_in_place(v, n);
    }
    let mut rotated = a.clone();
    for (k, entry) in rotated.as_mut_slice().iter_mut().enumerate() {
        *entry = columns[(k % n) * m + k / n];
    }
    (rotated, largest)
}

/// (|x|², |y|², xᴴy) for rows p and q of `rows` (each `width` entries).
fn gram_entries<T: Scalar>(rows: &[T], width: usize, (p, q): (usize, usize)) -> (T::Real, T::Real, T) {
    let (x, y) = (&rows[p * width..(p + 1) * width], &rows[q * width..(q + 1) * width]);
    let (conjugate, same) = (|x: T| x.conj(), |x: T| x);
    (dot(x, x, conjugate, same).re(), dot(y, y, conjugate, same).re(), dot(x, y, conjugate, same))
}

/// Rows p < q of `rows` (each `width` entries) ← (c·x − s·y, s·x + c·y) for x row p
/// and y row q turned by `turn` (a complex rotation's phase; 1 on real rows).
fn rotate_rows<T: Scalar>(
    rows: &mut [T],
    width: usize,
    (p, q): (usize, usize),
    turn: T,
    rotation: (T::Real, T::Real),
) {
    let (head, tail) = rows.split_at_mut(q * width);
    for (x, y) in head[p * width..(p + 1) * width].iter_mut().zip(&mut tail[..width]) {
        let turned = if T::IS_COMPLEX { *y * turn } else { *y };
        (*x, *y) = rotated((*x, turned), rotation);
    }
}

/// Swaps rows p < q of `rows` (each `width` entries).
fn swap_rows<T>(rows: &mut [T], width: usize, (p, q): (usize, usize)) {
    let (head, tail) = rows.split_at_mut(q * width);
    head[p * width..(p + 1) * width].swap_with_slice(&mut tail[..width]);
}

/// The lengths of W's columns.
fn column_lengths<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)> + Storage<T::Real, (N,)>>(
    w: &Tensor<T, (M, N), K>,
) -> Tensor<T::Real, (N,), K> {
    let n = w.shape().1.size();
    Tensor::from_shape_fn((w.shape().1,), |[j]| {
        euclidean_norm(w.as_slice().iter().skip(j).step_by(n.max(1)).copied())
    })
}

/// X·diag(σ)⁻¹, with a zero column where σⱼ = 0.
fn over_sigma<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)> + Storage<T::Real, (N,)>>(
    x: &Tensor<T, (M, N), K>,
    sigma: &Tensor<T::Real, (N,), K>,
) -> Tensor<T, (M, N), K> {
    let mut divided = x.clone();
    let n = sigma.len();
    for (k, entry) in divided.as_mut_slice().iter_mut().enumerate() {
        let length = sigma.as_slice()[k % n];
        *entry = if length == T::Real::zero() { T::zero() } else { over_real(*entry, length) };
    }
    divided
}

/// dᵢ where σᵢ ≠ 0 and 0 where σᵢ = 0: the subgradient chosen there, in every mode.
fn where_nonzero<T: RealScalar, N: Dim, K: Storage<T, (N,)>>(
    sigma: &Tensor<T, (N,), K>,
    mut d: Tensor<T, (N,), K>,
) -> Tensor<T, (N,), K> {
    for (entry, &s) in d.iter_mut().zip(sigma.iter()) {
        if s == T::zero() {
            *entry = T::zero();
        }
    }
    d
}

/// (U, σ, V) of A = U·diag(σ)·Vᴴ from the rotations, in [`Tensor::svd`]'s form:
/// each column of V's largest entry real and positive, U completed where σᵢ = 0, on
/// duals every level of tangents from [`svd_push`].
///
/// # Panics
/// When A has fewer rows than columns.
#[track_caller]
fn decompose<T: Scalar, M: Dim, N: Dim, K>(
    operation: &'static str,
    a: &Tensor<T, (M, N), K>,
) -> (Tensor<T, (M, N), K>, Tensor<T::Real, (N,), K>, Tensor<T, (N, N), K>)
where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)> + Storage<T, (N, N)>,
{
    let (u, sigma_over_scale, v, scale) = decompose_scaled(operation, a);
    (u, sigma_over_scale.scale(scale), v)
}

/// [`decompose`]'s factors with σ still divided by s, A's largest |entry| (U from
/// the scaled columns, so that a matrix of tiny entries keeps its precision), and s
/// (0 for a zero matrix, NaN for one with a NaN or infinite entry).
///
/// # Panics
/// When A has fewer rows than columns.
#[track_caller]
pub(super) fn decompose_scaled<T: Scalar, M: Dim, N: Dim, K>(
    operation: &'static str,
    a: &Tensor<T, (M, N), K>,
) -> (Tensor<T, (M, N), K>, Tensor<T::Real, (N,), K>, Tensor<T, (N, N), K>, T::Real)
where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)> + Storage<T, (N, N)>,
{
    or_panic(check_tall(operation, a.dims(), FACTORISABLE));
    let n = a.shape().1;
    let mut v = Tensor::identity_sized(n);
    let values = T::CARRIES_TANGENT.then(|| a.map(|x| x.without_tangent()));
    let (w, scale) = orthogonalize(values.as_ref().unwrap_or(a), Some(v.as_mut_slice()));
    let mut lengths = column_lengths(&w);
    let mut u = over_sigma(&w, &lengths);
    fix_signs(v.as_mut_slice(), n.size(), Some(u.as_mut_slice()));
    complete_left_vectors(&mut u, &lengths);
    if let Some(values) = values {
        // Each level of tangents added by the first-order formulas, on A/s.
        let mut v_h = v.conj_transpose();
        // A zero matrix (s = 0): every tangent is the subgradient 0 (σ·s stays 0).
        let divisor = if scale == T::Real::zero() { T::Real::one() } else { scale };
        each_tangent_level(a, values, |_, change| {
            let change = change.map(|x| over_real(x, divisor));
            let (u_dot, lengths_dot, v_h_dot) = svd_push(&u, &lengths, &v_h, &change);
            (u, lengths, v_h) = (&u + &u_dot, &lengths + &lengths_dot, &v_h + &v_h_dot);
        });
        v = v_h.conj_transpose();
    }
    (u, lengths, v, scale)
}

/// The tangent of σ, A's singular values: σ̇ᵢ = Re uᵢᴴ·Ȧ·vᵢ (where σ is distinct; at
/// σᵢ = 0 the subgradient 0).
///
/// # Panics
/// When A has fewer rows than columns or Ȧ another shape.
#[track_caller]
pub fn singular_values_push<T: Scalar, M: Dim, N: Dim, K>(
    a: &Tensor<T, (M, N), K>,
    a_dot: &Tensor<T, (M, N), K>,
) -> Tensor<T::Real, (N,), K>
where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)> + Storage<T, (N, N)>,
{
    or_panic(a.check_same_shape(a_dot, "singular_values_push"));
    let (u, sigma, v) = decompose("singular_values_push", a);
    let moved = a_dot.matmul(&v);
    let n = v.shape().0.size();
    let tangent = Tensor::from_shape_fn((v.shape().0,), |[j]| {
        u.as_slice()
            .iter()
            .zip(moved.as_slice())
            .skip(j)
            .step_by(n.max(1))
            .fold(T::Real::zero(), |total, (&x, &y)| total + (x.conj() * y).re())
    });
    where_nonzero(&sigma, tangent)
}

/// The cotangent of σ, A's singular values: Ā = U·diag(σ̄)·Vᴴ.
///
/// # Panics
/// When A has fewer rows than columns or σ̄ another length.
#[track_caller]
pub fn singular_values_pullback<T: Scalar, M: Dim, N: Dim, K>(
    a: &Tensor<T, (M, N), K>,
    sigma_bar: &Tensor<T::Real, (N,), K>,
) -> Tensor<T, (M, N), K>
where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)> + Storage<T, (N, N)>,
{
    let (u, sigma, v) = decompose("singular_values_pullback", a);
    if sigma_bar.len() != v.shape().0.size() {
        let requirement = "a cotangent with one entry per column";
        panic!("{}", ShapeError::new("singular_values_pullback", a.dims(), sigma_bar.dims(), requirement));
    }
    values_cotangent(&u, &sigma, &v, sigma_bar)
}

/// Ā = U·diag(σ̄)·Vᴴ, σ̄ᵢ taken as 0 where σᵢ = 0.
fn values_cotangent<T: Scalar, M: Dim, N: Dim, K>(
    u: &Tensor<T, (M, N), K>,
    sigma: &Tensor<T::Real, (N,), K>,
    v: &Tensor<T, (N, N), K>,
    sigma_bar: &Tensor<T::Real, (N,), K>,
) -> Tensor<T, (M, N), K>
where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)> + Storage<T, (N, N)>,
{
    let scaled = times_columns(u, &where_nonzero(sigma, sigma_bar.clone()));
    with_conjugate(v, |conjugate| scaled.matmul_transposed(conjugate))
}

/// X·diag(w) for real weights w: column j of X times wⱼ.
pub(super) fn times_columns<T: Scalar, R: Dim, N: Dim, K: Storage<T, (R, N)> + Storage<T::Real, (N,)>>(
    x: &Tensor<T, (R, N), K>,
    weights: &Tensor<T::Real, (N,), K>,
) -> Tensor<T, (R, N), K> {
    let mut scaled = x.clone();
    for row in scaled.as_mut_slice().chunks_exact_mut(weights.len().max(1)) {
        for (entry, &weight) in row.iter_mut().zip(weights.iter()) {
            *entry = times_real(*entry, weight);
        }
    }
    scaled
}

/// Checks (U, σ, Vᴴ) against each other and the shapes of the tangent or cotangent.
#[track_caller]
fn check_factors<T: Scalar, M: Dim, N: Dim, K>(
    operation: &'static str,
    (u, sigma, v_h): (&Tensor<T, (M, N), K>, &Tensor<T::Real, (N,), K>, &Tensor<T, (N, N), K>),
    (u_other, sigma_other, v_h_other): (
        &Tensor<T, (M, N), K>,
        &Tensor<T::Real, (N,), K>,
        &Tensor<T, (N, N), K>,
    ),
) where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)> + Storage<T, (N, N)>,
{
    or_panic(check_tall(operation, u.dims(), TALL_FACTORS));
    or_panic(u.check_same_shape(u_other, operation));
    or_panic(v_h.check_same_shape(v_h_other, operation));
    or_panic(sigma.check_same_shape(sigma_other, operation));
    let n = u.shape().1.size();
    for (factor, requirement) in
        [(sigma.dims(), "one singular value per column of U"), (v_h.dims(), "Vᴴ with U's column count")]
    {
        if factor.as_slice().iter().any(|&size| size != n) {
            panic!("{}", ShapeError::new(operation, u.dims(), factor, requirement));
        }
    }
}

/// The part of U̇ or Ā outside U's columns, X·diag(σ)⁻¹ (a column 0 where σⱼ = 0,
/// which has no derivative), added to `onto` when m > n; for m = n, U is square
/// and X = (I − U·Uᴴ)·Y is rounding only, which the division would magnify.
fn add_over_sigma<T: Scalar, M: Dim, N: Dim, K>(
    onto: &mut Tensor<T, (M, N), K>,
    x: &Tensor<T, (M, N), K>,
    sigma: &Tensor<T::Real, (N,), K>,
) where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)>,
{
    if x.shape().0.size() == sigma.len() {
        return;
    }
    for (entry, &part) in onto.iter_mut().zip(over_sigma(x, sigma).iter()) {
        *entry += part;
    }
}

/// The tangent of (U, σ, Vᴴ) = svd(A), given the factors: with P = Uᴴ·Ȧ·V, σ̇ =
/// Re diag P (0 where σᵢ = 0), U̇ = U·X + (I − U·Uᴴ)·Ȧ·V·diag(σ)⁻¹ and the third
/// output's −Y·Vᴴ, where off the diagonal X = G∘herm(P) + H∘skew(P) and
/// Y = G∘herm(P) − H∘skew(P), gᵢⱼ = 1/(σⱼ − σᵢ) and hᵢⱼ = 1/(σⱼ + σᵢ) (see
/// [`linalg`](super)). For complex A, Y's diagonal is i·ωⱼ, the turn of the pair's
/// phase that keeps V's anchor vᵣⱼ real, ωⱼ = −Im(V·Y)ᵣⱼ/vᵣⱼ, and X's is
/// i·(ωⱼ + Im pⱼⱼ/σⱼ); on real A both are 0. The σᵢ must be distinct (a tangent
/// coupling two equal ones gives infinities or NaN); U's last term, present when
/// m > n, leaves out a column where σᵢ = 0.
///
/// # Panics
/// When the shapes do not fit.
#[track_caller]
pub fn svd_push<T: Scalar, M: Dim, N: Dim, K>(
    u: &Tensor<T, (M, N), K>,
    sigma: &Tensor<T::Real, (N,), K>,
    v_h: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (M, N), K>,
) -> (Tensor<T, (M, N), K>, Tensor<T::Real, (N,), K>, Tensor<T, (N, N), K>)
where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)> + Storage<T, (N, N)>,
{
    check_factors("svd_push", (u, sigma, v_h), (a_dot, sigma, v_h));
    let moved = with_conjugate(v_h, |v_conjugate_t| a_dot.matmul_transposed(v_conjugate_t));
    let p = with_conjugate(u, |conjugate| conjugate.transposed_matmul(&moved));
    let (hermitian, skew) = (hermitian_part(&p), skew_hermitian_part(&p));
    let mut x = over_gaps(&hermitian, &skew, sigma);
    let mut y = over_gaps(&hermitian, &-&skew, sigma);
    if T::IS_COMPLEX {
        let v = v_h.conj_transpose();
        let off_diagonal = v.matmul(&y);
        let n = sigma.len();
        for j in 0..n {
            let anchor = anchor_row(v.as_slice(), n, j);
            let turn = phase_turn(off_diagonal[[anchor, j]].im(), v[[anchor, j]]);
            y.as_mut_slice()[j * (n + 1)] = turn;
            let s = sigma.as_slice()[j];
            let own = if s == T::Real::zero() {
                T::zero()
            } else {
                T::from_parts(T::Real::zero(), p[[j, j]].im() / s)
            };
            x.as_mut_slice()[j * (n + 1)] = turn + own;
        }
    }
    let mut u_dot = u.matmul(&x);
    add_over_sigma(&mut u_dot, &(moved - u.matmul(&p)), sigma);
    // (V·Y)ᴴ = −Y·Vᴴ, Y skew-Hermitian.
    let v_h_dot = -y.matmul(v_h);
    let sigma_dot = Tensor::from_shape_fn(sigma.shape(), |[j]| p[[j, j]].re());
    (u_dot, where_nonzero(sigma, sigma_dot), v_h_dot)
}

/// The cotangent of (U, σ, Vᴴ) = svd(A), given the factors and the cotangents
/// (Ū, σ̄, W̄) of the three outputs: with J = Uᴴ·Ū and L = Vᴴ·W̄ᴴ (Vᵀ·V̄ for real A,
/// V̄ = W̄ᵀ), Ā = (U·(diag(σ̄ + i·Im jᵢᵢ/σᵢ) + G∘skew(J + L) + H∘skew(J − L)) + (I −
/// U·Uᴴ)·Ū·diag(σ)⁻¹)·Vᴴ, σ̄ᵢ taken as 0 where σᵢ = 0; for complex A, L gains the
/// anchors' part lₖⱼ += −i·conj(vᵣₖ)·(Im jⱼⱼ + Im lⱼⱼ)/vᵣⱼ (see [`svd_push`] for G, H
/// and where the derivative exists).
///
/// # Panics
/// When the shapes do not fit.
#[track_caller]
pub fn svd_pullback<T: Scalar, M: Dim, N: Dim, K>(
    u: &Tensor<T, (M, N), K>,
    sigma: &Tensor<T::Real, (N,), K>,
    v_h: &Tensor<T, (N, N), K>,
    u_bar: &Tensor<T, (M, N), K>,
    sigma_bar: &Tensor<T::Real, (N,), K>,
    v_h_bar: &Tensor<T, (N, N), K>,
) -> Tensor<T, (M, N), K>
where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)> + Storage<T, (N, N)>,
{
    check_factors("svd_pullback", (u, sigma, v_h), (u_bar, sigma_bar, v_h_bar));
    let n = sigma.len();
    let j = with_conjugate(u, |conjugate| conjugate.transposed_matmul(u_bar));
    let mut l = with_conjugate(v_h_bar, |conjugate| v_h.matmul_transposed(conjugate));
    if T::IS_COMPLEX {
        add_phase_cotangent(v_h.conj_transpose().as_slice(), n, l.as_mut_slice(), |c| j[[c, c]].im());
    }
    let (sum, difference) = (skew_hermitian_part(&(&j + &l)), skew_hermitian_part(&(&j - &l)));
    let mut inner = over_gaps(&sum, &difference, sigma);
    let weights = where_nonzero(sigma, sigma_bar.clone());
    for (k, (&weight, &s)) in weights.iter().zip(sigma.iter()).enumerate() {
        let phase = if s == T::Real::zero() { T::Real::zero() } else { j[[k, k]].im() / s };
        inner.as_mut_slice()[k * (n + 1)] += T::from_parts(weight, phase);
    }
    let mut a_bar = u.matmul(&inner);
    add_over_sigma(&mut a_bar, &(u_bar - &u.matmul(&j)), sigma);
    a_bar.matmul(v_h)
}

#[cfg(feature = "std")]
impl<T: Scalar, M: Dim, N: Dim, K> Var<Tensor<T, (M, N), K>>
where
    K: Storage<T, (M, N)> + Storage<T::Real, (N,)> + Storage<T, (N, N)>,
{
    /// The singular values (see [`Tensor::singular_values`]), recorded with their
    /// pullback Ā = U·diag(σ̄)·Vᴴ (U and V kept from the forward pass).
    ///
    /// # Panics
    /// As [`Tensor::singular_values`].
    #[track_caller]
    pub fn singular_values(&self) -> Var<Tensor<T::Real, (N,), K>>
    where
        M: NoFewerRowsThan<N>,
    {
        let () = <M as NoFewerRowsThan<N>>::CHECK;
        let (u, sigma, v) = decompose("singular_values", self.value());
        record_unary_in_place(self, sigma, move |sigma, sigma_bar, a_bar| {
            a_bar.add(|| values_cotangent(&u, sigma, &v, sigma_bar));
        })
    }

    /// The thin singular value decomposition (U, σ, Vᴴ) (see [`Tensor::svd`]),
    /// recorded with its pullback ([`svd_pullback`]; a factor that does not reach the
    /// result contributes a zero cotangent).
    ///
    /// # Panics
    /// As [`Tensor::svd`].
    #[track_caller]
    pub fn svd(&self) -> (Self, Var<Tensor<T::Real, (N,), K>>, Var<Tensor<T, (N, N), K>>)
    where
        M: NoFewerRowsThan<N>,
    {
        let factors = record_unary_in_place(self, self.value().svd(), |(u, sigma, v_h), bars, a_bar| {
            a_bar.add(|| svd_pullback(u, sigma, v_h, &bars.0, &bars.1, &bars.2));
        });
        TracedOutput::split(factors)
    }
}
