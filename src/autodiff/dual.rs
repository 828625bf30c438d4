//! Forward mode: dual numbers x + Σₖ ẋₖ·εₖ with εₖεⱼ = 0, carrying `N` tangent
//! directions at once.
//!
//! [`Dual<T, N>`] is itself a [`Scalar`] (and a [`RealScalar`] when `T` is), so every
//! tensor operation, and any code generic over the scalar type, computes its
//! Jacobian-vector products when run on duals: the forward kernels are the JVP rules,
//! applied to dual elements. Elementary functions take their derivatives from the one
//! table, [`Elementary::derivative`]: ẏ = f′(x)·ẋ. Duals nest: `Dual<Dual<f64>>`
//! carries second derivatives, and `Var<Tensor<Dual<f64>, …>>` runs reverse mode over
//! duals (forward-over-reverse, for Hessian-vector products).
//!
//! # Complex numbers
//!
//! On `Dual<Complex64>` the tangent is complex. For a holomorphic f (exp, sin,
//! polynomials, …), seeding ẋ = 1 gives the complex derivative f′(z) as the output
//! tangent. This is the forward view of the same convention as reverse mode, where a
//! holomorphic f has the pullback x̄ = conj(f′(x))·ȳ.
//!
//! # Examples
//! ```
//! use fluxion::autodiff::Dual;
//! use fluxion::prelude::*;
//!
//! fn cube<S: RealScalar>(x: S) -> S {
//!     x * x * x
//! }
//! let y = cube(Dual::variable(2.0));
//! assert_eq!((y.value(), y.tangent()[0]), (8.0, 12.0));
//! ```

// The product and quotient rules mix `+`, `−` and `*` inside `Mul` and `Div`.
#![allow(clippy::suspicious_arithmetic_impl)]

use core::fmt;
use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Sub, SubAssign};

use num_traits::{Num, One, Zero};

use crate::ops::elementwise::Elementary;
use crate::product::ScalarFactor;
use crate::scalar::{ComplexScalar, RealScalar, Scalar};
use crate::shape::Shape;
use crate::tensor::{Storage, Tensor};

/// A dual number: a value and `N` tangents (directional derivatives).
///
/// `==` and the ordering compare values only (as for num-dual's duals), so that code
/// branching on values behaves the same on duals. [`RealLeaves`](super::RealLeaves)
/// and [`Differentiable::map_leaves_with`](super::Differentiable::map_leaves_with) see
/// a dual's value only; rewriting it through them drops its tangents.
#[derive(Clone, Copy)]
pub struct Dual<T, const N: usize = 1> {
    value: T,
    tangent: [T; N],
}

impl<T: Scalar, const N: usize> Dual<T, N> {
    /// The dual with this value and these tangents.
    pub fn new(value: T, tangent: [T; N]) -> Self {
        Dual { value, tangent }
    }

    /// A constant: all tangents zero.
    pub fn constant(value: T) -> Self {
        Dual { value, tangent: [T::zero(); N] }
    }

    /// The value.
    pub fn value(&self) -> T {
        self.value
    }

    /// The tangents.
    pub fn tangent(&self) -> [T; N] {
        self.tangent
    }

    /// y = f(x) for an elementary f, with ẏ = f′(x)·ẋ from the derivative table.
    #[inline(always)]
    pub fn elementary(self, f: Elementary<T::Real>) -> Self {
        let y = f.apply(self.value);
        let slope = f.derivative(self.value, y);
        Dual { value: y, tangent: self.tangent.map(|t| slope * t) }
    }

    /// c·x for a constant c (cheaper than multiplying by `Dual::constant(c)`).
    #[inline(always)]
    pub fn scale(self, c: T) -> Self {
        self.map_parts(|x| x * c)
    }

    fn map_parts<U>(self, f: impl Fn(T) -> U) -> Dual<U, N> {
        Dual { value: f(self.value), tangent: self.tangent.map(f) }
    }
}

impl<T: Scalar> Dual<T, 1> {
    /// The variable x itself: value `value`, tangent 1.
    pub fn variable(value: T) -> Self {
        Dual { value, tangent: [T::one()] }
    }
}

impl<T: PartialEq, const N: usize> PartialEq for Dual<T, N> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for Dual<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dual({:?}, {:?})", self.value, self.tangent)
    }
}

