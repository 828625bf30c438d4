//! `cross`: a × b = (a₂b₃ − a₃b₂, a₃b₁ − a₁b₃, a₁b₂ − a₂b₁) for vectors of three
//! elements (no conjugation), and `cross_matrix`: \[a\]×, the skew-symmetric matrix
//! with \[a\]×·b = a × b, whose exponential e^\[θk\]× is the rotation by θ about the
//! unit axis k (`a.cross_matrix().matrix_exp()`).
//!
//! Derivatives: (a × b)˙ = ȧ × b + a × ḃ; ā = conj(b) × c̄ and b̄ = c̄ × conj(a) (on
//! reals, b × c̄ and c̄ × a). \[a\]× is linear in a: its tangent is \[ȧ\]×, and
//! ā = (Ȳ₃₂ − Ȳ₂₃, Ȳ₁₃ − Ȳ₃₁, Ȳ₂₁ − Ȳ₁₂).

#[cfg(feature = "std")]
use crate::autodiff::{Var, record_own_binary, record_own_unary};
use crate::scalar::Scalar;
use crate::shape::{Const, Dim};
use crate::tensor::{Storage, Tensor};

/// A dimension of three elements, the only one `cross` and `cross_matrix` take.
#[diagnostic::on_unimplemented(
    message = "`cross` and `cross_matrix` take vectors of 3 elements, not `{Self}`",
    label = "a `Vector<T, 3>` is needed here (a `Dyn` vector of 3: `v.try_reshape((Const::<3>,))?` first)"
)]
pub trait ThreeElements: Dim {}

#[diagnostic::do_not_recommend]
impl ThreeElements for Const<3> {}

/// a × b on the elements of two 3-vectors.
fn cross_of<T: Scalar>(a: &[T], b: &[T]) -> [T; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

impl<T: Scalar, D: Dim, K: Storage<T, (D,)>> Tensor<T, (D,), K> {
    /// a × b (no conjugation), a vector orthogonal to both with length
    /// |a|·|b|·sin ∠(a, b) on real vectors.
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// let x: Vector<f64, 3> = Vector::from_array([1.0, 0.0, 0.0]);
    /// let y = Vector::from_array([0.0, 1.0, 0.0]);
    /// assert_eq!(x.cross(&y).to_array(), [0.0, 0.0, 1.0]);
    /// ```
    pub fn cross(&self, other: &Self) -> Self
    where
        D: ThreeElements,
    {
        let product = cross_of(self.as_slice(), other.as_slice());
        Tensor::from_flat_fn(self.shape(), |i| product[i])
    }

    /// \[a\]×, the skew-symmetric matrix ((0, −a₃, a₂), (a₃, 0, −a₁), (−a₂, a₁, 0)) by rows with
    /// \[a\]×·b = a × b (nalgebra's `cross_matrix`, the "hat" map of so(3)).
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// // The rotation by θ about z.
    /// let theta = 0.4f64;
    /// let axis: Vector<f64, 3> = Vector::from_array([0.0, 0.0, theta]);
    /// let rotation = axis.cross_matrix().matrix_exp().to_array();
    /// assert!((rotation[0][0] - theta.cos()).abs() < 1e-15);
    /// assert!((rotation[1][0] - theta.sin()).abs() < 1e-15);
    /// assert!((rotation[2][2] - 1.0).abs() < 1e-15);
    /// ```
    pub fn cross_matrix(&self) -> Tensor<T, (D, D), K>
    where
        D: ThreeElements,
        K: Storage<T, (D, D)>,
    {
        let a = self.as_slice();
        let entries = [T::zero(), -a[2], a[1], a[2], T::zero(), -a[0], -a[1], a[0], T::zero()];
        Tensor::from_flat_fn((self.shape().0, self.shape().0), |k| entries[k])
    }
}

/// The cotangents of c = a × b: ā = conj(b) × c̄, b̄ = c̄ × conj(a).
pub fn cross_pullback<T: Scalar, D: ThreeElements, K: Storage<T, (D,)>>(
    a: &Tensor<T, (D,), K>,
    b: &Tensor<T, (D,), K>,
    c_bar: &Tensor<T, (D,), K>,
) -> (Tensor<T, (D,), K>, Tensor<T, (D,), K>) {
    (cross_lhs_cotangent(b, c_bar), cross_rhs_cotangent(a, c_bar))
}

/// ā = conj(b) × c̄ for c = a × b.
pub(crate) fn cross_lhs_cotangent<T: Scalar, D: ThreeElements, K: Storage<T, (D,)>>(
    b: &Tensor<T, (D,), K>,
    c_bar: &Tensor<T, (D,), K>,
) -> Tensor<T, (D,), K> {
    b.map(T::conj).cross(c_bar)
}

/// b̄ = c̄ × conj(a) for c = a × b.
pub(crate) fn cross_rhs_cotangent<T: Scalar, D: ThreeElements, K: Storage<T, (D,)>>(
    a: &Tensor<T, (D,), K>,
    c_bar: &Tensor<T, (D,), K>,
) -> Tensor<T, (D,), K> {
    c_bar.cross(&a.map(T::conj))
}

/// The cotangent of Y = \[a\]×: ā = (Ȳ₃₂ − Ȳ₂₃, Ȳ₁₃ − Ȳ₃₁, Ȳ₂₁ − Ȳ₁₂).
pub fn cross_matrix_pullback<T: Scalar, D: ThreeElements, K: Storage<T, (D,)> + Storage<T, (D, D)>>(
    y_bar: &Tensor<T, (D, D), K>,
) -> Tensor<T, (D,), K> {
    let y = y_bar.as_slice();
    let entries = [y[7] - y[5], y[2] - y[6], y[3] - y[1]];
    Tensor::from_flat_fn((y_bar.shape().0,), |i| entries[i])
}

#[cfg(feature = "std")]
impl<T: Scalar, D: Dim, K: Storage<T, (D,)>> Var<Tensor<T, (D,), K>> {
    /// a × b, recorded with its pullback ā = conj(b) × c̄, b̄ = c̄ × conj(a) (see
    /// [`Tensor::cross`]).
    pub fn cross(&self, other: &Self) -> Self
    where
        D: ThreeElements,
    {
        let (a, b) = (self.shared_value(), other.shared_value());
        record_own_binary(self, other, a.cross(&b), move |c_bar| cross_pullback(&a, &b, c_bar))
    }

    /// \[a\]×, recorded with its pullback (see [`Tensor::cross_matrix`]).
    pub fn cross_matrix(&self) -> Var<Tensor<T, (D, D), K>>
    where
        D: ThreeElements,
        K: Storage<T, (D, D)>,
    {
        record_own_unary(self, self.value().cross_matrix(), cross_matrix_pullback)
    }
}
