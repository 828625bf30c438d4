//! Operations on [`Var`]: each computes the value with the tensor operation and
//! records the reverse-mode rule that sits beside that operation's kernel.

use core::ops::{Add, Div, Mul, Neg, Sub};

use num_traits::Zero;

use super::rules::{self, BinaryRule, UnaryRule};
use super::tangent::{Differentiable, VectorSpace};
use super::tape::{
    Var, record_binary_in_place, record_many, record_one_and_pair, record_own_binary, record_own_unary,
    record_unary_in_place,
};
use crate::backend::cpu::{Write, write_elements};
use crate::error::{ShapeError, or_panic};
use crate::ops::attention::{self, Heads, Mask, Seen, Tokens};
use crate::ops::conv::{
    Groups, Padding, Stride, add_channels_pullback, conv2d_pullback, mul_channels_pullback,
    normalize_groups_pullback,
};
use crate::ops::elementwise::{
    Elementary, Fusable, FusedFunction, KindArithmetic, ScalarFunction, abs_cotangent, abs_pullback,
    conj_pullback, elementary_methods, elementary_pullback, function_pullback, fused_pullback_of,
    im_pullback, norm_sqr_pullback, re_pullback, relu_pullback,
};
use crate::ops::layout::{
    axes_put_back, broadcast_pullback, concat_pullback, narrow_pullback, narrow_range_pullback,
    reshape_pullback, transpose_pullback,
};
use crate::ops::pool::{Window, avg_pool2d_pullback, max_pool2d_pullback};
use crate::ops::reduce::{
    max_axis_pullback, max_pullback, mean_axis_pullback, mean_pullback, norm_pullback, sum_axis_pullback,
    sum_pullback,
};
use crate::ops::rows::{
    add_rows_pullback, column_pullback, gather_rows_pullback, mul_rows_pullback, normalize_rows_pullback,
    row_pullback,
};
use crate::ops::softmax::{log_softmax_pullback, logsumexp_pullback, softmax_pullback};
use crate::product::dot::dotu_pullback;
use crate::product::hadamard::hadamard_pullback;
use crate::product::inner::inner_pullback;
use crate::product::kron::kron_pullback;
use crate::product::outer::outer_pullback;
use crate::product::{MatMul, MatMulTransposed, ScalarFactor, TransposedMatMul};
use crate::scalar::{RealDot, RealScalar, Scalar};
use crate::shape::constraint::{
    AddsUpTo, Axis, Broadcastable, ConvolvesTo, FitsSlice, HasAxis, InsertsAxis, MultipliesTo, PermutesAxes,
    PoolsTo, SameElementCount, SplitsIntoHeads,
};
use crate::shape::{Const, Dim, Dyn, Shape, StaticShape};
use crate::tensor::{SameKind, Storage, StorageKind, Tensor, Zeros};

/// A traced tensor's sizes, its value's: a body written once for plain and traced
/// tensors (a [`#[module]`](crate::nn::layer::module) block) reads its batch size as
/// `x.dims()` in both.
impl<T, S: Shape, K: StorageKind<T, S>> Var<Tensor<T, S, K>> {
    /// The shape.
    pub fn shape(&self) -> S {
        self.value().shape()
    }

    /// The run-time sizes of the shape.
    pub fn dims(&self) -> crate::shape::Dims {
        self.value().dims()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.value().shape().num_elements()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Var<Tensor<T, S, K>> {
    /// f(x) elementwise, with x̄ = conj(f′(x))·ȳ.
    pub fn elementary(&self, f: Elementary<T::Real>) -> Self {
        let x = self.shared_value();
        record_unary_in_place(self, x.elementary(f), move |y, y_bar, x_bar| {
            x_bar.write_or_add(x.shape(), |x_bar, write| elementary_pullback(f, (&x, y, y_bar), x_bar, write))
        })
    }

    /// max(x, 0) elementwise.
    pub fn relu(&self) -> Self
    where
        T: RealScalar,
    {
        let x = self.shared_value();
        record_own_unary(self, x.relu(), move |y_bar| relu_pullback(&x, y_bar))
    }

    /// `f` elementwise for a library author's [`ScalarFunction`], with x̄ = f′(x)·ȳ.
    pub fn map_function<F: ScalarFunction>(&self, f: F) -> Self
    where
        T: RealScalar,
    {
        let x = self.shared_value();
        record_unary_in_place(self, x.map_function(f), move |y, y_bar, x_bar| {
            x_bar.add(|| function_pullback(f, (&x, y, y_bar)))
        })
    }

    /// conj(x) elementwise.
    pub fn conj(&self) -> Self {
        record_own_unary(self, self.value().conj(), conj_pullback)
    }

    /// `factor`·x.
    pub fn scale(&self, factor: T) -> Self {
        record_own_unary(self, self.value().scale(factor), move |y_bar: &Tensor<T, S, K>| {
            y_bar.scale(factor.conj())
        })
    }

    /// s·x for a differentiated scalar s: x̄ = conj(s)·ȳ, s̄ = ⟨x, ȳ⟩.
    pub fn scale_by(&self, s: &Var<T>) -> Self {
        let (x, factor) = (self.shared_value(), *s.value());
        record_own_binary(self, s, x.scale(factor), move |y_bar: &Tensor<T, S, K>| {
            (y_bar.scale(factor.conj()), x.inner(y_bar))
        })
    }

    /// Elementwise sum (panics naming both shapes on a dynamic mismatch).
    #[track_caller]
    pub fn add(&self, other: &Self) -> Self {
        self.sum_or_difference(other, self.value() + other.value(), T::one())
    }

    /// Elementwise difference (panics naming both shapes on a dynamic mismatch).
    #[track_caller]
    pub fn sub(&self, other: &Self) -> Self {
        self.sum_or_difference(other, self.value() - other.value(), -T::one())
    }

    /// Records y = a ± b (the sign of b is `sign`): ā = ȳ and b̄ = sign·ȳ, written
    /// straight into the adjoints.
    fn sum_or_difference(&self, other: &Self, y: Tensor<T, S, K>, sign: T) -> Self {
        let shapes = (self.value().shape(), other.value().shape());
        record_binary_in_place(self, other, y, move |y, y_bar: &Tensor<T, S, K>, mut adjoints| {
            or_panic(y.check_same_shape(y_bar, "add/sub pullback"));
            adjoints.write_or_add(shapes, |a_bar, b_bar| {
                if let Some((a_bar, write)) = a_bar {
                    write_elements(write, a_bar.as_mut_slice(), y_bar.iter().copied());
                }
                if let Some((b_bar, write)) = b_bar {
                    write_elements(write, b_bar.as_mut_slice(), y_bar.iter().map(|&g| sign * g));
                }
            })
        })
    }

    /// Elementwise product.
    #[track_caller]
    pub fn hadamard(&self, other: &impl Operand<Tensor<T, S, K>>) -> Self {
        let other = other.to_var();
        let (a, b) = (self.shared_value(), other.shared_value());
        record_own_binary(self, &other, a.hadamard(&b), move |y_bar| hadamard_pullback(&a, &b, y_bar))
    }

    /// Σ aᵢbᵢ on real data.
    #[track_caller]
    pub fn dot(&self, other: &impl Operand<Tensor<T, S, K>>) -> Var<T>
    where
        T: RealDot,
    {
        let other = other.to_var();
        let (a, b) = (self.shared_value(), other.shared_value());
        record_own_binary(self, &other, a.dot(&b), move |&s_bar| dotu_pullback(&a, &b, s_bar))
    }

    /// Σ aᵢbᵢ without conjugation.
    #[track_caller]
    pub fn dotu(&self, other: &Self) -> Var<T> {
        let (a, b) = (self.shared_value(), other.shared_value());
        record_own_binary(self, other, a.dotu(&b), move |&s_bar| dotu_pullback(&a, &b, s_bar))
    }

    /// ⟨a, b⟩ = Σ conj(aᵢ)·bᵢ.
    #[track_caller]
    pub fn inner(&self, other: &Self) -> Var<T> {
        let (a, b) = (self.shared_value(), other.shared_value());
        record_own_binary(self, other, a.inner(&b), move |&s_bar| inner_pullback(&a, &b, s_bar))
    }

    /// Σ of all elements.
    pub fn sum(&self) -> Var<T> {
        let x = self.shared_value();
        record_own_unary(self, x.sum(), move |&s_bar| sum_pullback(&x, s_bar))
    }

    /// ‖x‖ = √Σ|xᵢ|² (see [`Tensor::norm`]), with x̄ = ȳ·x/‖x‖ (0 at x = 0, where
    /// the norm has no derivative: the subgradient PyTorch takes).
    pub fn norm(&self) -> Var<T::Real> {
        let x = self.shared_value();
        let y = x.norm();
        record_own_unary(self, y, move |&y_bar: &T::Real| norm_pullback(&x, y, y_bar))
    }

    /// Mean of all elements.
    pub fn mean(&self) -> Var<T> {
        let x = self.shared_value();
        record_own_unary(self, x.mean(), move |&s_bar| mean_pullback(&x, s_bar))
    }

    /// The largest element; its cotangent flows to the first maximum.
    pub fn max(&self) -> Var<T>
    where
        T: RealScalar,
    {
        let x = self.shared_value();
        record_own_unary(self, x.max(), move |&s_bar| max_pullback(&x, s_bar))
    }

    /// Σ along `AXIS`.
    pub fn sum_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Var<Tensor<T, S::Removed, K>>
    where
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let x = self.shared_value();
        record_own_unary(self, x.sum_axis(axis), move |y_bar| sum_axis_pullback(&x, y_bar))
    }

    /// Mean along `AXIS`.
    pub fn mean_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Var<Tensor<T, S::Removed, K>>
    where
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let x = self.shared_value();
        record_own_unary(self, x.mean_axis(axis), move |y_bar| mean_axis_pullback(&x, y_bar))
    }