impl<T: fmt::Display, const N: usize> fmt::Display for Dual<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.value)?;
        for (k, t) in self.tangent.iter().enumerate() {
            write!(f, " + ({t})ε{k}")?;
        }
        Ok(())
    }
}

impl<T: Scalar, const N: usize> Add for Dual<T, N> {
    type Output = Self;
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        Dual {
            value: self.value + rhs.value,
            tangent: core::array::from_fn(|k| self.tangent[k] + rhs.tangent[k]),
        }
    }
}

impl<T: Scalar, const N: usize> Sub for Dual<T, N> {
    type Output = Self;
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        Dual {
            value: self.value - rhs.value,
            tangent: core::array::from_fn(|k| self.tangent[k] - rhs.tangent[k]),
        }
    }
}

impl<T: Scalar, const N: usize> Mul for Dual<T, N> {
    type Output = Self;
    /// (a + ȧε)(b + ḃε) = ab + (aḃ + ȧb)ε.
    #[inline(always)]
    fn mul(self, rhs: Self) -> Self {
        Dual {
            value: self.value * rhs.value,
            tangent: core::array::from_fn(|k| self.value * rhs.tangent[k] + self.tangent[k] * rhs.value),
        }
    }
}

impl<T: Scalar, const N: usize> Div for Dual<T, N> {
    type Output = Self;
    /// y = a/b, ẏ = (ȧ − y·ḃ)/b.
    #[inline(always)]
    fn div(self, rhs: Self) -> Self {
        let y = self.value / rhs.value;
        Dual {
            value: y,
            tangent: core::array::from_fn(|k| (self.tangent[k] - y * rhs.tangent[k]) / rhs.value),
        }
    }
}

impl<T: Scalar, const N: usize> Rem for Dual<T, N> {
    type Output = Self;
    /// r = a − q·b with q = trunc(a/b) locally constant: ṙ = ȧ − q·ḃ.
    fn rem(self, rhs: Self) -> Self {
        let r = self.value % rhs.value;
        let quotient = (self.value - r) / rhs.value;
        Dual { value: r, tangent: core::array::from_fn(|k| self.tangent[k] - quotient * rhs.tangent[k]) }
    }
}

impl<T: Scalar, const N: usize> Neg for Dual<T, N> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        self.map_parts(|x| -x)
    }
}

macro_rules! reference_operators {
    ($($Trait:ident $method:ident),*) => {$(
        impl<T: Scalar, const N: usize> $Trait<&Dual<T, N>> for &Dual<T, N> {
            type Output = Dual<T, N>;
            #[inline(always)]
            fn $method(self, rhs: &Dual<T, N>) -> Dual<T, N> {
                $Trait::$method(*self, *rhs)
            }
        }
    )*};
}

reference_operators!(Add add, Sub sub, Mul mul, Div div);

impl<T: Scalar, const N: usize> Neg for &Dual<T, N> {
    type Output = Dual<T, N>;
    #[inline(always)]
    fn neg(self) -> Dual<T, N> {
        -*self
    }
}

macro_rules! assign_operators {
    ($($Assign:ident $assign:ident $op:tt),*) => {$(
        impl<T: Scalar, const N: usize> $Assign for Dual<T, N> {
            #[inline(always)]
            fn $assign(&mut self, rhs: Self) {
                *self = *self $op rhs;
            }
        }
    )*};
}

assign_operators!(AddAssign add_assign +, SubAssign sub_assign -, MulAssign mul_assign *, DivAssign div_assign /, RemAssign rem_assign %);

impl<T: Scalar, const N: usize> Zero for Dual<T, N> {
    fn zero() -> Self {
        Dual::constant(T::zero())
    }
    fn is_zero(&self) -> bool {
        self.value.is_zero() && self.tangent.iter().all(Zero::is_zero)
    }
}

impl<T: Scalar, const N: usize> One for Dual<T, N> {
    fn one() -> Self {
        Dual::constant(T::one())
    }
}

impl<T: Scalar, const N: usize> Num for Dual<T, N> {
    type FromStrRadixErr = T::FromStrRadixErr;
    /// Parses the value; the tangents are zero.
    fn from_str_radix(text: &str, radix: u32) -> Result<Self, Self::FromStrRadixErr> {
        T::from_str_radix(text, radix).map(Dual::constant)
    }
}

