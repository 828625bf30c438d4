//! Layers in static mode: [`StaticModule`] puts the companions that
//! `#[differentiable]` generates for a layer's forward pass (`apply_batch`) behind one
//! trait, so that a chain of layers, a tuple or a [`Sequential`], is differentiated
//! in static mode like one layer.
//!
//! A chain y = f_n(… f_1(x)) runs each layer's forward sweep once and keeps its
//! reverse sweep, with that layer's input, as a closure; the chain's reverse sweep
//! calls them from the last to the first, x̄ = f̄_1(… f̄_n(ȳ)), each layer's parameters'
//! cotangent going to its own slot of the chain's tangent (the tuple of the layers'
//! tangents). Forward mode pushes ẏ = ḟ_n(… ḟ_1(ẋ)) through the layers in order.
//!
//! ```
//! use fluxion::nn::layer::{Linear, Relu, Sequential, StaticModule};
//! use fluxion::nn::per_example::squared_error;
//! use fluxion::prelude::*;
//!
//! type Net = Sequential<(Linear<f64, 3, 8, Inline>, Relu, Linear<f64, 8, 2, Inline>)>;
//!
//! #[differentiable(wrt(net))]
//! fn loss(net: &Net, x: &Tensor<f64, (Const<4>, Const<3>), Inline>, target: &Matrix<f64, 4, 2>) -> f64 {
//!     squared_error(&net.apply_batch(x), target)
//! }
//!
//! let net: Net = Sequential((Linear::new(1), Relu, Linear::new(2)));
//! let x = Tensor::full(0.5);
//! let target = Matrix::full(1.0);
//! let (value, gradient) = loss::value_and_grad(&net, &x, &target);
//! // The same model and loss on the tape.
//! let (tape_value, tape_gradient) = value_and_grad(
//!     |n: <Net as Trace>::Traced| {
//!         let residual = &n.forward(&x) - &target;
//!         residual.dot(&residual) * 0.5
//!     },
//!     &net,
//! );
//! assert!((value - tape_value).abs() < 1e-12);
//! let pairs = gradient.2.weight.iter().zip(tape_gradient.2.weight.iter());
//! assert!(pairs.into_iter().all(|(a, b)| (a - b).abs() < 1e-12));
//! ```
//!
//! A chain's `apply_batch` takes a batch `(B, Const<F>)`, or one example as a vector
//! `(Const<F>,)` when every layer takes one (`Linear`, which runs `Linear::apply` on
//! it, and the elementwise activations; not `Softmax`, `LayerNorm` or the image
//! layers).
//!
//! The library's layers implement it (but [`Dropout`](super::layer::Dropout), whose
//! static form takes its mask as an argument: `x.hadamard(&mask)`;
//! [`BatchNorm`](super::layer::BatchNorm) through `apply_batch` on rows and
//! `apply_images` on images); a layer of your
//! own implements it with [`static_module!`](crate::static_module), from its
//! `#[differentiable]` method.

use super::layer::{Checkpointed, Residual, SameAsBlockInput, Sequential};
use crate::autodiff::{Differentiable, VectorSpace};

/// The output tangent of layer `M` on input `X`.
type OutputTangent<M, X> = <<M as StaticModule<X>>::Output as Differentiable>::Tangent;

/// A layer's forward pass in static mode: `apply_batch`, the method that
/// `#[differentiable]` code calls, and its hidden companions. Tuples of layers and
/// [`Sequential`] implement it when each layer takes the previous one's output.
#[diagnostic::on_unimplemented(
    message = "the layer `{Self}` does not take `{X}` as its input in static mode",
    label = "this layer's input size (or element or storage type) differs",
    note = "in a chain `(a, b, …)` each layer must take the previous layer's output; `Dropout` has no static form (multiply by its `mask`)"
)]
pub trait StaticModule<X: ?Sized>: Differentiable {
    /// The output on an input `X` (`Clone`: a layer built from layers keeps a copy of
    /// a value it passes on in static mode).
    type Output: Differentiable + Clone + 'static;
    /// The input's tangent: `X`'s, or `NotDifferentiated` for indices.
    type InputTangent: Clone;

    /// The output on `x` (static mode differentiates it inside `#[differentiable]`
    /// code).
    fn apply_batch(&self, x: &X) -> Self::Output;

