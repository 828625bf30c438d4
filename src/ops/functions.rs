//! Named elementwise functions of real tensors, as methods of every kind of tensor
//! that maps a [`ScalarFunction`]: host and GPU tensors, their `Var`s (reverse mode),
//! tensors of duals and `CudaDual`s (forward mode). Each is one Rust definition,
//! which the GPU turns into its kernels as it does a library author's own function.
//!
//! | method | value | derivative |
//! | --- | --- | --- |
//! | `softplus()` | ln(1 + eˣ), as max(x, 0) + ln(1 + e^−\|x\|) | σ(x) |
//! | `silu()` | x·σ(x) (swish) | σ(x)·(1 + x·(1 − σ(x))) |
//! | `leaky_relu(a)` | x for x > 0, a·x otherwise | 1 for x > 0, a otherwise (a at 0, as PyTorch) |
//! | `clamp(low, high)` | min(max(x, low), high) | 1 on the closed interval [low, high], 0 outside and at NaN (as PyTorch) |
//! | `maximum(&y)`, `minimum(&y)` | the larger (smaller) element of two tensors | the picked element's: half of each on a tie (as PyTorch and JAX), a NaN's |
//! | `tan()`, `atan()`, `asin()`, `acos()` | the trigonometric functions and their inverses | 1 + tan² x, 1/(1 + x²), ±1/√(1 − x²) |
//! | `erf()`, `erfc()` | the error function and 1 − erf x (accurate near erf x = 1) | ±(2/√π)·e^(−x²) |
//! | `floor()`, `ceil()`, `round()`, `trunc()` | rounding (`round`: half away from zero, as Rust's) | 0, as JAX and PyTorch take it |
//! | `fract()` | x − trunc(x) | 1 |
//!
//! The bounds and the slope are `f64` for tensors of any real element type. On the
//! GPU each distinct value of one is part of its kernel's formula: a new value
//! compiles new kernels (once, then cached), so a bound that changes at every step
//! belongs in a tensor (`maximum`/`minimum`) instead.
//!
//! In static mode (`#[differentiable]`) they are differentiated by the same
//! definitions (`x.softplus()` is `x.map_function(SoftplusFunction)` there; a
//! tensor's `clamp` asks `low ≤ high`).
//!
//! ```
//! use fluxion::prelude::*;
//!
//! let x: Vector<f64, 3> = Vector::from_array([-2.0, 0.5, 3.0]);
//! assert_eq!(x.clamp(-1.0, 1.0).to_array(), [-1.0, 0.5, 1.0]);
//! let g = grad(|x: Var<Vector<f64, 3>>| x.clamp(-1.0, 1.0).sum(), &x);
//! assert_eq!(g.to_array(), [0.0, 1.0, 0.0]);
//! let y = Vector::from_array([0.0, 1.0, 2.0]);
//! assert_eq!(x.maximum(&y).to_array(), [0.0, 1.0, 3.0]);
//! ```

#[cfg(feature = "std")]
use crate::autodiff::Var;
use crate::autodiff::rules;
use crate::error::ShapeError;
use crate::ops::elementwise::{Fusable, FusedFunction, ScalarFunction};
use crate::scalar::RealScalar;
use crate::shape::Shape;
use crate::tensor::{Storage, StorageKind, Tensor};

/// softplus(x) = ln(1 + eˣ), computed as max(x, 0) + log1p(e^−|x|): finite wherever
/// the result is (+∞ at +∞, 0 at −∞), and accurate to rounding where it is tiny
/// (e^−40 at −40); its derivative is σ(x).
#[derive(Clone, Copy, Debug)]
pub struct SoftplusFunction;

impl ScalarFunction for SoftplusFunction {
    #[inline(always)]
    fn value<T: RealScalar>(&self, x: T) -> T {
        x.max(T::zero()) + ln_1p((-x.abs()).exp())
    }
    #[inline(always)]
    fn derivative<T: RealScalar>(&self, x: T, _: T) -> T {
        x.sigmoid()
    }
}

/// ln(1 + u) for u ≥ 0, accurate where u is tiny: with w = 1 + u rounded,
/// ln(w)·u/(w − 1) corrects the rounding of w (u itself when w rounds to 1), chosen
/// without a branch on the value so that a GPU kernel records it.
fn ln_1p<T: RealScalar>(u: T) -> T {
    let w = T::one() + u;
    let rounded = w - T::one();
    T::select_positive(rounded, w.ln() * u / rounded, u)
}

/// SiLU (swish), x·σ(x); its derivative σ(x) + y·(1 − σ(x)) with y = x·σ(x).
#[derive(Clone, Copy, Debug)]
pub struct SiluFunction;