    /// Largest element along `AXIS`.
    pub fn max_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Var<Tensor<T, S::Removed, K>>
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let x = self.shared_value();
        record_own_unary(self, x.max_axis(axis), move |y_bar| max_axis_pullback(&x, y_bar))
    }

    /// ln Σ exp along `AXIS`.
    pub fn logsumexp<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Var<Tensor<T, S::Removed, K>>
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let x = self.shared_value();
        record_own_unary(self, x.logsumexp(axis), move |y_bar| logsumexp_pullback(&x, y_bar))
    }

    /// Softmax along `AXIS`.
    pub fn softmax<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Self
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let y = self.value().softmax(axis);
        record_unary_in_place(self, y, |y, y_bar, x_bar| {
            x_bar.add(|| softmax_pullback::<AXIS, _, _, _>(y, y_bar))
        })
    }

    /// Log-softmax along `AXIS`.
    pub fn log_softmax<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Self
    where
        T: RealScalar,
        S: HasAxis<AXIS>,
        K: Storage<T, S::Removed>,
    {
        let y = self.value().log_softmax(axis);
        record_unary_in_place(self, y, |y, y_bar, x_bar| {
            x_bar.add(|| log_softmax_pullback::<AXIS, _, _, _>(y, y_bar))
        })
    }

    /// The same elements under the static shape `Target`.
    pub fn reshape<Target>(&self) -> Var<Tensor<T, Target, K>>
    where
        Target: StaticShape,
        S: SameElementCount<Target>,
        K: Storage<T, Target>,
    {
        let () = <S as SameElementCount<Target>>::CHECK;
        let x = self.shared_value();
        record_own_unary(self, x.relabelled(), move |y_bar| reshape_pullback(&x, y_bar))
    }

    /// The same elements under `shape` (any shapes, checked when it runs); an error
    /// names both shapes when the element counts differ.
    pub fn try_reshape<Target: Shape>(&self, shape: Target) -> Result<Var<Tensor<T, Target, K>>, ShapeError>
    where
        K: Storage<T, Target>,
    {
        let x = self.shared_value();
        let y = x.try_reshape(shape)?;
        Ok(record_own_unary(self, y, move |y_bar| reshape_pullback(&x, y_bar)))
    }

    /// Repeated along new leading axes to `shape` (any shapes, checked when it runs).
    pub fn try_broadcast_to<Target>(&self, shape: Target) -> Result<Var<Tensor<T, Target, K>>, ShapeError>
    where
        Target: Shape,
        S: Broadcastable<Target>,
        K: Storage<T, Target>,
    {
        let x = self.shared_value();
        let y = x.try_broadcast_to(shape)?;
        Ok(record_own_unary(self, y, move |y_bar| broadcast_pullback(&x, y_bar)))
    }

    /// The elements as a vector of static length `N`.
    pub fn flatten<const N: usize>(&self) -> Var<Tensor<T, (Const<N>,), K>>
    where
        S: SameElementCount<(Const<N>,)>,
        K: Storage<T, (Const<N>,)>,
    {
        let () = <S as SameElementCount<(Const<N>,)>>::CHECK;
        let x = self.shared_value();
        record_own_unary(self, x.relabelled(), move |y_bar| reshape_pullback(&x, y_bar))
    }

    /// Repeated along new leading axes to the static shape `Target`.
    pub fn broadcast<Target>(&self) -> Var<Tensor<T, Target, K>>
    where
        Target: StaticShape,
        S: Broadcastable<Target>,
        K: Storage<T, Target>,
    {
        let x = self.shared_value();
        record_own_unary(self, x.broadcast(), move |y_bar| broadcast_pullback(&x, y_bar))
    }

    /// Repeated along a new axis at `AXIS` of the static shape `Target` (see
    /// [`Tensor::broadcast_axis`]); x̄ = Σ of ȳ along `AXIS`.
    pub fn broadcast_axis<const AXIS: usize, Target>(&self, axis: Axis<AXIS>) -> Var<Tensor<T, Target, K>>
    where
        Target: StaticShape + InsertsAxis<AXIS, S>,
        K: Storage<T, Target>,
    {
        or_panic(self.try_broadcast_axis_to(axis, Target::default()))
    }

    /// [`Var::broadcast_axis`] to `shape`; an error names both shapes when `shape`
    /// without axis `AXIS` is not the value's shape.
    pub fn try_broadcast_axis_to<const AXIS: usize, Target>(
        &self,
        axis: Axis<AXIS>,
        shape: Target,
    ) -> Result<Var<Tensor<T, Target, K>>, ShapeError>
    where
        Target: InsertsAxis<AXIS, S>,
        K: Storage<T, Target>,
    {
        let y = self.value().try_broadcast_axis_to(axis, shape)?;
        Ok(record_own_unary(self, y, move |y_bar| y_bar.sum_axis(axis)))
    }

    /// Concatenation with `other` along `AXIS`.
    #[track_caller]
    pub fn concat<const AXIS: usize, B: Dim, C: Dim>(
        &self,
        axis: Axis<AXIS>,
        other: &Var<Tensor<T, S::Replaced<B>, K>>,
    ) -> Var<Tensor<T, S::Replaced<C>, K>>
    where
        S: HasAxis<AXIS>,
        S::Axis: AddsUpTo<B, C>,
        K: Storage<T, S::Replaced<B>> + Storage<T, S::Replaced<C>>,
    {
        let () = <S::Axis as AddsUpTo<B, C>>::CHECK;
        let (a, b) = (self.shared_value(), other.shared_value());
        let y = or_panic(a.join_along(axis, &b));
        record_own_binary(self, other, y, move |y_bar| concat_pullback::<AXIS, _, _, _, _, _>(&a, &b, y_bar))
    }

    /// The axes in a new order (see [`Tensor::permute`]), with x̄ = ȳ's axes put
    /// back ([`permute_pullback`](crate::ops::layout::permute_pullback)).
    pub fn permute<P: PermutesAxes<S>>(&self, _: P) -> Var<Tensor<T, P::Output, K>>
    where
        K: Storage<T, P::Output>,
    {
        let () = P::CHECK;
        record_own_unary(self, self.value().reorder_axes::<P>(), |y_bar| axes_put_back::<T, S, P, K>(y_bar))
    }

    /// The `LEN` entries from `START` along `AXIS`.
    #[track_caller]
    pub fn narrow<const AXIS: usize, const START: usize, const LEN: usize>(
        &self,
    ) -> Var<Tensor<T, S::Replaced<Const<LEN>>, K>>
    where
        S: HasAxis<AXIS>,
        S::Axis: FitsSlice<START, LEN>,
        K: Storage<T, S::Replaced<Const<LEN>>>,
    {
        let () = <S::Axis as FitsSlice<START, LEN>>::CHECK;
        let x = self.shared_value();
        let y = or_panic(x.window_along::<AXIS, START, LEN>());
        record_own_unary(self, y, move |y_bar| narrow_pullback::<AXIS, START, LEN, _, _, _>(&x, y_bar))
    }

    /// The entries `range` along `AXIS`, with offsets known at run time (see
    /// [`Tensor::narrow_range`]; the axis becomes `Dyn`), recorded with its pullback
    /// ([`narrow_range_pullback`]: ȳ placed into zeros): a mini-batch, or the
    /// leading k singular vectors for a k chosen as the program runs.
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// // ‖A − A_k‖² for the rank-k truncation A_k = U_k·diag(σ_k)·V_kᵀ: its gradient
    /// // is 2(A − A_k), here 2σ₃·u₃·v₃ᵀ.
    /// let a = Tensor::<f64, (Dyn, Dyn), Heap>::from_shape_fn((Dyn(4), Dyn(3)), |[i, j]| (i * 3 + j) as f64 % 5.0 - 1.5);
    /// let k = 2;
    /// let (value, gradient) = value_and_grad(
    ///     |a: Var<Tensor<f64, (Dyn, Dyn), Heap>>| {
    ///         let (u, sigma, v_t) = a.svd();
    ///         let (u, sigma, v_t) =
    ///             (u.narrow_range(Axis::<1>, 0..k), sigma.narrow_range(Axis::<0>, 0..k), v_t.narrow_range(Axis::<0>, 0..k));
    ///         (&a - &u.mul_rows(&sigma).matmul(&v_t)).norm_sqr().sum()
    ///     },
    ///     &a,
    /// );
    /// let sigma = a.singular_values();
    /// assert!((value - sigma[[2]] * sigma[[2]]).abs() < 1e-12);
    /// let (u, s, v_t) = a.svd();
    /// let rest = u.narrow_range(Axis::<1>, 2..3).scale(s[[2]]).matmul(&v_t.narrow_range(Axis::<0>, 2..3));
    /// assert!((gradient - rest.scale(2.0)).iter().all(|x| x.abs() < 1e-12));
    /// ```
    ///
    /// # Panics
    /// When the range does not fit.
    #[track_caller]
    pub fn narrow_range<const AXIS: usize>(
        &self,
        axis: Axis<AXIS>,
        range: core::ops::Range<usize>,
    ) -> Var<Tensor<T, S::Replaced<Dyn>, K>>
    where
        S: HasAxis<AXIS>,
        K: Storage<T, S::Replaced<Dyn>>,
    {
        or_panic(self.try_narrow_range(axis, range))
    }

    /// [`narrow_range`](Self::narrow_range), or [`Tensor::try_narrow_range`]'s error
    /// with nothing recorded.
    pub fn try_narrow_range<const AXIS: usize>(
        &self,
        axis: Axis<AXIS>,
        range: core::ops::Range<usize>,
    ) -> Result<Var<Tensor<T, S::Replaced<Dyn>, K>>, ShapeError>
    where
        S: HasAxis<AXIS>,
        K: Storage<T, S::Replaced<Dyn>>,
    {
        let x = self.shared_value();
        let y = x.try_narrow_range(axis, range.clone())?;
        Ok(record_own_unary(self, y, move |y_bar| {
            narrow_range_pullback::<AXIS, _, _, _>(&x, range.clone(), y_bar)
        }))
    }
}

elementary_methods!(impl<T: Scalar, S: Shape, K: Storage<T, S>> Var<Tensor<T, S, K>>);

/// The right operand of a product of traced tensors: a `Var`, or a plain tensor,
/// which takes part as a constant (`x.matmul(&w)` with a plain `w` needs no
/// `Var::constant`).
#[diagnostic::on_unimplemented(
    message = "expected a `Var` or a plain value of type `{V}`, found `{Self}`",
    label = "this operand's type (or shape) differs",
    note = "a plain tensor takes part as a constant; it must have the same element type, shape and storage"
)]
pub trait Operand<V> {
    /// The operand as a `Var`: itself, or a constant holding a copy.
    fn to_var(&self) -> Var<V>;
}

impl<V> Operand<V> for Var<V> {
    #[inline]
    fn to_var(&self) -> Var<V> {
        self.clone()
    }
}

impl<T, S: Shape, K: StorageKind<T, S>> Operand<Tensor<T, S, K>> for Tensor<T, S, K> {
    #[inline]
    fn to_var(&self) -> Var<Tensor<T, S, K>> {
        Var::constant(self.clone())
    }
}

/// A loss's prediction: traced, and the loss is traced (for `value_and_grad`), or
/// plain, and the loss is a plain value (a validation loss; nothing recorded). So a
/// training loss computed from an untraced forward pass by mistake is a compile error
/// (the closure must return a `Var`), not a silent zero gradient.
#[diagnostic::on_unimplemented(
    message = "expected a prediction `Var` or a plain value of type `{V}`, found `{Self}`",
    label = "this prediction's type (or shape) differs",
    note = "a traced prediction gives a traced loss; a plain one a plain loss"
)]
pub trait Prediction<V>: Operand<V> {
    /// What a loss `R` of this prediction is: `Var<R>` for a traced one, `R` for a
    /// plain one.
    type Loss<R>;
    /// The loss as this prediction gives it.
    fn loss<R: Clone>(loss: Var<R>) -> Self::Loss<R>;
}