    #[doc(hidden)]
    fn __record_apply_batch<'l>(
        &'l self,
        x: &'l X,
        wanted: [bool; 2],
    ) -> (Self::Output, impl FnOnce(OutputTangent<Self, X>) -> (Self::Tangent, Self::InputTangent) + 'l);

    /// `__record_apply_batch` with the input taken by value and kept by the pullback;
    /// by default the pullback recomputes the forward sweep.
    #[doc(hidden)]
    fn __record_owned_apply_batch<'l>(
        &'l self,
        x: X,
        wanted: [bool; 2],
    ) -> (Self::Output, impl FnOnce(OutputTangent<Self, X>) -> (Self::Tangent, Self::InputTangent) + 'l)
    where
        X: Sized + 'l,
    {
        let _ = wanted;
        let value = self.apply_batch(&x);
        (value, move |seed| self.__joint_apply_batch(&x, seed).1)
    }

    #[doc(hidden)]
    fn __joint_apply_batch(
        &self,
        x: &X,
        seed: OutputTangent<Self, X>,
    ) -> (Self::Output, (Self::Tangent, Self::InputTangent));

    #[doc(hidden)]
    fn __joint_lanes_apply_batch<const N: usize>(
        &self,
        x: &X,
        seeds: [OutputTangent<Self, X>; N],
    ) -> (Self::Output, ([Self::Tangent; N], [Self::InputTangent; N]));

    #[doc(hidden)]
    fn __jvp_apply_batch(
        &self,
        x: &X,
        tangents: (Option<&Self::Tangent>, Option<&Self::InputTangent>),
    ) -> (Self::Output, OutputTangent<Self, X>);

    #[doc(hidden)]
    fn __jvp_lanes_apply_batch<const N: usize>(
        &self,
        x: &X,
        tangents: (Option<&[Self::Tangent; N]>, Option<&[Self::InputTangent; N]>),
    ) -> (Self::Output, [OutputTangent<Self, X>; N]);
}

/// A layer's static form under one name for every layer and input, for the bodies
/// that [`module`](super::layer::module) writes: `layer.forward(x)` there reads as
/// `layer.static_forward(x)`, which no layer shadows with a method of its own
/// (`Linear::apply_batch` takes batches only, `BatchNorm::apply_batch` rows only).
/// Every [`StaticModule`] has it through one `impl`, whose bound a layer that does
/// not take the input fails: each call in a body then gives the same error, which
/// the compiler reports once.
#[doc(hidden)]
pub trait StaticForward<X: ?Sized> {
    /// [`StaticModule::Output`].
    type Output;
    /// The layer's tangent.
    type LayerTangent;
    /// [`StaticModule::InputTangent`].
    type InputTangent;
    /// The output's tangent.
    type OutputTangent;

    fn static_forward(&self, x: &X) -> Self::Output;

    fn __record_static_forward<'l>(
        &'l self,
        x: &'l X,
        wanted: [bool; 2],
    ) -> (Self::Output, impl FnOnce(Self::OutputTangent) -> (Self::LayerTangent, Self::InputTangent) + 'l);

    fn __record_owned_static_forward<'l>(
        &'l self,
        x: X,
        wanted: [bool; 2],
    ) -> (Self::Output, impl FnOnce(Self::OutputTangent) -> (Self::LayerTangent, Self::InputTangent) + 'l)
    where
        X: Sized + 'l;

    fn __joint_static_forward(
        &self,
        x: &X,
        seed: Self::OutputTangent,
    ) -> (Self::Output, (Self::LayerTangent, Self::InputTangent));

    fn __joint_lanes_static_forward<const N: usize>(
        &self,
        x: &X,
        seeds: [Self::OutputTangent; N],
    ) -> (Self::Output, ([Self::LayerTangent; N], [Self::InputTangent; N]));

    fn __jvp_static_forward(
        &self,
        x: &X,
        tangents: (Option<&Self::LayerTangent>, Option<&Self::InputTangent>),
    ) -> (Self::Output, Self::OutputTangent);

    fn __jvp_lanes_static_forward<const N: usize>(
        &self,
        x: &X,
        tangents: (Option<&[Self::LayerTangent; N]>, Option<&[Self::InputTangent; N]>),
    ) -> (Self::Output, [Self::OutputTangent; N]);
}

