//! The operators of reverse mode, with JAX's names: [`grad`], [`value_and_grad`],
//! [`vjp`], and `*_with_aux` forms whose function also returns values that are passed
//! through undifferentiated.
//!
//! The function receives its input *traced* ([`Trace::Traced`]): a tensor or scalar
//! becomes a [`Var`], a tuple becomes a tuple of traced parts, a derived struct its
//! `…Traced` twin. The gradient comes back as the input's `Tangent` type. To
//! differentiate with respect to some inputs only, pass those as the input and
//! capture the others (wrapped in [`Var::constant`] where an operation needs a `Var`).

use core::any::Any;
use std::vec::Vec;

use super::tangent::RealOutput;
use super::tangent::{Differentiable, LeafVisitor, SameShapes, VectorSpace};
use super::tape::{Purpose, Tape, TracedLeaves, Var, leaf, recording};
use crate::error::{ShapeError, or_panic};
use crate::scalar::Scalar;
use crate::shape::Shape;
use crate::tensor::{Tensor, Zeros};

/// A value whose leaves can be placed on the tape as differentiated inputs.
///
/// Implemented for scalars, tensors, arrays, tuples, `Vec` and `()`, and derived for
/// structs by `#[derive(Differentiable)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not differentiable",
    label = "no tangent space for this type",
    note = "scalars, tensors, arrays, tuples, `Vec`s and `#[derive(Differentiable)]` structs are; mark a constant struct field `#[no_derivative]`"
)]
pub trait Trace: Differentiable {
    /// The input as the differentiated function sees it.
    type Traced;

    /// Puts every leaf on the active tape, in a fixed order.
    fn trace(&self) -> Self::Traced;

    /// The value as a differentiated function sees it, with every leaf a constant:
    /// nothing is recorded, so one forward definition written over `Traced` serves
    /// training (inside `value_and_grad`) and inference (on `model.as_constant()`).
    /// Dropout layers still draw masks: run inference inside
    /// [`nn::layer::evaluation`](crate::nn::layer::evaluation) to turn them off.
    fn as_constant(&self) -> Self::Traced;

    /// Lists the leaf tangents of `gradient` in the order of [`Trace::trace`]: the
    /// buffers the backward sweep writes the gradient into, whatever they held. (A
    /// `Vec` gradient of another length is first resized.)
    ///
    /// The contract, which the derive keeps: exactly one buffer per leaf that
    /// `trace` creates, in the same order, each the tangent of that leaf.
    fn gradient_buffers<'g>(&self, gradient: &'g mut Self::Tangent, buffers: &mut Vec<&'g mut dyn Any>);

    /// The value that `traced` holds (each leaf's value, constants as they are), and
    /// where each of its leaves sits on the tape, noted in `leaves` in the order of
    /// [`Trace::trace`]: what [`checkpoint`](super::checkpoint) records its node on.
    fn untrace(traced: &Self::Traced, leaves: &mut TracedLeaves) -> Self;
}

/// A value whose traced form is `Clone`: what a derived `…Traced` twin's `Clone`
/// asks of each field's type (a bound on the field's type rather than on its traced
/// type, so that a field type that cannot be traced leaves the impl unusable instead
/// of refusing the struct).
#[doc(hidden)]
pub trait CloneTraced: Trace {
    /// A clone of `traced`.
    fn clone_traced(traced: &Self::Traced) -> Self::Traced;
}

impl<X: Trace<Traced: Clone>> CloneTraced for X {
    fn clone_traced(traced: &X::Traced) -> X::Traced {
        traced.clone()
    }
}

/// A function's input as it is traced — a [`Var`], a tuple, array or `Vec` of traced
/// inputs, a derived struct's `…Traced` form — with the type it traces: what
/// [`checkpoint`](super::checkpoint) takes. A `Var<V>`'s value is [`Whole<V>`] (one
/// leaf, whose tangent is `V`'s).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a traced input",
    label = "not a `Var`, a tuple, array or `Vec` of them, or a derived struct's traced form",
    note = "a checkpointed function takes what a differentiated function receives: wrap a plain value in `Var::constant`, clone a `Var` held by reference"
)]
pub trait TracedInput: Sized {
    /// The type whose traced form this is.
    type Value: Trace<Traced = Self>;
}

