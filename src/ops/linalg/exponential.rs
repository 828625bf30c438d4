//! The matrix exponential by scaling and squaring (Higham, 2005): e^A =
//! r(A/2ˢ)^(2ˢ) with r = q⁻¹·p the [m/m] Padé approximant of eᶻ, pₘ(z) = Σⱼ cⱼzʲ and
//! qₘ(z) = pₘ(−z), c₀ = 1, cⱼ = cⱼ₋₁·(m − j + 1)/(j·(2m − j + 1)). The degree
//! m ∈ {3, 5, 7, 9, 13} and the squarings s are the fewest for which the
//! approximant's backward error stays below f64's rounding, read from ‖A‖₁ (f32
//! matrices take the same, more accurate than they need). The tangent runs the
//! product rule through the same steps; see [`linalg`](super) for the derivatives.

#[cfg(feature = "std")]
use crate::autodiff::{Var, record_unary_in_place};
use crate::error::or_panic;
use crate::product::MatMul;
use crate::scalar::{RealScalar, Scalar};
use crate::shape::Dim;
use crate::tensor::{Storage, Tensor};

use super::{Orientation, check_square, eliminate};

/// The Padé degrees with the largest ‖A‖₁ for which each approximant's backward
/// error is below f64's unit roundoff (Higham, 2005, Table 2.3), ascending.
const DEGREES: [(usize, f64); 5] = [
    (3, 1.495585217958292e-2),
    (5, 2.53939833006323e-1),
    (7, 9.504178996162932e-1),
    (9, 2.097847961257068),
    (13, 5.371920351148152),
];

/// The Padé degree m and the squarings s for a matrix of 1-norm `norm`: the lowest
/// degree that covers it, else degree 13 on A/2ˢ with s the fewest that bring the
/// norm within its bound; `None` for an infinite norm.
fn degree_and_squarings(norm: f64) -> Option<(usize, u32)> {
    if norm.is_infinite() {
        return None;
    }
    if let Some(&(degree, _)) = DEGREES.iter().find(|(_, bound)| norm <= *bound) {
        return Some((degree, 0));
    }
    let (degree, bound) = DEGREES[DEGREES.len() - 1];
    let (mut squarings, mut scaled) = (0, norm);
    while scaled > bound {
        scaled *= 0.5;
        squarings += 1;
    }
    Some((degree, squarings))
}

/// ‖A‖₁ = maxⱼ Σᵢ |aᵢⱼ|, the largest column sum (of the values, on duals; a NaN
/// entry is passed over, and spreads through the products instead).
fn one_norm<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(a: &Tensor<T, (N, N), K>) -> f64 {
    let n = a.shape().0.size();
    let entries = a.as_slice();
    (0..n).map(|j| (0..n).map(|i| entries[i * n + j].abs().to_f64()).sum::<f64>()).fold(0.0, f64::max)
}

/// The coefficients c₀, …, cₘ of the [m/m] Padé approximant's numerator.
fn pade_coefficients(degree: usize) -> impl Iterator<Item = f64> {
    let m = degree as f64;
    (0..=degree).scan(1.0, move |c, j| {
        if j > 0 {
            let j = j as f64;
            *c *= (m - j + 1.0) / (j * (2.0 * m - j + 1.0));
        }
        Some(*c)
    })
}

/// A matrix the exponential's algorithm computes with: a matrix alone, or a matrix
/// with its tangent, whose operations carry the product rule.
trait ExponentialOperand<T: Scalar>: Sized {
    /// X·Y.
    fn product(&self, other: &Self) -> Self;
    /// Σₖ cₖ·Xₖ + d·I (one term or more).
    fn combination(terms: &[(T, &Self)], identity: T) -> Self;
    /// Q⁻¹·P, for Q (`self`) the Padé denominator.
    fn divide(&self, numerator: Self) -> Self;
}

/// Σₖ cₖ·Xₖ + d·I for square matrices of one shape (one term or more).
fn combination<'a, T: Scalar, N: Dim, K: Storage<T, (N, N)> + 'a>(
    mut terms: impl Iterator<Item = (T, &'a Tensor<T, (N, N), K>)>,
    identity: T,
) -> Tensor<T, (N, N), K> {
    let (first_factor, first) = terms.next().expect("a combination has a term");
    let mut sum = first.scale(first_factor);
    for (factor, term) in terms {
        for (entry, &x) in sum.iter_mut().zip(term.iter()) {
            *entry += factor * x;
        }
    }
    if identity != T::zero() {
        let n = sum.shape().0.size();
        for entry in sum.as_mut_slice().iter_mut().step_by(n + 1) {
            *entry += identity;
        }
    }
    sum
}

/// Overwrites `numerator` with Q⁻¹·numerator, Q the Padé denominator.
fn divide_in_place<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    denominator: &Tensor<T, (N, N), K>,
    numerator: &mut Tensor<T, (N, N), K>,
) {
    // qₘ(A) is nonsingular, and well conditioned, wherever the degree's bound holds
    // (a NaN pivot gives NaN, not an error).
    if let Err(error) = eliminate("matrix_exp", denominator, Orientation::AsIs, numerator) {
        panic!("{error}: the Padé denominator is singular, which its degree's bound excludes");
    }
}