impl<T: Scalar, const N: usize> Scalar for Dual<T, N> {
    type Real = Dual<T::Real, N>;
    const IS_COMPLEX: bool = T::IS_COMPLEX;

    /// The value alone, as a constant (its own tangents, if it is a dual, zeroed too).
    fn without_tangent(self) -> Self {
        Dual::constant(self.value.without_tangent())
    }

    const TANGENT_LEVELS: usize = T::TANGENT_LEVELS + 1;

    fn keep_inner_tangents(self, levels: usize) -> Self {
        if levels >= Self::TANGENT_LEVELS {
            self
        } else {
            Dual::constant(self.value.keep_inner_tangents(levels))
        }
    }

    fn from_real(re: Self::Real) -> Self {
        re.map_parts(T::from_real)
    }
    fn div_count(self, n: usize) -> Self {
        self.map_parts(|x| x.div_count(n))
    }
    fn from_parts(re: Self::Real, im: Self::Real) -> Self {
        Dual {
            value: T::from_parts(re.value, im.value),
            tangent: core::array::from_fn(|k| T::from_parts(re.tangent[k], im.tangent[k])),
        }
    }
    fn conj(self) -> Self {
        self.map_parts(Scalar::conj)
    }
    fn re(self) -> Self::Real {
        self.map_parts(Scalar::re)
    }
    fn im(self) -> Self::Real {
        self.map_parts(Scalar::im)
    }
    /// |x|, with d|x| = Re(conj(u)·ẋ) for u = x/|x| (0 at x = 0; u formed first, so
    /// an extreme |x| or ẋ does not over- or underflow). Branch-free, so a symbolic
    /// scalar records it (a fused function's GPU derivative).
    fn abs(self) -> Self::Real {
        let modulus = self.value.abs();
        let (re, im) = (self.value.re() / modulus, self.value.im() / modulus);
        let tangent = self
            .tangent
            .map(|t| RealScalar::select_positive(modulus, re * t.re() + im * t.im(), T::Real::zero()));
        Dual { value: modulus, tangent }
    }
    /// |x|², with d|x|² = 2·Re(conj(x)·ẋ).
    fn norm_sqr(self) -> Self::Real {
        let tangent = self.tangent.map(|t| {
            let half = (self.value.conj() * t).re();
            half + half
        });
        Dual { value: self.value.norm_sqr(), tangent }
    }
    fn exp(self) -> Self {
        self.elementary(Elementary::Exp)
    }
    fn ln(self) -> Self {
        self.elementary(Elementary::Ln)
    }
    fn sin(self) -> Self {
        self.elementary(Elementary::Sin)
    }
    fn cos(self) -> Self {
        self.elementary(Elementary::Cos)
    }
    fn tanh(self) -> Self {
        self.elementary(Elementary::Tanh)
    }
    fn sqrt(self) -> Self {
        self.elementary(Elementary::Sqrt)
    }
    fn powi(self, n: i32) -> Self {
        self.elementary(Elementary::Powi(n))
    }
    fn sigmoid(self) -> Self {
        self.elementary(Elementary::Sigmoid)
    }
    /// (sin x, cos x) from one evaluation of each: ṡ = cos x·ẋ, ċ = −sin x·ẋ.
    fn sin_cos(self) -> (Self, Self) {
        let (s, c) = self.value.sin_cos();
        (
            Dual { value: s, tangent: self.tangent.map(|t| c * t) },
            Dual { value: c, tangent: self.tangent.map(|t| -s * t) },
        )
    }
    /// xᵖ, with ẏ = p·x^(p−1)·ẋ + xᵖ·ln x·ṗ. The second term counts only in the
    /// lanes where the exponent carries a tangent (elsewhere ln x < 0's NaN stays
    /// out), and is 0 at x = 0 (as JAX). The first is the base's rule, also where ẋ
    /// is 0: at x = 0 with p < 1 its slope is infinite and 0·∞ gives NaN, as in every
    /// rule here with an infinite slope (a zero tangent is a number, not skipped).
    fn powf(self, p: Self::Real) -> Self {
        let power = self.elementary(Elementary::Powf(p.value));
        if p.tangent.iter().all(Zero::is_zero) {
            return power;
        }
        // 1 where x ≠ 0, else 0, chosen without a comparison (generated GPU kernels
        // run this on expressions): ln x is taken of 1 at x = 0.
        let real = |x: f64| <T::Real as RealScalar>::from_f64(x);
        let nonzero =
            T::from_real(<T::Real as RealScalar>::select_positive(self.value.abs(), real(1.0), real(0.0)));
        let exponent_slope = power.value * (self.value * nonzero + (T::one() - nonzero)).ln();
        let tangent = core::array::from_fn(|k| match p.tangent[k].is_zero() {
            true => power.tangent[k],
            false => power.tangent[k] + exponent_slope * T::from_real(p.tangent[k]),
        });
        Dual { value: power.value, tangent }
    }
}