impl<V: Differentiable + Clone + 'static> TracedInput for Var<V> {
    type Value = Whole<V>;
}

// The containers are left out of an unmet bound's list of the types that implement
// the trait (`do_not_recommend`), which then shows `Var`'s.
#[diagnostic::do_not_recommend]
impl TracedInput for () {
    type Value = ();
}

#[diagnostic::do_not_recommend]
impl<X: TracedInput, const N: usize> TracedInput for [X; N] {
    type Value = [X::Value; N];
}

#[diagnostic::do_not_recommend]
impl<X: TracedInput> TracedInput for Vec<X> {
    type Value = Vec<X::Value>;
}

#[diagnostic::do_not_recommend]
impl<T: Scalar> Trace for T {
    type Traced = Var<T>;
    fn trace(&self) -> Var<T> {
        leaf(self)
    }
    fn as_constant(&self) -> Var<T> {
        Var::constant(*self)
    }
    #[inline]
    fn gradient_buffers<'g>(&self, gradient: &'g mut T, buffers: &mut Vec<&'g mut dyn Any>) {
        buffers.push(gradient);
    }
    fn untrace(traced: &Var<T>, leaves: &mut TracedLeaves) -> T {
        leaves.push(traced);
        *traced.value()
    }
}

/// One impl for every storage kind (host or device), so that `Traced = Var<Self>` is
/// known before the kind is.
impl<T: Scalar, S: Shape, K: Zeros<T, S>> Trace for Tensor<T, S, K>
where
    Self: Differentiable<Tangent = Self>,
{
    type Traced = Var<Self>;
    fn trace(&self) -> Var<Self> {
        leaf(self)
    }
    fn as_constant(&self) -> Var<Self> {
        Var::constant(self.clone())
    }
    #[inline]
    fn gradient_buffers<'g>(&self, gradient: &'g mut Self, buffers: &mut Vec<&'g mut dyn Any>) {
        buffers.push(gradient);
    }
    fn untrace(traced: &Var<Self>, leaves: &mut TracedLeaves) -> Self {
        leaves.push(traced);
        traced.value().clone()
    }
}

impl Trace for () {
    type Traced = ();
    fn trace(&self) {}
    fn as_constant(&self) {}
    fn gradient_buffers<'g>(&self, _: &'g mut (), _: &mut Vec<&'g mut dyn Any>) {}
    fn untrace((): &(), _: &mut TracedLeaves) {}
}

impl<X: Trace, const N: usize> Trace for [X; N] {
    type Traced = [X::Traced; N];
    fn trace(&self) -> Self::Traced {
        core::array::from_fn(|i| self[i].trace())
    }
    fn as_constant(&self) -> Self::Traced {
        core::array::from_fn(|i| self[i].as_constant())
    }
    fn gradient_buffers<'g>(&self, gradient: &'g mut Self::Tangent, buffers: &mut Vec<&'g mut dyn Any>) {
        for (x, gradient) in self.iter().zip(gradient) {
            x.gradient_buffers(gradient, buffers);
        }
    }
    fn untrace(traced: &Self::Traced, leaves: &mut TracedLeaves) -> Self {
        core::array::from_fn(|i| X::untrace(&traced[i], leaves))
    }
}

impl<X: Trace> Trace for Vec<X> {
    type Traced = Vec<X::Traced>;
    fn trace(&self) -> Self::Traced {
        self.iter().map(Trace::trace).collect()
    }
    fn as_constant(&self) -> Self::Traced {
        self.iter().map(Trace::as_constant).collect()
    }
    fn gradient_buffers<'g>(&self, gradient: &'g mut Self::Tangent, buffers: &mut Vec<&'g mut dyn Any>) {
        if gradient.len() != self.len() {
            *gradient = self.zero_tangent();
        }
        for (x, gradient) in self.iter().zip(gradient) {
            x.gradient_buffers(gradient, buffers);
        }
    }
    fn untrace(traced: &Self::Traced, leaves: &mut TracedLeaves) -> Self {
        traced.iter().map(|x| X::untrace(x, leaves)).collect()
    }
}