impl<T: Scalar, N: Dim, K: Storage<T, (N, N)>> ExponentialOperand<T> for Tensor<T, (N, N), K> {
    fn product(&self, other: &Self) -> Self {
        self.matmul(other)
    }

    fn combination(terms: &[(T, &Self)], identity: T) -> Self {
        combination(terms.iter().copied(), identity)
    }

    fn divide(&self, mut numerator: Self) -> Self {
        divide_in_place(self, &mut numerator);
        numerator
    }
}

/// A matrix X with its tangent Ẋ.
struct WithTangent<M> {
    value: M,
    tangent: M,
}

impl<T: Scalar, N: Dim, K: Storage<T, (N, N)>> ExponentialOperand<T> for WithTangent<Tensor<T, (N, N), K>> {
    fn product(&self, other: &Self) -> Self {
        let mut tangent = self.tangent.matmul(&other.value);
        tangent += self.value.matmul(&other.tangent);
        WithTangent { value: self.value.matmul(&other.value), tangent }
    }

    fn combination(terms: &[(T, &Self)], identity: T) -> Self {
        WithTangent {
            value: combination(terms.iter().map(|&(c, x)| (c, &x.value)), identity),
            tangent: combination(terms.iter().map(|&(c, x)| (c, &x.tangent)), T::zero()),
        }
    }

    fn divide(&self, numerator: Self) -> Self {
        // R = Q⁻¹P, Ṙ = Q⁻¹(Ṗ − Q̇·R).
        let value = self.value.divide(numerator.value);
        let mut tangent = numerator.tangent;
        tangent -= self.tangent.matmul(&value);
        divide_in_place(&self.value, &mut tangent);
        WithTangent { value, tangent }
    }
}

/// r(A/2ˢ)^(2ˢ) for r the [m/m] Padé approximant, on a matrix alone or with its
/// tangent: U = A·Σₖ c₂ₖ₊₁A²ᵏ and V = Σₖ c₂ₖA²ᵏ give p = V + U and q = V − U (for
/// m = 13 with A⁶ factored out of the high powers, six products in all).
fn scaled_pade<T: Scalar, M: ExponentialOperand<T>>(a: &M, degree: usize, squarings: u32) -> M {
    let real = |x: f64| T::from_real(T::Real::from_f64(x));
    let a = M::combination(&[(real(0.5f64.powi(squarings as i32)), a)], T::zero());
    let mut c = [T::zero(); 14];
    for (slot, coefficient) in c.iter_mut().zip(pade_coefficients(degree)) {
        *slot = real(coefficient);
    }
    let a2 = a.product(&a);
    let (odd, even) = if degree == 13 {
        let a4 = a2.product(&a2);
        let a6 = a4.product(&a2);
        let odd = a6.product(&M::combination(&[(c[13], &a6), (c[11], &a4), (c[9], &a2)], T::zero()));
        let even = a6.product(&M::combination(&[(c[12], &a6), (c[10], &a4), (c[8], &a2)], T::zero()));
        (
            M::combination(&[(T::one(), &odd), (c[7], &a6), (c[5], &a4), (c[3], &a2)], c[1]),
            M::combination(&[(T::one(), &even), (c[6], &a6), (c[4], &a4), (c[2], &a2)], c[0]),
        )
    } else {
        // A², A⁴, …, A^(m−1): m/2 even powers.
        let a4 = (degree >= 5).then(|| a2.product(&a2));
        let a6 = a4.as_ref().filter(|_| degree >= 7).map(|a4| a4.product(&a2));
        let a8 = a6.as_ref().filter(|_| degree >= 9).map(|a6| a6.product(&a2));
        let powers = [Some(&a2), a4.as_ref(), a6.as_ref(), a8.as_ref()];
        let count = degree / 2;
        let terms = |first: usize| -> [(T, &M); 4] {
            core::array::from_fn(|k| (c[first + 2 * k], powers[k].unwrap_or(&a2)))
        };
        (M::combination(&terms(3)[..count], c[1]), M::combination(&terms(2)[..count], c[0]))
    };
    let u = a.product(&odd);
    let numerator = M::combination(&[(T::one(), &even), (T::one(), &u)], T::zero());
    let denominator = M::combination(&[(T::one(), &even), (-T::one(), &u)], T::zero());
    let mut r = denominator.divide(numerator);
    for _ in 0..squarings {
        r = r.product(&r);
    }
    r
}

