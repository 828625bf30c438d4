//! The singular values of a matrix with at least as many rows as columns and their
//! derivatives (see [`linalg`](super) for the formulas).

use core::cmp::Ordering;

#[cfg(feature = "std")]
use crate::autodiff::{Var, record_unary_in_place};
use crate::error::{ShapeError, or_panic};
use crate::ops::reduce::euclidean_norm;
use crate::product::MatMul;
use crate::scalar::{RealScalar, overtakes};
use crate::shape::Dim;
use crate::shape::constraint::NoFewerRowsThan;
use crate::tensor::{Storage, Tensor};

use super::qr::check_tall;
use super::{jacobi_rotation, rotate_pair};

impl<T: RealScalar, M: Dim, N: Dim, K: Storage<T, (M, N)> + Storage<T, (N,)>> Tensor<T, (M, N), K> {
    /// The singular values σ₁ ≥ … ≥ σₙ ≥ 0 of this m×n matrix, m ≥ n: A = U·diag(σ)·Vᵀ
    /// with U (m×n) and V (n×n) orthonormal columns (`torch.linalg.svdvals`,
    /// `jnp.linalg.svd(a, compute_uv=False)`; for a matrix with fewer rows, take its
    /// transpose's). By one-sided Jacobi rotations of A's columns until each pair
    /// is orthogonal to working precision relative to their lengths (Hestenes'
    /// method; it never forms AᵀA, whose eigenvalues would lose the singular
    /// values below √ε·σ₁); σᵢ the lengths of the columns. NaN everywhere for a
    /// matrix with a NaN or infinite entry. In a copy of A (inline tensors: nothing
    /// on the heap; the derivatives also accumulate V, n×n), on any real scalar,
    /// duals included.
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
    pub fn singular_values(&self) -> Tensor<T, (N,), K>
    where
        M: NoFewerRowsThan<N>,
    {
        let () = <M as NoFewerRowsThan<N>>::CHECK;
        or_panic(check_tall("singular_values", self.dims()));
        column_lengths(&orthogonalize(self, None))
    }
}

/// W = A·V, V orthogonal, the columns of W orthogonal to working precision and in
/// order of descending length (the singular values, with W's columns the left
/// singular vectors scaled by them); V accumulated into `vectors` (the identity
/// given, n×n) when asked for. The columns are scaled by A's largest |entry| while they
/// rotate, so that no square overflows.
fn orthogonalize<T: RealScalar, M: Dim, N: Dim, K: Storage<T, (M, N)>>(
    a: &Tensor<T, (M, N), K>,
    mut vectors: Option<&mut [T]>,
) -> Tensor<T, (M, N), K> {
    let (m, n) = (a.shape().0.size(), a.shape().1.size());
    let mut w = a.clone();
    let zero = T::zero();
    let largest =
        w.iter().fold(zero, |largest, &x| if overtakes(x.abs(), largest) { x.abs() } else { largest });
    if largest == zero {
        return w;
    }
    // Not below infinity: infinite or NaN.
    if largest.partial_cmp(&-T::neg_infinity()) != Some(Ordering::Less) {
        let nan = T::from_f64(f64::NAN);
        w.as_mut_slice().fill(nan);
        if let Some(v) = vectors {
            v.fill(nan);
        }
        return w;
    }
    let entries = w.as_mut_slice();
    for x in entries.iter_mut() {
        *x /= largest;
    }
    for _ in 0..64 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                // The pair's Gram entries, in one pass over the rows.
                let (first, second, pivot) = (0..m).fold((zero, zero, zero), |(first, second, pivot), i| {
                    let (x, y) = (entries[i * n + p], entries[i * n + q]);
                    (first + x * x, second + y * y, pivot + x * y)
                });
                // Orthogonal to working precision relative to the two lengths.
                if pivot.abs() <= T::epsilon() * (first * second).sqrt() {
                    continue;
                }
                rotated = true;
                let rotation = jacobi_rotation(first, second, pivot);
                for i in 0..m {
                    rotate_pair(entries, (i * n + p, i * n + q), rotation);
                }
                if let Some(v) = vectors.as_deref_mut() {
                    for i in 0..n {
                        rotate_pair(v, (i * n + p, i * n + q), rotation);
                    }
                }
            }
        }
        if !rotated {
            break;
        }
    }
    // Descending lengths, by selection while the columns are still scaled (their
    // squares finite): each longest remaining column (and its column of V)
    // swapped into place.
    let squared_length =
        |x: &[T], k: usize| (0..m).fold(zero, |total, i| total + x[i * n + k] * x[i * n + k]);
    for j in 0..n {
        let longest = (j + 1..n).fold(j, |best, k| {
            if squared_length(entries, k) > squared_length(entries, best) { k } else { best }
        });
        if longest != j {
            for i in 0..m {
                entries.swap(i * n + j, i * n + longest);
            }
            if let Some(v) = vectors.as_deref_mut() {
                for i in 0..n {
                    v.swap(i * n + j, i * n + longest);
                }
            }
        }
    }
    for x in entries.iter_mut() {
        *x *= largest;
    }
    w
}

/// The lengths of W's columns.
fn column_lengths<T: RealScalar, M: Dim, N: Dim, K: Storage<T, (M, N)> + Storage<T, (N,)>>(
    w: &Tensor<T, (M, N), K>,
) -> Tensor<T, (N,), K> {
    let n = w.shape().1.size();
    Tensor::from_shape_fn((w.shape().1,), |[j]| {
        euclidean_norm(w.as_slice().iter().skip(j).step_by(n.max(1)).copied())
    })
}