/// A value traced as one leaf: a function handed `&Whole(v)` sees a single
/// `Var<V>` instead of `V`'s fields traced one by one (a derived struct's `Traced`
/// form), so a library author's rules can take and give the whole type
/// ([`record_unary`](super::record_unary) from a `Var<V>`). The gradient is `V`'s
/// tangent.
///
/// ```
/// use fluxion::autodiff::{Differentiable, Whole, grad, record_unary};
/// use fluxion::prelude::*;
///
/// #[derive(Differentiable, Clone, Debug)]
/// struct V3 {
///     x: f64,
///     y: f64,
///     z: f64,
/// }
///
/// // |v|² as one node on the whole struct, with the rule v̄ = 2v·ȳ.
/// fn norm_squared(v: &Var<V3>) -> Var<f64> {
///     let &V3 { x, y, z } = v.value();
///     record_unary(v, x * x + y * y + z * z, move |y_bar: &f64| V3Tangent { x: 2.0 * x * y_bar, y: 2.0 * y * y_bar, z: 2.0 * z * y_bar })
/// }
/// let g = grad(|v: Var<V3>| norm_squared(&v), &Whole(V3 { x: 1.0, y: 2.0, z: 3.0 }));
/// assert_eq!((g.x, g.y, g.z), (2.0, 4.0, 6.0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Whole<V>(pub V);

#[diagnostic::do_not_recommend]
impl<V: Differentiable> Differentiable for Whole<V> {
    type Tangent = V::Tangent;
    fn try_move_by(&mut self, offset: &V::Tangent) -> Result<(), ShapeError> {
        self.0.try_move_by(offset)
    }
    fn zero_tangent(&self) -> V::Tangent {
        self.0.zero_tangent()
    }
    fn zip_leaves_with<const W: usize, const R: usize, Vis: LeafVisitor<W, R>>(
        &mut self,
        written: [&mut V::Tangent; W],
        read: [&V::Tangent; R],
        visitor: &mut Vis,
    ) -> Result<(), ShapeError> {
        self.0.zip_leaves_with(written, read, visitor)
    }
}

#[diagnostic::do_not_recommend]
impl<V: Differentiable + Clone + 'static> Trace for Whole<V> {
    type Traced = Var<V>;
    fn trace(&self) -> Var<V> {
        leaf(&self.0)
    }
    fn as_constant(&self) -> Var<V> {
        Var::constant(self.0.clone())
    }
    #[inline]
    fn gradient_buffers<'g>(&self, gradient: &'g mut V::Tangent, buffers: &mut Vec<&'g mut dyn Any>) {
        buffers.push(gradient);
    }
    fn untrace(traced: &Var<V>, leaves: &mut TracedLeaves) -> Self {
        leaves.push(traced);
        Whole(traced.value().clone())
    }
}

macro_rules! tuple_trace {
    ($($X:ident $i:tt),+) => {
        impl<$($X: Trace),+> Trace for ($($X,)+) {
            type Traced = ($($X::Traced,)+);
            fn trace(&self) -> Self::Traced {
                ($(self.$i.trace(),)+)
            }
            fn as_constant(&self) -> Self::Traced {
                ($(self.$i.as_constant(),)+)
            }
            fn gradient_buffers<'g>(&self, gradient: &'g mut Self::Tangent, buffers: &mut Vec<&'g mut dyn Any>) {
                $(self.$i.gradient_buffers(&mut gradient.$i, buffers);)+
            }
            fn untrace(traced: &Self::Traced, leaves: &mut TracedLeaves) -> Self {
                ($($X::untrace(&traced.$i, leaves),)+)
            }
        }

        #[diagnostic::do_not_recommend]
        impl<$($X: TracedInput),+> TracedInput for ($($X,)+) {
            type Value = ($($X::Value,)+);
        }
    };
}

for_each_tuple!(tuple_trace);