impl<V> Prediction<V> for Var<V> {
    type Loss<R> = Var<R>;
    #[inline]
    fn loss<R: Clone>(loss: Var<R>) -> Var<R> {
        loss
    }
}

impl<T, S: Shape, K: StorageKind<T, S>> Prediction<Tensor<T, S, K>> for Tensor<T, S, K> {
    type Loss<R> = R;
    #[inline]
    fn loss<R: Clone>(loss: Var<R>) -> R {
        loss.value().clone()
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Var<Tensor<T, S, K>> {
    /// The element at `index`, with x̄ = ȳ at that position and 0 elsewhere.
    ///
    /// # Panics
    /// When `index` is out of bounds (the message names the index and the shape).
    #[track_caller]
    pub fn at(&self, index: S::Index) -> Var<T> {
        let (shape, value) = (self.value().shape(), self.value()[index]);
        let offset = shape.offset(index).expect("the index was checked by the read above");
        record_unary_in_place(self, value, move |_, &y_bar: &T, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| {
                let elements = x_bar.as_mut_slice();
                if write == Write::Overwrite {
                    elements.fill(T::zero());
                }
                elements[offset] += y_bar;
            })
        })
    }
}

/// A fused elementwise function of `N` traced tensors, with x̄ₖ = ∂f/∂xₖ·ȳ (the
/// partials by forward mode; see [`FusedFunction`]).
#[diagnostic::do_not_recommend]
impl<T: RealScalar, S: Shape, K: Storage<T, S>, const N: usize> Fusable<N> for Var<Tensor<T, S, K>> {
    #[track_caller]
    fn fused<F: FusedFunction<N>>(f: F, inputs: [&Self; N]) -> Self {
        let values = inputs.map(Var::shared_value);
        let y = f.apply(values.each_ref().map(|value| &**value));
        record_many(inputs, y, move |_, y_bar: &Tensor<T, S, K>, mut adjoints| {
            let wanted = core::array::from_fn(|k| adjoints.input(k).is_wanted());
            let cotangents = fused_pullback_of(f, values.each_ref().map(|value| &**value), y_bar, wanted);
            for (k, cotangent) in cotangents.into_iter().enumerate() {
                if let Some(cotangent) = cotangent {
                    adjoints.input(k).add(|| cotangent);
                }
            }
        })
    }
    fn check_operand_shape(&self, other: &Self, operation: &'static str) -> Result<(), ShapeError> {
        self.value().check_same_shape(other.value(), operation)
    }
}

impl<T: Scalar> Var<T> {
    /// The vector of `parts`, in order, with x̄ₖ = ȳₖ: scalar results assembled into a
    /// tensor (say, a hand position's coordinates).
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// let g = grad(
    ///     |x: Var<f64>| {
    ///         let p: Var<Vector<f64, 2>> = Var::stack([&x.cos(), &x.sin()]);
    ///         p.dot(&Var::constant(Vector::from_array([1.0, 2.0])))
    ///     },
    ///     &0.0,
    /// );
    /// assert_eq!(g, 2.0); // d/dx (cos x + 2 sin x) at 0
    /// ```
    pub fn stack<const N: usize, K: Storage<T, (Const<N>,)>>(
        parts: [&Var<T>; N],
    ) -> Var<Tensor<T, (Const<N>,), K>> {
        let value = Tensor::from_flat_fn((Const,), |k| *parts[k].value());
        record_many(parts, value, |_, y_bar: &Tensor<T, (Const<N>,), K>, mut adjoints| {
            for (k, &g) in y_bar.iter().enumerate() {
                adjoints.input(k).add(|| g);
            }
        })
    }
}

/// The matrix products on every storage kind: the kind's [`MatMul`],
/// [`MatMulTransposed`] or [`TransposedMatMul`] computes the value and its rule.
impl<T: Scalar, S: Shape, K: Zeros<T, S>> Var<Tensor<T, S, K>>
where
    Tensor<T, S, K>: Differentiable<Tangent = Tensor<T, S, K>> + VectorSpace,
{
    /// The matrix product (see [`MatMul`]).
    #[track_caller]
    pub fn matmul<S2: Shape>(
        &self,
        other: &impl Operand<Tensor<T, S2, K>>,
    ) -> Var<<Tensor<T, S, K> as MatMul<Tensor<T, S2, K>>>::Output>
    where
        K: Zeros<T, S2>,
        Tensor<T, S2, K>: Differentiable<Tangent = Tensor<T, S2, K>> + VectorSpace,
        Tensor<T, S, K>: MatMul<Tensor<T, S2, K>>,
        <Tensor<T, S, K> as MatMul<Tensor<T, S2, K>>>::Output:
            Differentiable<Tangent = <Tensor<T, S, K> as MatMul<Tensor<T, S2, K>>>::Output>,
    {
        let other = other.to_var();
        let (a, b) = (self.shared_value(), other.shared_value());
        let y = a.matmul(&b);
        record_binary_in_place(self, &other, y, move |_, y_bar, mut adjoints| {
            adjoints.write_or_add((a.shape(), b.shape()), |a_bar, b_bar| {
                a.matmul_pullback(&b, y_bar, a_bar, b_bar)
            });
        })
    }

    /// A·Bᵀ for A of shape `[M, K]` and B of shape `[N, K]` (see [`MatMulTransposed`]),
    /// with Ā = Ȳ·conj(B) and B̄ = Ȳᵀ·conj(A): neither the product nor its pullback
    /// copies a transpose.
    ///
    /// ```
    /// use fluxion::prelude::*;
    /// // A batch of 2 rows through weights stored [out, in] = [3, 2].
    /// let x: Matrix<f64, 2, 2> = Matrix::from_array([[1., 2.], [3., 4.]]);
    /// let w: Matrix<f64, 3, 2> = Matrix::from_array([[1., 0.], [0., 1.], [1., 1.]]);
    /// let (gx, gw) = grad(|(x, w): (Var<Matrix<f64, 2, 2>>, Var<Matrix<f64, 3, 2>>)| x.matmul_transposed(&w).sum(), &(x, w));
    /// assert_eq!(gx.to_array(), [[2., 2.], [2., 2.]]); // each row: Σ over the rows of w
    /// assert_eq!(gw.to_array(), [[4., 6.], [4., 6.], [4., 6.]]); // each row: Σ over the rows of x
    /// ```
    #[track_caller]
    pub fn matmul_transposed<S2: Shape>(
        &self,
        other: &impl Operand<Tensor<T, S2, K>>,
    ) -> Var<<Tensor<T, S, K> as MatMulTransposed<Tensor<T, S2, K>>>::Output>
    where
        K: Zeros<T, S2>,
        Tensor<T, S2, K>: Differentiable<Tangent = Tensor<T, S2, K>> + VectorSpace,
        Tensor<T, S, K>: MatMulTransposed<Tensor<T, S2, K>>,
        <Tensor<T, S, K> as MatMulTransposed<Tensor<T, S2, K>>>::Output:
            Differentiable<Tangent = <Tensor<T, S, K> as MatMulTransposed<Tensor<T, S2, K>>>::Output>,
    {
        let other = other.to_var();
        let (a, b) = (self.shared_value(), other.shared_value());
        let y = a.matmul_transposed(&b);
        record_binary_in_place(self, &other, y, move |_, y_bar, mut adjoints| {
            adjoints.write_or_add((a.shape(), b.shape()), |a_bar, b_bar| {
                a.matmul_transposed_pullback(&b, y_bar, a_bar, b_bar)
            });
        })
    }

    /// Aᵀ·B for A of shape `[K, M]` and B of shape `[K, N]` (see [`TransposedMatMul`]),
    /// with Ā = conj(B)·Ȳᵀ and B̄ = conj(A)·Ȳ: neither the product nor its pullback
    /// copies a transpose.
    #[track_caller]
    pub fn transposed_matmul<S2: Shape>(
        &self,
        other: &impl Operand<Tensor<T, S2, K>>,
    ) -> Var<<Tensor<T, S, K> as TransposedMatMul<Tensor<T, S2, K>>>::Output>
    where
        K: Zeros<T, S2>,
        Tensor<T, S2, K>: Differentiable<Tangent = Tensor<T, S2, K>> + VectorSpace,
        Tensor<T, S, K>: TransposedMatMul<Tensor<T, S2, K>>,
        <Tensor<T, S, K> as TransposedMatMul<Tensor<T, S2, K>>>::Output:
            Differentiable<Tangent = <Tensor<T, S, K> as TransposedMatMul<Tensor<T, S2, K>>>::Output>,
    {
        let other = other.to_var();
        let (a, b) = (self.shared_value(), other.shared_value());
        let y = a.transposed_matmul(&b);
        record_binary_in_place(self, &other, y, move |_, y_bar, mut adjoints| {
            adjoints.write_or_add((a.shape(), b.shape()), |a_bar, b_bar| {
                a.transposed_matmul_pullback(&b, y_bar, a_bar, b_bar)
            });
        })
    }
}

impl<T: Scalar, S: Shape, K> Var<Tensor<T, S, K>>
where
    K: Storage<T, S> + Storage<T::Real, S>,
{
    /// |x| elementwise.
    pub fn abs(&self) -> Var<Tensor<T::Real, S, K>> {
        let x = self.shared_value();
        record_own_unary(self, x.abs(), move |y_bar| abs_pullback(&x, y_bar))
    }

    /// Re x elementwise.
    pub fn re(&self) -> Var<Tensor<T::Real, S, K>> {
        record_own_unary(self, self.value().re(), re_pullback)
    }

    /// Im x elementwise.
    pub fn im(&self) -> Var<Tensor<T::Real, S, K>> {
        record_own_unary(self, self.value().im(), im_pullback)
    }

    /// |x|² elementwise.
    pub fn norm_sqr(&self) -> Var<Tensor<T::Real, S, K>> {
        let x = self.shared_value();
        record_own_unary(self, x.norm_sqr(), move |y_bar| norm_sqr_pullback(&x, y_bar))
    }
}

impl<T: Scalar, R: Dim, C: Dim, K> Var<Tensor<T, (R, C), K>>
where
    K: Storage<T, (R, C)> + Storage<T, (C, R)>,
{
    /// The transpose.
    pub fn transpose(&self) -> Var<Tensor<T, (C, R), K>> {
        record_own_unary(self, self.value().transpose(), transpose_pullback)
    }

    /// The conjugate transpose Aᴴ (see [`Tensor::conj_transpose`]), with Ā = Ȳᴴ.
    pub fn conj_transpose(&self) -> Var<Tensor<T, (C, R), K>> {
        record_own_unary(self, self.value().conj_transpose(), Tensor::conj_transpose)
    }
}