impl<X: ?Sized, L: StaticModule<X>> StaticForward<X> for L {
    type Output = L::Output;
    type LayerTangent = L::Tangent;
    type InputTangent = L::InputTangent;
    type OutputTangent = OutputTangent<L, X>;

    #[inline]
    fn static_forward(&self, x: &X) -> Self::Output {
        self.apply_batch(x)
    }

    #[inline]
    fn __record_static_forward<'l>(
        &'l self,
        x: &'l X,
        wanted: [bool; 2],
    ) -> (Self::Output, impl FnOnce(Self::OutputTangent) -> (Self::LayerTangent, Self::InputTangent) + 'l)
    {
        self.__record_apply_batch(x, wanted)
    }

    #[inline]
    fn __record_owned_static_forward<'l>(
        &'l self,
        x: X,
        wanted: [bool; 2],
    ) -> (Self::Output, impl FnOnce(Self::OutputTangent) -> (Self::LayerTangent, Self::InputTangent) + 'l)
    where
        X: Sized + 'l,
    {
        self.__record_owned_apply_batch(x, wanted)
    }

    #[inline]
    fn __joint_static_forward(
        &self,
        x: &X,
        seed: Self::OutputTangent,
    ) -> (Self::Output, (Self::LayerTangent, Self::InputTangent)) {
        self.__joint_apply_batch(x, seed)
    }

    #[inline]
    fn __joint_lanes_static_forward<const N: usize>(
        &self,
        x: &X,
        seeds: [Self::OutputTangent; N],
    ) -> (Self::Output, ([Self::LayerTangent; N], [Self::InputTangent; N])) {
        self.__joint_lanes_apply_batch(x, seeds)
    }

    #[inline]
    fn __jvp_static_forward(
        &self,
        x: &X,
        tangents: (Option<&Self::LayerTangent>, Option<&Self::InputTangent>),
    ) -> (Self::Output, Self::OutputTangent) {
        self.__jvp_apply_batch(x, tangents)
    }

    #[inline]
    fn __jvp_lanes_static_forward<const N: usize>(
        &self,
        x: &X,
        tangents: (Option<&[Self::LayerTangent; N]>, Option<&[Self::InputTangent; N]>),
    ) -> (Self::Output, [Self::OutputTangent; N]) {
        self.__jvp_lanes_apply_batch(x, tangents)
    }
}