/// Runs `f` on the traced `x` while recording on a tape for `purpose`; the tape is
/// taken back even if `f` panics.
#[inline]
pub(super) fn record<X: Trace, Out>(
    purpose: Purpose,
    f: impl FnOnce(X::Traced) -> Out,
    x: &X,
) -> (Tape, Out) {
    recording(purpose, || {
        let traced = x.trace();
        Tape::inputs_traced();
        f(traced)
    })
}

/// The leaf tangents of `gradient`, one per leaf of `tape` (recorded from `x`).
pub(super) fn gradient_buffers<'g, X: Trace>(
    x: &X,
    tape: &Tape,
    gradient: &'g mut X::Tangent,
) -> Vec<&'g mut dyn Any> {
    let mut buffers = Vec::with_capacity(tape.leaf_count());
    x.gradient_buffers(gradient, &mut buffers);
    buffers
}

/// The value of `f` at `x`, computed through the traced path (nothing is kept).
pub(crate) fn evaluate<X: Trace, Y: Clone>(f: impl FnOnce(X::Traced) -> Var<Y>, x: &X) -> Y {
    record(Purpose::Gradient, f, x).1.into_value()
}

/// The value of `f` at `x` and its gradient, plus auxiliary outputs of `f` that are
/// returned as they are.
#[inline]
pub fn value_and_grad_with_aux<X: Trace, R: RealOutput, Aux>(
    f: impl FnOnce(X::Traced) -> (Var<R>, Aux),
    x: &X,
) -> (R, Aux, X::Tangent) {
    let mut gradient = x.zero_tangent();
    let (value, aux) = value_and_grad_into_with_aux(f, x, &mut gradient);
    (value, aux, gradient)
}

/// [`value_and_grad_with_aux`] writing the gradient into `gradient`, whatever it
/// held: repeated gradients then reuse its memory.
#[inline]
pub fn value_and_grad_into_with_aux<X: Trace, R: RealOutput, Aux>(
    f: impl FnOnce(X::Traced) -> (Var<R>, Aux),
    x: &X,
    gradient: &mut X::Tangent,
) -> (R, Aux) {
    let (mut tape, (output, aux)) = record(Purpose::Gradient, f, x);
    tape.backward(&output, R::one(), &mut gradient_buffers(x, &tape, gradient));
    (*output.value(), aux)
}

/// [`value_and_grad`] writing the gradient into `gradient`, whatever it held: the
/// form for loops that take many gradients, as an optimiser does, without building a
/// new tangent each time. The backward sweep accumulates straight into `gradient`'s
/// tensors (their memory is reused when their shapes fit) and no copy of the
/// gradient is made.
///
/// ```
/// use fluxion::prelude::*;
/// use fluxion::autodiff::value_and_grad_into;
/// let x: Vector<f64, 2> = Vector::from_array([1., 2.]);
/// let mut gradient = Vector::zeros();
/// let value = value_and_grad_into(|x: Var<Vector<f64, 2>>| x.dot(&x), &x, &mut gradient);
/// assert_eq!((value, gradient.to_array()), (5.0, [2., 4.]));
/// ```
#[inline]
pub fn value_and_grad_into<X: Trace, R: RealOutput>(
    f: impl FnOnce(X::Traced) -> Var<R>,
    x: &X,
    gradient: &mut X::Tangent,
) -> R {
    value_and_grad_into_with_aux(|traced| (f(traced), ()), x, gradient).0
}

/// The value of `f` at `x` and its gradient ∇f(x), typed as `X::Tangent`.
///
/// ```
/// use fluxion::prelude::*;
/// use fluxion::autodiff::value_and_grad;
/// let x: Vector<f64, 3> = Vector::from_array([1., 2., 3.]);
/// let (value, gradient) = value_and_grad(|x: Var<Vector<f64, 3>>| x.dot(&x), &x);
/// assert_eq!(value, 14.0);
/// assert_eq!(gradient.to_array(), [2., 4., 6.]);
/// ```
#[inline]
pub fn value_and_grad<X: Trace, R: RealOutput>(
    f: impl FnOnce(X::Traced) -> Var<R>,
    x: &X,
) -> (R, X::Tangent) {
    let (value, (), gradient) = value_and_grad_with_aux(|traced| (f(traced), ()), x);
    (value, gradient)
}