impl<T: Scalar, M: Dim, K: Storage<T, (M,)>> Var<Tensor<T, (M,), K>> {
    /// The outer product aᵢbⱼ.
    pub fn outer<N: Dim>(&self, other: &Var<Tensor<T, (N,), K>>) -> Var<Tensor<T, (M, N), K>>
    where
        K: Storage<T, (N,)> + Storage<T, (M, N)>,
    {
        let (a, b) = (self.shared_value(), other.shared_value());
        record_own_binary(self, other, a.outer(&b), move |y_bar| outer_pullback(&a, &b, y_bar))
    }
}

impl<T: Scalar, M: Dim, N: Dim, K: Storage<T, (M, N)>> Var<Tensor<T, (M, N), K>> {
    /// The Kronecker product A ⊗ B (see [`Tensor::kron`]; B traced or a plain
    /// constant), recorded with [`kron_pullback`].
    pub fn kron<P: Dim, Q: Dim, MP: Dim, NQ: Dim>(
        &self,
        other: &impl Operand<Tensor<T, (P, Q), K>>,
    ) -> Var<Tensor<T, (MP, NQ), K>>
    where
        M: MultipliesTo<P, MP>,
        N: MultipliesTo<Q, NQ>,
        K: Storage<T, (P, Q)> + Storage<T, (MP, NQ)>,
    {
        let ((), ()) = (<M as MultipliesTo<P, MP>>::CHECK, <N as MultipliesTo<Q, NQ>>::CHECK);
        let other = other.to_var();
        let (a, b) = (self.shared_value(), other.shared_value());
        record_own_binary(self, &other, a.kronecker_blocks(&b), move |y_bar| kron_pullback(&a, &b, y_bar))
    }
}

// Scalars.

impl<T: Scalar> Var<T> {
    /// f(x) for an elementary function, with x̄ = conj(f′(x))·ȳ.
    pub fn elementary(&self, f: Elementary<T::Real>) -> Self {
        let x = *self.value();
        let y = f.apply(x);
        record_own_unary(self, y, move |&y_bar| f.derivative(x, y).conj() * y_bar)
    }

    /// conj(x), with x̄ = conj(ȳ).
    pub fn conj(&self) -> Self {
        record_own_unary(self, self.value().conj(), |y_bar: &T| y_bar.conj())
    }
}

elementary_methods!(impl<T: Scalar> Var<T>);

/// Functions of real scalars by their static-mode rules (one derivative for both modes).
impl<T: RealScalar> Var<T> {
    /// y = f(x) by `rule`, with x̄ = f′(x)·ȳ.
    fn by_rule<R: UnaryRule<T, Output = T> + 'static>(&self, rule: R) -> Self {
        let x = *self.value();
        let y = rule.value(&x);
        record_own_unary(self, y, move |y_bar| rule.pull(&x, &y, y_bar))
    }

    /// f(x) for a library author's [`ScalarFunction`], with x̄ = f′(x)·ȳ (as on
    /// tensors).
    pub fn map_function<F: ScalarFunction>(&self, f: F) -> Self {
        self.by_rule(rules::FunctionMap::from(f))
    }

    /// softplus(x) = ln(1 + eˣ), stable at any magnitude, with x̄ = σ(x)·ȳ (as on
    /// tensors).
    pub fn softplus(&self) -> Self {
        self.map_function(crate::ops::functions::SoftplusFunction)
    }

    /// SiLU (swish), x·σ(x), with x̄ = (σ(x) + x·σ(x)(1 − σ(x)))·ȳ (as on tensors).
    pub fn silu(&self) -> Self {
        self.map_function(crate::ops::functions::SiluFunction)
    }

    /// tan x, with x̄ = (1 + tan² x)·ȳ.
    pub fn tan(&self) -> Self {
        self.by_rule(rules::Tan)
    }

    /// atan x, with x̄ = ȳ/(1 + x²).
    pub fn atan(&self) -> Self {
        self.by_rule(rules::ArcTan)
    }

    /// asin x (|x| ≤ 1), with x̄ = ȳ/√(1 − x²).
    pub fn asin(&self) -> Self {
        self.by_rule(rules::ArcSin)
    }

    /// acos x (|x| ≤ 1), with x̄ = −ȳ/√(1 − x²).
    pub fn acos(&self) -> Self {
        self.by_rule(rules::ArcCos)
    }

    /// y = f(a, b) by `rule`, with ā = ∂f/∂a·ȳ and b̄ = ∂f/∂b·ȳ.
    fn by_binary_rule<R: BinaryRule<T, T, Output = T> + 'static>(&self, other: &Var<T>, rule: R) -> Self {
        let (a, b) = (*self.value(), *other.value());
        let y = rule.value(&a, &b);
        record_own_binary(self, other, y, move |y_bar| {
            let args = (&a, &b, &y);
            (rule.pull_lhs(args, y_bar), rule.pull_rhs(args, y_bar))
        })
    }

    /// atan2(y, x) with y = `self` and x = `other`, the angle of (x, y): ȳ·x/(x² + y²)
    /// flows to y and −ȳ·y/(x² + y²) to x.
    pub fn atan2(&self, other: &Var<T>) -> Self {
        self.by_binary_rule(other, rules::ArcTan2)
    }

    /// √(x² + y²) with x = `self` and y = `other`: ȳ·x/√(x² + y²) flows to x and
    /// ȳ·y/√(x² + y²) to y (0 at the origin).
    pub fn hypot(&self, other: &Var<T>) -> Self {
        self.by_binary_rule(other, rules::Hypotenuse)
    }

    /// x held to [low, high]: x̄ = ȳ on the closed interval, 0 outside it.
    pub fn clamp(&self, low: T, high: T) -> Self {
        self.by_rule(rules::Clamp::from((low, high)))
    }

    /// The larger of two traced scalars, the cotangent going to the one picked (half
    /// to each on a tie, as PyTorch and JAX), as in static mode.
    pub fn max(&self, other: &Var<T>) -> Self {
        self.by_binary_rule(other, rules::Maximum)
    }

    /// The smaller of two traced scalars, the cotangent going to the one picked (half
    /// to each on a tie), as in static mode.
    pub fn min(&self, other: &Var<T>) -> Self {
        self.by_binary_rule(other, rules::Minimum)
    }

    /// The Euclidean remainder r = a mod b of `f32`/`f64` (0 ≤ r < |b|), a =
    /// `self`: ā = ȳ and b̄ = −q·ȳ for the quotient q = (a − r)/b.
    pub fn rem_euclid(&self, other: &Var<T>) -> Self
    where
        rules::EuclideanRemainder: BinaryRule<T, T, Output = T>,
    {
        self.by_binary_rule(other, rules::EuclideanRemainder)
    }

    /// |a| with the sign of b (`f32`/`f64`), a = `self`: ā = ±sign(a)·ȳ (0 at a = 0),
    /// b̄ = 0.
    pub fn copysign(&self, other: &Var<T>) -> Self
    where
        rules::SignCopy: BinaryRule<T, T, Output = T>,
    {
        self.by_binary_rule(other, rules::SignCopy)
    }
}