/// Implements [`StaticModule`] for a layer from the companions of its
/// `#[differentiable]` method `apply_batch` (or `apply`, for a layer whose static
/// method is named so), with the generics and bounds of that method:
///
/// ```
/// use fluxion::autodiff::differentiable;
/// use fluxion::nn::layer::StaticModule;
/// use fluxion::prelude::*;
///
/// /// x ↦ a·x elementwise, with a learned a.
/// #[derive(Clone, Differentiable)]
/// struct Scale {
///     a: f64,
/// }
///
/// impl Scale {
///     #[differentiable]
///     fn apply_batch<const N: usize>(&self, x: &Vector<f64, N>) -> Vector<f64, N> {
///         x.scale(self.a)
///     }
/// }
///
/// fluxion::static_module!(impl[const N: usize] Scale: apply_batch(Vector<f64, N>) -> Vector<f64, N>);
///
/// let chain = (Scale { a: 2.0 }, Scale { a: 3.0 });
/// assert_eq!(chain.apply_batch(&Vector::<f64, 2>::full(1.0)).to_array(), [6.0, 6.0]);
/// ```
///
/// After the signature, `; where [bounds]` repeats the method's bounds, and an input
/// that is not differentiated (indices) names its tangent before them:
/// `apply([usize]) -> Out, input tangent fluxion::autodiff::rules::NotDifferentiated;
/// where [bounds]`.
#[macro_export]
macro_rules! static_module {
    (impl[$($generics:tt)*] $layer:ty: apply_batch($input:ty) -> $output:ty $(, input tangent $input_tangent:ty)? $(; where [$($bounds:tt)*])?) => {
        $crate::static_module!(@impl [$($generics)*] $layer, $input, $output, [$($input_tangent)?], [$($($bounds)*)?],
            apply_batch __record_apply_batch __record_owned_apply_batch __joint_apply_batch
            __joint_lanes_apply_batch __jvp_apply_batch __jvp_lanes_apply_batch);
    };
    (impl[$($generics:tt)*] $layer:ty: apply($input:ty) -> $output:ty $(, input tangent $input_tangent:ty)? $(; where [$($bounds:tt)*])?) => {
        $crate::static_module!(@impl [$($generics)*] $layer, $input, $output, [$($input_tangent)?], [$($($bounds)*)?],
            apply __record_apply __record_owned_apply __joint_apply __joint_lanes_apply __jvp_apply __jvp_lanes_apply);
    };
    (impl[$($generics:tt)*] $layer:ty: apply_images($input:ty) -> $output:ty $(, input tangent $input_tangent:ty)? $(; where [$($bounds:tt)*])?) => {
        $crate::static_module!(@impl [$($generics)*] $layer, $input, $output, [$($input_tangent)?], [$($($bounds)*)?],
            apply_images __record_apply_images __record_owned_apply_images __joint_apply_images
            __joint_lanes_apply_images __jvp_apply_images __jvp_lanes_apply_images);
    };
    (@input_tangent $input:ty, []) => { <$input as $crate::autodiff::Differentiable>::Tangent };
    (@input_tangent $input:ty, [$tangent:ty]) => { $tangent };
    (@impl [$($generics:tt)*] $layer:ty, $input:ty, $output:ty, [$($input_tangent:ty)?], [$($bounds:tt)*],
        $apply:ident $record:ident $owned:ident $joint:ident $joint_lanes:ident $jvp:ident $jvp_lanes:ident) => {
        #[diagnostic::do_not_recommend]
        impl<$($generics)*> $crate::nn::layer::StaticModule<$input> for $layer
        where
            $($bounds)*
        {
            type Output = $output;
            type InputTangent = $crate::static_module!(@input_tangent $input, [$($input_tangent)?]);

            #[inline]
            fn apply_batch(&self, x: &$input) -> $output {
                <$layer>::$apply(self, x)
            }

            #[inline]
            fn __record_apply_batch<'l>(
                &'l self,
                x: &'l $input,
                wanted: [bool; 2],
            ) -> (
                $output,
                impl FnOnce(<$output as $crate::autodiff::Differentiable>::Tangent) -> (Self::Tangent, Self::InputTangent) + 'l,
            ) {
                <$layer>::$record(self, x, wanted)
            }

            $crate::static_module!(@owned_method $layer, $input, $output, [$($input_tangent)?], $owned);

            #[inline]
            fn __joint_apply_batch(
                &self,
                x: &$input,
                seed: <$output as $crate::autodiff::Differentiable>::Tangent,
            ) -> ($output, (Self::Tangent, Self::InputTangent)) {
                <$layer>::$joint(self, x, seed)
            }

            #[inline]
            fn __joint_lanes_apply_batch<const __LANES: usize>(
                &self,
                x: &$input,
                seeds: [<$output as $crate::autodiff::Differentiable>::Tangent; __LANES],
            ) -> ($output, ([Self::Tangent; __LANES], [Self::InputTangent; __LANES])) {
                <$layer>::$joint_lanes(self, x, seeds)
            }

            #[inline]
            fn __jvp_apply_batch(
                &self,
                x: &$input,
                tangents: (Option<&Self::Tangent>, Option<&Self::InputTangent>),
            ) -> ($output, <$output as $crate::autodiff::Differentiable>::Tangent) {
                <$layer>::$jvp(self, x, tangents)
            }

            #[inline]
            fn __jvp_lanes_apply_batch<const __LANES: usize>(
                &self,
                x: &$input,
                tangents: (Option<&[Self::Tangent; __LANES]>, Option<&[Self::InputTangent; __LANES]>),
            ) -> ($output, [<$output as $crate::autodiff::Differentiable>::Tangent; __LANES]) {
                <$layer>::$jvp_lanes(self, x, tangents)
            }
        }
    };
    // A differentiated input has an owned-input companion; indices (a slice) do not.
    (@owned_method $layer:ty, $input:ty, $output:ty, [], $owned:ident) => {
        #[inline]
        fn __record_owned_apply_batch<'l>(
            &'l self,
            x: $input,
            wanted: [bool; 2],
        ) -> (
            $output,
            impl FnOnce(<$output as $crate::autodiff::Differentiable>::Tangent) -> (Self::Tangent, Self::InputTangent) + 'l,
        )
        where
            $input: Sized + 'l,
        {
            <$layer>::$owned(self, x, wanted)
        }
    };
    (@owned_method $layer:ty, $input:ty, $output:ty, [$input_tangent:ty], $owned:ident) => {};
}

