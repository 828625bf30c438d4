//! Reverse mode on GPU tensors: `Tensor<T, S, Cuda>` is [`Differentiable`] (its own
//! tangent), [`Trace`]s as a leaf, and `Var<Tensor<T, S, Cuda>>` has the operations
//! of the host `Var`s under the same names, each recording the device rule of
//! [`crate::ops::cuda`]. The tape itself stays on the host; the values and adjoints
//! it holds live on the GPU, and every rule writes its cotangent straight into the
//! adjoint's GPU memory. So a model written for `Heap` tensors with `Var` operations
//! trains on the GPU when its storage type says `Cuda`. A plain GPU tensor beside a
//! traced one is a constant, as on the host: on either side of `+` and `−`, and on
//! the right of `hadamard`, `dot`, the matrix products, `conv2d`, `add_rows`,
//! `mul_rows` and `add_channels`.
//!
//! The optimisers' updates ([`Leaf::update`]) run as generated kernels on the GPU. The
//! coordinate walks ([`RealLeaves`], [`Differentiable::map_leaves_with`]) copy the
//! elements to the host and back: they serve checkers, not the training step.

use core::ops::{Add, Div, Mul, Neg, Sub};
use std::vec::Vec;

use num_complex::Complex;
use num_traits::One;

use super::dual::Dual;
use super::forward::{Lift, Unlift};
use super::tangent::{CoordinateUpdate, Differentiable, Leaf, LeafVisitor, VectorSpace};
use super::tape::{Var, record_binary_in_place, record_many, record_unary_in_place};
use super::var_ops::{Operand, TracedArithmetic, record_attention};
use crate::backend::cpu::Write;
use crate::backend::cuda::{CType, Cuda, CudaElement, CudaScalar, UpdateKernel, or_panic_cuda};
use crate::error::{ShapeError, or_panic};
use crate::ops::attention::{Heads, Mask, Seen, Tokens};
use crate::ops::conv::{Groups, Padding, Stride};
use crate::ops::cuda::attention as device_attention;
use crate::ops::cuda::{
    self as rules, CudaChannelOps, CudaComplexMatrixOps, CudaComplexOps, CudaElementaryOps, CudaImageOps,
    CudaMatrixOps, CudaRealMatrixOps, CudaRealOps, CudaTensorOps, CudaVectorOps, RealValued,
};
use crate::ops::elementwise::{Elementary, Fusable, FusedFunction, ScalarFunction, elementary_methods};
use crate::ops::functions::{ElementwiseFunctions, MapFunction};
use crate::ops::pool::Window;
use crate::ops::rows::check_row;
use crate::product::{MatMul, MatMulTransposed, TransposedMatMul};
use crate::scalar::RealScalar;
use crate::shape::constraint::{
    AddsUpTo, Axis, Broadcastable, ConvolvesTo, FitsSlice, HasAxis, InsertsAxis, PermutesAxes, PoolsTo,
    SameElementCount, SplitsIntoHeads,
};
use crate::shape::{Const, Dim, Dyn, Shape, StaticShape};
use crate::tensor::Tensor;

type OnDevice<T, S> = Tensor<T, S, Cuda>;

impl<T: CudaScalar, S: Shape> VectorSpace for OnDevice<T, S> {
    fn zero_like(&self) -> Self {
        Tensor::device_zeros(self.shape())
    }
    fn try_add_assign(&mut self, other: &Self) -> Result<(), ShapeError> {
        self.check_same_shape(other, "add_assign")?;
        self.add_scaled(T::Part::one(), other);
        Ok(())
    }
    fn scale_mut(&mut self, factor: impl Into<f64>) {
        *self = self.scale_parts(T::Part::from_f64(factor.into()));
    }
    fn zip_leaves<const W: usize, const R: usize, V: LeafVisitor<W, R>>(
        written: [&mut Self; W],
        read: [&Self; R],
        visitor: &mut V,
    ) -> Result<(), ShapeError> {
        visitor.visit(None, written, read)
    }
}

/// [`Leaf::update`] runs as one generated kernel on the GPU buffers and
/// [`Leaf::squared_norm`] as a reduction there; the coordinate walk
/// [`Leaf::zip_reals`] (for checkers) goes through host copies. The coordinates are
/// the buffer's real parts (a complex element's re, then its im), as on the host.
impl<T: CudaScalar, S: Shape> Leaf for OnDevice<T, S> {
    type Real = T::Part;
    fn coordinate_dims(&self) -> Option<crate::shape::Dims> {
        Some(self.dims())
    }
    fn check_same_shape_as(&self, other: &Self, operation: &'static str) -> Result<(), ShapeError> {
        self.check_same_shape(other, operation)
    }
    #[track_caller]
    fn zip_reals<const W: usize, const R: usize>(
        written: [&mut Self; W],
        read: [&Self; R],
        mut f: impl FnMut([T::Part; W], [T::Part; R]) -> [T::Part; W],
    ) {
        let mut host_written = written.each_ref().map(|leaf| leaf.parts_to_vec());
        let host_read = read.map(|leaf| leaf.parts_to_vec());
        let len = host_written.iter().chain(&host_read).map(Vec::len).max().unwrap_or(0);
        assert!(
            host_written.iter().chain(&host_read).all(|leaf| leaf.len() == len),
            "zip_reals: the leaves' shapes differ"
        );
        for i in 0..len {
            let updated = f(host_written.each_ref().map(|w| w[i]), host_read.each_ref().map(|r| r[i]));
            host_written.iter_mut().zip(updated).for_each(|(w, x)| w[i] = x);
        }
        for (leaf, host) in written.into_iter().zip(host_written) {
            *leaf = or_panic_cuda(OnDevice::try_from_parts(leaf.shape(), &host));
        }
    }
    #[track_caller]
    fn update<const W: usize, const R: usize, const P: usize, U: CoordinateUpdate<W, R, P>>(
        written: [&mut Self; W],
        read: [&Self; R],
        update: &U,
    ) {
        let shapes = written.iter().map(|leaf| leaf.shape()).chain(read.iter().map(|leaf| leaf.shape()));
        let first = written.first().map(|leaf| leaf.shape()).or(read.first().map(|leaf| leaf.shape()));
        assert!(shapes.into_iter().all(|shape| Some(shape) == first), "update: the leaves' shapes differ");
        if first.is_none_or(|shape| shape.num_elements() == 0) {
            return;
        }
        let kernel = or_panic_cuda(UpdateKernel::new(update));
        let params = update.parameters().map(T::Part::from_f64);
        let mut written = written.map(|leaf| leaf.slice_mut());
        or_panic_cuda(kernel.launch(&mut written, &read.map(|leaf| leaf.slice()), &params));
    }
    /// ‖x‖² = ‖x·2⁻ᵉ‖²·4ᵉ with 2ᵉ ≤ m < 2ᵉ⁺¹ for the largest |part| = m (e kept within
    /// the element type's normal exponents): reduced on the device in the element
    /// type, scaled exactly so that no square overflows and the largest do not
    /// underflow, as the host's `f64` sum.
    fn squared_norm(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let largest = self.largest_part().to_f64();
        if !largest.is_finite() || largest == 0.0 {
            return largest * largest; // NaN, ∞ or 0, as the host's sum gives
        }
        let limit = if T::Part::C_TYPE == CType::F32 { 126 } else { 1022 };
        let exponent = (largest.log2().floor() as i32).clamp(-limit, limit);
        let scaled = self.scale_parts(T::Part::from_f64(2f64.powi(-exponent)));
        scaled.sum_of_squared_parts().to_f64() * 2f64.powi(exponent) * 2f64.powi(exponent)
    }
}

#[diagnostic::do_not_recommend]
impl<T: CudaScalar, S: Shape> Differentiable for OnDevice<T, S> {
    type Tangent = Self;

    fn try_move_by(&mut self, offset: &Self) -> Result<(), ShapeError> {
        self.try_add_assign(offset)
    }
    fn zero_tangent(&self) -> Self {
        self.zero_like()
    }
    fn check_tangent(&self, tangent: &Self, operation: &'static str) -> Result<(), ShapeError> {
        self.check_same_shape(tangent, operation)
    }
    fn zip_leaves_with<const W: usize, const R: usize, V: LeafVisitor<W, R>>(
        &mut self,
        written: [&mut Self; W],
        read: [&Self; R],
        visitor: &mut V,
    ) -> Result<(), ShapeError> {
        visitor.visit(Some(self), written, read)
    }
}

/// A GPU tensor with one tangent beside it (`T` the element type, `S` the shape, as
/// for `Tensor<T, S, Cuda>`): what [`Lift`] makes of a device tensor,
/// so [`jvp`](super::jvp) and [`linearize`](super::linearize) run on the GPU. Its
/// operations carry the tensor's names and push the tangent forward with the device
/// rules: an elementwise function's Jacobian is diagonal, so on real elements its
/// pullback kernel applied to ẋ is ẏ = f′(x)·ẋ (complex elements have tangent
/// kernels of their own, as the pullback conjugates f′); products follow the
/// product rule.
///
/// ```
/// # if fluxion::backend::cuda::Device::get().is_err() {
/// #     assert!(std::env::var_os("FLUXION_REQUIRE_GPU").is_none(), "a GPU is required here");
/// #     return; // no GPU here: the example is compiled, not run
/// # }
/// use fluxion::autodiff::{CudaDual, jvp};
/// use fluxion::prelude::*;
///
/// let x: Vector<f32, 3, Cuda> = Vector::<f32, 3, Heap>::from_array([0.5, 1.0, 2.0]).to_device();
/// let v = x.clone();
/// // d/dε Σ exp(x + εv)·(x + εv) at ε = 0, on the GPU.
/// let (value, derivative) = jvp(|x: CudaDual<f32, (Const<3>,)>| x.exp().hadamard(&x).sum(), &x, &v);
/// let expected: f32 = [0.5f32, 1.0, 2.0].iter().map(|&x| x.exp() * (1.0 + x) * x).sum();
/// assert!((derivative - expected).abs() <= 1e-5 * expected);
/// ```
#[derive(Clone, Debug)]
pub struct CudaDual<T: CudaScalar, S: Shape> {
    /// The primal value.
    pub value: OnDevice<T, S>,
    /// Its tangent.
    pub tangent: OnDevice<T, S>,
}

impl<T: CudaScalar, S: Shape> Lift for OnDevice<T, S> {
    type Lifted = CudaDual<T, S>;
    #[track_caller]
    fn lift(&self, tangent: &Self) -> CudaDual<T, S> {
        or_panic(self.check_same_shape(tangent, "lift"));
        CudaDual { value: self.clone(), tangent: tangent.clone() }
    }
}

impl<T: CudaScalar, S: Shape> Unlift for CudaDual<T, S> {
    type Primal = OnDevice<T, S>;
    fn unlift(&self) -> (OnDevice<T, S>, OnDevice<T, S>) {
        (self.value.clone(), self.tangent.clone())
    }
}