/// The scalar functions of `f32`/`f64` with a static-mode rule, traced by the same
/// rule: `method => Rule` with the rule's formula in its docs.
macro_rules! traced_scalar_functions {
    ($($(#[$doc:meta])* $method:ident => $rule:ident;)+) => {
        impl<T: RealScalar> Var<T> {
            $(
                $(#[$doc])*
                pub fn $method(&self) -> Self
                where
                    rules::$rule: UnaryRule<T, Output = T>,
                {
                    self.by_rule(rules::$rule)
                }
            )+
        }
    };
}

traced_scalar_functions! {
    /// erf x, with x̄ = (2/√π)·e^(−x²)·ȳ.
    erf => ErrorFunction;
    /// erfc x = 1 − erf x (accurate where erf x is near 1), with x̄ = −(2/√π)·e^(−x²)·ȳ.
    erfc => ComplementaryErrorFunction;
    /// 1/x, with x̄ = −ȳ/x².
    recip => Reciprocal;
    /// ∛x, with x̄ = ȳ/(3·∛x²).
    cbrt => CubeRoot;
    /// sinh x, with x̄ = cosh x·ȳ.
    sinh => HyperbolicSine;
    /// cosh x, with x̄ = sinh x·ȳ.
    cosh => HyperbolicCosine;
    /// asinh x, with x̄ = ȳ/√(x² + 1).
    asinh => HyperbolicArcSine;
    /// acosh x, with x̄ = ȳ/√(x² − 1).
    acosh => HyperbolicArcCosine;
    /// atanh x, with x̄ = ȳ/(1 − x²).
    atanh => HyperbolicArcTangent;
    /// ln(1 + x), with x̄ = ȳ/(1 + x).
    ln_1p => LnOnePlus;
    /// eˣ − 1, with x̄ = eˣ·ȳ.
    exp_m1 => ExpMinusOne;
    /// 2ˣ, with x̄ = 2ˣ·ln 2·ȳ.
    exp2 => PowerOfTwo;
    /// log₂ x, with x̄ = ȳ/(x·ln 2).
    log2 => BinaryLogarithm;
    /// log₁₀ x, with x̄ = ȳ/(x·ln 10).
    log10 => DecimalLogarithm;
    /// Degrees to radians, with x̄ = (π/180)·ȳ.
    to_radians => DegreesToRadians;
    /// Radians to degrees, with x̄ = (180/π)·ȳ.
    to_degrees => RadiansToDegrees;
    /// The sign (±1, NaN for NaN), with x̄ = 0 as JAX and PyTorch take it.
    signum => Sign;
    /// ⌊x⌋, with x̄ = 0 (piecewise constant).
    floor => Floor;
    /// ⌈x⌉, with x̄ = 0.
    ceil => Ceiling;
    /// x rounded half away from zero, with x̄ = 0.
    round => Rounding;
    /// x rounded toward zero, with x̄ = 0.
    trunc => Truncation;
    /// x − trunc x, with x̄ = ȳ (between its jumps).
    fract => FractionalPart;
}

impl<T: Scalar> Var<T> {
    /// |x|, with x̄ = ȳ·x/|x| (0 at x = 0).
    pub fn abs(&self) -> Var<T::Real> {
        let x = *self.value();
        record_own_unary(self, x.abs(), move |&y_bar: &T::Real| abs_cotangent(x, y_bar))
    }

    /// |x|², with x̄ = 2ȳ·x.
    pub fn norm_sqr(&self) -> Var<T::Real> {
        let x = *self.value();
        record_own_unary(self, x.norm_sqr(), move |&y_bar: &T::Real| x * T::from_real(y_bar + y_bar))
    }

    /// Re x, with x̄ = ȳ.
    pub fn re(&self) -> Var<T::Real> {
        record_own_unary(self, self.value().re(), |&y_bar: &T::Real| T::from_real(y_bar))
    }

    /// Im x, with x̄ = i·ȳ.
    pub fn im(&self) -> Var<T::Real> {
        record_own_unary(self, self.value().im(), |&y_bar: &T::Real| T::from_parts(T::Real::zero(), y_bar))
    }
}

impl<T: RealScalar, S: Shape, K> Var<Tensor<T, S, K>>
where
    K: Storage<T, S> + Storage<T::Complex, S>,
{
    /// x + 0i elementwise, real numbers as complex ones (see [`Tensor::to_complex`]),
    /// with x̄ = Re ȳ.
    pub fn to_complex(&self) -> Var<Tensor<T::Complex, S, K>> {
        record_own_unary(self, self.value().to_complex(), |y_bar: &Tensor<T::Complex, S, K>| y_bar.re())
    }
}

impl<T: RealScalar> Var<T> {
    /// x + 0i, a real number as a complex one, with x̄ = Re ȳ.
    pub fn to_complex(&self) -> Var<T::Complex> {
        record_own_unary(self, T::Complex::from_real(*self.value()), |&y_bar: &T::Complex| y_bar.re())
    }
}

// Operators. The work is done on references: `+` and `−` between Vars of one type,
// `*` and `/` between scalar Vars, and every arithmetic operator with a constant
// scalar. Owned operands and a constant on the left forward to those.

/// Two shapes that `+` and `−` on traced tensors accept together: one shape (see
/// [`SameShape`](crate::ops::elementwise::SameShape), its host form).
#[diagnostic::on_unimplemented(
    message = "the shapes `{Self}` and `{Rhs}` differ",
    label = "`+` and `-` need operands of one shape",
    note = "transpose, reshape or broadcast one operand first"
)]
pub trait SameTracedShape<Rhs: Shape>: Shape {
    /// `rhs` as a traced tensor of shape `Self` (the shapes are one type).
    fn same_var<T, K: StorageKind<T, Rhs> + StorageKind<T, Self>>(
        rhs: &Var<Tensor<T, Rhs, K>>,
    ) -> &Var<Tensor<T, Self, K>>;
}

#[diagnostic::do_not_recommend]
impl<S: Shape> SameTracedShape<S> for S {
    #[inline(always)]
    fn same_var<T, K: StorageKind<T, S>>(rhs: &Var<Tensor<T, S, K>>) -> &Var<Tensor<T, S, K>> {
        rhs
    }
}

/// The traced arithmetic of a storage kind: the rules behind `+`, `−`, unary `−`, and
/// `*` and `/` by a scalar on traced tensors (and `c / x`), so that each operator has
/// one impl for every kind, as [`KindArithmetic`] gives plain tensors: a traced
/// tensor whose kind is still being inferred finds exactly one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no traced arithmetic for tensors of `{T}` of shape `{S}`",
    note = "the host kinds (`Inline`, `Heap`) take every `Scalar`; `Cuda` takes `f32`, `f64`, `Complex32` and `Complex64`"
)]
pub trait TracedArithmetic<T, S: Shape>: KindArithmetic<T, S>
where
    Tensor<T, S, Self>: Differentiable,
{
    /// a + b, with ā = ȳ and b̄ = ȳ.
    fn add(a: &Var<Tensor<T, S, Self>>, b: &Var<Tensor<T, S, Self>>) -> Var<Tensor<T, S, Self>>;
    /// a − b, with ā = ȳ and b̄ = −ȳ.
    fn sub(a: &Var<Tensor<T, S, Self>>, b: &Var<Tensor<T, S, Self>>) -> Var<Tensor<T, S, Self>>;
    /// −a.
    fn negate(a: &Var<Tensor<T, S, Self>>) -> Var<Tensor<T, S, Self>>;
    /// c·a for a constant c, with ā = conj(c)·ȳ.
    fn scale(a: &Var<Tensor<T, S, Self>>, factor: T) -> Var<Tensor<T, S, Self>>;
    /// a / c for a constant c, with ā = ȳ / conj(c) (the GPU multiplies by 1/c).
    fn divide(a: &Var<Tensor<T, S, Self>>, divisor: T) -> Var<Tensor<T, S, Self>>;
    /// a⁻¹ elementwise (`powi(-1)`'s rule), for `c / a`.
    fn reciprocal(a: &Var<Tensor<T, S, Self>>) -> Var<Tensor<T, S, Self>>;
}

/// The host kinds: the rules of the traced host tensors.
#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> TracedArithmetic<T, S> for K {
    #[track_caller]
    fn add(a: &Var<Tensor<T, S, K>>, b: &Var<Tensor<T, S, K>>) -> Var<Tensor<T, S, K>> {
        a.add(b)
    }
    #[track_caller]
    fn sub(a: &Var<Tensor<T, S, K>>, b: &Var<Tensor<T, S, K>>) -> Var<Tensor<T, S, K>> {
        a.sub(b)
    }
    fn negate(a: &Var<Tensor<T, S, K>>) -> Var<Tensor<T, S, K>> {
        a.scale(-T::one())
    }
    fn scale(a: &Var<Tensor<T, S, K>>, factor: T) -> Var<Tensor<T, S, K>> {
        a.scale(factor)
    }
    /// Each element divided, as the plain `x / s` (bit for bit).
    fn divide(a: &Var<Tensor<T, S, K>>, divisor: T) -> Var<Tensor<T, S, K>> {
        let factor = T::one() / divisor.conj();
        record_own_unary(a, a.value() / divisor, move |y_bar: &Tensor<T, S, K>| y_bar.scale(factor))
    }
    fn reciprocal(a: &Var<Tensor<T, S, K>>) -> Var<Tensor<T, S, K>> {
        a.powi(-1)
    }
}

impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>> Neg for &Var<Tensor<T, S, K>>
where
    Tensor<T, S, K>: Differentiable,
{
    type Output = Var<Tensor<T, S, K>>;
    fn neg(self) -> Self::Output {
        <K as TracedArithmetic<T, S>>::negate(self)
    }
}

/// `x * c` and `x / c` for a scalar `c` (a real one beside complex data too); a
/// second tensor there is a compile error that names the products to choose from,
/// as on plain tensors.
impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>, R: ScalarFactor<T>> Mul<R> for &Var<Tensor<T, S, K>>
where
    Tensor<T, S, K>: Differentiable,
{
    type Output = Var<Tensor<T, S, K>>;
    fn mul(self, factor: R) -> Self::Output {
        <K as TracedArithmetic<T, S>>::scale(self, factor.into_element())
    }
}

impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>, R: ScalarFactor<T>> Div<R> for &Var<Tensor<T, S, K>>
where
    Tensor<T, S, K>: Differentiable,
{
    type Output = Var<Tensor<T, S, K>>;
    fn div(self, divisor: R) -> Self::Output {
        <K as TracedArithmetic<T, S>>::divide(self, divisor.into_element())
    }
}

impl<T: Scalar> Add for &Var<T> {
    type Output = Var<T>;
    fn add(self, rhs: &Var<T>) -> Var<T> {
        record_own_binary(self, rhs, *self.value() + *rhs.value(), |&g: &T| (g, g))
    }
}

impl<T: Scalar> Sub for &Var<T> {
    type Output = Var<T>;
    fn sub(self, rhs: &Var<T>) -> Var<T> {
        record_own_binary(self, rhs, *self.value() - *rhs.value(), |&g: &T| (g, -g))
    }
}

impl<T: Scalar> Mul for &Var<T> {
    type Output = Var<T>;
    /// ā = ȳ·conj(b), b̄ = ȳ·conj(a).
    fn mul(self, rhs: &Var<T>) -> Var<T> {
        let (a, b) = (*self.value(), *rhs.value());
        record_own_binary(self, rhs, a * b, move |&g: &T| (g * b.conj(), g * a.conj()))
    }
}

impl<T: Scalar> Div for &Var<T> {
    type Output = Var<T>;
    /// y = a/b: ā = ȳ/conj(b), b̄ = −ȳ·conj(y/b).
    #[allow(clippy::suspicious_arithmetic_impl)] // the quotient rule multiplies
    fn div(self, rhs: &Var<T>) -> Var<T> {
        let (a, b) = (*self.value(), *rhs.value());
        let y = a / b;
        record_own_binary(self, rhs, y, move |&g: &T| (g / b.conj(), -g * (y / b).conj()))
    }
}

impl<T: Scalar> Neg for &Var<T> {
    type Output = Var<T>;
    fn neg(self) -> Var<T> {
        record_own_unary(self, -*self.value(), |&g: &T| -g)
    }
}

impl<T: Scalar> Add<T> for &Var<T> {
    type Output = Var<T>;
    fn add(self, constant: T) -> Var<T> {
        record_own_unary(self, *self.value() + constant, |&g: &T| g)
    }
}

impl<T: Scalar> Sub<T> for &Var<T> {
    type Output = Var<T>;
    fn sub(self, constant: T) -> Var<T> {
        record_own_unary(self, *self.value() - constant, |&g: &T| g)
    }
}

impl<T: Scalar> Mul<T> for &Var<T> {
    type Output = Var<T>;
    fn mul(self, factor: T) -> Var<T> {
        record_own_unary(self, *self.value() * factor, move |&g: &T| g * factor.conj())
    }
}

impl<T: Scalar> Div<T> for &Var<T> {
    type Output = Var<T>;
    fn div(self, divisor: T) -> Var<T> {
        let factor = T::one() / divisor.conj();
        record_own_unary(self, *self.value() / divisor, move |&g: &T| g * factor)
    }
}

/// `Var op Var`, `Var op &Var` and `&Var op Var` for a value type `$V`, forwarding to
/// `&Var op &Var`.
macro_rules! owned_binary_operator {
    ([$($generics:tt)*] $V:ty; $Trait:ident $method:ident) => {
        impl<$($generics)*> $Trait for Var<$V> {
            type Output = Var<$V>;
            #[track_caller]
            fn $method(self, rhs: Var<$V>) -> Var<$V> {
                $Trait::$method(&self, &rhs)
            }
        }

        impl<$($generics)*> $Trait<&Var<$V>> for Var<$V> {
            type Output = Var<$V>;
            #[track_caller]
            fn $method(self, rhs: &Var<$V>) -> Var<$V> {
                $Trait::$method(&self, rhs)
            }
        }

        impl<$($generics)*> $Trait<Var<$V>> for &Var<$V> {
            type Output = Var<$V>;
            #[track_caller]
            fn $method(self, rhs: Var<$V>) -> Var<$V> {
                $Trait::$method(self, &rhs)
            }
        }
    };
}