impl<T: RealScalar, const N: usize> PartialOrd for Dual<T, N> {
    /// Orders by value only (the tangents do not take part).
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

/// A dual number of complex values is complex: the operations of complex matrices
/// (`hermitian_eigen`, …) take it.
#[diagnostic::do_not_recommend]
impl<T: ComplexScalar, const N: usize> ComplexScalar for Dual<T, N> {}

#[diagnostic::do_not_recommend]
impl<T: RealScalar, const N: usize> RealScalar for Dual<T, N> {
    type Complex = Dual<T::Complex, N>;
    fn from_f64(x: f64) -> Self {
        Dual::constant(T::from_f64(x))
    }
    fn to_f64(self) -> f64 {
        self.value.to_f64()
    }
    fn neg_infinity() -> Self {
        Dual::constant(T::neg_infinity())
    }
    /// The larger value (NaN-propagating) with the tangents of the argument it came
    /// from: the mean of both tangents on a tie (as PyTorch's `maximum` and JAX's
    /// `max`), the first NaN's; chosen without a branch on the values.
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        // 1 for NaN, else 0 (|x| + 1 > 0 fails only for NaN).
        let nan = |x: T| T::select_positive(x.abs() + T::one(), T::zero(), T::one());
        // Positive when `other` alone is picked (larger, or NaN beside a number),
        // negative when `self` alone is (larger, or NaN), 0 on a tie.
        let tie_or_nan = nan(other.value) - (nan(self.value) + nan(self.value));
        let choice = T::select_positive(
            other.value - self.value,
            T::one(),
            T::select_positive(self.value - other.value, -T::one(), tie_or_nan),
        );
        let half = T::from_f64(0.5);
        Dual {
            value: self.value.max(other.value),
            tangent: core::array::from_fn(|k| {
                let (mine, theirs) = (self.tangent[k], other.tangent[k]);
                let shared = mine * half + theirs * half;
                T::select_positive(choice, theirs, T::select_positive(-choice, mine, shared))
            }),
        }
    }
    /// `self` held to [`low`, `high`] (the value as `RealScalar::clamp` gives it, NaN
    /// propagating), keeping its own tangent on the bounds (as PyTorch's `clamp` does
    /// there), the bound's outside them, and none at a NaN.
    #[inline(always)]
    fn clamp(self, low: Self, high: Self) -> Self {
        let raised = Self::select_positive(low - self, low, self);
        let held = Self::select_positive(raised - high, high, raised);
        // A NaN input has no tangent (as in reverse mode): |x| + 1 > 0 fails only for NaN.
        let tangent = Self::select_positive(self.abs() + Self::one(), held, Self::zero()).tangent;
        Dual { value: self.value.clamp(low.value, high.value), tangent }
    }
    fn epsilon() -> Self {
        Dual::constant(T::epsilon())
    }
    fn min_positive() -> Self {
        Dual::constant(T::min_positive())
    }
    /// f(x) with ẏ = f′(x)·ẋ from the function's written derivative (its value is
    /// applied to the primal, itself a dual for nested duals).
    fn apply_function<F: crate::ops::elementwise::ScalarFunction>(self, f: F) -> Self {
        let y = self.value.apply_function(f);
        let slope = f.derivative(self.value, y);
        Dual { value: y, tangent: self.tangent.map(|t| f.chain_from_slope(slope, t)) }
    }
    /// atan2(y, x), with d atan2(y, x) = (x·ẏ − y·ẋ)/(x² + y²).
    fn atan2(self, other: Self) -> Self {
        let (y, x) = (self.value, other.value);
        let radius = x * x + y * y;
        let tangent = core::array::from_fn(|k| (x * self.tangent[k] - y * other.tangent[k]) / radius);
        Dual { value: y.atan2(x), tangent }
    }
    /// √(x² + y²), with d√(x² + y²) = (x·ẋ + y·ẏ)/√(x² + y²) (0 at the origin, where
    /// it has no derivative).
    fn hypot(self, other: Self) -> Self {
        let (x, y) = (self.value, other.value);
        let radius = x.hypot(y);
        let tangent = core::array::from_fn(|k| {
            T::select_positive(radius, (x * self.tangent[k] + y * other.tangent[k]) / radius, T::zero())
        });
        Dual { value: radius, tangent }
    }
    /// erf x, with d erf x = (2/√π)·e^(−x²)·ẋ.
    fn erf(self) -> Self {
        let slope = T::from_f64(core::f64::consts::FRAC_2_SQRT_PI) * (-self.value * self.value).exp();
        Dual { value: self.value.erf(), tangent: self.tangent.map(|t| slope * t) }
    }
    /// erfc x, with d erfc x = −(2/√π)·e^(−x²)·ẋ.
    fn erfc(self) -> Self {
        let slope = T::from_f64(-core::f64::consts::FRAC_2_SQRT_PI) * (-self.value * self.value).exp();
        Dual { value: self.value.erfc(), tangent: self.tangent.map(|t| slope * t) }
    }
    /// ⌊x⌋, with tangent 0 (piecewise constant).
    fn floor(self) -> Self {
        Dual::constant(self.value.floor())
    }
    /// ⌈x⌉, with tangent 0.
    fn ceil(self) -> Self {
        Dual::constant(self.value.ceil())
    }
    /// x rounded half away from zero, with tangent 0.
    fn round(self) -> Self {
        Dual::constant(self.value.round())
    }
    /// x rounded toward zero, with tangent 0.
    fn trunc(self) -> Self {
        Dual::constant(self.value.trunc())
    }
    #[inline(always)]
    fn select_positive(condition: Self, positive: Self, otherwise: Self) -> Self {
        let choose = |a: T, b: T| T::select_positive(condition.value, a, b);
        Dual {
            value: choose(positive.value, otherwise.value),
            tangent: core::array::from_fn(|k| choose(positive.tangent[k], otherwise.tangent[k])),
        }
    }
}