/// A GPU dual with its tangent set to zero
/// ([`stop_gradient`](super::rules::stop_gradient), as on the host).
#[diagnostic::do_not_recommend]
impl<T: CudaScalar, S: Shape> super::rules::StopGradient for CudaDual<T, S> {
    type Stopped = Self;
    fn stop_gradient(self) -> Self {
        CudaDual::constant(self.value)
    }
}

/// A GPU dual, by reference, with its tangent set to zero.
#[diagnostic::do_not_recommend]
impl<T: CudaScalar, S: Shape> super::rules::StopGradient for &CudaDual<T, S> {
    type Stopped = CudaDual<T, S>;
    fn stop_gradient(self) -> CudaDual<T, S> {
        CudaDual::constant(self.value.clone())
    }
}

/// What every element type shares: linear maps act on the tangent as on the value,
/// and products follow the product rule (no conjugation: for complex elements the
/// tangent is ẏ = J·ẋ of the holomorphic product).
impl<T: CudaScalar, S: Shape> CudaDual<T, S> {
    /// A value whose tangent is 0 (a constant of the function).
    pub fn constant(value: OnDevice<T, S>) -> Self {
        let tangent = value.zero_like();
        CudaDual { value, tangent }
    }

    /// `value` y with the tangent ẏ that `push(y, ẏ)` writes into a zeroed buffer.
    fn pushed(&self, value: OnDevice<T, S>, push: impl FnOnce(&OnDevice<T, S>, &mut OnDevice<T, S>)) -> Self {
        let mut tangent = OnDevice::device_zeros(value.shape());
        push(&value, &mut tangent);
        CudaDual { value, tangent }
    }

    /// A linear map applied to the value and the tangent alike (its own derivative).
    fn linear<S2: Shape>(&self, map: impl Fn(&OnDevice<T, S>) -> OnDevice<T, S2>) -> CudaDual<T, S2> {
        CudaDual { value: map(&self.value), tangent: map(&self.tangent) }
    }

    /// y = f(a, b) for a bilinear `f`, with ẏ = f(ȧ, b) + f(a, ḃ) (the product rule).
    #[track_caller]
    fn bilinear<S2: Shape, S3: Shape>(
        &self,
        other: &CudaDual<T, S2>,
        f: impl Fn(&OnDevice<T, S>, &OnDevice<T, S2>) -> OnDevice<T, S3>,
    ) -> CudaDual<T, S3> {
        let tangent = &f(&self.tangent, &other.value) + &f(&self.value, &other.tangent);
        CudaDual { value: f(&self.value, &other.value), tangent }
    }

    /// The matrix product (the shapes of [`MatMul`]), with ẏ = ȧ·b + a·ḃ.
    #[track_caller]
    pub fn matmul<S2: Shape, S3: Shape>(&self, other: &CudaDual<T, S2>) -> CudaDual<T, S3>
    where
        OnDevice<T, S>: MatMul<OnDevice<T, S2>, Output = OnDevice<T, S3>>,
    {
        self.bilinear(other, |a, b| a.matmul(b))
    }

    /// The product x·yᵀ (the shapes of [`MatMulTransposed`]; a plain transpose for
    /// complex elements too), with ẏ = ȧ·bᵀ + a·ḃᵀ.
    #[track_caller]
    pub fn matmul_transposed<S2: Shape, S3: Shape>(&self, other: &CudaDual<T, S2>) -> CudaDual<T, S3>
    where
        OnDevice<T, S>: MatMulTransposed<OnDevice<T, S2>, Output = OnDevice<T, S3>>,
    {
        self.bilinear(other, |a, b| a.matmul_transposed(b))
    }

    /// The product xᵀ·y (the shapes of [`TransposedMatMul`]), with ẏ = ȧᵀ·b + aᵀ·ḃ.
    #[track_caller]
    pub fn transposed_matmul<S2: Shape, S3: Shape>(&self, other: &CudaDual<T, S2>) -> CudaDual<T, S3>
    where
        OnDevice<T, S>: TransposedMatMul<OnDevice<T, S2>, Output = OnDevice<T, S3>>,
    {
        self.bilinear(other, |a, b| a.transposed_matmul(b))
    }

    /// Σ xᵢ (read back to the host), with its tangent Σ ẋᵢ.
    pub fn sum(&self) -> Dual<T> {
        Dual::new(self.value.sum(), [self.tangent.sum()])
    }

    /// Σ along `AXIS`.
    pub fn sum_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> CudaDual<T, S::Removed>
    where
        S: HasAxis<AXIS>,
    {
        self.linear(|t| t.sum_axis(axis))
    }

    /// The mean along `AXIS`.
    pub fn mean_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> CudaDual<T, S::Removed>
    where
        S: HasAxis<AXIS>,
    {
        self.linear(|t| t.mean_axis(axis))
    }

    /// The tensor repeated along a new axis at `AXIS` of the static shape `Target`
    /// (value and tangent alike).
    pub fn broadcast_axis<const AXIS: usize, Target>(&self, axis: Axis<AXIS>) -> CudaDual<T, Target>
    where
        Target: StaticShape + InsertsAxis<AXIS, S>,
    {
        self.linear(|t| t.broadcast_axis(axis))
    }

    /// The tensor repeated along new leading axes to the static shape `Target`.
    pub fn broadcast<Target>(&self) -> CudaDual<T, Target>
    where
        Target: StaticShape,
        S: Broadcastable<Target>,
    {
        self.linear(|t| t.broadcast())
    }

    /// The same elements under the static shape `Target`.
    pub fn reshape<Target>(&self) -> CudaDual<T, Target>
    where
        Target: StaticShape,
        S: SameElementCount<Target>,
    {
        self.linear(|t| t.reshape())
    }

    /// The same elements under `shape` (any shapes); an error names both shapes when
    /// the element counts differ.
    pub fn try_reshape<Target: Shape>(&self, shape: Target) -> Result<CudaDual<T, Target>, ShapeError> {
        Ok(CudaDual { value: self.value.try_reshape(shape)?, tangent: self.tangent.try_reshape(shape)? })
    }

    /// Concatenation with `other` along `AXIS` (panics naming both shapes when another
    /// axis differs).
    #[track_caller]
    pub fn concat<const AXIS: usize, B: Dim, C: Dim>(
        &self,
        axis: Axis<AXIS>,
        other: &CudaDual<T, S::Replaced<B>>,
    ) -> CudaDual<T, S::Replaced<C>>
    where
        S: HasAxis<AXIS>,
        S::Axis: AddsUpTo<B, C>,
    {
        CudaDual {
            value: self.value.concat(axis, &other.value),
            tangent: self.tangent.concat(axis, &other.tangent),
        }
    }

    /// The slice `[START, START + LEN)` along `AXIS`.
    #[track_caller]
    pub fn narrow<const AXIS: usize, const START: usize, const LEN: usize>(
        &self,
    ) -> CudaDual<T, S::Replaced<Const<LEN>>>
    where
        S: HasAxis<AXIS>,
        S::Axis: FitsSlice<START, LEN>,
    {
        self.linear(|t| t.narrow::<AXIS, START, LEN>())
    }

    /// The axes in the order `axes` names; the tangent permuted the same way.
    pub fn permute<P: PermutesAxes<S>>(&self, _: P) -> CudaDual<T, P::Output> {
        let () = P::CHECK;
        self.linear(|t| t.reorder_axes::<P>())
    }
}

impl<T: CudaElement, S: Shape> CudaDual<T, S> {
    /// f(x) elementwise, with ẏ = f′(x)·ẋ.
    pub fn elementary(&self, f: Elementary<T>) -> Self {
        self.pushed(self.value.elementary(f), |y, y_dot| {
            rules::elementary_pullback(f, (&self.value, y, &self.tangent), y_dot, Write::Overwrite)
        })
    }

    /// max(x, 0) elementwise, with ẏ = ẋ where x > 0, else 0.
    pub fn relu(&self) -> Self {
        self.pushed(self.value.relu(), |_, y_dot| {
            rules::relu_pullback(&self.value, &self.tangent, y_dot, Write::Overwrite)
        })
    }

    /// c·x.
    pub fn scale(&self, factor: T) -> Self {
        CudaDual { value: self.value.scale(factor), tangent: self.tangent.scale(factor) }
    }

    /// a ⊙ b, with ẏ = ȧ ⊙ b + a ⊙ ḃ.
    #[track_caller]
    pub fn hadamard(&self, other: &Self) -> Self {
        self.bilinear(other, |a, b| a.hadamard(b))
    }

    /// Σ aᵢbᵢ (read back to the host), with its tangent Σ ȧᵢbᵢ + aᵢḃᵢ.
    #[track_caller]
    pub fn dot(&self, other: &Self) -> Dual<T> {
        let tangent = self.tangent.dot(&other.value) + self.value.dot(&other.tangent);
        Dual::new(self.value.dot(&other.value), [tangent])
    }

    /// `f` elementwise for a library author's [`ScalarFunction`], with ẏ = f′(x)·ẋ.
    #[track_caller]
    pub fn map_function<F: ScalarFunction>(&self, f: F) -> Self {
        self.pushed(self.value.map_function(f), |y, y_dot| {
            rules::function_pullback(f, (&self.value, y, &self.tangent), y_dot, Write::Overwrite)
        })
    }

    /// Softmax along `AXIS`: its Jacobian diag(y) − y·yᵀ is symmetric, so the pullback
    /// kernel applied to ẋ gives ẏ = y ⊙ (ẋ − Σ y ⊙ ẋ).
    pub fn softmax<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Self
    where
        S: HasAxis<AXIS>,
    {
        self.pushed(self.value.softmax(axis), |y, y_dot| {
            rules::softmax_pullback::<AXIS, T, S>(y, &self.tangent, y_dot, Write::Overwrite)
        })
    }

    /// log-softmax along `AXIS`, with ẏ = ẋ − Σ softmax(x) ⊙ ẋ along the axis.
    pub fn log_softmax<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Self
    where
        S: HasAxis<AXIS>,
    {
        let y = self.value.log_softmax(axis);
        let shifts = y.exp().hadamard(&self.tangent).sum_axis(axis);
        let mut tangent = self.tangent.clone();
        rules::spread_along_pullback::<AXIS, T, S>(&shifts, -T::one(), &mut tangent, Write::Accumulate);
        CudaDual { value: y, tangent }
    }

    /// ln Σ exp along `AXIS`, with its tangent Σ softmax(x) ⊙ ẋ: the softmax is the
    /// pullback of s̄ = 1, so a line that is all −∞ has tangent 0 and a line with a
    /// +∞ follows its first +∞, as on the host.
    pub fn logsumexp<const AXIS: usize>(&self, axis: Axis<AXIS>) -> CudaDual<T, S::Removed>
    where
        S: HasAxis<AXIS>,
    {
        let value = self.value.logsumexp(axis);
        let mut weights = OnDevice::device_zeros(self.value.shape());
        let ones = OnDevice::device_full(value.shape(), T::one());
        rules::logsumexp_pullback::<AXIS, T, S>(&self.value, (&value, &ones), &mut weights, Write::Overwrite);
        CudaDual { tangent: weights.hadamard(&self.tangent).sum_axis(axis), value }
    }
}