impl ScalarFunction for SiluFunction {
    #[inline(always)]
    fn value<T: RealScalar>(&self, x: T) -> T {
        x * x.sigmoid()
    }
    #[inline(always)]
    fn derivative<T: RealScalar>(&self, x: T, y: T) -> T {
        let sigmoid = x.sigmoid();
        sigmoid + y * (T::one() - sigmoid)
    }
}

/// Leaky ReLU: x for x > 0, `slope`·x otherwise; its derivative 1 for x > 0, `slope`
/// otherwise.
#[derive(Clone, Copy, Debug)]
pub struct LeakyReluFunction {
    /// The slope for x ≤ 0 (PyTorch's default is 0.01).
    pub slope: f64,
}

impl ScalarFunction for LeakyReluFunction {
    #[inline(always)]
    fn value<T: RealScalar>(&self, x: T) -> T {
        T::select_positive(x, x, T::from_f64(self.slope) * x)
    }
    #[inline(always)]
    fn derivative<T: RealScalar>(&self, x: T, _: T) -> T {
        T::select_positive(x, T::one(), T::from_f64(self.slope))
    }
}

/// min(max(x, low), high); its derivative 1 on the closed interval [low, high] and 0
/// outside (as PyTorch's `clamp`). With low > high every element is `high`, as in
/// PyTorch.
#[derive(Clone, Copy, Debug)]
pub struct ClampFunction {
    /// The lower bound.
    pub low: f64,
    /// The upper bound.
    pub high: f64,
}

impl ScalarFunction for ClampFunction {
    #[inline(always)]
    fn value<T: RealScalar>(&self, x: T) -> T {
        x.max(T::from_f64(self.low)).min(T::from_f64(self.high))
    }
    #[inline(always)]
    fn derivative<T: RealScalar>(&self, x: T, _: T) -> T {
        // 0 below `low`, above `high` or at NaN (|x| + 1 > 0 fails only there), else 1.
        let number = T::select_positive(x.abs() + T::one(), T::one(), T::zero());
        let inside = T::select_positive(x - T::from_f64(self.high), T::zero(), number);
        T::select_positive(T::from_f64(self.low) - x, T::zero(), inside)
    }
    /// 0 outside the bounds whatever comes in (an infinite cotangent too).
    fn chain_from_slope<T: RealScalar>(&self, slope: T, t: T) -> T {
        T::select_positive(slope, slope * t, T::zero())
    }
}

/// The larger of two elements (a NaN is picked); its derivative is split in halves
/// on a tie.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Larger;

impl FusedFunction<2> for Larger {
    const NAME: &'static str = "maximum";
    #[inline(always)]
    fn value<T: RealScalar>(&self, [a, b]: [T; 2]) -> T {
        a.max(b)
    }
}

/// The smaller of two elements (a NaN is picked); its derivative is split in halves
/// on a tie.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Smaller;

impl FusedFunction<2> for Smaller {
    const NAME: &'static str = "minimum";
    #[inline(always)]
    fn value<T: RealScalar>(&self, [a, b]: [T; 2]) -> T {
        a.min(b)
    }
}

/// What maps a [`ScalarFunction`] over its elements: every kind of real tensor, its
/// `Var`, its duals. Each forwards to the kind's own `map_function`.
#[diagnostic::on_unimplemented(
    message = "cannot map a real scalar function over `{Self}`",
    label = "the named elementwise functions and `ScalarFunction`s take real (f32, f64) data: take `.re()`, `.abs()` or `.norm_sqr()` first"
)]
pub trait MapFunction: Sized {
    /// `f` applied to every element, with its derivative in every mode.
    #[track_caller]
    fn map_function<F: ScalarFunction>(&self, f: F) -> Self;
}

#[diagnostic::do_not_recommend]
impl<T: RealScalar, S: Shape, K: Storage<T, S>> MapFunction for Tensor<T, S, K> {
    fn map_function<F: ScalarFunction>(&self, f: F) -> Self {
        Tensor::<T, S, K>::map_function(self, f)
    }
}

#[cfg(feature = "std")]
#[diagnostic::do_not_recommend]
impl<T: RealScalar, S: Shape, K: Storage<T, S>> MapFunction for Var<Tensor<T, S, K>> {
    fn map_function<F: ScalarFunction>(&self, f: F) -> Self {
        Var::<Tensor<T, S, K>>::map_function(self, f)
    }
}