/// `-Var`, `Var * constant` and `Var / constant`, forwarding to the reference forms.
macro_rules! owned_unary_operators {
    ([$($generics:tt)*] $V:ty, $T:ty) => {
        impl<$($generics)*> Neg for Var<$V> {
            type Output = Var<$V>;
            fn neg(self) -> Var<$V> {
                -&self
            }
        }

        impl<$($generics)*> Mul<$T> for Var<$V> {
            type Output = Var<$V>;
            fn mul(self, factor: $T) -> Var<$V> {
                &self * factor
            }
        }

        impl<$($generics)*> Div<$T> for Var<$V> {
            type Output = Var<$V>;
            fn div(self, divisor: $T) -> Var<$V> {
                &self / divisor
            }
        }
    };
}

/// `&a ± &b` on traced tensors, and the owned forms (`Var ± Var`, `Var ± &Var`,
/// `&Var ± Var`) through it: operands of two different shapes, or of two storage
/// kinds, are a compile error that names both.
macro_rules! traced_tensor_operator {
    ($Trait:ident $method:ident) => {
        impl<T, S, S2, K, K2> $Trait<&Var<Tensor<T, S2, K2>>> for &Var<Tensor<T, S, K>>
        where
            T: Scalar,
            S: SameTracedShape<S2>,
            S2: Shape,
            K: TracedArithmetic<T, S> + StorageKind<T, S2> + SameKind<K2>,
            Tensor<T, S, K>: Differentiable,
            K2: StorageKind<T, S2>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, rhs: &Var<Tensor<T, S2, K2>>) -> Self::Output {
                <K as TracedArithmetic<T, S>>::$method(self, S::same_var(K::same_kind_var(rhs)))
            }
        }

        impl<T, S, S2, K, K2> $Trait<Var<Tensor<T, S2, K2>>> for Var<Tensor<T, S, K>>
        where
            T: Scalar,
            S: SameTracedShape<S2>,
            S2: Shape,
            K: TracedArithmetic<T, S> + StorageKind<T, S2> + SameKind<K2>,
            Tensor<T, S, K>: Differentiable,
            K2: StorageKind<T, S2>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, rhs: Var<Tensor<T, S2, K2>>) -> Self::Output {
                $Trait::$method(&self, &rhs)
            }
        }

        impl<T, S, S2, K, K2> $Trait<&Var<Tensor<T, S2, K2>>> for Var<Tensor<T, S, K>>
        where
            T: Scalar,
            S: SameTracedShape<S2>,
            S2: Shape,
            K: TracedArithmetic<T, S> + StorageKind<T, S2> + SameKind<K2>,
            Tensor<T, S, K>: Differentiable,
            K2: StorageKind<T, S2>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, rhs: &Var<Tensor<T, S2, K2>>) -> Self::Output {
                $Trait::$method(&self, rhs)
            }
        }

        impl<T, S, S2, K, K2> $Trait<Var<Tensor<T, S2, K2>>> for &Var<Tensor<T, S, K>>
        where
            T: Scalar,
            S: SameTracedShape<S2>,
            S2: Shape,
            K: TracedArithmetic<T, S> + StorageKind<T, S2> + SameKind<K2>,
            Tensor<T, S, K>: Differentiable,
            K2: StorageKind<T, S2>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, rhs: Var<Tensor<T, S2, K2>>) -> Self::Output {
                $Trait::$method(self, &rhs)
            }
        }
    };
}

traced_tensor_operator!(Add add);
traced_tensor_operator!(Sub sub);

impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>> Neg for Var<Tensor<T, S, K>>
where
    Tensor<T, S, K>: Differentiable,
{
    type Output = Var<Tensor<T, S, K>>;
    fn neg(self) -> Self::Output {
        -&self
    }
}

impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>, R: ScalarFactor<T>> Mul<R> for Var<Tensor<T, S, K>>
where
    Tensor<T, S, K>: Differentiable,
{
    type Output = Var<Tensor<T, S, K>>;
    fn mul(self, factor: R) -> Self::Output {
        &self * factor
    }
}

impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>, R: ScalarFactor<T>> Div<R> for Var<Tensor<T, S, K>>
where
    Tensor<T, S, K>: Differentiable,
{
    type Output = Var<Tensor<T, S, K>>;
    fn div(self, divisor: R) -> Self::Output {
        &self / divisor
    }
}
owned_binary_operator!([T: Scalar] T; Add add);
owned_binary_operator!([T: Scalar] T; Sub sub);
owned_binary_operator!([T: Scalar] T; Mul mul);
owned_binary_operator!([T: Scalar] T; Div div);
owned_unary_operators!([T: Scalar] T, T);

impl<T: Scalar> Add<T> for Var<T> {
    type Output = Var<T>;
    fn add(self, constant: T) -> Var<T> {
        &self + constant
    }
}

impl<T: Scalar> Sub<T> for Var<T> {
    type Output = Var<T>;
    fn sub(self, constant: T) -> Var<T> {
        &self - constant
    }
}

/// A real constant beside a complex scalar `Var`, on either side (a complex tensor
/// takes a real factor too): `&z * 0.5`, `1.0 - &z`, `2.0 / z`, the constant taken
/// as c + 0i.
macro_rules! real_constant_beside_complex_var {
    ($($real:ty => $complex:ty),*) => {$(
        real_constant_beside_complex_var!(@ops $real => $complex; Add add, Sub sub, Mul mul, Div div);
    )*};
    (@ops $real:ty => $complex:ty; $($Trait:ident $method:ident),*) => {$(
        impl $Trait<$real> for &Var<$complex> {
            type Output = Var<$complex>;
            fn $method(self, constant: $real) -> Var<$complex> {
                $Trait::$method(self, <$complex>::new(constant, 0.0))
            }
        }

        impl $Trait<$real> for Var<$complex> {
            type Output = Var<$complex>;
            fn $method(self, constant: $real) -> Var<$complex> {
                $Trait::$method(&self, <$complex>::new(constant, 0.0))
            }
        }

        impl $Trait<&Var<$complex>> for $real {
            type Output = Var<$complex>;
            fn $method(self, var: &Var<$complex>) -> Var<$complex> {
                $Trait::$method(<$complex>::new(self, 0.0), var)
            }
        }

        impl $Trait<Var<$complex>> for $real {
            type Output = Var<$complex>;
            fn $method(self, var: Var<$complex>) -> Var<$complex> {
                $Trait::$method(<$complex>::new(self, 0.0), &var)
            }
        }
    )*};
}

real_constant_beside_complex_var!(f32 => crate::scalar::Complex32, f64 => crate::scalar::Complex64);

/// A factor on the left of a traced tensor, `0.5 * &x` (`&x * 0.5` takes it through
/// `ScalarFactor`): of the element type, or real beside complex elements.
macro_rules! factor_times_traced_tensor {
    ($($factor:ty => $element:ty),*) => {$(
        impl<S: Shape, K: TracedArithmetic<$element, S>> Mul<&Var<Tensor<$element, S, K>>> for $factor
        where
            Tensor<$element, S, K>: Differentiable,
        {
            type Output = Var<Tensor<$element, S, K>>;
            fn mul(self, var: &Var<Tensor<$element, S, K>>) -> Var<Tensor<$element, S, K>> {
                var * self
            }
        }

        impl<S: Shape, K: TracedArithmetic<$element, S>> Mul<Var<Tensor<$element, S, K>>> for $factor
        where
            Tensor<$element, S, K>: Differentiable,
        {
            type Output = Var<Tensor<$element, S, K>>;
            fn mul(self, var: Var<Tensor<$element, S, K>>) -> Var<Tensor<$element, S, K>> {
                &var * self
            }
        }
    )*};
}

factor_times_traced_tensor!(f32 => crate::scalar::Complex32, f64 => crate::scalar::Complex64);

/// `constant * Var` for the built-in scalar types (a generic impl on the left operand
/// is not allowed for foreign types).
macro_rules! constant_times_var {
    ($($t:ty),*) => {$(
        impl Mul<&Var<$t>> for $t {
            type Output = Var<$t>;
            fn mul(self, var: &Var<$t>) -> Var<$t> {
                var * self
            }
        }

        impl Mul<Var<$t>> for $t {
            type Output = Var<$t>;
            fn mul(self, var: Var<$t>) -> Var<$t> {
                &var * self
            }
        }

        factor_times_traced_tensor!($t => $t);

        impl<S: Shape, K: TracedArithmetic<$t, S>> Div<&Var<Tensor<$t, S, K>>> for $t
        where
            Tensor<$t, S, K>: Differentiable,
        {
            type Output = Var<Tensor<$t, S, K>>;
            /// c / x elementwise: c·x⁻¹, through the rule of `powi(-1)`.
            fn div(self, var: &Var<Tensor<$t, S, K>>) -> Var<Tensor<$t, S, K>> {
                <K as TracedArithmetic<$t, S>>::scale(&<K as TracedArithmetic<$t, S>>::reciprocal(var), self)
            }
        }

        impl<S: Shape, K: TracedArithmetic<$t, S>> Div<Var<Tensor<$t, S, K>>> for $t
        where
            Tensor<$t, S, K>: Differentiable,
        {
            type Output = Var<Tensor<$t, S, K>>;
            fn div(self, var: Var<Tensor<$t, S, K>>) -> Var<Tensor<$t, S, K>> {
                self / &var
            }
        }
    )*};
}

constant_times_var!(f32, f64, crate::scalar::Complex32, crate::scalar::Complex64);

/// `constant + Var`, `constant − Var` and `constant / Var` for scalar `Var`s of the
/// built-in types, as in maths: `1.0 - x`.
macro_rules! constant_op_scalar_var {
    ($($t:ty),*) => {$(
        impl Add<&Var<$t>> for $t {
            type Output = Var<$t>;
            fn add(self, var: &Var<$t>) -> Var<$t> {
                var + self
            }
        }

        impl Add<Var<$t>> for $t {
            type Output = Var<$t>;
            fn add(self, var: Var<$t>) -> Var<$t> {
                &var + self
            }
        }

        impl Sub<&Var<$t>> for $t {
            type Output = Var<$t>;
            /// c − x, with x̄ = −ȳ.
            fn sub(self, var: &Var<$t>) -> Var<$t> {
                record_own_unary(var, self - *var.value(), |&g: &$t| -g)
            }
        }

        impl Sub<Var<$t>> for $t {
            type Output = Var<$t>;
            fn sub(self, var: Var<$t>) -> Var<$t> {
                self - &var
            }
        }

        impl Div<&Var<$t>> for $t {
            type Output = Var<$t>;
            /// y = c/x, with x̄ = −ȳ·conj(y/x).
            #[allow(clippy::suspicious_arithmetic_impl)] // the quotient rule multiplies
            fn div(self, var: &Var<$t>) -> Var<$t> {
                let x = *var.value();
                let y = self / x;
                record_own_unary(var, y, move |&g: &$t| -g * (y / x).conj())
            }
        }

        impl Div<Var<$t>> for $t {
            type Output = Var<$t>;
            fn div(self, var: Var<$t>) -> Var<$t> {
                self / &var
            }
        }
    )*};
}