elementary_methods!(impl<T: CudaElement, S: Shape> CudaDual<T, S>);

/// Row operations of every element type.
impl<T: CudaScalar, R: Dim, C: Dim> CudaDual<T, (R, C)> {
    /// The transposed matrix.
    pub fn transpose(&self) -> CudaDual<T, (C, R)> {
        self.linear(|t| t.transpose())
    }

    /// yᵢⱼ = xᵢⱼ + bⱼ.
    #[track_caller]
    pub fn add_rows(&self, row: &CudaDual<T, (C,)>) -> Self {
        CudaDual { value: self.value.add_rows(&row.value), tangent: self.tangent.add_rows(&row.tangent) }
    }

    /// The rows at `indices`, in order.
    ///
    /// # Panics
    /// When an index is not a row.
    #[track_caller]
    pub fn gather_rows(&self, indices: &[usize]) -> CudaDual<T, (Dyn, C)> {
        self.linear(|t| t.gather_rows(indices))
    }
}

impl<T: CudaElement, R: Dim, const D: usize> CudaDual<T, (R, Const<D>)> {
    /// Multi-head scaled dot-product attention with these rows as the queries (see
    /// [`attention`](crate::ops::attention)); ẏ from the pushforward kernel.
    ///
    /// # Panics
    /// As on the host.
    #[track_caller]
    pub fn attention<const H: usize, const L: usize>(
        &self,
        keys: &Self,
        values: &Self,
        _: Heads<H>,
        _: Tokens<L>,
        mask: Mask,
    ) -> Self {
        self.any_attention::<R, H, L, L>(
            ["attention", "attention_push"],
            [keys, values],
            Seen::new(mask, None),
        )
    }

    /// Attention over padded sequences (see
    /// [`padded_attention`](crate::Tensor::padded_attention)); ẏ from the
    /// pushforward kernel.
    ///
    /// # Panics
    /// As on the host.
    #[track_caller]
    pub fn padded_attention<const H: usize, const L: usize>(
        &self,
        keys: &Self,
        values: &Self,
        _: Heads<H>,
        _: Tokens<L>,
        mask: Mask,
        lengths: &[usize],
    ) -> Self {
        let names = ["padded_attention", "padded_attention_push"];
        self.any_attention::<R, H, L, L>(names, [keys, values], Seen::new(mask, Some(lengths)))
    }

    /// Cross-attention to keys and values in sequences of LK tokens (see
    /// [`cross_attention`](crate::Tensor::cross_attention)); ẏ from the pushforward
    /// kernel.
    ///
    /// # Panics
    /// As on the host.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn cross_attention<const H: usize, const LQ: usize, const LK: usize, RK: Dim>(
        &self,
        keys: &CudaDual<T, (RK, Const<D>)>,
        values: &CudaDual<T, (RK, Const<D>)>,
        _: Heads<H>,
        _: Tokens<LQ>,
        _: Tokens<LK>,
        mask: Mask,
        lengths: Option<&[usize]>,
    ) -> Self {
        let names = ["cross_attention", "cross_attention_push"];
        self.any_attention::<RK, H, LQ, LK>(names, [keys, values], Seen::new(mask, lengths))
    }

    /// Any of the attentions: `names` are its own and its pushforward's.
    #[track_caller]
    fn any_attention<RK: Dim, const H: usize, const LQ: usize, const LK: usize>(
        &self,
        [name, push_name]: [&'static str; 2],
        [keys, values]: [&CudaDual<T, (RK, Const<D>)>; 2],
        seen: Seen<'_>,
    ) -> Self {
        let value = or_panic(device_attention::attend::<T, R, RK, D, H, LQ, LK>(
            name,
            &self.value,
            [&keys.value, &values.value],
            seen,
        ));
        let tangent = device_attention::push::<T, R, RK, D, H, LQ, LK>(
            push_name,
            (&self.value, [&keys.value, &values.value]),
            (&self.tangent, [&keys.tangent, &values.tangent]),
            seen,
        );
        CudaDual { value, tangent }
    }
}

impl<T: CudaElement, R: Dim, C: Dim> CudaDual<T, (R, C)> {
    /// yᵢⱼ = xᵢⱼ·gⱼ, with ẏᵢⱼ = ẋᵢⱼ·gⱼ + xᵢⱼ·ġⱼ.
    #[track_caller]
    pub fn mul_rows(&self, row: &CudaDual<T, (C,)>) -> Self {
        self.bilinear(row, |x, g| x.mul_rows(g))
    }

    /// Each row normalised, yᵢⱼ = (xᵢⱼ − μᵢ)/√(σᵢ² + ε): its Jacobian per row,
    /// r·(I − 11ᵀ/n − y·yᵀ/n), is symmetric, so the pullback kernel pushes ẋ.
    pub fn normalize_rows(&self, epsilon: T) -> Self {
        let (y, scales) = self.value.normalized_rows(epsilon);
        self.pushed(y, |y, y_dot| {
            rules::normalize_rows_pullback((y, &scales, &self.tangent), y_dot, Write::Overwrite)
        })
    }
}

impl<T: CudaElement, B: Dim, const C: usize, const H: usize, const W: usize>
    CudaDual<T, (B, Const<C>, Const<H>, Const<W>)>
{
    /// The cross-correlation with `kernels` moved S positions per output over the
    /// images padded with P zeros, with ẏ = conv(ẋ, w) + conv(x, ẇ).
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
        kernels: &CudaDual<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>,
        stride: Stride<S>,
        padding: Padding<P>,
    ) -> CudaDual<T, (B, Const<O>, Const<HO>, Const<WO>)>
    where
        Const<H>: ConvolvesTo<KH, P, HO, S>,
        Const<W>: ConvolvesTo<KW, P, WO, S>,
    {
        // x is unfolded once for both of its products.
        let [value, x_by_w_dot] =
            self.value.conv2d_strided_with_each([&kernels.value, &kernels.tangent], stride, padding);
        let tangent = &self.tangent.conv2d_strided(&kernels.value, stride, padding) + &x_by_w_dot;
        CudaDual { value, tangent }
    }

    /// Each image's channels in G groups, each normalised over its channels and
    /// positions (the groups are lines: the row normalisation's kernels).
    pub fn normalize_groups<const G: usize>(&self, groups: Groups<G>, epsilon: T) -> Self {
        crate::ops::cuda::groups_as_rows!(self, self.value.shape(), groups, epsilon)
    }

    /// The maximum of each K×K window with stride K; ẏ is ẋ at each window's first
    /// maximum.
    pub fn max_pool2d<const K: usize, const HO: usize, const WO: usize>(
        &self,
    ) -> CudaDual<T, (B, Const<C>, Const<HO>, Const<WO>)>
    where
        Const<H>: PoolsTo<K, HO>,
        Const<W>: PoolsTo<K, WO>,
    {
        self.max_pool2d_strided(Window::<K>, Stride::<K>, Padding::<0>)
    }

    /// The maximum of each K×K window moved S per output over the images padded by P;
    /// ẏ is ẋ at each window's first maximum.
    pub fn max_pool2d_strided<
        const K: usize,
        const S: usize,
        const P: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        window: Window<K>,
        stride: Stride<S>,
        padding: Padding<P>,
    ) -> CudaDual<T, (B, Const<C>, Const<HO>, Const<WO>)>
    where
        Const<H>: PoolsTo<K, HO, P, S>,
        Const<W>: PoolsTo<K, WO, P, S>,
    {
        let tangent = rules::max_pool2d_push(&self.value, &self.tangent, (window, stride, padding));
        CudaDual { value: self.value.max_pool2d_strided(window, stride, padding), tangent }
    }

    /// The mean of each K×K window with stride K; ẏ is ẋ pooled (the pooling is
    /// linear).
    pub fn avg_pool2d<const K: usize, const HO: usize, const WO: usize>(
        &self,
    ) -> CudaDual<T, (B, Const<C>, Const<HO>, Const<WO>)>
    where
        Const<H>: PoolsTo<K, HO>,
        Const<W>: PoolsTo<K, WO>,
    {
        self.avg_pool2d_strided(Window::<K>, Stride::<K>, Padding::<0>)
    }

    /// The sum of each K×K window's elements inside the images over K², moved S per
    /// output over the images padded by P; ẏ is ẋ pooled.
    pub fn avg_pool2d_strided<
        const K: usize,
        const S: usize,
        const P: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        window: Window<K>,
        stride: Stride<S>,
        padding: Padding<P>,
    ) -> CudaDual<T, (B, Const<C>, Const<HO>, Const<WO>)>
    where
        Const<H>: PoolsTo<K, HO, P, S>,
        Const<W>: PoolsTo<K, WO, P, S>,
    {
        CudaDual {
            value: self.value.avg_pool2d_strided(window, stride, padding),
            tangent: self.tangent.avg_pool2d_strided(window, stride, padding),
        }
    }

    /// Each example's C·H·W values as one row.
    pub fn flatten_images<const F: usize>(&self) -> CudaDual<T, (B, Const<F>)> {
        self.linear(|t| t.flatten_images::<F>())
    }
}

impl<T: CudaElement, B: Dim, C: Dim, H: Dim, W: Dim> CudaDual<T, (B, C, H, W)> {
    /// y_{b c i j} = x_{b c i j} + b_c.
    #[track_caller]
    pub fn add_channels(&self, bias: &CudaDual<T, (C,)>) -> Self {
        CudaDual {
            value: self.value.add_channels(&bias.value),
            tangent: self.tangent.add_channels(&bias.tangent),
        }
    }

    /// y_{b c i j} = x_{b c i j}·g_c, with ẏ = ẋ·g_c + x·ġ_c.
    #[track_caller]
    pub fn mul_channels(&self, gain: &CudaDual<T, (C,)>) -> Self {
        self.bilinear(gain, |x, g| x.mul_channels(g))
    }
}

impl<T: CudaScalar, S: Shape> ElementwiseFunctions for CudaDual<T, S> {}

#[diagnostic::do_not_recommend]
impl<T: CudaElement, S: Shape> MapFunction for CudaDual<T, S> {
    #[track_caller]
    fn map_function<F: ScalarFunction>(&self, f: F) -> Self {
        CudaDual::<T, S>::map_function(self, f)
    }
}

/// `f` elementwise for a library author's [`ScalarFunction`], with x̄ = f′(x)·ȳ.
#[diagnostic::do_not_recommend]
impl<T: CudaElement, S: Shape> MapFunction for Var<OnDevice<T, S>> {
    #[track_caller]
    fn map_function<F: ScalarFunction>(&self, f: F) -> Self {
        let x = self.shared_value();
        record_unary_in_place(self, x.map_function(f), move |y, y_bar, x_bar| {
            x_bar.write_or_add(x.shape(), |x_bar, write| {
                rules::function_pullback(f, (&x, y, y_bar), x_bar, write)
            })
        })
    }
}