/// The gradient ∇f(x) of a real scalar function, typed as `X::Tangent`.
///
/// For a complex input z = a + ib the gradient is ∂f/∂a + i·∂f/∂b, so `z − lr·grad`
/// descends.
///
/// ```
/// use fluxion::prelude::*;
/// use fluxion::autodiff::grad;
/// let g = grad(|z: Var<Complex64>| z.norm_sqr(), &Complex64::new(3., 4.));
/// assert_eq!(g, Complex64::new(6., 8.));
/// ```
#[inline]
pub fn grad<X: Trace, R: RealOutput>(f: impl FnOnce(X::Traced) -> Var<R>, x: &X) -> X::Tangent {
    value_and_grad(f, x).1
}

/// The gradient of `f` and its auxiliary outputs.
#[inline]
pub fn grad_with_aux<X: Trace, R: RealOutput, Aux>(
    f: impl FnOnce(X::Traced) -> (Var<R>, Aux),
    x: &X,
) -> (X::Tangent, Aux) {
    let (_, aux, gradient) = value_and_grad_with_aux(f, x);
    (gradient, aux)
}

/// The pullback of a recorded function: maps an output cotangent ȳ to the input
/// cotangent x̄ = J(x)ᴴ·ȳ. It can be called any number of times.
pub struct Pullback<X: Trace, Y: Differentiable> {
    tape: Tape,
    input: X,
    output: Var<Y>,
}

impl<X: Trace, Y: Differentiable> Pullback<X, Y> {
    /// x̄ = J(x)ᴴ·ȳ, or an error naming both shapes when a dynamic size of ȳ differs
    /// from the output's.
    pub fn try_call(&mut self, y_bar: &Y::Tangent) -> Result<X::Tangent, ShapeError> {
        let output = self.output.value().zero_tangent();
        VectorSpace::zip_leaves([], [&output, y_bar], &mut SameShapes { operation: "pullback" })?;
        let mut x_bar = self.input.zero_tangent();
        let mut buffers = gradient_buffers(&self.input, &self.tape, &mut x_bar);
        self.tape.backward(&self.output, y_bar.clone(), &mut buffers);
        Ok(x_bar)
    }

    /// x̄ = J(x)ᴴ·ȳ.
    ///
    /// # Panics
    /// When a dynamic size of ȳ differs from the output's (the message names both
    /// shapes).
    #[track_caller]
    pub fn call(&mut self, y_bar: &Y::Tangent) -> X::Tangent {
        or_panic(self.try_call(y_bar))
    }
}

/// The value of `f` at `x` and its pullback ȳ ↦ J(x)ᴴ·ȳ, for outputs of any
/// differentiable type (vectors, complex numbers, tuples).
///
/// ```
/// use fluxion::prelude::*;
/// use fluxion::autodiff::vjp;
/// let x: Vector<f64, 2> = Vector::from_array([1., 2.]);
/// let (y, mut pullback) = vjp(|x: Var<Vector<f64, 2>>| x.exp(), &x);
/// let ones: Vector<f64, 2> = Vector::ones();
/// assert_eq!(pullback.call(&ones), y);           // d/dx eˣ = eˣ
/// assert_eq!(pullback.call(&ones.scale(2.)), y.scale(2.)); // callable again
/// ```
pub fn vjp<X, Y>(f: impl FnOnce(X::Traced) -> Var<Y>, x: &X) -> (Y, Pullback<X, Y>)
where
    X: Trace + Clone,
    Y: Differentiable + Clone,
{
    let (value, (), pullback) = vjp_with_aux(|traced| (f(traced), ()), x);
    (value, pullback)
}

/// [`vjp`] for a function that also returns auxiliary outputs.
pub fn vjp_with_aux<X, Y, Aux>(f: impl FnOnce(X::Traced) -> (Var<Y>, Aux), x: &X) -> (Y, Aux, Pullback<X, Y>)
where
    X: Trace + Clone,
    Y: Differentiable + Clone,
{
    let (tape, (output, aux)) = record(Purpose::Gradient, f, x);
    let value = output.value().clone();
    (value, aux, Pullback { tape, input: x.clone(), output })
}