constant_op_scalar_var!(f32, f64, crate::scalar::Complex32, crate::scalar::Complex64);

/// A traced tensor beside a plain one of the same shape, in either order: `x + c`,
/// `c + x`, `x − c`, `c − x` (the plain tensor is a constant: it receives nothing).
/// Each panics naming both shapes when a dynamic dimension differs.
macro_rules! var_with_constant_tensor {
    ($Trait:ident $method:ident, $sign_of_var_on_right:expr) => {
        impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>> $Trait<&Tensor<T, S, K>>
            for &Var<Tensor<T, S, K>>
        where
            Tensor<T, S, K>: Differentiable<Tangent = Tensor<T, S, K>>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, constant: &Tensor<T, S, K>) -> Var<Tensor<T, S, K>> {
                $crate::autodiff::record_own_unary(
                    self,
                    $Trait::$method(self.value(), constant),
                    |y_bar: &Tensor<T, S, K>| y_bar.clone(),
                )
            }
        }

        impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>> $Trait<&Var<Tensor<T, S, K>>>
            for &Tensor<T, S, K>
        where
            Tensor<T, S, K>: Differentiable<Tangent = Tensor<T, S, K>>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, var: &Var<Tensor<T, S, K>>) -> Var<Tensor<T, S, K>> {
                let sign: T = $sign_of_var_on_right;
                $crate::autodiff::record_own_unary(
                    var,
                    $Trait::$method(self, var.value()),
                    move |y_bar: &Tensor<T, S, K>| <K as KindArithmetic<T, S>>::scale(y_bar, sign),
                )
            }
        }

        impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>> $Trait<Tensor<T, S, K>> for Var<Tensor<T, S, K>>
        where
            Tensor<T, S, K>: Differentiable<Tangent = Tensor<T, S, K>>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, constant: Tensor<T, S, K>) -> Var<Tensor<T, S, K>> {
                $Trait::$method(&self, &constant)
            }
        }

        impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>> $Trait<Var<Tensor<T, S, K>>> for Tensor<T, S, K>
        where
            Tensor<T, S, K>: Differentiable<Tangent = Tensor<T, S, K>>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, var: Var<Tensor<T, S, K>>) -> Var<Tensor<T, S, K>> {
                $Trait::$method(&self, &var)
            }
        }

        impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>> $Trait<Tensor<T, S, K>> for &Var<Tensor<T, S, K>>
        where
            Tensor<T, S, K>: Differentiable<Tangent = Tensor<T, S, K>>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, constant: Tensor<T, S, K>) -> Var<Tensor<T, S, K>> {
                $Trait::$method(self, &constant)
            }
        }

        impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>> $Trait<&Tensor<T, S, K>> for Var<Tensor<T, S, K>>
        where
            Tensor<T, S, K>: Differentiable<Tangent = Tensor<T, S, K>>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, constant: &Tensor<T, S, K>) -> Var<Tensor<T, S, K>> {
                $Trait::$method(&self, constant)
            }
        }

        impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>> $Trait<&Var<Tensor<T, S, K>>> for Tensor<T, S, K>
        where
            Tensor<T, S, K>: Differentiable<Tangent = Tensor<T, S, K>>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, var: &Var<Tensor<T, S, K>>) -> Var<Tensor<T, S, K>> {
                $Trait::$method(&self, var)
            }
        }

        impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>> $Trait<Var<Tensor<T, S, K>>> for &Tensor<T, S, K>
        where
            Tensor<T, S, K>: Differentiable<Tangent = Tensor<T, S, K>>,
        {
            type Output = Var<Tensor<T, S, K>>;
            #[track_caller]
            fn $method(self, var: Var<Tensor<T, S, K>>) -> Var<Tensor<T, S, K>> {
                $Trait::$method(self, &var)
            }
        }
    };
}

var_with_constant_tensor!(Add add, T::one());
var_with_constant_tensor!(Sub sub, -T::one());

impl<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (C,)>> Var<Tensor<T, (R, C), K>> {
    /// yᵢⱼ = xᵢⱼ + bⱼ: `row` added to every row (a bias on each example of a batch),
    /// with x̄ = ȳ and b̄ = the column sums of ȳ.
    ///
    /// # Panics
    /// When a dynamic column count differs from the row's length.
    #[track_caller]
    pub fn add_rows(&self, row: &impl Operand<Tensor<T, (C,), K>>) -> Self {
        let row = row.to_var();
        let y = self.value().add_rows(row.value());
        record_own_binary(self, &row, y, add_rows_pullback)
    }

    /// yᵢⱼ = xᵢⱼ·gⱼ: every row multiplied by `row` elementwise (a per-feature gain),
    /// with x̄ᵢⱼ = ȳᵢⱼ·conj(gⱼ) and ḡⱼ = Σᵢ conj(xᵢⱼ)·ȳᵢⱼ (no conjugation on real
    /// data).
    ///
    /// # Panics
    /// When a dynamic column count differs from the row's length.
    #[track_caller]
    pub fn mul_rows(&self, row: &impl Operand<Tensor<T, (C,), K>>) -> Self {
        let row = row.to_var();
        let (x, g) = (self.shared_value(), row.shared_value());
        record_own_binary(self, &row, x.mul_rows(&g), move |y_bar| mul_rows_pullback(&x, &g, y_bar))
    }
}

impl<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)>> Var<Tensor<T, (R, C), K>> {
    /// Row `i` as a vector (see [`Tensor::row`]); ȳ flows back into that row.
    ///
    /// # Panics
    /// When there is no row `i`.
    #[track_caller]
    pub fn row(&self, i: usize) -> Var<Tensor<T, (C,), K>>
    where
        K: Storage<T, (C,)>,
    {
        let (y, shape) = (self.value().row(i), self.value().shape());
        record_own_unary(self, y, move |y_bar| row_pullback(shape, i, y_bar))
    }

    /// Column `j` as a vector (see [`Tensor::column`]); ȳ flows back into that
    /// column.
    ///
    /// # Panics
    /// When there is no column `j`.
    #[track_caller]
    pub fn column(&self, j: usize) -> Var<Tensor<T, (R,), K>>
    where
        K: Storage<T, (R,)>,
    {
        let (y, shape) = (self.value().column(j), self.value().shape());
        record_own_unary(self, y, move |y_bar| column_pullback(shape, j, y_bar))
    }

    /// The rows at `indices`, in order (an embedding lookup); each row of ȳ flows
    /// back to the row it was read from.
    ///
    /// # Panics
    /// When an index is not a row.
    #[track_caller]
    pub fn gather_rows(&self, indices: &[usize]) -> Var<Tensor<T, (Dyn, C), K>>
    where
        K: Storage<T, (Dyn, C)>,
    {
        let y = self.value().gather_rows(indices);
        let (shape, indices) = (self.value().shape(), indices.to_vec());
        record_own_unary(self, y, move |y_bar| gather_rows_pullback(shape, &indices, y_bar))
    }

    /// Each row normalised to mean 0 and variance 1: (xᵢⱼ − μᵢ)/√(σᵢ² + ε), with the
    /// pullback of the whole normalisation in one rule.
    pub fn normalize_rows(&self, epsilon: T) -> Self
    where
        T: RealScalar,
        K: Storage<T, (R,)>,
    {
        let (y, scales) = self.value().normalized_rows(epsilon);
        record_unary_in_place(self, y, move |y, y_bar, x_bar| {
            x_bar.add(|| normalize_rows_pullback(y, &scales, y_bar))
        })
    }
}

impl<T: RealScalar, R: Dim, const D: usize, K: Storage<T, (R, Const<D>)>> Var<Tensor<T, (R, Const<D>), K>> {
    /// Multi-head scaled dot-product attention with these rows as the queries (see
    /// [`attention`](crate::ops::attention)), one node for the three operands (each
    /// traced or plain) whose pullback recomputes the probabilities a query at a time.
    ///
    /// # Panics
    /// When the keys' or values' rows differ from the queries', or the rows are not
    /// whole sequences of L ≥ 1 tokens (the message names the shapes).
    #[track_caller]
    pub fn attention<const H: usize, const L: usize>(
        &self,
        keys: &impl Operand<Tensor<T, (R, Const<D>), K>>,
        values: &impl Operand<Tensor<T, (R, Const<D>), K>>,
        _: Heads<H>,
        _: Tokens<L>,
        mask: Mask,
    ) -> Self {
        let operands = [&keys.to_var(), &values.to_var()];
        self.traced_attention::<R, H, L, L>(["attention", "attention_pullback"], operands, mask, None)
    }

    /// Attention over padded sequences (see
    /// [`padded_attention`](Tensor::padded_attention)), one node for the three
    /// operands (each traced or plain).
    ///
    /// # Panics
    /// As [`attention`](Self::attention), and when there is not one length per
    /// sequence or one is not from 1 to L (the message names them).
    #[track_caller]
    pub fn padded_attention<const H: usize, const L: usize>(
        &self,
        keys: &impl Operand<Tensor<T, (R, Const<D>), K>>,
        values: &impl Operand<Tensor<T, (R, Const<D>), K>>,
        _: Heads<H>,
        _: Tokens<L>,
        mask: Mask,
        lengths: &[usize],
    ) -> Self {
        let operands = [&keys.to_var(), &values.to_var()];
        let names = ["padded_attention", "padded_attention_pullback"];
        self.traced_attention::<R, H, L, L>(names, operands, mask, Some(lengths))
    }

    /// Cross-attention to keys and values in sequences of LK tokens (see
    /// [`cross_attention`](Tensor::cross_attention)), one node for the three
    /// operands (each traced or plain; the keys and values may be one value).
    ///
    /// # Panics
    /// As [`cross_attention`](Tensor::cross_attention) (the message names the
    /// shapes).
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn cross_attention<const H: usize, const LQ: usize, const LK: usize, RK: Dim>(
        &self,
        keys: &impl Operand<Tensor<T, (RK, Const<D>), K>>,
        values: &impl Operand<Tensor<T, (RK, Const<D>), K>>,
        _: Heads<H>,
        _: Tokens<LQ>,
        _: Tokens<LK>,
        mask: Mask,
        lengths: Option<&[usize]>,
    ) -> Self
    where
        K: Storage<T, (RK, Const<D>)>,
    {
        let operands = [&keys.to_var(), &values.to_var()];
        let names = ["cross_attention", "cross_attention_pullback"];
        self.traced_attention::<RK, H, LQ, LK>(names, operands, mask, lengths)
    }