/// A fused elementwise function of `N` lifted GPU tensors: ẏ = Σₖ ∂f/∂xₖ·ẋₖ, one
/// kernel for the value and one for the tangent.
#[diagnostic::do_not_recommend]
impl<T: CudaElement, S: Shape, const N: usize> Fusable<N> for CudaDual<T, S> {
    #[track_caller]
    fn fused<F: FusedFunction<N>>(f: F, inputs: [&Self; N]) -> Self {
        let values = inputs.map(|x| &x.value);
        let tangent = OnDevice::fused_tangent(f, values, inputs.map(|x| &x.tangent));
        CudaDual { value: f.apply(values), tangent }
    }
    fn check_operand_shape(&self, other: &Self, operation: &'static str) -> Result<(), ShapeError> {
        self.value.check_same_shape(&other.value, operation)
    }
}

/// A fused elementwise function of `N` traced GPU tensors, with x̄ₖ = ∂f/∂xₖ·ȳ, one
/// generated kernel per input.
#[diagnostic::do_not_recommend]
impl<T: CudaElement, S: Shape, const N: usize> Fusable<N> for Var<OnDevice<T, S>> {
    #[track_caller]
    fn fused<F: FusedFunction<N>>(f: F, inputs: [&Self; N]) -> Self {
        let values = inputs.map(Var::shared_value);
        let y = f.apply(values.each_ref().map(|value| &**value));
        let shape = y.shape();
        record_many(inputs, y, move |_, y_bar: &OnDevice<T, S>, mut adjoints| {
            for k in 0..N {
                adjoints.input(k).write_or_add(shape, |x_bar, write| {
                    rules::fused_pullback(
                        (f, k),
                        values.each_ref().map(|value| &**value),
                        y_bar,
                        x_bar,
                        write,
                    )
                });
            }
        })
    }
    fn check_operand_shape(&self, other: &Self, operation: &'static str) -> Result<(), ShapeError> {
        self.value().check_same_shape(other.value(), operation)
    }
}

impl<T: CudaScalar, S: Shape> Add for &CudaDual<T, S> {
    type Output = CudaDual<T, S>;
    #[track_caller]
    fn add(self, other: Self) -> CudaDual<T, S> {
        CudaDual { value: &self.value + &other.value, tangent: &self.tangent + &other.tangent }
    }
}

impl<T: CudaScalar, S: Shape> Sub for &CudaDual<T, S> {
    type Output = CudaDual<T, S>;
    #[track_caller]
    fn sub(self, other: Self) -> CudaDual<T, S> {
        CudaDual { value: &self.value - &other.value, tangent: &self.tangent - &other.tangent }
    }
}

impl<T: CudaScalar, S: Shape> Neg for &CudaDual<T, S> {
    type Output = CudaDual<T, S>;
    fn neg(self) -> CudaDual<T, S> {
        self.linear(|t| -t)
    }
}

impl<T: CudaElement, S: Shape> Mul<T> for &CudaDual<T, S> {
    type Output = CudaDual<T, S>;
    fn mul(self, factor: T) -> CudaDual<T, S> {
        self.scale(factor)
    }
}

impl<T: CudaElement, S: Shape> Div<T> for &CudaDual<T, S> {
    type Output = CudaDual<T, S>;
    fn div(self, divisor: T) -> CudaDual<T, S> {
        self.scale(T::one() / divisor)
    }
}

/// Forward mode on complex GPU tensors, as on the host's `Dual<Complex64>`: the
/// tangent is complex, ẏ = f′(x)·ẋ for a holomorphic f (the elementary functions,
/// products), the linear maps `conj`, `re` and `im` act on ẋ as on x, and the real
/// maps `|x|` and `|x|²` push Re(conj(x)·ẋ)/|x| and 2·Re(conj(x)·ẋ).
impl<T: CudaElement, S: Shape> CudaDual<Complex<T>, S>
where
    Complex<T>: CudaScalar<Part = T>,
{
    /// f(x) elementwise (principal branches), with ẏ = f′(x)·ẋ.
    pub fn elementary(&self, f: Elementary<T>) -> Self {
        self.pushed(self.value.elementary(f), |y, y_dot| {
            rules::complex_elementary_push(f, (&self.value, y, &self.tangent), y_dot)
        })
    }

    /// c·x for a complex `factor`.
    pub fn scale(&self, factor: Complex<T>) -> Self {
        self.linear(|t| t.scale(factor))
    }

    /// a ⊙ b, with ẏ = ȧ ⊙ b + a ⊙ ḃ.
    #[track_caller]
    pub fn hadamard(&self, other: &Self) -> Self {
        self.bilinear(other, |a, b| a.hadamard(b))
    }

    /// ⟨a, b⟩ = Σ conj(aᵢ)·bᵢ (read back to the host), with its tangent
    /// ⟨ȧ, b⟩ + ⟨a, ḃ⟩.
    #[track_caller]
    pub fn inner(&self, other: &Self) -> Dual<Complex<T>> {
        let tangent = self.tangent.inner(&other.value) + self.value.inner(&other.tangent);
        Dual::new(self.value.inner(&other.value), [tangent])
    }

    /// Σ aᵢbᵢ without conjugation (read back to the host), with its tangent
    /// Σ ȧᵢbᵢ + aᵢḃᵢ.
    #[track_caller]
    pub fn dotu(&self, other: &Self) -> Dual<Complex<T>> {
        let tangent = self.tangent.dotu(&other.value) + self.value.dotu(&other.tangent);
        Dual::new(self.value.dotu(&other.value), [tangent])
    }

    /// The complex conjugate elementwise (ẏ = conj(ẋ)).
    pub fn conj(&self) -> Self {
        self.linear(|t| t.conj())
    }

    /// The real part elementwise.
    pub fn re(&self) -> CudaDual<T, S> {
        self.real_valued(RealValued::Re, self.value.re())
    }

    /// The imaginary part elementwise.
    pub fn im(&self) -> CudaDual<T, S> {
        self.real_valued(RealValued::Im, self.value.im())
    }

    /// |x| elementwise, with ẏ = Re(conj(x)·ẋ)/|x| (0 where x = 0).
    pub fn abs(&self) -> CudaDual<T, S> {
        self.real_valued(RealValued::Abs, self.value.abs())
    }

    /// |x|² elementwise, with ẏ = 2·Re(conj(x)·ẋ).
    pub fn norm_sqr(&self) -> CudaDual<T, S> {
        self.real_valued(RealValued::NormSqr, self.value.norm_sqr())
    }

    /// The real-valued map `map`'s `value`, with its tangent pushed from ẋ.
    fn real_valued(&self, map: RealValued, value: OnDevice<T, S>) -> CudaDual<T, S> {
        CudaDual { value, tangent: rules::real_valued_push(map, &self.value, &self.tangent) }
    }
}

elementary_methods!(
    impl<T: CudaElement, S: Shape> CudaDual<Complex<T>, S>
    where
        Complex<T>: CudaScalar<Part = T>
);

impl<T: CudaElement, R: Dim, C: Dim> CudaDual<Complex<T>, (R, C)>
where
    Complex<T>: CudaScalar<Part = T>,
{
    /// yᵢⱼ = xᵢⱼ·gⱼ, with ẏᵢⱼ = ẋᵢⱼ·gⱼ + xᵢⱼ·ġⱼ.
    #[track_caller]
    pub fn mul_rows(&self, row: &CudaDual<Complex<T>, (C,)>) -> Self {
        self.bilinear(row, |x, g| x.mul_rows(g))
    }
}

/// `z * c` and `z / c` on a lifted complex GPU tensor, for a complex or a real factor.
macro_rules! complex_dual_scaling {
    ($($Factor:ty),*) => {$(
        impl<T: CudaElement, S: Shape> Mul<$Factor> for &CudaDual<Complex<T>, S>
        where
            Complex<T>: CudaScalar<Part = T>,
        {
            type Output = CudaDual<Complex<T>, S>;
            fn mul(self, factor: $Factor) -> CudaDual<Complex<T>, S> {
                self.linear(|t| t * factor)
            }
        }

        impl<T: CudaElement, S: Shape> Div<$Factor> for &CudaDual<Complex<T>, S>
        where
            Complex<T>: CudaScalar<Part = T>,
        {
            type Output = CudaDual<Complex<T>, S>;
            fn div(self, divisor: $Factor) -> CudaDual<Complex<T>, S> {
                self.linear(|t| t / divisor)
            }
        }
    )*};
}

complex_dual_scaling!(Complex<T>, T);

