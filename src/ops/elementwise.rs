//! Elementwise operations: y = f(x) for each element, `+` and `−` of equal shapes,
//! and scaling by a scalar.
//!
//! `sigmoid(x) = 1/(1 + e⁻ˣ)`, `relu(x) = max(x, 0)`. On complex tensors `exp`, `ln`,
//! `sin`, `cos`, `tanh`, `sqrt` and `powf` are the principal-branch complex functions;
//! `abs`, `re`, `im` and `norm_sqr` return real tensors.

use core::ops::{Add, AddAssign, Div, Mul, Neg, Sub, SubAssign};

use crate::error::{ShapeError, or_panic};
use crate::product::ScalarFactor;
use crate::scalar::{Complex32, Complex64, RealScalar, Scalar};
use crate::shape::Shape;
use crate::tensor::{Storage, Tensor};

impl<T: Copy, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// Applies `f` to every element.
    #[inline(always)]
    pub fn map<U>(&self, mut f: impl FnMut(T) -> U) -> Tensor<U, S, K>
    where
        K: Storage<U, S>,
    {
        let data = self.as_slice();
        Tensor::from_flat_fn(self.shape(), |i| f(data[i]))
    }

    /// Combines two tensors of the same shape element by element; an error names both
    /// shapes when a dynamic dimension differs.
    #[inline(always)]
    pub fn try_zip_map<U: Copy, V>(
        &self,
        other: &Tensor<U, S, K>,
        mut f: impl FnMut(T, U) -> V,
    ) -> Result<Tensor<V, S, K>, ShapeError>
    where
        K: Storage<U, S> + Storage<V, S>,
    {
        self.check_same_shape(other, "zip_map")?;
        let (a, b) = (self.as_slice(), other.as_slice());
        Ok(Tensor::from_flat_fn(self.shape(), |i| f(a[i], b[i])))
    }

    /// [`Tensor::try_zip_map`] that panics on a shape mismatch.
    #[inline(always)]
    #[track_caller]
    pub fn zip_map<U: Copy, V>(&self, other: &Tensor<U, S, K>, f: impl FnMut(T, U) -> V) -> Tensor<V, S, K>
    where
        K: Storage<U, S> + Storage<V, S>,
    {
        or_panic(self.try_zip_map(other, f))
    }
}