/// A layer's tangent, from the slot its pullback filled.
fn filled<T>(slot: Option<T>) -> T {
    slot.expect("every layer's pullback fills its slot")
}

/// A tuple of layers in static mode: each takes the previous one's output.
macro_rules! static_chain {
    ($first:ident $first_index:tt $(, $layer:ident after $previous:ident $index:tt)+; last $last:ident) => {
        // The slots of the layers' tangents (and of N lanes of them), built here
        // where the layers repeat once.
        static_chain!(
            @impl (Option<$first::Tangent>, $(Option<$layer::Tangent>),+),
            (Option<[$first::Tangent; N]>, $(Option<[$layer::Tangent; N]>),+);
            $first $first_index $(, $layer after $previous $index)+; last $last
        );
    };
    // The chain after its first layer's record `$first` (value and pullback): each
    // step's `back` takes its output's cotangent, fills its layer's slot and hands its
    // input's cotangent to the step before.
    (@rest $self:ident, $first:ident, $parameters:ident, $input:ident, $slots:ty; $first_index:tt $(, $layer:ident $index:tt)+) => {{
        let (y, pullback) = $first;
        let back = move |y_bar, slots: &mut $slots| {
            let (tangent, x_bar) = pullback(y_bar);
            slots.$first_index = Some(tangent);
            x_bar
        };
        $(
            let (y, pullback) = $self.$index.__record_owned_apply_batch(y, [$parameters, $parameters || $input]);
            let back = move |y_bar, slots: &mut $slots| {
                let (tangent, previous_bar) = pullback(y_bar);
                slots.$index = Some(tangent);
                back(previous_bar, slots)
            };
        )+
        (y, move |seed| {
            let mut slots = (None, $(None::<$layer::Tangent>),+);
            let x_bar = back(seed, &mut slots);
            ((filled(slots.$first_index), $(filled(slots.$index)),+), x_bar)
        })
    }};
    (@impl $slots:ty, $lane_slots:ty; $first:ident $first_index:tt $(, $layer:ident after $previous:ident $index:tt)+; last $last:ident) => {
        impl<X: ?Sized, $first, $($layer),+> StaticModule<X> for ($first, $($layer),+)
        where
            $first: StaticModule<X>,
            $($layer: StaticModule<$previous::Output, InputTangent = <$previous::Output as Differentiable>::Tangent>,)+
        {
            type Output = $last::Output;
            type InputTangent = $first::InputTangent;

            #[inline]
            fn apply_batch(&self, x: &X) -> Self::Output {
                let y = self.$first_index.apply_batch(x);
                $(let y = self.$index.apply_batch(&y);)+
                y
            }

            #[inline]
            fn __record_apply_batch<'l>(
                &'l self,
                x: &'l X,
                [parameters, input]: [bool; 2],
            ) -> (Self::Output, impl FnOnce(OutputTangent<Self, X>) -> (Self::Tangent, Self::InputTangent) + 'l) {
                let first = self.$first_index.__record_apply_batch(x, [parameters, input]);
                static_chain!(@rest self, first, parameters, input, $slots; $first_index $(, $layer $index)+)
            }

            /// As `__record_apply_batch`, the first layer keeping the input: a chain
            /// nested in a chain runs each forward pass once too.
            #[inline]
            fn __record_owned_apply_batch<'l>(
                &'l self,
                x: X,
                [parameters, input]: [bool; 2],
            ) -> (Self::Output, impl FnOnce(OutputTangent<Self, X>) -> (Self::Tangent, Self::InputTangent) + 'l)
            where
                X: Sized + 'l,
            {
                let first = self.$first_index.__record_owned_apply_batch(x, [parameters, input]);
                static_chain!(@rest self, first, parameters, input, $slots; $first_index $(, $layer $index)+)
            }

            #[inline]
            fn __joint_apply_batch(
                &self,
                x: &X,
                seed: OutputTangent<Self, X>,
            ) -> (Self::Output, (Self::Tangent, Self::InputTangent)) {
                let (y, pullback) = self.__record_apply_batch(x, [true, true]);
                (y, pullback(seed))
            }

            #[inline]
            fn __joint_lanes_apply_batch<const N: usize>(
                &self,
                x: &X,
                seeds: [OutputTangent<Self, X>; N],
            ) -> (Self::Output, ([Self::Tangent; N], [Self::InputTangent; N])) {
                // As in `__record_apply_batch`, each layer's joint function (recomputing
                // its forward sweep) on its kept input.
                let y = self.$first_index.apply_batch(x);
                let back = move |y_bars, slots: &mut $lane_slots| {
                    let (_, (tangents, x_bars)) = self.$first_index.__joint_lanes_apply_batch(x, y_bars);
                    slots.$first_index = Some(tangents);
                    x_bars
                };
                $(
                    let next = self.$index.apply_batch(&y);
                    let back = move |y_bars, slots: &mut $lane_slots| {
                        let (_, (tangents, previous_bars)) = self.$index.__joint_lanes_apply_batch(&y, y_bars);
                        slots.$index = Some(tangents);
                        back(previous_bars, slots)
                    };
                    let y = next;
                )+
                let mut slots = (None, $(None::<[$layer::Tangent; N]>),+);
                let x_bars = back(seeds, &mut slots);
                let mut lanes = (filled(slots.$first_index).into_iter(), $(filled(slots.$index).into_iter()),+);
                let tangents = core::array::from_fn(|_| {
                    (filled(lanes.$first_index.next()), $(filled(lanes.$index.next())),+)
                });
                (y, (tangents, x_bars))
            }

            #[inline]
            fn __jvp_apply_batch(
                &self,
                x: &X,
                (parameters, input): (Option<&Self::Tangent>, Option<&Self::InputTangent>),
            ) -> (Self::Output, OutputTangent<Self, X>) {
                let (y, y_dot) = self.$first_index.__jvp_apply_batch(x, (parameters.map(|t| &t.$first_index), input));
                $(let (y, y_dot) = self.$index.__jvp_apply_batch(&y, (parameters.map(|t| &t.$index), Some(&y_dot)));)+
                (y, y_dot)
            }

            #[inline]
            fn __jvp_lanes_apply_batch<const N: usize>(
                &self,
                x: &X,
                (parameters, input): (Option<&[Self::Tangent; N]>, Option<&[Self::InputTangent; N]>),
            ) -> (Self::Output, [OutputTangent<Self, X>; N]) {
                let lanes = parameters.map(|t| core::array::from_fn::<_, N, _>(|lane| t[lane].$first_index.clone()));
                let (y, y_dots) = self.$first_index.__jvp_lanes_apply_batch(x, (lanes.as_ref(), input));
                $(
                    let lanes = parameters.map(|t| core::array::from_fn::<_, N, _>(|lane| t[lane].$index.clone()));
                    let (y, y_dots) = self.$index.__jvp_lanes_apply_batch(&y, (lanes.as_ref(), Some(&y_dots)));
                )+
                (y, y_dots)
            }
        }
    };
}

