//! Scalar steps of the factorisations written part by part on complex numbers, so
//! that they neither overflow nor underflow where the real ones do not: a product
//! or quotient by a real number, a complex quotient (Smith's), a polar form, and the
//! sizes that pivoting compares. On real numbers each is the plain operation.

use crate::scalar::{RealScalar, Scalar};

/// x·r for a real r: two real products on complex x (a complex product by r + 0i
/// takes four).
#[inline(always)]
pub(super) fn times_real<T: Scalar>(x: T, r: T::Real) -> T {
    if T::IS_COMPLEX { T::from_parts(x.re() * r, x.im() * r) } else { x * T::from_real(r) }
}

/// x/r for a real r, part by part on complex x (a complex division by r + 0i would
/// square r).
#[inline(always)]
pub(super) fn over_real<T: Scalar>(x: T, r: T::Real) -> T {
    if T::IS_COMPLEX { T::from_parts(x.re() / r, x.im() / r) } else { x / T::from_real(r) }
}

/// a/b; on complex numbers by Smith's method, which divides by the larger part of
/// b first instead of by |b|² (which overflows past √max and underflows below
/// √min).
#[inline(always)]
pub(super) fn quotient<T: Scalar>(a: T, b: T) -> T {
    if !T::IS_COMPLEX {
        return a / b;
    }
    let (a_re, a_im, b_re, b_im) = (a.re(), a.im(), b.re(), b.im());
    if b_re.abs() >= b_im.abs() {
        let ratio = b_im / b_re;
        let denominator = b_re + b_im * ratio;
        T::from_parts((a_re + a_im * ratio) / denominator, (a_im - a_re * ratio) / denominator)
    } else {
        let ratio = b_re / b_im;
        let denominator = b_re * ratio + b_im;
        T::from_parts((a_re * ratio + a_im) / denominator, (a_im * ratio - a_re) / denominator)
    }
}

/// Division by one number b, many times: a/b on real numbers; on complex ones a
/// product by 1/b, worked out once by Smith's method (LAPACK's elimination
/// multiplies by the pivot's reciprocal too), or [`quotient`] where 1/b overflows.
#[derive(Clone, Copy)]
pub(super) struct Divisor<T> {
    divisor: T,
    reciprocal: Option<T>,
}

impl<T: Scalar> Divisor<T> {
    #[inline(always)]
    pub(super) fn new(divisor: T) -> Self {
        if !T::IS_COMPLEX {
            return Divisor { divisor, reciprocal: None };
        }
        let reciprocal = quotient(T::one(), divisor);
        let infinity = -T::Real::neg_infinity();
        let finite = reciprocal.re().abs() < infinity && reciprocal.im().abs() < infinity;
        Divisor { divisor, reciprocal: finite.then_some(reciprocal) }
    }

    #[inline(always)]
    pub(super) fn divide(self, a: T) -> T {
        match self.reciprocal {
            Some(reciprocal) => a * reciprocal,
            None => quotient(a, self.divisor),
        }
    }
}

/// (|z|, z/|z|) for a nonzero z, the phase of modulus 1 also where |z| is subnormal
/// or past the largest number: z scaled by its larger part first.
#[inline(always)]
pub(super) fn polar<T: Scalar>(z: T) -> (T::Real, T) {
    let scale = largest_part(z);
    let unit = over_real(z, scale);
    let length = unit.abs();
    (scale * length, over_real(unit, length))
}

/// max(|Re x|, |Im x|): |x| on real numbers, within a factor √2 of it on complex
/// ones, and finite for every finite x.
#[inline(always)]
pub(super) fn largest_part<T: Scalar>(x: T) -> T::Real {
    if T::IS_COMPLEX { x.re().abs().max(x.im().abs()) } else { x.abs() }
}

/// The size partial pivoting compares: |x| on real numbers, |Re x| + |Im x| on
/// complex ones (LAPACK's, without a square root).
#[inline(always)]
pub(super) fn pivot_size<T: Scalar>(x: T) -> T::Real {
    if T::IS_COMPLEX { x.re().abs() + x.im().abs() } else { x.abs() }
}