/// Methods of [`ElementwiseFunctions`] that map one of static mode's real-function
/// rules (each a [`ScalarFunction`]: the same definition and derivative in every mode).
macro_rules! rule_methods {
    ($($(#[$doc:meta])* $method:ident => $rule:ident;)+) => {$(
        $(#[$doc])*
        fn $method(&self) -> Self
        where
            Self: MapFunction,
        {
            self.map_function(rules::$rule)
        }
    )+};
}

/// The named elementwise functions (see the module docs), for every kind of tensor
/// (in the prelude). Each method asks what it applies (a [`MapFunction`] or a
/// [`Fusable`]), so a call on complex data is an error saying that it needs real
/// data.
pub trait ElementwiseFunctions: Sized {
    rule_methods! {
        /// tan x elementwise; its derivative 1 + tan² x.
        tan => Tan;
        /// atan x elementwise, in (−π/2, π/2); its derivative 1/(1 + x²).
        atan => ArcTan;
        /// asin x elementwise for |x| ≤ 1; its derivative 1/√(1 − x²).
        asin => ArcSin;
        /// acos x elementwise for |x| ≤ 1; its derivative −1/√(1 − x²).
        acos => ArcCos;
        /// The error function erf x elementwise; its derivative (2/√π)·e^(−x²).
        erf => ErrorFunction;
        /// erfc x = 1 − erf x elementwise, accurate where erf x is near 1; its
        /// derivative −(2/√π)·e^(−x²).
        erfc => ComplementaryErrorFunction;
        /// ⌊x⌋ elementwise; its derivative 0 (as JAX and PyTorch take it).
        floor => Floor;
        /// ⌈x⌉ elementwise; its derivative 0.
        ceil => Ceiling;
        /// x rounded half away from zero elementwise (Rust's `round`; PyTorch's and
        /// NumPy's round half to even); its derivative 0.
        round => Rounding;
        /// x rounded toward zero elementwise; its derivative 0.
        trunc => Truncation;
        /// x − trunc(x) elementwise; its derivative 1.
        fract => FractionalPart;
    }

    /// softplus(x) = ln(1 + eˣ), stable at any magnitude.
    fn softplus(&self) -> Self
    where
        Self: MapFunction,
    {
        self.map_function(SoftplusFunction)
    }

    /// SiLU (swish), x·σ(x).
    fn silu(&self) -> Self
    where
        Self: MapFunction,
    {
        self.map_function(SiluFunction)
    }

    /// x for x > 0, `slope`·x otherwise.
    fn leaky_relu(&self, slope: f64) -> Self
    where
        Self: MapFunction,
    {
        self.map_function(LeakyReluFunction { slope })
    }

    /// min(max(x, low), high) elementwise.
    ///
    /// # Panics
    /// When a bound is NaN.
    #[track_caller]
    fn clamp(&self, low: f64, high: f64) -> Self
    where
        Self: MapFunction,
    {
        assert!(!low.is_nan() && !high.is_nan(), "clamp: the bounds {low} and {high} must be numbers");
        self.map_function(ClampFunction { low, high })
    }

    /// The larger element of `self` and `other` at each position (a NaN is picked);
    /// its derivative is the picked element's, half of each on a tie.
    ///
    /// # Panics
    /// When a dynamic dimension differs (the message names both shapes).
    #[track_caller]
    fn maximum(&self, other: &Self) -> Self
    where
        Self: Fusable<2>,
    {
        Larger.apply([self, other])
    }

    /// [`maximum`](Self::maximum), or an error naming both shapes when a dynamic
    /// dimension differs.
    fn try_maximum(&self, other: &Self) -> Result<Self, ShapeError>
    where
        Self: Fusable<2>,
    {
        Larger.try_apply([self, other])
    }

    /// [`minimum`](Self::minimum), or an error naming both shapes when a dynamic
    /// dimension differs.
    fn try_minimum(&self, other: &Self) -> Result<Self, ShapeError>
    where
        Self: Fusable<2>,
    {
        Smaller.try_apply([self, other])
    }

    /// The smaller element of `self` and `other` at each position (a NaN is picked);
    /// its derivative is the picked element's, half of each on a tie.
    ///
    /// # Panics
    /// When a dynamic dimension differs (the message names both shapes).
    #[track_caller]
    fn minimum(&self, other: &Self) -> Self
    where
        Self: Fusable<2>,
    {
        Smaller.apply([self, other])
    }
}

impl<T, S: Shape, K: StorageKind<T, S>> ElementwiseFunctions for Tensor<T, S, K> {}

#[cfg(feature = "std")]
impl<T, S: Shape, K: StorageKind<T, S>> ElementwiseFunctions for Var<Tensor<T, S, K>> {}