/// A plain scalar scales a tensor of duals (`duals * 2.0`): value and tangents alike.
#[diagnostic::do_not_recommend]
impl<T: Scalar, const N: usize> ScalarFactor<Dual<T, N>> for T {
    #[inline(always)]
    fn into_element(self) -> Dual<T, N> {
        Dual::constant(self)
    }
}

/// A real factor of a tensor of complex duals, `duals * 0.5`: a constant dual
/// c + 0i, as a real factor of a complex tensor.
impl<R: RealScalar, const N: usize> ScalarFactor<Dual<num_complex::Complex<R>, N>> for R
where
    num_complex::Complex<R>: Scalar,
{
    #[inline(always)]
    fn into_element(self) -> Dual<num_complex::Complex<R>, N> {
        Dual::constant(num_complex::Complex::new(self, R::zero()))
    }
}

/// `2.0 * duals` for the built-in scalar types, and a real factor beside complex
/// duals (a generic impl on the left operand is not allowed for foreign types).
macro_rules! scalar_times_dual_tensor {
    ($($factor:ty => $t:ty),*) => {$(
        impl<S: Shape, K: Storage<Dual<$t, N>, S>, const N: usize> Mul<Tensor<Dual<$t, N>, S, K>> for $factor {
            type Output = Tensor<Dual<$t, N>, S, K>;
            #[inline(always)]
            fn mul(self, rhs: Tensor<Dual<$t, N>, S, K>) -> Self::Output {
                rhs * self
            }
        }

        impl<S: Shape, K: Storage<Dual<$t, N>, S>, const N: usize> Mul<&Tensor<Dual<$t, N>, S, K>> for $factor {
            type Output = Tensor<Dual<$t, N>, S, K>;
            #[inline(always)]
            fn mul(self, rhs: &Tensor<Dual<$t, N>, S, K>) -> Self::Output {
                rhs * self
            }
        }
    )*};
}