    /// Any of the attentions as one node: `names` are its own and its pullback's.
    #[track_caller]
    fn traced_attention<RK: Dim, const H: usize, const LQ: usize, const LK: usize>(
        &self,
        [name, pullback_name]: [&'static str; 2],
        operands: [&Var<Tensor<T, (RK, Const<D>), K>>; 2],
        mask: Mask,
        lengths: Option<&[usize]>,
    ) -> Self
    where
        K: Storage<T, (RK, Const<D>)>,
    {
        let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
        let [keys, values] = operands.map(Var::value);
        let y = or_panic(attention::attend::<T, R, RK, D, H, LQ, LK, K>(
            name,
            self.value(),
            [keys, values],
            Seen::new(mask, lengths),
        ));
        let kept: Option<std::vec::Vec<usize>> = lengths.map(<[usize]>::to_vec);
        record_attention(self, operands, y, move |operands, y_bar| {
            attention::pullback::<T, R, RK, D, H, LQ, LK, K>(
                pullback_name,
                operands,
                y_bar,
                Seen::new(mask, kept.as_deref()),
            )
        })
    }
}

/// An attention of traced operands as one node (the host's and the GPU's): the
/// queries and the keys and values, of their own type, and its value `y`;
/// `pullback` gives their cotangents for ȳ, each added to a traced operand's adjoint.
pub(crate) fn record_attention<Q: Differentiable + 'static, KV: Differentiable + 'static>(
    queries: &Var<Q>,
    [keys, values]: [&Var<KV>; 2],
    y: Q,
    pullback: impl Fn((&Q, [&KV; 2]), &Q::Tangent) -> (Q::Tangent, [KV::Tangent; 2]) + 'static,
) -> Var<Q> {
    let (q, kv) = (queries.shared_value(), [keys, values].map(Var::shared_value));
    record_one_and_pair(queries, [keys, values], y, move |y_bar| {
        pullback((&q, kv.each_ref().map(|value| &**value)), y_bar)
    })
}

impl<T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, K>
    Var<Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>>
where
    K: Storage<T, (B, Const<C>, Const<H>, Const<W>)>,
{
    /// The valid cross-correlation with `kernels` `[O, C, KH, KW]` (stride 1, no
    /// padding); the output size `(H − KH + 1, W − KW + 1)` is checked at compile time.
    pub fn conv2d<const O: usize, const KH: usize, const KW: usize, const HO: usize, const WO: usize>(
        &self,
        kernels: &impl Operand<Tensor<T, (Const<O>, Const<C>, Const<KH>, Const<KW>), K>>,
    ) -> Var<Tensor<T, (B, Const<O>, Const<HO>, Const<WO>), K>>
    where
        Const<H>: ConvolvesTo<KH, 0, HO>,
        Const<W>: ConvolvesTo<KW, 0, WO>,
        K: Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
            + Storage<T, (B, Const<O>, Const<HO>, Const<WO>)>,
    {
        self.conv2d_padded(kernels, Padding::<0>)
    }

    /// The cross-correlation with `kernels` over the images padded with P zeros on
    /// every side (stride 1); the output size `(H + 2P − KH + 1, W + 2P − KW + 1)` is
    /// checked at compile time.
    pub fn conv2d_padded<
        const P: usize,
        const O: usize,
        const KH: usize,
        const KW: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        kernels: &impl Operand<Tensor<T, (Const<O>, Const<C>, Const<KH>, Const<KW>), K>>,
        padding: Padding<P>,
    ) -> Var<Tensor<T, (B, Const<O>, Const<HO>, Const<WO>), K>>
    where
        Const<H>: ConvolvesTo<KH, P, HO>,
        Const<W>: ConvolvesTo<KW, P, WO>,
        K: Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
            + Storage<T, (B, Const<O>, Const<HO>, Const<WO>)>,
    {
        self.conv2d_strided(kernels, Stride::<1>, padding)
    }

    /// The cross-correlation with `kernels` moved S positions per output, over the
    /// images padded with P zeros on every side; the output size
    /// `(⌊(H + 2P − KH)/S⌋ + 1, ⌊(W + 2P − KW)/S⌋ + 1)` is checked at compile time.
    pub fn conv2d_strided<
        const S: usize,
        const P: usize,
        const O: usize,
        const KH: usize,
        const KW: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        kernels: &impl Operand<Tensor<T, (Const<O>, Const<C>, Const<KH>, Const<KW>), K>>,
        stride: Stride<S>,
        padding: Padding<P>,
    ) -> Var<Tensor<T, (B, Const<O>, Const<HO>, Const<WO>), K>>
    where
        Const<H>: ConvolvesTo<KH, P, HO, S>,
        Const<W>: ConvolvesTo<KW, P, WO, S>,
        K: Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
            + Storage<T, (B, Const<O>, Const<HO>, Const<WO>)>,
    {
        let kernels = kernels.to_var();
        let (x, w) = (self.shared_value(), kernels.shared_value());
        let y = x.conv2d_strided(&w, stride, padding);
        // Only the cotangents of traced operands are computed.
        let wanted = (self.is_active(), kernels.is_active());
        record_own_binary(self, &kernels, y, move |y_bar| {
            conv2d_pullback::<S, P, _, _, C, H, W, O, KH, KW, HO, WO, K>(&x, &w, y_bar, wanted)
        })
    }

    /// Each image's channels in G groups, each group normalised over its channels and
    /// positions: (x − μ)/√(σ² + ε), with the pullback of the whole normalisation in
    /// one rule.
    pub fn normalize_groups<const G: usize>(&self, groups: Groups<G>, epsilon: T) -> Self
    where
        K: Storage<T, (B, Const<G>)>,
    {
        let (y, scales) = self.value().normalized_groups(groups, epsilon);
        record_unary_in_place(self, y, move |y, y_bar, x_bar| {
            x_bar.add(|| normalize_groups_pullback(y, &scales, y_bar))
        })
    }

    /// The maximum of each KS×KS window with stride KS; the output size
    /// `(⌊H/KS⌋, ⌊W/KS⌋)` is checked at compile time.
    pub fn max_pool2d<const KS: usize, const HO: usize, const WO: usize>(
        &self,
    ) -> Var<Tensor<T, (B, Const<C>, Const<HO>, Const<WO>), K>>
    where
        Const<H>: PoolsTo<KS, HO>,
        Const<W>: PoolsTo<KS, WO>,
        K: Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
    {
        self.max_pool2d_strided(Window::<KS>, Stride::<KS>, Padding::<0>)
    }

    /// The maximum of each KS×KS window moved S positions per output over the images
    /// padded by P; `HO = ⌊(H + 2P − KS)/S⌋ + 1` and 2P ≤ KS are checked at compile
    /// time.
    pub fn max_pool2d_strided<
        const KS: usize,
        const S: usize,
        const P: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        window: Window<KS>,
        stride: Stride<S>,
        padding: Padding<P>,
    ) -> Var<Tensor<T, (B, Const<C>, Const<HO>, Const<WO>), K>>
    where
        Const<H>: PoolsTo<KS, HO, P, S>,
        Const<W>: PoolsTo<KS, WO, P, S>,
        K: Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
    {
        let x = self.shared_value();
        record_own_unary(self, x.max_pool2d_strided(window, stride, padding), move |y_bar| {
            max_pool2d_pullback(&x, y_bar, (window, stride, padding))
        })
    }

    /// The mean of each KS×KS window with stride KS; the output size
    /// `(⌊H/KS⌋, ⌊W/KS⌋)` is checked at compile time.
    pub fn avg_pool2d<const KS: usize, const HO: usize, const WO: usize>(
        &self,
    ) -> Var<Tensor<T, (B, Const<C>, Const<HO>, Const<WO>), K>>
    where
        Const<H>: PoolsTo<KS, HO>,
        Const<W>: PoolsTo<KS, WO>,
        K: Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
    {
        self.avg_pool2d_strided(Window::<KS>, Stride::<KS>, Padding::<0>)
    }

    /// The sum of each KS×KS window's elements inside the images over KS², moved S
    /// positions per output over the images padded by P; sizes as for
    /// [`max_pool2d_strided`](Self::max_pool2d_strided).
    pub fn avg_pool2d_strided<
        const KS: usize,
        const S: usize,
        const P: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        window: Window<KS>,
        stride: Stride<S>,
        padding: Padding<P>,
    ) -> Var<Tensor<T, (B, Const<C>, Const<HO>, Const<WO>), K>>
    where
        Const<H>: PoolsTo<KS, HO, P, S>,
        Const<W>: PoolsTo<KS, WO, P, S>,
        K: Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
    {
        record_own_unary(self, self.value().avg_pool2d_strided(window, stride, padding), move |y_bar| {
            avg_pool2d_pullback(y_bar, (window, stride, padding))
        })
    }

    /// Each example's C·H·W values as one row (F = C·H·W, checked when the program
    /// is built).
    pub fn flatten_images<const F: usize>(&self) -> Var<Tensor<T, (B, Const<F>), K>>
    where
        K: Storage<T, (B, Const<F>)>,
    {
        let () = <(Const<C>, Const<H>, Const<W>) as SameElementCount<(Const<F>,)>>::CHECK;
        let x = self.shared_value();
        record_own_unary(self, x.flatten_images(), move |y_bar| reshape_pullback(&x, y_bar))
    }
}

impl<T: RealScalar, B: Dim, C: Dim, H: Dim, W: Dim, K> Var<Tensor<T, (B, C, H, W), K>>
where
    K: Storage<T, (B, C, H, W)> + Storage<T, (C,)>,
{
    /// y_{b c i j} = x_{b c i j} + b_c, a bias per channel, with b̄_c = Σ_{b i j} ȳ_{b c i j}.
    ///
    /// # Panics
    /// When a dynamic channel count differs from the bias length.
    #[track_caller]
    pub fn add_channels(&self, bias: &impl Operand<Tensor<T, (C,), K>>) -> Self {
        let bias = bias.to_var();
        let y = self.value().add_channels(bias.value());
        record_own_binary(self, &bias, y, add_channels_pullback)
    }

    /// y_{b c i j} = x_{b c i j}·g_c, a gain per channel, with x̄ = ȳ·g_c and
    /// ḡ_c = Σ_{b i j} x_{b c i j}·ȳ_{b c i j}.
    ///
    /// # Panics
    /// When a dynamic channel count differs from the gain's length.
    #[track_caller]
    pub fn mul_channels(&self, gain: &impl Operand<Tensor<T, (C,), K>>) -> Self {
        let gain = gain.to_var();
        let (x, g) = (self.shared_value(), gain.shared_value());
        record_own_binary(self, &gain, x.mul_channels(&g), move |y_bar| mul_channels_pullback(&x, &g, y_bar))
    }
}