/// The rules every GPU element type shares: they act on each real part alike.
#[fluxion_derive::extension_trait(CudaVarOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaScalar, S: Shape> Var<OnDevice<T, S>> {
    /// Elementwise sum (panics naming both shapes on a dynamic mismatch).
    #[track_caller]
    pub fn add(&self, other: &Self) -> Self {
        self.sum_or_difference(other, self.value() + other.value(), T::Part::one())
    }

    /// Elementwise difference (panics naming both shapes on a dynamic mismatch).
    #[track_caller]
    pub fn sub(&self, other: &Self) -> Self {
        self.sum_or_difference(other, self.value() - other.value(), -T::Part::one())
    }

    /// Records y = a ± b: ā = ȳ and b̄ = sign·ȳ, written into the adjoints.
    fn sum_or_difference(&self, other: &Self, y: OnDevice<T, S>, sign: T::Part) -> Self {
        let shapes = (self.value().shape(), other.value().shape());
        record_binary_in_place(self, other, y, move |_, y_bar: &OnDevice<T, S>, mut adjoints| {
            adjoints.write_or_add(shapes, |a_bar, b_bar| {
                if let Some((a_bar, write)) = a_bar {
                    rules::scaled_pullback(y_bar, T::Part::one(), a_bar, write);
                }
                if let Some((b_bar, write)) = b_bar {
                    rules::scaled_pullback(y_bar, sign, b_bar, write);
                }
            })
        })
    }

    /// x times a real `factor`, each part alike, with x̄ = factor·ȳ.
    pub(crate) fn scaled_parts(&self, factor: T::Part) -> Self {
        let shape = self.value().shape();
        record_unary_in_place(self, self.value().scale_parts(factor), move |_, y_bar, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| rules::scaled_pullback(y_bar, factor, x_bar, write))
        })
    }

    /// The same elements under the static shape `Target`.
    pub fn reshape<Target>(&self) -> Var<OnDevice<T, Target>>
    where
        Target: StaticShape,
        S: SameElementCount<Target>,
    {
        let () = <S as SameElementCount<Target>>::CHECK;
        or_panic(self.try_reshape(Target::default()))
    }

    /// The same elements under `shape` (any shapes); an error names both shapes when
    /// the element counts differ.
    pub fn try_reshape<Target: Shape>(&self, shape: Target) -> Result<Var<OnDevice<T, Target>>, ShapeError> {
        let (y, from) = (self.value().try_reshape(shape)?, self.value().shape());
        Ok(record_unary_in_place(self, y, move |_, y_bar: &OnDevice<T, Target>, x_bar| {
            x_bar.add(|| or_panic(y_bar.try_reshape(from)))
        }))
    }

    /// Concatenation with `other` along `AXIS` (panics naming both shapes when
    /// another axis differs).
    #[track_caller]
    pub fn concat<const AXIS: usize, B: Dim, C: Dim>(
        &self,
        axis: Axis<AXIS>,
        other: &Var<OnDevice<T, S::Replaced<B>>>,
    ) -> Var<OnDevice<T, S::Replaced<C>>>
    where
        S: HasAxis<AXIS>,
        S::Axis: AddsUpTo<B, C>,
    {
        let () = <S::Axis as AddsUpTo<B, C>>::CHECK;
        let shapes = (self.value().shape(), other.value().shape());
        let lengths = (shapes.0.dims().as_slice()[AXIS], shapes.1.dims().as_slice()[AXIS]);
        let y = or_panic(self.value().join_along(axis, other.value()));
        record_binary_in_place(self, other, y, move |_, y_bar, mut adjoints| {
            adjoints.write_or_add(shapes, |a_bar, b_bar| {
                rules::concat_pullback::<AXIS, T, S, B, C>(y_bar, a_bar, b_bar, lengths)
            })
        })
    }

    /// The slice `[START, START + LEN)` along `AXIS`.
    #[track_caller]
    pub fn narrow<const AXIS: usize, const START: usize, const LEN: usize>(
        &self,
    ) -> Var<OnDevice<T, S::Replaced<Const<LEN>>>>
    where
        S: HasAxis<AXIS>,
        S::Axis: FitsSlice<START, LEN>,
    {
        let () = <S::Axis as FitsSlice<START, LEN>>::CHECK;
        let shape = self.value().shape();
        record_unary_in_place(
            self,
            or_panic(self.value().window_along::<AXIS, START, LEN>()),
            move |_, y_bar, x_bar| {
                x_bar.write_or_add(shape, |x_bar, write| {
                    rules::narrow_pullback::<AXIS, START, LEN, T, S>(y_bar, x_bar, write)
                })
            },
        )
    }

    /// The axes in the order `axes` names (see [`Tensor::permute`]), with x̄ = ȳ's
    /// axes put back ([`rules::permute_pullback`]).
    pub fn permute<P: PermutesAxes<S>>(&self, axes: P) -> Var<OnDevice<T, P::Output>> {
        let () = P::CHECK;
        record_unary_in_place(self, self.value().reorder_axes::<P>(), move |_, y_bar, x_bar| {
            x_bar.add(|| rules::permute_pullback(axes, y_bar))
        })
    }

    /// Σ along `AXIS`.
    pub fn sum_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Var<OnDevice<T, S::Removed>>
    where
        S: HasAxis<AXIS>,
    {
        self.spread_reduction(self.value().sum_axis(axis), T::Part::one())
    }

    /// Mean along `AXIS`.
    pub fn mean_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Var<OnDevice<T, S::Removed>>
    where
        S: HasAxis<AXIS>,
    {
        let len = self.value().shape().axis_dim().size();
        self.spread_reduction(self.value().mean_axis(axis), T::Part::one() / T::Part::from_f64(len as f64))
    }

    /// Records a reduction along `AXIS` whose pullback spreads factor·ȳ along it.
    fn spread_reduction<const AXIS: usize>(
        &self,
        y: OnDevice<T, S::Removed>,
        factor: T::Part,
    ) -> Var<OnDevice<T, S::Removed>>
    where
        S: HasAxis<AXIS>,
    {
        let shape = self.value().shape();
        record_unary_in_place(self, y, move |_, y_bar, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| {
                rules::spread_along_pullback::<AXIS, T, S>(y_bar, factor, x_bar, write)
            })
        })
    }

    /// Repeated along a new axis at `AXIS` of the static shape `Target` (see
    /// [`Tensor::broadcast_axis`]); x̄ = Σ of ȳ along `AXIS`.
    pub fn broadcast_axis<const AXIS: usize, Target>(&self, axis: Axis<AXIS>) -> Var<OnDevice<T, Target>>
    where
        Target: StaticShape + InsertsAxis<AXIS, S>,
    {
        or_panic(self.try_broadcast_axis_to(axis, Target::default()))
    }

    /// [`Var::broadcast_axis`] to `shape` (checked when it runs).
    pub fn try_broadcast_axis_to<const AXIS: usize, Target>(
        &self,
        axis: Axis<AXIS>,
        shape: Target,
    ) -> Result<Var<OnDevice<T, Target>>, ShapeError>
    where
        Target: InsertsAxis<AXIS, S>,
    {
        let source = self.value().shape();
        let y = self.value().try_broadcast_axis_to(axis, shape)?;
        Ok(record_unary_in_place(self, y, move |_, y_bar, x_bar| {
            x_bar.write_or_add(source, |x_bar, write| {
                rules::broadcast_axis_pullback::<AXIS, T, Target>(y_bar, x_bar, write)
            })
        }))
    }

    /// Repeated along new leading axes to the static shape `Target`.
    pub fn broadcast<Target>(&self) -> Var<OnDevice<T, Target>>
    where
        Target: StaticShape,
        S: Broadcastable<Target>,
    {
        or_panic(self.try_broadcast_to(Target::default()))
    }

    /// Repeated along new leading axes to `shape` (checked when it runs).
    pub fn try_broadcast_to<Target: Shape>(
        &self,
        shape: Target,
    ) -> Result<Var<OnDevice<T, Target>>, ShapeError>
    where
        S: Broadcastable<Target>,
    {
        let source = self.value().shape();
        let y = self.value().try_broadcast_to(shape)?;
        Ok(record_unary_in_place(self, y, move |_, y_bar, x_bar| {
            x_bar.write_or_add(source, |x_bar, write| rules::broadcast_pullback(y_bar, x_bar, write))
        }))
    }
}

/// The rules of real GPU tensors (`f32`, `f64`): elementwise functions, products,
/// reductions, maxima, softmax and logsumexp.
#[fluxion_derive::extension_trait(CudaRealVarOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, S: Shape> Var<OnDevice<T, S>> {
    /// f(x) elementwise, with x̄ = f′(x)·ȳ.
    pub fn elementary(&self, f: Elementary<T>) -> Self {
        let x = self.shared_value();
        record_unary_in_place(self, x.elementary(f), move |y, y_bar, x_bar| {
            x_bar.write_or_add(x.shape(), |x_bar, write| {
                rules::elementary_pullback(f, (&x, y, y_bar), x_bar, write)
            })
        })
    }

    /// |x| elementwise, with x̄ = sign(x)·ȳ (0 at 0), as on the host.
    #[track_caller]
    pub fn abs(&self) -> Self {
        self.map_function(AbsoluteValue)
    }

    /// The elements as a vector of static length `N`.
    pub fn flatten<const N: usize>(&self) -> Var<OnDevice<T, (Const<N>,)>>
    where
        S: StaticShape + SameElementCount<(Const<N>,)>,
    {
        self.reshape()
    }

    /// s·x for a differentiated scalar s: x̄ = s·ȳ, s̄ = ⟨x, ȳ⟩ (a reduction on the
    /// GPU, read back).
    #[track_caller]
    pub fn scale_by(&self, s: &Var<T>) -> Self {
        let (x, factor) = (self.shared_value(), *s.value());
        record_binary_in_place(self, s, x.scale(factor), move |_, y_bar: &OnDevice<T, S>, mut adjoints| {
            adjoints
                .lhs()
                .write_or_add(x.shape(), |x_bar, write| rules::scaled_pullback(y_bar, factor, x_bar, write));
            adjoints.rhs().add(|| x.dot(y_bar));
        })
    }

    /// max(x, 0) elementwise.
    pub fn relu(&self) -> Self {
        let x = self.shared_value();
        record_unary_in_place(self, x.relu(), move |_, y_bar, x_bar| {
            x_bar.write_or_add(x.shape(), |x_bar, write| rules::relu_pullback(&x, y_bar, x_bar, write))
        })
    }

    /// `factor`·x.
    pub fn scale(&self, factor: T) -> Self {
        let shape = self.value().shape();
        record_unary_in_place(self, self.value().scale(factor), move |_, y_bar, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| rules::scaled_pullback(y_bar, factor, x_bar, write))
        })
    }

    /// Elementwise product (with a `Var` or a plain tensor, a constant).
    #[track_caller]
    pub fn hadamard(&self, other: &impl Operand<OnDevice<T, S>>) -> Self {
        let other = other.to_var();
        let (a, b) = (self.shared_value(), other.shared_value());
        let shapes = (a.shape(), b.shape());
        record_binary_in_place(
            self,
            &other,
            a.hadamard(&b),
            move |_, y_bar: &OnDevice<T, S>, mut adjoints| {
                adjoints.write_or_add(shapes, |a_bar, b_bar| {
                    rules::hadamard_pullback((&a, &b, y_bar), a_bar, b_bar)
                })
            },
        )
    }

    /// Σ aᵢbᵢ (with a `Var` or a plain tensor, a constant), with ā = s̄·b and
    /// b̄ = s̄·a (its value is read back to the host).
    #[track_caller]
    pub fn dot(&self, other: &impl Operand<OnDevice<T, S>>) -> Var<T> {
        let other = other.to_var();
        let (a, b) = (self.shared_value(), other.shared_value());
        let shapes = (a.shape(), b.shape());
        record_binary_in_place(self, &other, a.dot(&b), move |_, &s_bar: &T, mut adjoints| {
            adjoints.write_or_add(shapes, |a_bar, b_bar| {
                if let Some((a_bar, write)) = a_bar {
                    rules::scaled_pullback(&b, s_bar, a_bar, write);
                }
                if let Some((b_bar, write)) = b_bar {
                    rules::scaled_pullback(&a, s_bar, b_bar, write);
                }
            })
        })
    }

    /// ⟨a, b⟩, which is `dot` on real data.
    #[track_caller]
    pub fn inner(&self, other: &Self) -> Var<T> {
        self.dot(other)
    }

    /// Σ aᵢbᵢ, which is `dot` on real data.
    #[track_caller]
    pub fn dotu(&self, other: &Self) -> Var<T> {
        self.dot(other)
    }

    /// Σ of all elements (its value is read back to the host).
    pub fn sum(&self) -> Var<T> {
        self.total(T::one())
    }

    /// Mean of all elements (its value is read back to the host).
    pub fn mean(&self) -> Var<T> {
        let x = self.value();
        self.total(T::one() / T::from_f64(x.len() as f64))
    }

    /// `factor`·Σ x, with x̄ = factor·s̄ everywhere.
    fn total(&self, factor: T) -> Var<T> {
        let shape = self.value().shape();
        record_unary_in_place(self, self.value().sum() * factor, move |_, &s_bar, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| rules::fill_pullback(s_bar, factor, x_bar, write))
        })
    }

    /// The largest element; its cotangent flows to the first maximum (its value is
    /// read back to the host).
    pub fn max(&self) -> Var<T> {
        let x = self.shared_value();
        record_unary_in_place(self, x.max(), move |_, &s_bar: &T, x_bar| {
            x_bar.write_or_add(x.shape(), |x_bar, write| rules::max_pullback(&x, s_bar, x_bar, write))
        })
    }

    /// The largest element along `AXIS`; each line's cotangent flows to its first
    /// maximum.
    pub fn max_axis<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Var<OnDevice<T, S::Removed>>
    where
        S: HasAxis<AXIS>,
    {
        let x = self.shared_value();
        record_unary_in_place(self, x.max_axis(axis), move |_, y_bar, x_bar| {
            x_bar.write_or_add(x.shape(), |x_bar, write| {
                rules::max_axis_pullback::<AXIS, T, S>(&x, y_bar, x_bar, write)
            })
        })
    }

    /// ln Σ exp along `AXIS`.
    pub fn logsumexp<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Var<OnDevice<T, S::Removed>>
    where
        S: HasAxis<AXIS>,
    {
        let x = self.shared_value();
        record_unary_in_place(self, x.logsumexp(axis), move |s, s_bar, x_bar| {
            x_bar.write_or_add(x.shape(), |x_bar, write| {
                rules::logsumexp_pullback::<AXIS, T, S>(&x, (s, s_bar), x_bar, write)
            })
        })
    }

    /// Softmax along `AXIS`.
    pub fn softmax<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Self
    where
        S: HasAxis<AXIS>,
    {
        let shape = self.value().shape();
        record_unary_in_place(self, self.value().softmax(axis), move |y, y_bar, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| {
                rules::softmax_pullback::<AXIS, T, S>(y, y_bar, x_bar, write)
            })
        })
    }

    /// Log-softmax along `AXIS`.
    pub fn log_softmax<const AXIS: usize>(&self, axis: Axis<AXIS>) -> Self
    where
        S: HasAxis<AXIS>,
    {
        let shape = self.value().shape();
        record_unary_in_place(self, self.value().log_softmax(axis), move |y, y_bar, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| {
                rules::log_softmax_pullback::<AXIS, T, S>(y, y_bar, x_bar, write)
            })
        })
    }
}