impl<T: Scalar, N: Dim, K: Storage<T, (N, N)>> Tensor<T, (N, N), K> {
    /// e^A = Σₖ Aᵏ/k! by scaling and squaring a Padé approximant (see
    /// [`linalg`](crate::ops::linalg)), real or complex, accurate to about f64's
    /// rounding times the condition of the exponential; NaN everywhere for a
    /// matrix with a NaN or infinite entry, or whose 1-norm overflows (entries near
    /// the largest finite value). x(t) = e^(tA)·x₀ solves ẋ = A·x; e^S is the
    /// rotation for a skew-symmetric S, and e^(−iHt) the unitary evolution of a
    /// Hermitian H.
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// // The generator of plane rotations: e^(θJ) turns by θ.
    /// let theta = 0.3f64;
    /// let j: Matrix<f64, 2, 2> = Matrix::from_array([[0.0, -1.0], [1.0, 0.0]]);
    /// let rotation = j.scale(theta).matrix_exp().to_array();
    /// assert!((rotation[0][0] - theta.cos()).abs() < 1e-15);
    /// assert!((rotation[1][0] - theta.sin()).abs() < 1e-15);
    /// ```
    ///
    /// # Panics
    /// For a `Dyn` matrix that is not square.
    #[track_caller]
    pub fn matrix_exp(&self) -> Self {
        or_panic(check_square("matrix_exp", self.dims()));
        match degree_and_squarings(one_norm(self)) {
            Some((degree, squarings)) => scaled_pade(self, degree, squarings),
            None => nan_like(self),
        }
    }
}

/// A matrix of NaN of `x`'s shape.
fn nan_like<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(x: &Tensor<T, (N, N), K>) -> Tensor<T, (N, N), K> {
    x.map(|_| T::from_real(T::Real::from_f64(f64::NAN)))
}

/// e^A with its tangent L(A, Ȧ), by the degree and squarings of a matrix of 1-norm
/// `norm` (A's, also where the cotangent takes Aᴴ); NaN for an infinite norm.
fn exponential_with_tangent<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    a: Tensor<T, (N, N), K>,
    a_dot: Tensor<T, (N, N), K>,
    norm: f64,
) -> WithTangent<Tensor<T, (N, N), K>> {
    match degree_and_squarings(norm) {
        Some((degree, squarings)) => {
            scaled_pade(&WithTangent { value: a, tangent: a_dot }, degree, squarings)
        }
        None => WithTangent { value: nan_like(&a), tangent: nan_like(&a_dot) },
    }
}

/// The tangent of Y = e^A: L(A, Ȧ), the product rule run through the algorithm of
/// [`Tensor::matrix_exp`] (which it computes again beside it).
///
/// # Panics
/// When A is not square or the shapes differ.
#[track_caller]
pub fn matrix_exp_push<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
    a_dot: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    or_panic(check_square("matrix_exp_push", a.dims()));
    or_panic(a.check_same_shape(a_dot, "matrix_exp_push"));
    exponential_with_tangent(a.clone(), a_dot.clone(), one_norm(a)).tangent
}

/// The cotangent of Y = e^A: Ā = L(Aᴴ, Ȳ), the tangent at Aᴴ (Aᵀ for real A) in the
/// direction Ȳ (with the degree and squarings of A).
///
/// # Panics
/// When A is not square or the shapes differ.
#[track_caller]
pub fn matrix_exp_pullback<T: Scalar, N: Dim, K: Storage<T, (N, N)>>(
    a: &Tensor<T, (N, N), K>,
    y_bar: &Tensor<T, (N, N), K>,
) -> Tensor<T, (N, N), K> {
    or_panic(check_square("matrix_exp_pullback", a.dims()));
    or_panic(a.check_same_shape(y_bar, "matrix_exp_pullback"));
    exponential_with_tangent(a.conj_transpose(), y_bar.clone(), one_norm(a)).tangent
}

#[cfg(feature = "std")]
impl<T: Scalar, N: Dim, K: Storage<T, (N, N)>> Var<Tensor<T, (N, N), K>> {
    /// e^A, recorded with its pullback Ā = L(Aᴴ, Ȳ) (see [`Tensor::matrix_exp`]).
    ///
    /// # Panics
    /// As [`Tensor::matrix_exp`].
    #[track_caller]
    pub fn matrix_exp(&self) -> Self {
        let a = self.shared_value();
        record_unary_in_place(self, a.matrix_exp(), move |_, y_bar, x_bar| {
            x_bar.add(|| matrix_exp_pullback(&a, y_bar));
        })
    }
}
