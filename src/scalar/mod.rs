//! Element types: [`Scalar`] covers `f32`, `f64`, [`Complex32`] and [`Complex64`];
//! [`RealScalar`] and [`ComplexScalar`] tell the two kinds apart in the type system.
//!
//! Every scalar has an associated real type (`Scalar::Real`): itself for reals, the
//! component type for complex numbers. `conj` is the identity on reals, so generic code
//! can write the conjugating inner product ⟨a, b⟩ = Σ conj(aᵢ) bᵢ once for both kinds.
//! Elementary functions go through num-traits / num-complex, which fall back to `libm`
//! without `std`, except `exp`, `ln`, `tanh`, `erf` and `erfc` of `f32` and `tanh` of
//! `f64`: branch-free polynomials (module `branch_free`), which vectorise.

mod branch_free;

use core::fmt;
use core::ops::Neg;

use num_complex::Complex;
use num_traits::{Float, NumAssign};

/// Single-precision complex number, `Complex<f32>` (re-exported from num-complex).
pub type Complex32 = Complex<f32>;
/// Double-precision complex number, `Complex<f64>` (re-exported from num-complex).
pub type Complex64 = Complex<f64>;

/// An element of a tensor: `f32`, `f64`, [`Complex32`] or [`Complex64`].
pub trait Scalar:
    Copy + PartialEq + fmt::Debug + fmt::Display + Send + Sync + 'static + NumAssign + Neg<Output = Self>
{
    /// The real type underlying this scalar (`Self` for reals).
    type Real: RealScalar;

    /// `true` for complex element types.
    const IS_COMPLEX: bool;

    /// Embeds a real number.
    fn from_real(re: Self::Real) -> Self;
    /// Builds `re + i·im`; real types ignore `im`.
    fn from_parts(re: Self::Real, im: Self::Real) -> Self;
    /// Complex conjugate (identity on reals).
    fn conj(self) -> Self;
    /// Real part.
    fn re(self) -> Self::Real;
    /// Imaginary part (zero for reals).
    fn im(self) -> Self::Real;
    /// Modulus |z|.
    fn abs(self) -> Self::Real;
    /// Squared modulus |z|² = re² + im².
    fn norm_sqr(self) -> Self::Real;
    /// eᶻ.
    fn exp(self) -> Self;
    /// Natural logarithm (principal branch for complex numbers).
    fn ln(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Square root (principal branch for complex numbers).
    fn sqrt(self) -> Self;
    /// Integer power.
    fn powi(self, n: i32) -> Self;
    /// Real power.
    fn powf(self, p: Self::Real) -> Self;

    /// (sin x, cos x), computed together where that is cheaper.
    fn sin_cos(self) -> (Self, Self) {
        (self.sin(), self.cos())
    }

    /// The logistic function σ(x) = 1/(1 + e⁻ˣ). A dual takes its tangent from the
    /// slope σ(1 − σ), which is 0 where σ saturates (the quotient's own rule would
    /// give 0·∞ there).
    #[inline(always)]
    fn sigmoid(self) -> Self {
        Self::one() / (Self::one() + (-self).exp())
    }

    /// `self / n` for a count `n` (a mean's divisor). A dual divides its value and
    /// each tangent, as by a constant: no quotient rule, whose 0·∞ would make the
    /// tangent of an infinite value NaN.
    #[inline(always)]
    fn div_count(self, n: usize) -> Self {
        self / Self::from_real(Self::Real::from_f64(n as f64))
    }

    /// The value with every tangent it carries set to zero (a dual's, at every
    /// level; a plain number carries none): `stop_gradient` in forward mode.
    #[doc(hidden)]
    #[inline(always)]
    fn without_tangent(self) -> Self {
        self
    }

    /// How many levels of tangents a value carries: 0 for a number, one more than
    /// its value's for a dual (2 for `Dual<Dual<f64>>`).
    #[doc(hidden)]
    const TANGENT_LEVELS: usize = 0;

    /// Whether values of this type carry tangents (duals), which
    /// [`without_tangent`](Self::without_tangent) sets to zero.
    #[doc(hidden)]
    const CARRIES_TANGENT: bool = Self::TANGENT_LEVELS > 0;

    /// The value with the tangents of its innermost `levels` levels kept and those
    /// of the levels outside them set to zero (`without_tangent` at 0): an operation
    /// defined by its first-order rule builds a nested dual's result one level at
    /// a time.
    #[doc(hidden)]
    #[inline(always)]
    fn keep_inner_tangents(self, _levels: usize) -> Self {
        self
    }
}

/// Whether `x` is NaN (unordered even with itself).
pub(crate) fn is_nan<T: PartialOrd>(x: T) -> bool {
    x.partial_cmp(&x).is_none()
}

/// Whether `candidate` takes the place of `leader` as the maximum found so far: it is
/// larger, or the first NaN (a NaN propagates, as in `max`).
pub(crate) fn overtakes<T: PartialOrd + Copy>(candidate: T, leader: T) -> bool {
    candidate > leader || (is_nan(candidate) && !is_nan(leader))
}

/// A real element type: `f32` or `f64`.
///
/// Operations that need an order or a real result (`dot`, `relu`, `max`, `softmax`)
/// require it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a real scalar type",
    label = "this needs real (f32 or f64) data; complex numbers have no order (take `.re()`, `.abs()` or `.norm_sqr()` first)"
)]
pub trait RealScalar: Scalar<Real = Self> + PartialOrd {
    /// The complex numbers over this type (`Complex64` for `f64`; for a dual number,
    /// a dual of complex numbers), which `to_complex` lifts to.
    type Complex: Scalar<Real = Self>;
    /// x + 0i, this number as a complex one (see `Tensor::to_complex`).
    #[inline(always)]
    fn to_complex(self) -> Self::Complex {
        Self::Complex::from_real(self)
    }
    /// Converts from `f64` (rounding for `f32`).
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64`.
    fn to_f64(self) -> f64;
    /// Negative infinity, the identity of `max`.
    fn neg_infinity() -> Self;
    /// The larger of two values (NaN-propagating: a NaN argument gives NaN).
    fn max(self, other: Self) -> Self;
    /// The smaller of two values, −max(−a, −b): NaN-propagating (a dual's tangent is
    /// the mean of both on a tie, as its `max`).
    #[inline(always)]
    fn min(self, other: Self) -> Self {
        -((-self).max(-other))
    }
    /// Machine epsilon.
    fn epsilon() -> Self;
    /// The smallest positive normal value.
    fn min_positive() -> Self;
    /// The error function erf x = (2/√π)∫₀ˣ e^(−t²) dt.
    fn erf(self) -> Self;
    /// The complementary error function erfc x = 1 − erf x, accurate where erf x is
    /// near 1 (erfc 10 ≈ 2·10⁻⁴⁵, where 1 − erf 10 is 0).
    fn erfc(self) -> Self;
    /// The angle of the point (x, y) = (`other`, `self`), in (−π, π]: `y.atan2(x)`.
    fn atan2(self, other: Self) -> Self;
    /// ⌊x⌋, the largest integer ≤ x. Piecewise constant: a dual's tangent is 0 (as
    /// JAX and PyTorch take the derivative; its jumps have none).
    fn floor(self) -> Self;
    /// ⌈x⌉, the smallest integer ≥ x (a dual's tangent is 0).
    fn ceil(self) -> Self;
    /// x rounded to the nearest integer, half away from zero (a dual's tangent is 0).
    fn round(self) -> Self;
    /// x rounded toward zero (a dual's tangent is 0).
    fn trunc(self) -> Self;
    /// x − trunc(x), the fractional part with x's sign (a dual's tangent is ẋ).
    #[inline(always)]
    fn fract(self) -> Self {
        self - self.trunc()
    }

    /// tan x = sin x / cos x.
    #[inline(always)]
    fn tan(self) -> Self {
        self.sin() / self.cos()
    }
    /// atan x, in (−π/2, π/2): the angle of (1, x).
    #[inline(always)]
    fn atan(self) -> Self {
        self.atan2(Self::one())
    }
    /// asin x for |x| ≤ 1: the angle of (√(1 − x²), x), with 1 − x² taken as
    /// (1 − x)(1 + x), which keeps its digits near |x| = 1.
    #[inline(always)]
    fn asin(self) -> Self {
        self.atan2(((Self::one() - self) * (Self::one() + self)).sqrt())
    }
    /// `f(self)` for a library author's scalar function: its value on a plain number,
    /// and on a dual its value with the tangent from its written derivative,
    /// ẏ = f′(x)·ẋ (so forward mode follows the derivative the other modes use).
    #[inline(always)]
    fn apply_function<F: crate::ops::elementwise::ScalarFunction>(self, f: F) -> Self {
        f.value(self)
    }
    /// acos x for |x| ≤ 1: the angle of (x, √(1 − x²)), with 1 − x² taken as
    /// (1 − x)(1 + x).
    #[inline(always)]
    fn acos(self) -> Self {
        ((Self::one() - self) * (Self::one() + self)).sqrt().atan2(self)
    }
    /// √(x² + y²) of x = `self` and y = `other` (f32 and f64 without overflow or
    /// underflow on the way, by libm's `hypot`).
    #[inline(always)]
    fn hypot(self, other: Self) -> Self {
        (self * self + other * other).sqrt()
    }
    /// `self` held to [`low`, `high`]: `self.max(low).min(high)` (NaN propagates; a
    /// dual keeps its tangent on the bounds too).
    #[inline(always)]
    fn clamp(self, low: Self, high: Self) -> Self {
        self.max(low).min(high)
    }
    /// `positive` where `condition > 0`, else `otherwise` (also for a NaN condition):
    /// a choice without a branch on the value, so that a symbolic scalar records it
    /// (a GPU kernel's formula) and a dual chooses its tangents with its value.
    #[inline(always)]
    fn select_positive(condition: Self, positive: Self, otherwise: Self) -> Self {
        if condition > Self::zero() { positive } else { otherwise }
    }
}

/// The element type of [`dot`](crate::Tensor::dot): a real scalar. Complex data
/// must say which product it means: `inner` (conjugating) or `dotu`.
#[diagnostic::on_unimplemented(
    message = "`dot` is the real inner product; `{Self}` is complex",
    label = "for complex data use `.inner()` (⟨a, b⟩ = Σ conj(aᵢ)·bᵢ) or `.dotu()` (Σ aᵢ·bᵢ, unconjugated)"
)]
pub trait RealDot: RealScalar {}

#[diagnostic::do_not_recommend]
impl<T: RealScalar> RealDot for T {}

/// The element type of `symmetric_eigenvalues`, `symmetric_eigenvectors` and
/// `symmetric_eigen`: a real scalar. A complex matrix's counterparts are the
/// Hermitian ones.
#[diagnostic::on_unimplemented(
    message = "`symmetric_eigen` takes real symmetric matrices; `{Self}` is complex",
    label = "a complex Hermitian matrix has `hermitian_eigen` (`hermitian_eigenvalues`): real eigenvalues, unitary eigenvectors"
)]
pub trait RealSymmetric: RealScalar {}

#[diagnostic::do_not_recommend]
impl<T: RealScalar> RealSymmetric for T {}

/// A complex element type: [`Complex32`] or [`Complex64`] (and dual numbers of
/// them, for forward mode).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a complex scalar type",
    label = "this needs complex data: a real symmetric matrix has `symmetric_eigen` (`symmetric_eigenvalues`), or lift it with `.to_complex()`"
)]
pub trait ComplexScalar: Scalar {}

macro_rules! impl_real {
    ($t:ty, $exp:path, $ln:path, $tanh:path, $erf:path, $erfc:path, $atan2:path, $hypot:path) => {
        impl Scalar for $t {
            type Real = $t;
            const IS_COMPLEX: bool = false;

            #[inline(always)]
            fn from_real(re: $t) -> $t {
                re
            }
            #[inline(always)]
            fn from_parts(re: $t, _im: $t) -> $t {
                re
            }
            #[inline(always)]
            fn conj(self) -> $t {
                self
            }
            #[inline(always)]
            fn re(self) -> $t {
                self
            }
            #[inline(always)]
            fn im(self) -> $t {
                0.0
            }
            #[inline(always)]
            fn abs(self) -> $t {
                Float::abs(self)
            }
            #[inline(always)]
            fn norm_sqr(self) -> $t {
                self * self
            }
            #[inline(always)]
            fn exp(self) -> $t {
                $exp(self)
            }
            #[inline(always)]
            fn ln(self) -> $t {
                $ln(self)
            }
            #[inline(always)]
            fn sin(self) -> $t {
                Float::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> $t {
                Float::cos(self)
            }
            #[inline(always)]
            fn tanh(self) -> $t {
                $tanh(self)
            }
            #[inline(always)]
            fn sqrt(self) -> $t {
                Float::sqrt(self)
            }
            #[inline(always)]
            fn powi(self, n: i32) -> $t {
                Float::powi(self, n)
            }
            #[inline(always)]
            fn powf(self, p: $t) -> $t {
                Float::powf(self, p)
            }
            #[inline(always)]
            fn sin_cos(self) -> ($t, $t) {
                Float::sin_cos(self)
            }
        }

        #[diagnostic::do_not_recommend]
        impl RealScalar for $t {
            type Complex = Complex<$t>;
            #[inline(always)]
            fn from_f64(x: f64) -> $t {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn neg_infinity() -> $t {
                <$t>::NEG_INFINITY
            }
            #[inline(always)]
            fn max(self, other: $t) -> $t {
                if self.is_nan() || other.is_nan() {
                    <$t>::NAN
                } else if self >= other {
                    self
                } else {
                    other
                }
            }
            #[inline(always)]
            fn epsilon() -> $t {
                <$t>::EPSILON
            }
            #[inline(always)]
            fn min_positive() -> $t {
                <$t>::MIN_POSITIVE
            }
            #[inline(always)]
            fn erf(self) -> $t {
                $erf(self)
            }
            #[inline(always)]
            fn erfc(self) -> $t {
                $erfc(self)
            }
            #[inline(always)]
            fn atan2(self, other: $t) -> $t {
                $atan2(self, other)
            }
            #[inline(always)]
            fn floor(self) -> $t {
                Float::floor(self)
            }
            #[inline(always)]
            fn ceil(self) -> $t {
                Float::ceil(self)
            }
            #[inline(always)]
            fn round(self) -> $t {
                Float::round(self)
            }
            #[inline(always)]
            fn trunc(self) -> $t {
                Float::trunc(self)
            }
            fn hypot(self, other: $t) -> $t {
                $hypot(self, other)
            }
        }
    };
}

impl_real!(
    f32,
    branch_free::exp_f32,
    branch_free::ln_f32,
    branch_free::tanh_f32,
    branch_free::erf_f32,
    branch_free::erfc_f32,
    libm::atan2f,
    libm::hypotf
);
impl_real!(
    f64,
    Float::exp,
    Float::ln,
    branch_free::tanh_f64,
    libm::erf,
    libm::erfc,
    libm::atan2,
    libm::hypot
);

/// e^(a + ib) as (real, imaginary) parts: e^a·(cos b + i·sin b), with C99's cexp's
/// special cases for an infinite a: the imaginary part b itself where b = 0 (e^800 is
/// ∞ + 0i, not ∞ + NaN·i from ∞·0), and 0 + 0i where e^a = 0 whatever b (e^(−∞ +
/// i∞), not 0·cos ∞ = NaN). Branch-free, so the GPU's complex kernels record the
/// same formula.
pub(crate) fn complex_exp<R: RealScalar>(a: R, b: R) -> (R, R) {
    let modulus = a.exp();
    let (sin, cos) = b.sin_cos();
    // `modulus` is 0, positive or NaN: the otherwise branches keep a 0 and a NaN.
    let re = R::select_positive(modulus, modulus * cos, modulus);
    let im = R::select_positive(modulus, R::select_positive(b.abs(), modulus * sin, b), modulus);
    (re, im)
}

/// tanh(a + ib) as (real, imaginary) parts, without overflow at any |a|: with
/// e = e^(−2|a|) ∈ (0, 1],
/// tanh z = (tanh(2a)·(1 + e²) + i·4e·sin b·cos b) / ((1 − e)² + 4e·cos²b),
/// and 1 − e written tanh|a|·(1 + e), which does not cancel for small a. At a = 0 it
/// is i·tan b; for large |a|, ±1 with an imaginary part 2e·sin 2b. (The textbook
/// sinh 2a/(cosh 2a + cos 2b) is ∞/∞ beyond |a| ≈ 355 in `f64`, 45 in `f32`.)
pub(crate) fn complex_tanh<R: RealScalar>(a: R, b: R) -> (R, R) {
    let magnitude = a.abs();
    let e = (-(magnitude + magnitude)).exp();
    let one_minus_e = magnitude.tanh() * (R::one() + e);
    let (sin, cos) = b.sin_cos();
    let four_e = R::from_f64(4.0) * e;
    let denominator = one_minus_e * one_minus_e + four_e * cos * cos;
    ((a + a).tanh() * (R::one() + e * e) / denominator, four_e * sin * cos / denominator)
}

/// σ(a + ib) = 1/(1 + e^(−z)) as (real, imaginary) parts, from m = e^(−|a|) ≤ 1 so
/// that nothing overflows: with k = 1 − m = tanh(|a|/2)·(1 + m) and q = 1 + cos b =
/// 2cos²(b/2) (neither cancels near the poles a = 0, b = ±π), and
/// N = |1 + m·e^(∓ib)|² = k² + 2m·q,
/// σ = (k + m·q + i·m·sin b)/N for a > 0 and (m·(q − k) + i·m·sin b)/N otherwise
/// (e^z/(1 + e^z), which keeps the relative accuracy of a tiny σ).
pub(crate) fn complex_sigmoid<R: RealScalar>(a: R, b: R) -> (R, R) {
    let two = R::from_f64(2.0);
    let magnitude = a.abs();
    let m = (-magnitude).exp();
    let k = (magnitude / two).tanh() * (R::one() + m);
    let (half_sin, half_cos) = (b / two).sin_cos();
    let q = two * half_cos * half_cos;
    let norm = k * k + two * m * q;
    let real = R::select_positive(a, k + m * q, m * (q - k));
    (real / norm, two * m * half_sin * half_cos / norm)
}

macro_rules! impl_complex {
    ($r:ty) => {
        impl Scalar for Complex<$r> {
            type Real = $r;
            const IS_COMPLEX: bool = true;

            #[inline(always)]
            fn from_real(re: $r) -> Self {
                Complex::new(re, 0.0)
            }
            #[inline(always)]
            fn from_parts(re: $r, im: $r) -> Self {
                Complex::new(re, im)
            }
            #[inline(always)]
            fn conj(self) -> Self {
                Complex::conj(&self)
            }
            #[inline(always)]
            fn re(self) -> $r {
                self.re
            }
            #[inline(always)]
            fn im(self) -> $r {
                self.im
            }
            #[inline(always)]
            fn abs(self) -> $r {
                Complex::norm(self)
            }
            #[inline(always)]
            fn norm_sqr(self) -> $r {
                Complex::norm_sqr(&self)
            }
            #[inline(always)]
            fn exp(self) -> Self {
                let (re, im) = complex_exp(self.re, self.im);
                Complex::new(re, im)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                Complex::ln(self)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                Complex::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                Complex::cos(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                let (re, im) = complex_tanh(self.re, self.im);
                Complex::new(re, im)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                Complex::sqrt(self)
            }
            #[inline(always)]
            fn powi(self, n: i32) -> Self {
                Complex::powi(&self, n)
            }
            #[inline(always)]
            fn powf(self, p: $r) -> Self {
                Complex::powf(self, p)
            }
            #[inline(always)]
            fn sigmoid(self) -> Self {
                let (re, im) = complex_sigmoid(self.re, self.im);
                Complex::new(re, im)
            }
        }

        #[diagnostic::do_not_recommend]
        impl ComplexScalar for Complex<$r> {}
    };
}

impl_complex!(f32);
impl_complex!(f64);