scalar_times_dual_tensor!(
    f32 => f32,
    f64 => f64,
    f32 => crate::scalar::Complex32,
    f64 => crate::scalar::Complex64
);

/// A dual and a plain scalar, `d ⊕ c`: the scalar is a constant (zero tangents).
macro_rules! dual_with_constant {
    ($Trait:ident $method:ident) => {
        impl<T: Scalar, const N: usize> $Trait<T> for Dual<T, N> {
            type Output = Self;
            #[inline(always)]
            fn $method(self, constant: T) -> Self {
                $Trait::$method(self, Dual::constant(constant))
            }
        }
    };
}

dual_with_constant!(Add add);
dual_with_constant!(Sub sub);

/// `d·c` for a plain scalar c: each part scaled, as `c·d` (the product rule's d·0
/// would make the tangent of an infinite value NaN).
impl<T: Scalar, const N: usize> Mul<T> for Dual<T, N> {
    type Output = Self;
    #[inline(always)]
    fn mul(self, constant: T) -> Self {
        self.scale(constant)
    }
}

/// `d/c` for a plain scalar c: each part divided (no quotient rule, whose y·0 would
/// make the tangent of an infinite value NaN).
impl<T: Scalar, const N: usize> Div<T> for Dual<T, N> {
    type Output = Self;
    #[inline(always)]
    fn div(self, constant: T) -> Self {
        self.map_parts(|x| x / constant)
    }
}

/// `c ⊕ d` for the built-in scalar types (a generic impl on the left operand is not
/// allowed for foreign types): `1.0 - d` as in maths.
macro_rules! constant_with_dual {
    ($($t:ty),*) => {$(
        impl<const N: usize> Add<Dual<$t, N>> for $t {
            type Output = Dual<$t, N>;
            #[inline(always)]
            fn add(self, dual: Dual<$t, N>) -> Dual<$t, N> {
                Dual::constant(self) + dual
            }
        }
        impl<const N: usize> Sub<Dual<$t, N>> for $t {
            type Output = Dual<$t, N>;
            #[inline(always)]
            fn sub(self, dual: Dual<$t, N>) -> Dual<$t, N> {
                Dual::constant(self) - dual
            }
        }
        impl<const N: usize> Mul<Dual<$t, N>> for $t {
            type Output = Dual<$t, N>;
            #[inline(always)]
            fn mul(self, dual: Dual<$t, N>) -> Dual<$t, N> {
                dual.scale(self)
            }
        }
        impl<const N: usize> Div<Dual<$t, N>> for $t {
            type Output = Dual<$t, N>;
            #[inline(always)]
            fn div(self, dual: Dual<$t, N>) -> Dual<$t, N> {
                Dual::constant(self) / dual
            }
        }
    )*};
}

constant_with_dual!(f32, f64, crate::scalar::Complex32, crate::scalar::Complex64);

/// A real constant beside a complex dual, on either side (`d * 0.5`, `1.0 - d`): the
/// constant as c + 0i, through the rules above.
macro_rules! real_constant_with_complex_dual {
    ($($real:ty => $complex:ty),*) => {$(
        real_constant_with_complex_dual!(@ops $real => $complex; Add add, Sub sub, Mul mul, Div div);
    )*};
    (@ops $real:ty => $complex:ty; $($Trait:ident $method:ident),*) => {$(
        impl<const N: usize> $Trait<$real> for Dual<$complex, N> {
            type Output = Self;
            #[inline(always)]
            fn $method(self, constant: $real) -> Self {
                $Trait::$method(self, <$complex>::new(constant, 0.0))
            }
        }
        impl<const N: usize> $Trait<Dual<$complex, N>> for $real {
            type Output = Dual<$complex, N>;
            #[inline(always)]
            fn $method(self, dual: Dual<$complex, N>) -> Dual<$complex, N> {
                $Trait::$method(<$complex>::new(self, 0.0), dual)
            }
        }
    )*};
}

real_constant_with_complex_dual!(f32 => crate::scalar::Complex32, f64 => crate::scalar::Complex64);