elementary_methods!(
    /// The rules of eˣ, ln, sin, cos, tanh, √, the sigmoid and powers of traced real GPU
    /// tensors: x̄ = f′(x)·ȳ.
    #[fluxion_derive::extension_trait(CudaElementaryVarOps: crate::backend::cuda::method_seal::Sealed)]
    impl<T: CudaElement, S: Shape> Var<OnDevice<T, S>>
);

/// The rule of the outer product of traced GPU vectors.
#[fluxion_derive::extension_trait(CudaVectorVarOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaScalar, M: Dim> Var<OnDevice<T, (M,)>> {
    /// a ⊗ b → the matrix aᵢbⱼ, with ā = Ȳ·conj(b) and b̄ = Ȳᵀ·conj(a).
    pub fn outer<N: Dim>(&self, other: &Var<OnDevice<T, (N,)>>) -> Var<OnDevice<T, (M, N)>> {
        let (a, b) = (self.shared_value(), other.shared_value());
        let shapes = (a.shape(), b.shape());
        record_binary_in_place(self, other, a.outer(&b), move |_, y_bar, mut adjoints| {
            adjoints.write_or_add(shapes, |a_bar, b_bar| rules::outer_pullback((&a, &b, y_bar), a_bar, b_bar))
        })
    }
}

/// Row operations of every element type.
#[fluxion_derive::extension_trait(CudaMatrixVarOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaScalar, R: Dim, C: Dim> Var<OnDevice<T, (R, C)>> {
    /// yᵢⱼ = xᵢⱼ + bⱼ (`row` a `Var` or a plain tensor, a constant), with x̄ = ȳ and
    /// b̄ = Σᵢ ȳᵢ (panics naming both shapes when a dynamic column count differs).
    #[track_caller]
    pub fn add_rows(&self, row: &impl Operand<OnDevice<T, (C,)>>) -> Self {
        let row = row.to_var();
        let shapes = (self.value().shape(), row.value().shape());
        record_binary_in_place(
            self,
            &row,
            self.value().add_rows(row.value()),
            move |_, y_bar, mut adjoints| {
                adjoints.write_or_add(shapes, |x_bar, row_bar| {
                    if let Some((x_bar, write)) = x_bar {
                        rules::scaled_pullback(y_bar, T::Part::one(), x_bar, write);
                    }
                    if let Some((row_bar, write)) = row_bar {
                        rules::broadcast_pullback(y_bar, row_bar, write);
                    }
                })
            },
        )
    }

    /// The rows at `indices`, in order (an embedding lookup); each row of ȳ flows
    /// back to the row it was read from.
    ///
    /// # Panics
    /// When an index is not a row.
    #[track_caller]
    pub fn gather_rows(&self, indices: &[usize]) -> Var<OnDevice<T, (Dyn, C)>> {
        let y = self.value().gather_rows(indices);
        let (shape, indices) = (self.value().shape(), indices.to_vec());
        record_unary_in_place(self, y, move |_, y_bar, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| {
                rules::gather_rows_pullback(&indices, y_bar, x_bar, write)
            })
        })
    }

    /// The transposed matrix.
    pub fn transpose(&self) -> Var<OnDevice<T, (C, R)>> {
        record_unary_in_place(self, self.value().transpose(), |_, y_bar: &OnDevice<T, (C, R)>, x_bar| {
            x_bar.add(|| y_bar.transpose())
        })
    }
}

/// The rules of row scaling and normalisation of traced real GPU matrices.
#[fluxion_derive::extension_trait(CudaRealMatrixVarOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, R: Dim, C: Dim> Var<OnDevice<T, (R, C)>> {
    /// yᵢⱼ = xᵢⱼ·gⱼ (`row` a `Var` or a plain tensor, a constant), with x̄ᵢⱼ = ȳᵢⱼ·gⱼ
    /// and ḡⱼ = Σᵢ ȳᵢⱼ·xᵢⱼ (panics naming both shapes when a dynamic column count
    /// differs).
    #[track_caller]
    pub fn mul_rows(&self, row: &impl Operand<OnDevice<T, (C,)>>) -> Self {
        let row = row.to_var();
        let (x, g) = (self.shared_value(), row.shared_value());
        let shapes = (x.shape(), g.shape());
        record_binary_in_place(
            self,
            &row,
            x.mul_rows(&g),
            move |_, y_bar: &OnDevice<T, (R, C)>, mut adjoints| {
                adjoints.write_or_add(shapes, |x_bar, row_bar| {
                    if let Some((x_bar, write)) = x_bar {
                        rules::mul_rows_pullback(y_bar, &g, x_bar, write);
                    }
                    if let Some((row_bar, write)) = row_bar {
                        rules::broadcast_pullback(&y_bar.hadamard(&x), row_bar, write);
                    }
                })
            },
        )
    }

    /// Each row normalised, yᵢⱼ = (xᵢⱼ − μᵢ)/√(σᵢ² + ε), with
    /// x̄ = r·(ȳ − mean(ȳ) − y·mean(ȳ ⊙ y)) per row (ε a constant).
    pub fn normalize_rows(&self, epsilon: T) -> Self {
        let (y, scales) = self.value().normalized_rows(epsilon);
        let shape = y.shape();
        record_unary_in_place(self, y, move |y, y_bar, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| {
                rules::normalize_rows_pullback((y, &scales, y_bar), x_bar, write)
            })
        })
    }
}

/// Multi-head attention of traced GPU rows of tokens.
#[fluxion_derive::extension_trait(CudaAttentionVarOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, R: Dim, const D: usize> Var<OnDevice<T, (R, Const<D>)>> {
    /// Multi-head scaled dot-product attention with these rows as the queries (see
    /// [`attention`](crate::ops::attention)), one node for the three operands (each
    /// traced or plain), the pullback running the GPU kernels of q̄, k̄ and v̄.
    ///
    /// # Panics
    /// When the keys' or values' rows differ from the queries', or the rows are not
    /// whole sequences of L ≥ 1 tokens (the message names the shapes).
    #[track_caller]
    pub fn attention<const H: usize, const L: usize>(
        &self,
        keys: &impl Operand<OnDevice<T, (R, Const<D>)>>,
        values: &impl Operand<OnDevice<T, (R, Const<D>)>>,
        _: Heads<H>,
        _: Tokens<L>,
        mask: Mask,
    ) -> Self {
        let operands = [&keys.to_var(), &values.to_var()];
        traced_attention::<T, R, R, D, H, L, L>(
            self,
            ["attention", "attention_pullback"],
            operands,
            mask,
            None,
        )
    }

    /// Attention over padded sequences (see
    /// [`padded_attention`](crate::Tensor::padded_attention)), one node for the three
    /// operands.
    ///
    /// # Panics
    /// As on the host.
    #[track_caller]
    pub fn padded_attention<const H: usize, const L: usize>(
        &self,
        keys: &impl Operand<OnDevice<T, (R, Const<D>)>>,
        values: &impl Operand<OnDevice<T, (R, Const<D>)>>,
        _: Heads<H>,
        _: Tokens<L>,
        mask: Mask,
        lengths: &[usize],
    ) -> Self {
        let operands = [&keys.to_var(), &values.to_var()];
        let names = ["padded_attention", "padded_attention_pullback"];
        traced_attention::<T, R, R, D, H, L, L>(self, names, operands, mask, Some(lengths))
    }

    /// Cross-attention to keys and values in sequences of LK tokens (see
    /// [`cross_attention`](crate::Tensor::cross_attention)), one node for the three
    /// operands.
    ///
    /// # Panics
    /// As on the host.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn cross_attention<const H: usize, const LQ: usize, const LK: usize, RK: Dim>(
        &self,
        keys: &impl Operand<OnDevice<T, (RK, Const<D>)>>,
        values: &impl Operand<OnDevice<T, (RK, Const<D>)>>,
        _: Heads<H>,
        _: Tokens<LQ>,
        _: Tokens<LK>,
        mask: Mask,
        lengths: Option<&[usize]>,
    ) -> Self {
        let operands = [&keys.to_var(), &values.to_var()];
        let names = ["cross_attention", "cross_attention_pullback"];
        traced_attention::<T, R, RK, D, H, LQ, LK>(self, names, operands, mask, lengths)
    }
}

/// Any of the attentions of traced GPU rows as one node: `names` are its own and its
/// pullback's.
#[track_caller]
fn traced_attention<
    T: CudaElement,
    R: Dim,
    RK: Dim,
    const D: usize,
    const H: usize,
    const LQ: usize,
    const LK: usize,