/// U = W·diag(σ)⁻¹, the left singular vectors, with a zero column where σᵢ = 0.
fn left_vectors<T: RealScalar, M: Dim, N: Dim, K: Storage<T, (M, N)> + Storage<T, (N,)>>(
    w: &Tensor<T, (M, N), K>,
    sigma: &Tensor<T, (N,), K>,
) -> Tensor<T, (M, N), K> {
    let mut u = w.clone();
    let n = sigma.len();
    for (k, entry) in u.as_mut_slice().iter_mut().enumerate() {
        let length = sigma.as_slice()[k % n];
        *entry = if length == T::zero() { T::zero() } else { *entry / length };
    }
    u
}

/// (U, σ, V) of A = U·diag(σ)·Vᵀ from the rotations.
///
/// # Panics
/// When A has fewer rows than columns.
#[track_caller]
fn decompose<T: RealScalar, M: Dim, N: Dim, K>(
    operation: &'static str,
    a: &Tensor<T, (M, N), K>,
) -> (Tensor<T, (M, N), K>, Tensor<T, (N,), K>, Tensor<T, (N, N), K>)
where
    K: Storage<T, (M, N)> + Storage<T, (N,)> + Storage<T, (N, N)>,
{
    or_panic(check_tall(operation, a.dims()));
    let mut v = Tensor::identity_sized(a.shape().1);
    let w = orthogonalize(a, Some(v.as_mut_slice()));
    let sigma = column_lengths(&w);
    (left_vectors(&w, &sigma), sigma, v)
}

/// The tangent of σ, A's singular values: σ̇ᵢ = uᵢᵀ·Ȧ·vᵢ (where σ is distinct; at
/// σᵢ = 0 the subgradient 0).
///
/// # Panics
/// When A has fewer rows than columns or Ȧ another shape.
#[track_caller]
pub fn singular_values_push<T: RealScalar, M: Dim, N: Dim, K>(
    a: &Tensor<T, (M, N), K>,
    a_dot: &Tensor<T, (M, N), K>,
) -> Tensor<T, (N,), K>
where
    K: Storage<T, (M, N)> + Storage<T, (N,)> + Storage<T, (N, N)>,
{
    or_panic(a.check_same_shape(a_dot, "singular_values_push"));
    let (u, _, v) = decompose("singular_values_push", a);
    let moved = a_dot.matmul(&v);
    let n = v.shape().0.size();
    Tensor::from_shape_fn((v.shape().0,), |[j]| {
        u.as_slice()
            .iter()
            .zip(moved.as_slice())
            .skip(j)
            .step_by(n.max(1))
            .fold(T::zero(), |total, (&x, &y)| total + x * y)
    })
}

/// The cotangent of σ, A's singular values: Ā = U·diag(σ̄)·Vᵀ.
///
/// # Panics
/// When A has fewer rows than columns or σ̄ another length.
#[track_caller]
pub fn singular_values_pullback<T: RealScalar, M: Dim, N: Dim, K>(
    a: &Tensor<T, (M, N), K>,
    sigma_bar: &Tensor<T, (N,), K>,
) -> Tensor<T, (M, N), K>
where
    K: Storage<T, (M, N)> + Storage<T, (N,)> + Storage<T, (N, N)>,
{
    let (u, _, v) = decompose("singular_values_pullback", a);
    if sigma_bar.len() != v.shape().0.size() {
        let requirement = "a cotangent with one entry per column";
        panic!("{}", ShapeError::new("singular_values_pullback", a.dims(), sigma_bar.dims(), requirement));
    }
    recombine(&u, sigma_bar, &v)
}

/// U·diag(d)·Vᵀ.
fn recombine<T: RealScalar, M: Dim, N: Dim, K>(
    u: &Tensor<T, (M, N), K>,
    d: &Tensor<T, (N,), K>,
    v: &Tensor<T, (N, N), K>,
) -> Tensor<T, (M, N), K>
where
    K: Storage<T, (M, N)> + Storage<T, (N,)> + Storage<T, (N, N)>,
{
    let mut scaled = u.clone();
    let n = d.len();
    for (k, entry) in scaled.as_mut_slice().iter_mut().enumerate() {
        *entry *= d.as_slice()[k % n];
    }
    scaled.matmul_transposed(v)
}

#[cfg(feature = "std")]
impl<T: RealScalar, M: Dim, N: Dim, K> Var<Tensor<T, (M, N), K>>
where
    K: Storage<T, (M, N)> + Storage<T, (N,)> + Storage<T, (N, N)>,
{
    /// The singular values (see [`Tensor::singular_values`]), recorded with their
    /// pullback Ā = U·diag(σ̄)·Vᵀ (U and V kept from the forward pass).
    ///
    /// # Panics
    /// As [`Tensor::singular_values`].
    #[track_caller]
    pub fn singular_values(&self) -> Var<Tensor<T, (N,), K>>
    where
        M: NoFewerRowsThan<N>,
    {
        let () = <M as NoFewerRowsThan<N>>::CHECK;
        let (u, sigma, v) = decompose("singular_values", self.value());
        record_unary_in_place(self, sigma, move |_, sigma_bar, a_bar| {
            a_bar.add(|| recombine(&u, sigma_bar, &v));
        })
    }
}