static_chain!(A 0, B after A 1; last B);
static_chain!(A 0, B after A 1, C after B 2; last C);
static_chain!(A 0, B after A 1, C after B 2, D after C 3; last D);
static_chain!(A 0, B after A 1, C after B 2, D after C 3, E after D 4; last E);
static_chain!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5; last F);
static_chain!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6; last G);
static_chain!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6, H after G 7; last H);
static_chain!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6, H after G 7, I after H 8; last I);
static_chain!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6, H after G 7, I after H 8, J after I 9; last J);
static_chain!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6, H after G 7, I after H 8, J after I 9, K after J 10; last K);
static_chain!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6, H after G 7, I after H 8, J after I 9, K after J 10, L after K 11; last L);

/// A wrapper of one layer is that layer in static mode: a [`Sequential`] its tuple, a
/// [`Checkpointed`] its inner layer (static mode keeps no tape to shrink).
macro_rules! transparent_static_module {
    ($wrapper:ident) => {
        impl<X: ?Sized, L: StaticModule<X>> StaticModule<X> for $wrapper<L> {
            type Output = L::Output;
            type InputTangent = L::InputTangent;

            #[inline]
            fn apply_batch(&self, x: &X) -> Self::Output {
                self.0.apply_batch(x)
            }

            #[inline]
            fn __record_apply_batch<'l>(
                &'l self,
                x: &'l X,
                wanted: [bool; 2],
            ) -> (Self::Output, impl FnOnce(OutputTangent<Self, X>) -> (Self::Tangent, Self::InputTangent) + 'l) {
                self.0.__record_apply_batch(x, wanted)
            }

            #[inline]
            fn __record_owned_apply_batch<'l>(
                &'l self,
                x: X,
                wanted: [bool; 2],
            ) -> (Self::Output, impl FnOnce(OutputTangent<Self, X>) -> (Self::Tangent, Self::InputTangent) + 'l)
            where
                X: Sized + 'l,
            {
                self.0.__record_owned_apply_batch(x, wanted)
            }

            #[inline]
            fn __joint_apply_batch(
                &self,
                x: &X,
                seed: OutputTangent<Self, X>,
            ) -> (Self::Output, (Self::Tangent, Self::InputTangent)) {
                self.0.__joint_apply_batch(x, seed)
            }

            #[inline]
            fn __joint_lanes_apply_batch<const N: usize>(
                &self,
                x: &X,
                seeds: [OutputTangent<Self, X>; N],
            ) -> (Self::Output, ([Self::Tangent; N], [Self::InputTangent; N])) {
                self.0.__joint_lanes_apply_batch(x, seeds)
            }

            #[inline]
            fn __jvp_apply_batch(
                &self,
                x: &X,
                tangents: (Option<&Self::Tangent>, Option<&Self::InputTangent>),
            ) -> (Self::Output, OutputTangent<Self, X>) {
                self.0.__jvp_apply_batch(x, tangents)
            }

            #[inline]
            fn __jvp_lanes_apply_batch<const N: usize>(
                &self,
                x: &X,
                tangents: (Option<&[Self::Tangent; N]>, Option<&[Self::InputTangent; N]>),
            ) -> (Self::Output, [OutputTangent<Self, X>; N]) {
                self.0.__jvp_lanes_apply_batch(x, tangents)
            }
        }
    };
}