>(
    queries: &Var<OnDevice<T, (R, Const<D>)>>,
    [name, pullback_name]: [&'static str; 2],
    operands: [&Var<OnDevice<T, (RK, Const<D>)>>; 2],
    mask: Mask,
    lengths: Option<&[usize]>,
) -> Var<OnDevice<T, (R, Const<D>)>> {
    let () = <Const<D> as SplitsIntoHeads<H>>::CHECK;
    let [keys, values] = operands.map(Var::value);
    let y = or_panic(device_attention::attend::<T, R, RK, D, H, LQ, LK>(
        name,
        queries.value(),
        [keys, values],
        Seen::new(mask, lengths),
    ));
    let kept: Option<Vec<usize>> = lengths.map(<[usize]>::to_vec);
    record_attention(queries, operands, y, move |operands, y_bar| {
        device_attention::pullback::<T, R, RK, D, H, LQ, LK>(
            pullback_name,
            operands,
            y_bar,
            Seen::new(mask, kept.as_deref()),
        )
    })
}

/// The rules of convolution, pooling and flattening of traced GPU image batches.
#[fluxion_derive::extension_trait(CudaImageVarOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, B: Dim, const C: usize, const H: usize, const W: usize>
    Var<OnDevice<T, (B, Const<C>, Const<H>, Const<W>)>>
{
    /// The valid cross-correlation with `kernels` `[O, C, KH, KW]` (a `Var` or a plain
    /// tensor, a constant); the output size `(H − KH + 1, W − KW + 1)` is checked at
    /// compile time.
    pub fn conv2d<const O: usize, const KH: usize, const KW: usize, const HO: usize, const WO: usize>(
        &self,
        kernels: &impl Operand<OnDevice<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>>,
    ) -> Var<OnDevice<T, (B, Const<O>, Const<HO>, Const<WO>)>>
    where
        Const<H>: ConvolvesTo<KH, 0, HO>,
        Const<W>: ConvolvesTo<KW, 0, WO>,
    {
        self.conv2d_strided(kernels, Stride::<1>, Padding::<0>)
    }

    /// The cross-correlation with `kernels` over the images padded with P zeros on
    /// every side (stride 1).
    pub fn conv2d_padded<
        const P: usize,
        const O: usize,
        const KH: usize,
        const KW: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        kernels: &impl Operand<OnDevice<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>>,
        padding: Padding<P>,
    ) -> Var<OnDevice<T, (B, Const<O>, Const<HO>, Const<WO>)>>
    where
        Const<H>: ConvolvesTo<KH, P, HO>,
        Const<W>: ConvolvesTo<KW, P, WO>,
    {
        self.conv2d_strided(kernels, Stride::<1>, padding)
    }

    /// The cross-correlation with `kernels` moved S positions per output over the
    /// images padded with P zeros on every side, with x̄ and w̄ from
    /// [`rules::conv2d_pullback`] (only the traced operands' are computed).
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
        kernels: &impl Operand<OnDevice<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>>,
        stride: Stride<S>,
        padding: Padding<P>,
    ) -> Var<OnDevice<T, (B, Const<O>, Const<HO>, Const<WO>)>>
    where
        Const<H>: ConvolvesTo<KH, P, HO, S>,
        Const<W>: ConvolvesTo<KW, P, WO, S>,
    {
        let kernels = kernels.to_var();
        let (x, w) = (self.shared_value(), kernels.shared_value());
        let shapes = (x.shape(), w.shape());
        record_binary_in_place(
            self,
            &kernels,
            x.conv2d_strided(&w, stride, padding),
            move |_, y_bar, mut adjoints| {
                adjoints.write_or_add(shapes, |x_bar, w_bar| {
                    rules::conv2d_pullback::<S, P, T, B, C, H, W, O, KH, KW, HO, WO>(
                        &x, &w, y_bar, x_bar, w_bar,
                    )
                })
            },
        )
    }

    /// Each image's channels in G groups, each normalised over its channels and
    /// positions: the row normalisation's rule on the groups as lines.
    pub fn normalize_groups<const G: usize>(&self, groups: Groups<G>, epsilon: T) -> Self {
        crate::ops::cuda::groups_as_rows!(self, self.value().shape(), groups, epsilon)
    }

    /// The maximum of each K×K window with stride K; ȳ goes to each window's first
    /// maximum.
    pub fn max_pool2d<const K: usize, const HO: usize, const WO: usize>(
        &self,
    ) -> Var<OnDevice<T, (B, Const<C>, Const<HO>, Const<WO>)>>
    where
        Const<H>: PoolsTo<K, HO>,
        Const<W>: PoolsTo<K, WO>,
    {
        self.max_pool2d_strided(Window::<K>, Stride::<K>, Padding::<0>)
    }

    /// The maximum of each K×K window moved S per output over the images padded by P;
    /// ȳ goes to each window's first maximum.
    pub fn max_pool2d_strided<
        const K: usize,
        const S: usize,
        const P: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        window: Window<K>,
        stride: Stride<S>,
        padding: Padding<P>,
    ) -> Var<OnDevice<T, (B, Const<C>, Const<HO>, Const<WO>)>>
    where
        Const<H>: PoolsTo<K, HO, P, S>,
        Const<W>: PoolsTo<K, WO, P, S>,
    {
        let x = self.shared_value();
        let pooling = (window, stride, padding);
        record_unary_in_place(self, x.max_pool2d_strided(window, stride, padding), move |_, y_bar, x_bar| {
            x_bar.write_or_add(x.shape(), |x_bar, write| {
                rules::max_pool2d_pullback(&x, y_bar, x_bar, pooling, write)
            })
        })
    }

    /// The mean of each K×K window with stride K; each element of a window gets ȳ/K².
    pub fn avg_pool2d<const K: usize, const HO: usize, const WO: usize>(
        &self,
    ) -> Var<OnDevice<T, (B, Const<C>, Const<HO>, Const<WO>)>>
    where
        Const<H>: PoolsTo<K, HO>,
        Const<W>: PoolsTo<K, WO>,
    {
        self.avg_pool2d_strided(Window::<K>, Stride::<K>, Padding::<0>)
    }

    /// The sum of each K×K window's elements inside the images over K², moved S per
    /// output over the images padded by P; each element gets ȳ/K² of every window that
    /// reads it.
    pub fn avg_pool2d_strided<
        const K: usize,
        const S: usize,
        const P: usize,
        const HO: usize,
        const WO: usize,
    >(
        &self,
        window: Window<K>,
        stride: Stride<S>,
        padding: Padding<P>,
    ) -> Var<OnDevice<T, (B, Const<C>, Const<HO>, Const<WO>)>>
    where
        Const<H>: PoolsTo<K, HO, P, S>,
        Const<W>: PoolsTo<K, WO, P, S>,
    {
        let (shape, pooling) = (self.value().shape(), (window, stride, padding));
        let y = self.value().avg_pool2d_strided(window, stride, padding);
        record_unary_in_place(self, y, move |_, y_bar, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| rules::avg_pool2d_pullback(y_bar, x_bar, pooling, write))
        })
    }

    /// Each example's C·H·W values as one row (F = C·H·W, checked when the program
    /// is built).
    pub fn flatten_images<const F: usize>(&self) -> Var<OnDevice<T, (B, Const<F>)>> {
        let shape = self.value().shape();
        record_unary_in_place(
            self,
            self.value().flatten_images::<F>(),
            move |_, y_bar: &OnDevice<T, (B, Const<F>)>, x_bar| {
                x_bar.add(|| or_panic(y_bar.try_reshape(shape)))
            },
        )
    }
}

/// The rule of a per-channel bias added to traced GPU image batches.
#[fluxion_derive::extension_trait(CudaChannelVarOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, B: Dim, C: Dim, H: Dim, W: Dim> Var<OnDevice<T, (B, C, H, W)>> {
    /// y_{b c i j} = x_{b c i j} + b_c (the bias a `Var` or a plain tensor), with
    /// x̄ = ȳ and b̄_c = Σ_{b i j} ȳ_{b c i j}.
    ///
    /// # Panics
    /// When a dynamic channel count differs from the bias length.
    #[track_caller]
    pub fn add_channels(&self, bias: &impl Operand<OnDevice<T, (C,)>>) -> Self {
        let bias = bias.to_var();
        let shapes = (self.value().shape(), bias.value().shape());
        let y = self.value().add_channels(bias.value());
        record_binary_in_place(self, &bias, y, move |_, y_bar, mut adjoints| {
            adjoints.write_or_add(shapes, |x_bar, bias_bar| {
                if let Some((x_bar, write)) = x_bar {
                    rules::scaled_pullback(y_bar, T::one(), x_bar, write);
                }
                if let Some((bias_bar, write)) = bias_bar {
                    rules::add_channels_pullback(y_bar, bias_bar, write);
                }
            })
        })
    }

    /// y_{b c i j} = x_{b c i j}·g_c (the gain a `Var` or a plain tensor), with
    /// x̄ = ȳ·g_c and ḡ_c = Σ_{b i j} x_{b c i j}·ȳ_{b c i j}.
    ///
    /// # Panics
    /// When a dynamic channel count differs from the gain's length.
    #[track_caller]
    pub fn mul_channels(&self, gain: &impl Operand<OnDevice<T, (C,)>>) -> Self {
        let gain = gain.to_var();
        let (x, g) = (self.shared_value(), gain.shared_value());
        let shapes = (x.shape(), g.shape());
        record_binary_in_place(self, &gain, x.mul_channels(&g), move |_, y_bar, mut adjoints| {
            adjoints.write_or_add(shapes, |x_bar, gain_bar| {
                rules::mul_channels_pullback((&x, &g), y_bar, x_bar, gain_bar);
            })
        })
    }
}

/// The rules behind `+`, `−`, unary `−`, and `*` and `/` by a scalar on traced GPU
/// tensors (the operator impls are the host's, one for every kind).
impl<T: CudaScalar, S: Shape> TracedArithmetic<T, S> for Cuda {
    #[track_caller]
    fn add(a: &Var<OnDevice<T, S>>, b: &Var<OnDevice<T, S>>) -> Var<OnDevice<T, S>> {
        CudaVarOps::add(a, b)
    }
    #[track_caller]
    fn sub(a: &Var<OnDevice<T, S>>, b: &Var<OnDevice<T, S>>) -> Var<OnDevice<T, S>> {
        CudaVarOps::sub(a, b)
    }
    fn negate(a: &Var<OnDevice<T, S>>) -> Var<OnDevice<T, S>> {
        a.scaled_parts(-T::Part::one())
    }
    fn scale(a: &Var<OnDevice<T, S>>, factor: T) -> Var<OnDevice<T, S>> {
        T::scale_traced(a, factor)
    }
    fn divide(a: &Var<OnDevice<T, S>>, divisor: T) -> Var<OnDevice<T, S>> {
        T::divide_traced(a, divisor)
    }
    fn reciprocal(a: &Var<OnDevice<T, S>>) -> Var<OnDevice<T, S>> {
        T::reciprocal_traced(a)
    }
}