macro_rules! unary_ops {
    ($($(#[$doc:meta])* $name:ident => $f:expr;)*) => {
        impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
            $(
                $(#[$doc])*
                #[inline(always)]
                pub fn $name(&self) -> Self {
                    self.map($f)
                }
            )*
        }
    };
}

unary_ops! {
    /// eˣ elementwise.
    exp => Scalar::exp;
    /// Natural logarithm elementwise.
    ln => Scalar::ln;
    /// Sine elementwise.
    sin => Scalar::sin;
    /// Cosine elementwise.
    cos => Scalar::cos;
    /// Hyperbolic tangent elementwise.
    tanh => Scalar::tanh;
    /// Square root elementwise.
    sqrt => Scalar::sqrt;
    /// Logistic sigmoid 1/(1 + e⁻ˣ) elementwise.
    sigmoid => |x: T| T::one() / (T::one() + (-x).exp());
    /// Complex conjugate elementwise (the identity on real tensors).
    conj => Scalar::conj;
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// xⁿ elementwise.
    pub fn powi(&self, n: i32) -> Self {
        self.map(|x| x.powi(n))
    }

    /// xᵖ elementwise, for a real exponent.
    pub fn powf(&self, p: T::Real) -> Self {
        self.map(|x| x.powf(p))
    }
}

macro_rules! real_valued_ops {
    ($($(#[$doc:meta])* $name:ident => $f:expr;)*) => {
        impl<T: Scalar, S: Shape, K: Storage<T, S> + Storage<T::Real, S>> Tensor<T, S, K> {
            $(
                $(#[$doc])*
                #[inline(always)]
                pub fn $name(&self) -> Tensor<T::Real, S, K> {
                    self.map($f)
                }
            )*
        }
    };
}

real_valued_ops! {
    /// |x| elementwise (the modulus for complex tensors).
    abs => Scalar::abs;
    /// Real part elementwise.
    re => Scalar::re;
    /// Imaginary part elementwise (zeros for real tensors).
    im => Scalar::im;
    /// Squared modulus |x|² elementwise.
    norm_sqr => Scalar::norm_sqr;
}

impl<T: RealScalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// max(x, 0) elementwise.
    pub fn relu(&self) -> Self {
        self.map(|x| if x > T::zero() { x } else { T::zero() })
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// Elementwise sum; an error names both shapes when a dynamic dimension differs.
    pub fn try_add(&self, other: &Self) -> Result<Self, ShapeError> {
        self.try_zip_map(other, |a, b| a + b)
    }

    /// Elementwise difference; an error names both shapes when a dynamic dimension
    /// differs.
    pub fn try_sub(&self, other: &Self) -> Result<Self, ShapeError> {
        self.try_zip_map(other, |a, b| a - b)
    }

    /// Multiplies every element by `factor`.
    #[inline(always)]
    pub fn scale(&self, factor: T) -> Self {
        self.map(|x| x * factor)
    }
}

macro_rules! binary_operator {
    ($Trait:ident, $method:ident, $try_method:ident, $Assign:ident, $assign:ident, $op:tt) => {
        impl<T: Scalar, S: Shape, K: Storage<T, S>> $Trait<&Tensor<T, S, K>> for &Tensor<T, S, K> {
            type Output = Tensor<T, S, K>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T, S, K>) -> Tensor<T, S, K> {
                or_panic(self.$try_method(rhs))
            }
        }

        impl<T: Scalar, S: Shape, K: Storage<T, S>> $Trait<Tensor<T, S, K>> for Tensor<T, S, K> {
            type Output = Tensor<T, S, K>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T, S, K>) -> Tensor<T, S, K> {
                or_panic(self.$try_method(&rhs))
            }
        }

        impl<T: Scalar, S: Shape, K: Storage<T, S>> $Trait<&Tensor<T, S, K>> for Tensor<T, S, K> {
            type Output = Tensor<T, S, K>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T, S, K>) -> Tensor<T, S, K> {
                or_panic(self.$try_method(rhs))
            }
        }

        impl<T: Scalar, S: Shape, K: Storage<T, S>> $Trait<Tensor<T, S, K>> for &Tensor<T, S, K> {
            type Output = Tensor<T, S, K>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T, S, K>) -> Tensor<T, S, K> {
                or_panic(self.$try_method(&rhs))
            }
        }

        impl<T: Scalar, S: Shape, K: Storage<T, S>> $Assign<&Tensor<T, S, K>> for Tensor<T, S, K> {
            #[track_caller]
            fn $assign(&mut self, rhs: &Tensor<T, S, K>) {
                or_panic(self.check_same_shape(rhs, stringify!($assign)));
                for (a, &b) in self.iter_mut().zip(rhs.iter()) {
                    *a = *a $op b;
                }
            }
        }
    };
}

binary_operator!(Add, add, try_add, AddAssign, add_assign, +);
binary_operator!(Sub, sub, try_sub, SubAssign, sub_assign, -);

impl<T: Scalar, S: Shape, K: Storage<T, S>> Neg for Tensor<T, S, K> {
    type Output = Self;
    fn neg(self) -> Self {
        self.map(|x| -x)
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Neg for &Tensor<T, S, K> {
    type Output = Tensor<T, S, K>;
    fn neg(self) -> Tensor<T, S, K> {
        self.map(|x| -x)
    }
}

macro_rules! scalar_operator {
    ($Trait:ident, $method:ident, $op:tt) => {
        impl<T: Scalar, S: Shape, K: Storage<T, S>, R: ScalarFactor<T>> $Trait<R> for Tensor<T, S, K> {
            type Output = Tensor<T, S, K>;
            #[inline(always)]
            fn $method(self, rhs: R) -> Tensor<T, S, K> {
                let factor = rhs.into_element();
                self.map(|x| x $op factor)
            }
        }

        impl<T: Scalar, S: Shape, K: Storage<T, S>, R: ScalarFactor<T>> $Trait<R> for &Tensor<T, S, K> {
            type Output = Tensor<T, S, K>;
            #[inline(always)]
            fn $method(self, rhs: R) -> Tensor<T, S, K> {
                let factor = rhs.into_element();
                self.map(|x| x $op factor)
            }
        }
    };
}

scalar_operator!(Mul, mul, *);
scalar_operator!(Div, div, /);

macro_rules! scalar_times_tensor {
    ($($t:ty),*) => {$(
        impl<S: Shape, K: Storage<$t, S>> Mul<Tensor<$t, S, K>> for $t {
            type Output = Tensor<$t, S, K>;
            #[inline(always)]
            fn mul(self, rhs: Tensor<$t, S, K>) -> Tensor<$t, S, K> {
                rhs.scale(self)
            }
        }

        impl<S: Shape, K: Storage<$t, S>> Mul<&Tensor<$t, S, K>> for $t {
            type Output = Tensor<$t, S, K>;
            #[inline(always)]
            fn mul(self, rhs: &Tensor<$t, S, K>) -> Tensor<$t, S, K> {
                rhs.scale(self)
            }
        }
    )*};
}

scalar_times_tensor!(f32, f64, Complex32, Complex64);