transparent_static_module!(Sequential);
transparent_static_module!(Checkpointed);

/// A skip connection: y = x + f(x), so ẏ = ẋ + ḟ and the input's cotangent gets the
/// output's once more, x̄ = ȳ + (f's x̄).
impl<X, L> StaticModule<X> for Residual<L>
where
    X: Differentiable + Clone + 'static,
    L: StaticModule<X, Output = X, InputTangent = X::Tangent>,
    X: SameAsBlockInput<X, Sum = X>,
{
    type Output = X;
    type InputTangent = X::Tangent;

    #[inline]
    fn apply_batch(&self, x: &X) -> X {
        self.0.apply_batch(x).plus_block_input(x)
    }

    #[inline]
    fn __record_apply_batch<'l>(
        &'l self,
        x: &'l X,
        wanted: [bool; 2],
    ) -> (X, impl FnOnce(X::Tangent) -> (Self::Tangent, X::Tangent) + 'l) {
        let (inner, pullback) = self.0.__record_apply_batch(x, wanted);
        (inner.plus_block_input(x), with_skip(pullback, wanted[1]))
    }

    #[inline]
    fn __record_owned_apply_batch<'l>(
        &'l self,
        x: X,
        wanted: [bool; 2],
    ) -> (X, impl FnOnce(X::Tangent) -> (Self::Tangent, X::Tangent) + 'l)
    where
        X: 'l,
    {
        let (inner, pullback) = self.0.__record_owned_apply_batch(x.clone(), wanted);
        (inner.plus_block_input(&x), with_skip(pullback, wanted[1]))
    }

    #[inline]
    fn __joint_apply_batch(&self, x: &X, seed: X::Tangent) -> (X, (Self::Tangent, X::Tangent)) {
        let (inner, (tangent, mut x_bar)) = self.0.__joint_apply_batch(x, seed.clone());
        x_bar.add_assign(&seed);
        (inner.plus_block_input(x), (tangent, x_bar))
    }

    #[inline]
    fn __joint_lanes_apply_batch<const N: usize>(
        &self,
        x: &X,
        seeds: [X::Tangent; N],
    ) -> (X, ([Self::Tangent; N], [X::Tangent; N])) {
        let (inner, (tangents, mut x_bars)) = self.0.__joint_lanes_apply_batch(x, seeds.clone());
        for (x_bar, seed) in x_bars.iter_mut().zip(&seeds) {
            x_bar.add_assign(seed);
        }
        (inner.plus_block_input(x), (tangents, x_bars))
    }

    #[inline]
    fn __jvp_apply_batch(
        &self,
        x: &X,
        tangents: (Option<&Self::Tangent>, Option<&X::Tangent>),
    ) -> (X, X::Tangent) {
        let (inner, mut y_dot) = self.0.__jvp_apply_batch(x, tangents);
        if let Some(x_dot) = tangents.1 {
            y_dot.add_assign(x_dot);
        }
        (inner.plus_block_input(x), y_dot)
    }

    #[inline]
    fn __jvp_lanes_apply_batch<const N: usize>(
        &self,
        x: &X,
        tangents: (Option<&[Self::Tangent; N]>, Option<&[X::Tangent; N]>),
    ) -> (X, [X::Tangent; N]) {
        let (inner, mut y_dots) = self.0.__jvp_lanes_apply_batch(x, tangents);
        if let Some(x_dots) = tangents.1 {
            for (y_dot, x_dot) in y_dots.iter_mut().zip(x_dots) {
                y_dot.add_assign(x_dot);
            }
        }
        (inner.plus_block_input(x), y_dots)
    }
}