/// |x| as a scalar function (for traced GPU tensors): derivative sign(x), 0 at 0.
#[derive(Clone, Copy, Debug)]
struct AbsoluteValue;

impl ScalarFunction for AbsoluteValue {
    #[inline(always)]
    fn value<T: RealScalar>(&self, x: T) -> T {
        x.abs()
    }
    #[inline(always)]
    fn derivative<T: RealScalar>(&self, x: T, _: T) -> T {
        T::select_positive(x, T::one(), T::select_positive(-x, -T::one(), T::zero()))
    }
}

/// `+`, `−` and negation of owned lifted GPU tensors, and scaling of owned ones,
/// through the reference forms above (as on the host, so that one model's code
/// serves both).
macro_rules! owned_operators {
    ($($Type:ident),+) => {$(
        impl<T: CudaScalar, S: Shape> Add for $Type<T, S> {
            type Output = $Type<T, S>;
            #[track_caller]
            fn add(self, rhs: Self) -> Self::Output {
                &self + &rhs
            }
        }
        impl<T: CudaScalar, S: Shape> Add<&$Type<T, S>> for $Type<T, S> {
            type Output = $Type<T, S>;
            #[track_caller]
            fn add(self, rhs: &Self) -> Self::Output {
                &self + rhs
            }
        }
        impl<T: CudaScalar, S: Shape> Add<$Type<T, S>> for &$Type<T, S> {
            type Output = $Type<T, S>;
            #[track_caller]
            fn add(self, rhs: $Type<T, S>) -> Self::Output {
                self + &rhs
            }
        }
        impl<T: CudaScalar, S: Shape> Sub for $Type<T, S> {
            type Output = $Type<T, S>;
            #[track_caller]
            fn sub(self, rhs: Self) -> Self::Output {
                &self - &rhs
            }
        }
        impl<T: CudaScalar, S: Shape> Sub<&$Type<T, S>> for $Type<T, S> {
            type Output = $Type<T, S>;
            #[track_caller]
            fn sub(self, rhs: &Self) -> Self::Output {
                &self - rhs
            }
        }
        impl<T: CudaScalar, S: Shape> Sub<$Type<T, S>> for &$Type<T, S> {
            type Output = $Type<T, S>;
            #[track_caller]
            fn sub(self, rhs: $Type<T, S>) -> Self::Output {
                self - &rhs
            }
        }
        impl<T: CudaScalar, S: Shape> Neg for $Type<T, S> {
            type Output = $Type<T, S>;
            fn neg(self) -> Self::Output {
                -&self
            }
        }
        impl<T: CudaElement, S: Shape> Mul<T> for $Type<T, S> {
            type Output = $Type<T, S>;
            fn mul(self, factor: T) -> Self::Output {
                &self * factor
            }
        }
        impl<T: CudaElement, S: Shape> Div<T> for $Type<T, S> {
            type Output = $Type<T, S>;
            fn div(self, divisor: T) -> Self::Output {
                &self / divisor
            }
        }
    )+};
}

owned_operators!(CudaDual);

/// The rules of complex GPU tensors (see [`crate::ops::cuda`]'s complex operations):
/// the host's, for the gradient ∂L/∂x + i·∂L/∂y of a real loss.
#[fluxion_derive::extension_trait(CudaComplexVarOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, S: Shape> Var<OnDevice<Complex<T>, S>>
where
    Complex<T>: CudaScalar<Part = T>,
{
    /// f(x) elementwise for an elementary `f`, with x̄ = conj(f′(x))·ȳ.
    pub fn elementary(&self, f: Elementary<T>) -> Self {
        let x = self.shared_value();
        record_unary_in_place(self, x.elementary(f), move |y, y_bar, x_bar| {
            x_bar.write_or_add(x.shape(), |x_bar, write| {
                rules::complex_elementary_pullback(f, (&x, y, y_bar), x_bar, write)
            })
        })
    }

    /// `factor`·x, with x̄ = conj(factor)·ȳ.
    pub fn scale(&self, factor: Complex<T>) -> Self {
        let shape = self.value().shape();
        record_unary_in_place(self, self.value().scale(factor), move |_, y_bar, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| {
                rules::complex_scaled_pullback(y_bar, factor, x_bar, write)
            })
        })
    }

    /// s·x for a differentiated scalar s: x̄ = conj(s)·ȳ and s̄ = ⟨x, ȳ⟩ = Σ conj(xᵢ)·ȳᵢ
    /// (a reduction on the GPU, read back), as on the host.
    #[track_caller]
    pub fn scale_by(&self, s: &Var<Complex<T>>) -> Self {
        let (x, factor) = (self.shared_value(), *s.value());
        record_binary_in_place(
            self,
            s,
            x.scale(factor),
            move |_, y_bar: &OnDevice<Complex<T>, S>, mut adjoints| {
                adjoints.lhs().write_or_add(x.shape(), |x_bar, write| {
                    rules::complex_scaled_pullback(y_bar, factor, x_bar, write)
                });
                adjoints.rhs().add(|| x.inner(y_bar));
            },
        )
    }

    /// Elementwise product (with a `Var` or a plain tensor, a constant), with
    /// ā = conj(b)·ȳ and b̄ = conj(a)·ȳ.
    #[track_caller]
    pub fn hadamard(&self, other: &impl Operand<OnDevice<Complex<T>, S>>) -> Self {
        let other = other.to_var();
        let (a, b) = (self.shared_value(), other.shared_value());
        let shapes = (a.shape(), b.shape());
        record_binary_in_place(self, &other, a.hadamard(&b), move |_, y_bar, mut adjoints| {
            adjoints.write_or_add(shapes, |a_bar, b_bar| {
                rules::complex_hadamard_pullback((&a, &b, y_bar), a_bar, b_bar)
            })
        })
    }

    /// The complex conjugate, with x̄ = conj(ȳ).
    pub fn conj(&self) -> Self {
        let shape = self.value().shape();
        record_unary_in_place(self, self.value().conj(), move |_, y_bar, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| rules::conj_pullback(y_bar, x_bar, write))
        })
    }

    /// Records a real-valued map of x.
    fn real_valued(&self, map: RealValued, y: OnDevice<T, S>) -> Var<OnDevice<T, S>> {
        let x = self.shared_value();
        record_unary_in_place(self, y, move |_, y_bar, x_bar| {
            x_bar.write_or_add(x.shape(), |x_bar, write| {
                rules::real_valued_pullback(map, &x, y_bar, x_bar, write)
            })
        })
    }

    /// Re x elementwise.
    pub fn re(&self) -> Var<OnDevice<T, S>> {
        self.real_valued(RealValued::Re, self.value().re())
    }

    /// Im x elementwise.
    pub fn im(&self) -> Var<OnDevice<T, S>> {
        self.real_valued(RealValued::Im, self.value().im())
    }

    /// |x| elementwise.
    pub fn abs(&self) -> Var<OnDevice<T, S>> {
        self.real_valued(RealValued::Abs, self.value().abs())
    }

    /// |x|² elementwise.
    pub fn norm_sqr(&self) -> Var<OnDevice<T, S>> {
        self.real_valued(RealValued::NormSqr, self.value().norm_sqr())
    }

    /// Σ of all elements (its value is read back to the host).
    pub fn sum(&self) -> Var<Complex<T>> {
        self.total(Complex::one())
    }

    /// Mean of all elements (its value is read back to the host).
    pub fn mean(&self) -> Var<Complex<T>> {
        self.total(Complex::new(T::one() / T::from_f64(self.value().len() as f64), T::zero()))
    }

    /// `factor`·Σ x for a real `factor`, with x̄ = factor·s̄ everywhere.
    fn total(&self, factor: Complex<T>) -> Var<Complex<T>> {
        let shape = self.value().shape();
        record_unary_in_place(self, self.value().sum() * factor, move |_, &s_bar: &Complex<T>, x_bar| {
            x_bar.write_or_add(shape, |x_bar, write| {
                rules::complex_fill_pullback(s_bar * factor, x_bar, write)
            })
        })
    }

    /// ⟨a, b⟩ = Σ conj(aᵢ)·bᵢ, with ā = b·conj(s̄) and b̄ = a·s̄ (its value is read back
    /// to the host).
    #[track_caller]
    pub fn inner(&self, other: &Self) -> Var<Complex<T>> {
        self.sum_of_products(other, true)
    }

    /// Σ aᵢbᵢ, with ā = conj(b)·s̄ and b̄ = conj(a)·s̄ (its value is read back to the
    /// host).
    #[track_caller]
    pub fn dotu(&self, other: &Self) -> Var<Complex<T>> {
        self.sum_of_products(other, false)
    }

    #[track_caller]
    fn sum_of_products(&self, other: &Self, conjugated: bool) -> Var<Complex<T>> {
        let (a, b) = (self.shared_value(), other.shared_value());
        let shapes = (a.shape(), b.shape());
        let s = if conjugated { a.inner(&b) } else { a.dotu(&b) };
        record_binary_in_place(self, other, s, move |_, &s_bar: &Complex<T>, mut adjoints| {
            adjoints.write_or_add(shapes, |a_bar, b_bar| {
                rules::sum_of_products_pullback((&a, &b, s_bar), conjugated, a_bar, b_bar)
            })
        })
    }
}

elementary_methods!(
    /// The rules of eˣ, ln, sin, cos, tanh, √, the sigmoid and powers of traced complex GPU
    /// tensors: x̄ = conj(f′(x))·ȳ.
    #[fluxion_derive::extension_trait(CudaComplexElementaryVarOps: crate::backend::cuda::method_seal::Sealed)]
    impl<T: CudaElement, S: Shape> Var<OnDevice<Complex<T>, S>>
    where
        Complex<T>: CudaScalar<Part = T>
);

/// The rule of row scaling of traced complex GPU matrices.
#[fluxion_derive::extension_trait(CudaComplexMatrixVarOps: crate::backend::cuda::method_seal::Sealed)]
impl<T: CudaElement, R: Dim, C: Dim> Var<OnDevice<Complex<T>, (R, C)>>
where
    Complex<T>: CudaScalar<Part = T>,
{
    /// yᵢⱼ = xᵢⱼ·gⱼ (`row` a `Var` or a plain tensor, a constant), recorded as the row
    /// broadcast and a Hadamard product: x̄ᵢⱼ = conj(gⱼ)·ȳᵢⱼ and ḡⱼ = Σᵢ conj(xᵢⱼ)·ȳᵢⱼ,
    /// as on the host.
    ///
    /// # Panics
    /// When a dynamic column count differs from the row's length.
    #[track_caller]
    pub fn mul_rows(&self, row: &impl Operand<OnDevice<Complex<T>, (C,)>>) -> Self {
        let row = row.to_var();
        or_panic(check_row(self.value().shape(), row.value().shape(), "mul_rows"));
        self.hadamard(&or_panic(row.try_broadcast_to(self.value().shape())))
    }
}