/// A residual block's pullback: the inner layer's, its input cotangent plus the
/// output's (when the input's is wanted).
fn with_skip<P, X: VectorSpace>(
    pullback: impl FnOnce(X) -> (P, X),
    input_wanted: bool,
) -> impl FnOnce(X) -> (P, X) {
    move |seed: X| {
        if input_wanted {
            let (tangent, mut x_bar) = pullback(seed.clone());
            x_bar.add_assign(&seed);
            (tangent, x_bar)
        } else {
            pullback(seed)
        }
    }
}

/// What a [`Dropout`](super::layer::Dropout) in static mode would need: nothing has
/// it. A layer of a static chain runs again in some derivatives (inside a branch or a
/// loop, or for `jacrev`), and a dropout would draw another mask there; so it has no
/// static form, and saying so here turns a dropout in a chain into one error that
/// names it.
#[diagnostic::on_unimplemented(
    message = "`Dropout` has no static form (its input here: `{Self}`)",
    label = "a chain in static mode cannot hold a `Dropout`",
    note = "draw the mask outside (`dropout.mask(shape)`, ones in evaluation), pass it in as a constant and multiply: `x.hadamard(&mask)`"
)]
pub trait DropoutInStaticMode {
    /// A value of a type with none: the impl below is never used.
    fn unreachable(&self) -> core::convert::Infallible;
}

// Every method first asks its input for a value of an empty type: nothing here runs
// (and the compiler sees the code after it as unreachable, its names as unused).
#[cfg(feature = "std")]
#[allow(unreachable_code, unused_variables)]
impl<X: Differentiable + Clone + DropoutInStaticMode + 'static> StaticModule<X> for super::layer::Dropout {
    type Output = X;
    type InputTangent = X::Tangent;

    fn apply_batch(&self, x: &X) -> X {
        match x.unreachable() {}
    }

    fn __record_apply_batch<'l>(
        &'l self,
        x: &'l X,
        _: [bool; 2],
    ) -> (X, impl FnOnce(X::Tangent) -> (Self::Tangent, X::Tangent) + 'l) {
        // The closure names the opaque type.
        let never = x.unreachable();
        let pullback = move |_| -> (Self::Tangent, X::Tangent) { match never {} };
        (match never {}, pullback)
    }

    fn __joint_apply_batch(&self, x: &X, _: X::Tangent) -> (X, (Self::Tangent, X::Tangent)) {
        match x.unreachable() {}
    }

    fn __joint_lanes_apply_batch<const N: usize>(
        &self,
        x: &X,
        _: [X::Tangent; N],
    ) -> (X, ([Self::Tangent; N], [X::Tangent; N])) {
        match x.unreachable() {}
    }

    fn __jvp_apply_batch(&self, x: &X, _: (Option<&Self::Tangent>, Option<&X::Tangent>)) -> (X, X::Tangent) {
        match x.unreachable() {}
    }

    fn __jvp_lanes_apply_batch<const N: usize>(
        &self,
        x: &X,
        _: (Option<&[Self::Tangent; N]>, Option<&[X::Tangent; N]>),
    ) -> (X, [X::Tangent; N]) {
        match x.unreachable() {}
    }
}
