//! Elementwise operations: y = f(x) for each element, `+` and `−` of equal shapes,
//! and scaling by a scalar.
//!
//! `sigmoid(x) = 1/(1 + e⁻ˣ)`, `relu(x) = max(x, 0)`. On complex tensors `exp`, `ln`,
//! `sin`, `cos`, `tanh`, `sqrt` and `powf` are the principal-branch complex functions;
//! `abs`, `re`, `im` and `norm_sqr` return real tensors.

use core::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use num_traits::Zero;

use crate::autodiff::Dual;
use crate::backend::cpu::{Write, write_elements};
use crate::backend::wide::{wide, wide_with};
use crate::error::{ShapeError, or_panic};
use crate::product::ScalarFactor;
use crate::scalar::{Complex32, Complex64, RealScalar, Scalar};
use crate::shape::Shape;
use crate::tensor::{SameKind, Storage, StorageKind, Tensor};

impl<T: Copy, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// Applies `f` to every element.
    #[inline(always)]
    pub fn map<U>(&self, f: impl FnMut(T) -> U) -> Tensor<U, S, K>
    where
        K: Storage<U, S>,
    {
        Tensor::from_mapped(self.shape(), self.as_slice(), f)
    }

    /// Combines two tensors of the same shape element by element; an error names both
    /// shapes when a dynamic dimension differs.
    #[inline(always)]
    pub fn try_zip_map<U: Copy, V>(
        &self,
        other: &Tensor<U, S, K>,
        f: impl FnMut(T, U) -> V,
    ) -> Result<Tensor<V, S, K>, ShapeError>
    where
        K: Storage<U, S> + Storage<V, S>,
    {
        self.try_zip_map_named(other, "zip_map", f)
    }

    /// [`Tensor::try_zip_map`] whose error names `operation`.
    #[inline(always)]
    pub(crate) fn try_zip_map_named<U: Copy, V>(
        &self,
        other: &Tensor<U, S, K>,
        operation: &'static str,
        mut f: impl FnMut(T, U) -> V,
    ) -> Result<Tensor<V, S, K>, ShapeError>
    where
        K: Storage<U, S> + Storage<V, S>,
    {
        self.check_same_shape(other, operation)?;
        Ok(Tensor::from_elements(self.shape(), self.iter().zip(other.iter()).map(|(&a, &b)| f(a, b))))
    }

    /// [`Tensor::zip_map`] whose function also receives the flat index.
    #[inline(always)]
    #[track_caller]
    pub fn zip_map_indexed<U: Copy, V>(
        &self,
        other: &Tensor<U, S, K>,
        mut f: impl FnMut(usize, T, U) -> V,
    ) -> Tensor<V, S, K>
    where
        K: Storage<U, S> + Storage<V, S>,
    {
        or_panic(self.check_same_shape(other, "zip_map"));
        let (a, b) = (self.as_slice(), other.as_slice());
        Tensor::from_flat_fn(self.shape(), |i| f(i, a[i], b[i]))
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

/// The elementary functions with their derivatives, written once: every mode of
/// differentiation uses [`Elementary::derivative`].
///
/// For complex arguments these are holomorphic, and `derivative` is the complex
/// derivative f′(x); reverse mode uses x̄ = conj(f′(x))·ȳ, forward mode ẏ = f′(x)·ẋ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Elementary<R> {
    /// eˣ, f′ = eˣ.
    Exp,
    /// ln x, f′ = 1/x.
    Ln,
    /// sin x, f′ = cos x.
    Sin,
    /// cos x, f′ = −sin x.
    Cos,
    /// tanh x, f′ = 1 − tanh² x.
    Tanh,
    /// √x, f′ = 1/(2√x).
    Sqrt,
    /// σ(x) = 1/(1 + e⁻ˣ), f′ = σ(1 − σ).
    Sigmoid,
    /// xⁿ, f′ = n·xⁿ⁻¹.
    Powi(i32),
    /// xᵖ for real p, f′ = p·xᵖ⁻¹.
    Powf(R),
}

impl<R: RealScalar> Elementary<R> {
    /// f(x).
    #[inline(always)]
    pub fn apply<T: Scalar<Real = R>>(self, x: T) -> T {
        match self {
            Elementary::Exp => x.exp(),
            Elementary::Ln => x.ln(),
            Elementary::Sin => x.sin(),
            Elementary::Cos => x.cos(),
            Elementary::Tanh => x.tanh(),
            Elementary::Sqrt => x.sqrt(),
            Elementary::Sigmoid => x.sigmoid(),
            Elementary::Powi(n) => x.powi(n),
            Elementary::Powf(p) => x.powf(p),
        }
    }

    /// f′(x), given also y = f(x) (several derivatives are cheapest in terms of y).
    #[inline(always)]
    pub fn derivative<T: Scalar<Real = R>>(self, x: T, y: T) -> T {
        match self {
            Elementary::Exp => y,
            Elementary::Ln => T::one() / x,
            Elementary::Sin => x.cos(),
            Elementary::Cos => -x.sin(),
            Elementary::Tanh => T::one() - y * y,
            Elementary::Sqrt => T::one() / (y + y),
            Elementary::Sigmoid => y * (T::one() - y),
            Elementary::Powi(0) => T::zero(),
            Elementary::Powi(n) => T::from_real(R::from_f64(f64::from(n))) * x.powi(n - 1),
            // p·x^(p−1), and 0 for p = 0 (x⁰ ≡ 1, as `Powi(0)` and PyTorch): the
            // exponent p − 1 becomes p there, so no 0·∞ arises at x = 0.
            Elementary::Powf(p) => {
                T::from_real(p) * x.powf(p - R::select_positive(p.abs(), R::one(), R::zero()))
            }
        }
    }

    /// Calls `kernel` with `self` rebuilt in each branch of a `match`, so that in an
    /// inlined kernel the compiler knows which function it is: the `match` inside
    /// [`Elementary::apply`] and [`Elementary::derivative`] then folds away and the
    /// kernel's loop runs one straight formula per element.
    #[inline(always)]
    pub(crate) fn specialize<Out>(self, kernel: impl FnOnce(Self) -> Out) -> Out {
        match self {
            Elementary::Exp => kernel(Elementary::Exp),
            Elementary::Ln => kernel(Elementary::Ln),
            Elementary::Sin => kernel(Elementary::Sin),
            Elementary::Cos => kernel(Elementary::Cos),
            Elementary::Tanh => kernel(Elementary::Tanh),
            Elementary::Sqrt => kernel(Elementary::Sqrt),
            Elementary::Sigmoid => kernel(Elementary::Sigmoid),
            Elementary::Powi(n) => kernel(Elementary::Powi(n)),
            Elementary::Powf(p) => kernel(Elementary::Powf(p)),
        }
    }
}

/// An elementwise function of a real scalar, written once for every real type, with
/// its derivative: a library author's own elementwise operation.
///
/// The host runs [`ScalarFunction::value`] on `f32` or `f64`; a GPU tensor (feature
/// `cuda`) evaluates the same definition on a symbolic scalar and compiles the
/// recorded formula into a kernel, so the operation needs no GPU code of its own. A
/// chain of steps written in one function is one fused kernel there. Write the
/// function without comparisons (`RealScalar::max` is recorded; `if x < y` is not).
///
/// ```
/// use fluxion::prelude::*;
/// use fluxion::ops::elementwise::ScalarFunction;
///
/// /// softsign(x) = x/(1 + |x|), softsign′(x) = 1/(1 + |x|)².
/// #[derive(Clone, Copy, Debug)]
/// struct Softsign;
///
/// impl ScalarFunction for Softsign {
///     fn value<T: RealScalar>(&self, x: T) -> T {
///         x / (T::one() + x.abs())
///     }
///     fn derivative<T: RealScalar>(&self, x: T, _y: T) -> T {
///         let denominator = T::one() + x.abs();
///         T::one() / (denominator * denominator)
///     }
/// }
///
/// let x: Vector<f64, 2> = Vector::from_array([1.0, -3.0]);
/// assert_eq!(x.map_function(Softsign).to_array(), [0.5, -0.75]);
/// let g = grad(|x: Var<Vector<f64, 2>>| x.map_function(Softsign).sum(), &x);
/// assert_eq!(g.to_array(), [0.25, 0.0625]);
/// ```
///
/// The library's own (softplus, SiLU, leaky ReLU, clamp, GELU) are in
/// [`functions`](crate::ops::functions) and [`nn::layer`](crate::nn::layer).
///
/// On `f32` and `f64` host tensors the map and its pullback run in a loop compiled for
/// the processor's widest vectors (AVX-512 or AVX2), where `f32`'s `exp`, `tanh`, `erf`
/// and `erfc` and `f64`'s `tanh` vectorise. A long function (GELU's two error
/// functions) is vectorised only when the compiler inlines it into that loop: mark
/// `value` and `derivative` `#[inline(always)]`, as the library's own are (without
/// it, a transformer block's gradient took 1.35× as long).
pub trait ScalarFunction: Copy + core::fmt::Debug + 'static {
    /// f(x).
    fn value<T: RealScalar>(&self, x: T) -> T;
    /// f′(x), given also y = f(x).
    fn derivative<T: RealScalar>(&self, x: T, y: T) -> T;
    /// One step of the chain rule, f′(x)·t for a tangent ẋ or a cotangent ȳ `t` (y =
    /// f(x)): what every mode computes, through
    /// [`chain_from_slope`](Self::chain_from_slope).
    #[inline(always)]
    fn chain<T: RealScalar>(&self, x: T, y: T, t: T) -> T {
        self.chain_from_slope(self.derivative(x, y), t)
    }
    /// The chain rule's step from the slope f′(x): slope·t. A function constant
    /// between its jumps (`floor`, `round`; `clamp` outside its bounds) gives 0 where
    /// its slope is 0 whatever `t`, an infinite one too, as PyTorch and JAX do (0·∞
    /// would be NaN).
    #[inline(always)]
    fn chain_from_slope<T: RealScalar>(&self, slope: T, t: T) -> T {
        slope * t
    }
}

impl<T: RealScalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// `f` applied to every element (on duals, with the tangents from `f`'s written
    /// derivative, as the other modes use it).
    #[inline(always)]
    pub fn map_function<F: ScalarFunction>(&self, f: F) -> Self {
        self.map(
            #[inline(always)]
            |x| x.apply_function(f),
        )
    }
}

/// A function of `N` real numbers applied elementwise to `N` tensors of one shape, in
/// one pass: a chain of elementwise steps over several inputs fused into one loop on
/// the host and one generated kernel on the GPU. Only the value is written: the
/// partial derivatives ∂f/∂xₖ come from forward mode, the function run on [`Dual`]s
/// of `N` tangents ([`fused_partials`]), on the host and — recorded on symbolic
/// duals — in the GPU's pullback kernels. Apply it with [`FusedFunction::apply`] to
/// host or GPU tensors, their `Var`s (reverse mode) or `CudaDual`s (forward mode on
/// the GPU); inside `#[differentiable]` code (static mode, host tensors) `apply` is
/// its rule, one pass for the value, one for the tangent and one for the cotangents
/// wanted. As for [`ScalarFunction`], write it without comparisons: a choice by
/// value goes through `RealScalar::max`, `abs` or `RealScalar::select_positive`,
/// which symbolic duals record (`powf` too, with an exponent computed from the
/// inputs). As for [`ScalarFunction`], a long `value` vectorises in the host's wide
/// loops only when inlined there: mark it `#[inline(always)]`. The trait is not in
/// the prelude: `use fluxion::ops::elementwise::FusedFunction`.
///
/// ```
/// use fluxion::prelude::*;
/// use fluxion::ops::elementwise::FusedFunction;
///
/// /// x·σ(g) + r: a gated residual, one pass over three tensors.
/// #[derive(Clone, Copy, Debug)]
/// struct GatedResidual;
///
/// impl FusedFunction<3> for GatedResidual {
///     fn value<T: RealScalar>(&self, [x, g, r]: [T; 3]) -> T {
///         x / (T::one() + (-g).exp()) + r
///     }
/// }
///
/// let x: Vector<f64, 2> = Vector::from_array([1.0, 2.0]);
/// let (g, r) = (Vector::from_array([0.0, 0.0]), Vector::from_array([0.5, 0.5]));
/// assert_eq!(GatedResidual.apply([&x, &g, &r]).to_array(), [1.0, 1.5]);
/// // Reverse mode through it: ∂/∂x Σ (x·σ(g) + r) = σ(g) = ½.
/// let dx = grad(|x: Var<Vector<f64, 2>>| GatedResidual.apply([&x, &Var::constant(g.clone()), &Var::constant(r.clone())]).sum(), &x);
/// assert_eq!(dx.to_array(), [0.5, 0.5]);
///
/// // The same in static mode, g and r constants.
/// #[differentiable(wrt(x))]
/// fn gated_total(x: &Vector<f64, 2>, g: &Vector<f64, 2>, r: &Vector<f64, 2>) -> f64 {
///     GatedResidual.apply([x, g, r]).sum()
/// }
/// assert_eq!(gated_total::grad(&x, &g, &r).to_array(), [0.5, 0.5]);
/// ```
pub trait FusedFunction<const N: usize>: Copy + core::fmt::Debug + 'static {
    /// What a shape error calls the operation (`"fused"` unless set).
    const NAME: &'static str = "fused";

    /// f(x₁, …, x_N).
    fn value<T: RealScalar>(&self, x: [T; N]) -> T;

    /// f applied elementwise to `inputs` (of one shape; a dynamic mismatch panics
    /// naming both shapes).
    #[track_caller]
    fn apply<X: Fusable<N>>(&self, inputs: [&X; N]) -> X {
        X::fused(*self, inputs)
    }

    /// [`apply`](Self::apply), or an error naming both shapes when two inputs'
    /// dynamic dimensions differ.
    fn try_apply<X: Fusable<N>>(&self, inputs: [&X; N]) -> Result<X, ShapeError> {
        for input in inputs.iter().skip(1) {
            inputs[0].check_operand_shape(input, Self::NAME)?;
        }
        Ok(X::fused(*self, inputs))
    }
}

/// What a [`FusedFunction`] of `N` inputs applies to: tensors (host or GPU), their
/// `Var`s and `CudaDual`s, of real elements.
#[diagnostic::on_unimplemented(
    message = "a fused function cannot be applied to `{Self}`",
    label = "fused functions take tensors of f32 or f64, their `Var`s and `CudaDual`s",
    note = "a `FusedFunction` is written over `RealScalar`: complex data goes through `.re()`/`.im()` or the complex operations"
)]
pub trait Fusable<const N: usize>: Sized {
    /// `f` applied elementwise to `inputs`.
    ///
    /// # Panics
    /// When two inputs' dynamic shapes differ (the message names both).
    fn fused<F: FusedFunction<N>>(f: F, inputs: [&Self; N]) -> Self;

    /// An error naming both shapes when `other`'s shape differs from `self`'s.
    fn check_operand_shape(&self, other: &Self, operation: &'static str) -> Result<(), ShapeError>;
}

/// `partial`·`factor`, and an exact 0 where the partial is 0 and the factor infinite
/// or NaN (a choice such as `maximum` passes nothing to the operand it did not pick,
/// as PyTorch's and JAX's do); NaN where the partial is NaN. Chosen without a branch,
/// so that the GPU's kernels record the same rule. With a finite factor it is the
/// product itself, so that on duals (a Hessian through a pullback) a partial whose
/// value is 0 keeps its derivative.
#[inline(always)]
pub(crate) fn times_partial<T: RealScalar>(partial: T, factor: T) -> T {
    // 1 for a finite factor (0·f is 0), else 0 (0·f is NaN).
    let finite = T::select_positive(factor * T::zero() + T::one(), T::one(), T::zero());
    T::select_positive(partial.abs() + finite, partial * factor, partial * T::zero())
}

/// The partial derivatives ∂f/∂xₖ at x, by one forward-mode pass of `f` on duals of
/// `N` tangents.
pub fn fused_partials<T: RealScalar, F: FusedFunction<N>, const N: usize>(f: F, x: [T; N]) -> [T; N] {
    let seeded = core::array::from_fn(|k| {
        Dual::new(x[k], core::array::from_fn(|j| if j == k { T::one() } else { T::zero() }))
    });
    f.value(seeded).tangent()
}

/// Panics naming both shapes unless every tensor has the first one's shape.
#[track_caller]
pub(crate) fn check_fused_shapes<T, S: Shape, K: StorageKind<T, S>>(
    name: &'static str,
    inputs: &[&Tensor<T, S, K>],
) {
    for input in inputs.iter().skip(1) {
        or_panic(inputs[0].check_same_shape(input, name));
    }
}

#[diagnostic::do_not_recommend]
impl<T: RealScalar, S: Shape, K: Storage<T, S>, const N: usize> Fusable<N> for Tensor<T, S, K> {
    #[track_caller]
    fn fused<F: FusedFunction<N>>(f: F, inputs: [&Self; N]) -> Self {
        let () = const { assert!(N > 0, "a fused function takes at least one input") };
        check_fused_shapes(F::NAME, &inputs);
        let slices = inputs.map(Tensor::as_slice);
        Tensor::from_flat_fn(inputs[0].shape(), |i| f.value(slices.map(|x| x[i])))
    }
    fn check_operand_shape(&self, other: &Self, operation: &'static str) -> Result<(), ShapeError> {
        self.check_same_shape(other, operation)
    }
}

/// x̄ₖ = ∂f/∂xₖ·ȳ for y = f(x₁, …, x_N) elementwise: the cotangent of every input.
///
/// # Panics
/// When the shapes of the inputs and ȳ differ.
#[track_caller]
pub fn fused_pullback<T: RealScalar, S: Shape, K: Storage<T, S>, F: FusedFunction<N>, const N: usize>(
    f: F,
    inputs: [&Tensor<T, S, K>; N],
    y_bar: &Tensor<T, S, K>,
) -> [Tensor<T, S, K>; N] {
    fused_pullback_of(f, inputs, y_bar, [true; N]).map(|cotangent| cotangent.expect("every input wanted"))
}

/// [`fused_pullback`] for the inputs marked `wanted` only (`None` for the others), in
/// one pass over the elements: a constant input (a loss's targets) costs no tensor.
#[track_caller]
pub(crate) fn fused_pullback_of<
    T: RealScalar,
    S: Shape,
    K: Storage<T, S>,
    F: FusedFunction<N>,
    const N: usize,
>(
    f: F,
    inputs: [&Tensor<T, S, K>; N],
    y_bar: &Tensor<T, S, K>,
    wanted: [bool; N],
) -> [Option<Tensor<T, S, K>>; N] {
    let () = const { assert!(N > 0, "a fused function takes at least one input") };
    check_fused_shapes(F::NAME, &inputs);
    for input in &inputs {
        or_panic(input.check_same_shape(y_bar, "fused_pullback"));
    }
    let mut cotangents: [Option<Tensor<T, S, K>>; N] =
        core::array::from_fn(|k| wanted[k].then(|| Tensor::zeros_shaped(y_bar.shape())));
    if !wanted.contains(&true) {
        return cotangents;
    }
    let slices = inputs.map(Tensor::as_slice);
    let mut outputs = cotangents.each_mut().map(|cotangent| cotangent.as_mut().map(Tensor::as_mut_slice));
    let y_bar = y_bar.as_slice();
    wide::<T, _>(
        #[inline(always)]
        || {
            partials_by_chunk(
                f,
                slices,
                #[inline(always)]
                |start, partials| {
                    for (output, partials) in outputs.iter_mut().zip(partials) {
                        if let Some(output) = output {
                            let slots = output[start..].iter_mut().zip(partials).zip(&y_bar[start..]);
                            slots.for_each(|((slot, &partial), &g)| *slot = times_partial(partial, g));
                        }
                    }
                },
            );
        },
    );
    cotangents
}

/// ẏ = Σₖ ∂f/∂xₖ·ẋₖ for y = f(x₁, …, x_N) elementwise, over the inputs with a
/// tangent (`None`: a constant, which adds nothing even where its partial is infinite
/// or NaN, as in the pullback), each term as the pullback's (0 where the partial is 0
/// and the tangent infinite or NaN): a fused function's tangent in static mode.
///
/// # Panics
/// When the shapes of the inputs and the tangents differ.
#[track_caller]
pub fn fused_tangent<T: RealScalar, S: Shape, K: Storage<T, S>, F: FusedFunction<N>, const N: usize>(
    f: F,
    inputs: [&Tensor<T, S, K>; N],
    tangents: [Option<&Tensor<T, S, K>>; N],
) -> Tensor<T, S, K> {
    let () = const { assert!(N > 0, "a fused function takes at least one input") };
    check_fused_shapes(F::NAME, &inputs);
    for tangent in tangents.iter().flatten() {
        or_panic(inputs[0].check_same_shape(tangent, "fused_tangent"));
    }
    let mut y_dot = Tensor::zeros_shaped(inputs[0].shape());
    let (slices, tangents) =
        (inputs.map(Tensor::as_slice), tangents.map(|tangent| tangent.map(Tensor::as_slice)));
    wide_with::<T, _, _>(
        y_dot.as_mut_slice(),
        #[inline(always)]
        |y_dot: &mut [T]| {
            partials_by_chunk(
                f,
                slices,
                #[inline(always)]
                |start, partials| {
                    let mut first = true;
                    for (tangent, partials) in tangents.iter().zip(partials) {
                        let Some(tangent) = tangent else { continue };
                        let terms = y_dot[start..].iter_mut().zip(partials).zip(&tangent[start..]);
                        for ((slot, &partial), &x_dot) in terms {
                            let term = times_partial(partial, x_dot);
                            *slot = if first { term } else { *slot + term };
                        }
                        first = false;
                    }
                },
            );
        },
    );
    y_dot
}

/// The partials ∂f/∂xₖ over the elements of `inputs` (of one length), a chunk at a
/// time into arrays on the stack, one per input (a loop that reads the inputs
/// alone, so that it vectorises): `each(start, partials)` with `partials[k][j]` =
/// ∂f/∂xₖ at element `start + j`, each slice as long as the chunk.
#[inline(always)]
fn partials_by_chunk<T: RealScalar, F: FusedFunction<N>, const N: usize>(
    f: F,
    inputs: [&[T]; N],
    mut each: impl FnMut(usize, [&[T]; N]),
) {
    const CHUNK: usize = 64;
    let mut partials = [[T::zero(); CHUNK]; N];
    let len = inputs[0].len();
    for start in (0..len).step_by(CHUNK) {
        let count = CHUNK.min(len - start);
        let chunk = inputs.map(|x| &x[start..][..count]);
        for j in 0..count {
            let at = fused_partials(f, chunk.map(|x| x[j]));
            for (partials, at) in partials.iter_mut().zip(at) {
                partials[j] = at;
            }
        }
        each(start, partials.each_ref().map(|partials| &partials[..count]));
    }
}

/// x̄ = f′(x)·ȳ for y = f(x) elementwise, for a [`ScalarFunction`] `f` (its
/// [`chain`](ScalarFunction::chain) step).
///
/// # Panics
/// When the shapes of `x`, `y` and `ȳ` differ.
#[track_caller]
pub fn function_pullback<T: RealScalar, S: Shape, K: Storage<T, S>, F: ScalarFunction>(
    f: F,
    (x, y, y_bar): (&Tensor<T, S, K>, &Tensor<T, S, K>, &Tensor<T, S, K>),
) -> Tensor<T, S, K> {
    or_panic(x.check_same_shape(y, "function_pullback"));
    or_panic(x.check_same_shape(y_bar, "function_pullback"));
    let mut x_bar = y_bar.clone();
    wide_with::<T, _, _>(
        x_bar.as_mut_slice(),
        #[inline(always)]
        |x_bar| {
            for ((x_bar, &x), &y) in x_bar.iter_mut().zip(x.as_slice()).zip(y.as_slice()) {
                *x_bar = f.chain(x, y, *x_bar);
            }
        },
    );
    x_bar
}

/// An `impl` block (its header is the macro's input, attributes included) of the
/// methods `exp`, `ln`, `sin`, `cos`, `tanh`, `sqrt`, `sigmoid`, `powi` and `powf`, each
/// a call of the type's own `elementary(f)` (elementwise on tensors): one list for
/// the tensors of every storage kind, their traced `Var`s (scalar ones too) and
/// their forward-mode duals.
macro_rules! elementary_methods {
    ($($impl_header:tt)*) => {
        $($impl_header)* {
            /// eˣ (elementwise on tensors).
            #[inline(always)]
            pub fn exp(&self) -> Self {
                self.elementary(Elementary::Exp)
            }
            /// Natural logarithm (elementwise on tensors).
            #[inline(always)]
            pub fn ln(&self) -> Self {
                self.elementary(Elementary::Ln)
            }
            /// Sine (elementwise on tensors).
            #[inline(always)]
            pub fn sin(&self) -> Self {
                self.elementary(Elementary::Sin)
            }
            /// Cosine (elementwise on tensors).
            #[inline(always)]
            pub fn cos(&self) -> Self {
                self.elementary(Elementary::Cos)
            }
            /// Hyperbolic tangent (elementwise on tensors).
            #[inline(always)]
            pub fn tanh(&self) -> Self {
                self.elementary(Elementary::Tanh)
            }
            /// Square root (elementwise on tensors).
            #[inline(always)]
            pub fn sqrt(&self) -> Self {
                self.elementary(Elementary::Sqrt)
            }
            /// Logistic sigmoid 1/(1 + e⁻ˣ) (elementwise on tensors).
            #[inline(always)]
            pub fn sigmoid(&self) -> Self {
                self.elementary(Elementary::Sigmoid)
            }
            /// xⁿ (elementwise on tensors).
            #[inline(always)]
            pub fn powi(&self, n: i32) -> Self {
                self.elementary(Elementary::Powi(n))
            }
            /// xᵖ for a real p (elementwise on tensors).
            #[inline(always)]
            pub fn powf(&self, p: T::Real) -> Self {
                self.elementary(Elementary::Powf(p))
            }
        }
    };
}

// Used by the traced `Var`s and the GPU tensors too.
#[cfg_attr(not(feature = "cuda"), allow(unused_imports))]
pub(crate) use elementary_methods;

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// f(x) elementwise for an elementary function `f`.
    #[inline(always)]
    pub fn elementary(&self, f: Elementary<T::Real>) -> Self {
        // A function of its own type per arm: each loop is compiled for one formula
        // (vectorised where the formula allows), with no choice left inside it.
        match f {
            Elementary::Exp => self.map(T::exp),
            Elementary::Ln => self.map(T::ln),
            Elementary::Sin => self.map(T::sin),
            Elementary::Cos => self.map(T::cos),
            Elementary::Tanh => self.map(T::tanh),
            Elementary::Sqrt => self.map(T::sqrt),
            Elementary::Sigmoid => self.map(T::sigmoid),
            Elementary::Powi(n) => self.map(|x| x.powi(n)),
            Elementary::Powf(p) => self.map(|x| x.powf(p)),
        }
    }

    /// Complex conjugate elementwise (the identity on real tensors).
    pub fn conj(&self) -> Self {
        self.map(Scalar::conj)
    }
}

elementary_methods!(impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K>);

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

impl<T: RealScalar, S: Shape, K: Storage<T, S> + Storage<T::Complex, S>> Tensor<T, S, K> {
    /// x + 0i elementwise: real numbers as complex ones (`Complex64` for `f64`;
    /// `x.astype(complex)` in NumPy, `torch.complex(x, zeros)`), the way real
    /// parameters enter a complex computation. Its cotangent is Re ȳ.
    ///
    /// ```
    /// use fluxion::prelude::*;
    ///
    /// let x: Vector<f64, 2> = Vector::from_array([1.5, -2.0]);
    /// let z: Vector<Complex64, 2> = x.to_complex();
    /// assert_eq!(z.to_array(), [Complex64::new(1.5, 0.0), Complex64::new(-2.0, 0.0)]);
    /// ```
    pub fn to_complex(&self) -> Tensor<T::Complex, S, K> {
        self.map(T::Complex::from_real)
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// max(x, 0) elementwise.
    pub fn relu(&self) -> Self
    where
        T: RealScalar,
    {
        if T::CARRIES_TANGENT {
            // A dual: the tangent passes only where x > 0, as in the pullback (x = 0
            // gives the constant 0); a NaN passes through as a value without tangent.
            self.map(|x| {
                if x > T::zero() {
                    x
                } else if x <= T::zero() {
                    T::zero()
                } else {
                    x.without_tangent()
                }
            })
        } else {
            // `x < 0` is false for NaN, which passes through; a select the compiler
            // vectorises (the dual's form above runs about 1.6× slower on floats).
            self.map(|x| if x < T::zero() { T::zero() } else { x })
        }
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> Tensor<T, S, K> {
    /// Elementwise sum; an error names both shapes when a dynamic dimension differs.
    pub fn try_add(&self, other: &Self) -> Result<Self, ShapeError> {
        self.try_zip_map_named(other, "add", |a, b| a + b)
    }

    /// Elementwise difference; an error names both shapes when a dynamic dimension
    /// differs.
    pub fn try_sub(&self, other: &Self) -> Result<Self, ShapeError> {
        self.try_zip_map_named(other, "sub", |a, b| a - b)
    }

    /// Multiplies every element by `factor`, into a new tensor (for tangents scaled in
    /// place, see `VectorSpace::scale_mut`).
    #[inline(always)]
    #[must_use = "`scale` returns the scaled tensor and leaves `self` as it is"]
    pub fn scale(&self, factor: T) -> Self {
        self.map(|x| x * factor)
    }
}

/// The elementwise arithmetic of a storage kind, behind the operators `+`, `−`, unary
/// `−`, and `*` and `/` by a scalar: each operator has one impl for every kind, which
/// calls the kind's own loops (host kinds) or kernels (the GPU). So a tensor whose
/// kind is still being inferred (`Vector::from_array(…) * 2.0`, its kind fixed by a
/// later use) finds exactly one impl, with the `cuda` feature as without it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no arithmetic for tensors of `{T}` of shape `{S}`",
    note = "the host kinds (`Inline`, `Heap`) take every `Scalar`; `Cuda` takes `f32`, `f64`, `Complex32` and `Complex64`"
)]
pub trait KindArithmetic<T, S: Shape>: StorageKind<T, S> {
    /// a + b, or an error naming both shapes when a dynamic dimension differs.
    fn try_add(a: &Tensor<T, S, Self>, b: &Tensor<T, S, Self>) -> Result<Tensor<T, S, Self>, ShapeError>;
    /// a − b, or an error naming both shapes when a dynamic dimension differs.
    fn try_sub(a: &Tensor<T, S, Self>, b: &Tensor<T, S, Self>) -> Result<Tensor<T, S, Self>, ShapeError>;
    /// −a.
    fn negate(a: &Tensor<T, S, Self>) -> Tensor<T, S, Self>;
    /// a·c for a scalar c.
    fn scale(a: &Tensor<T, S, Self>, factor: T) -> Tensor<T, S, Self>;
    /// a/c for a scalar c (the host divides each element; the GPU multiplies by 1/c,
    /// which may differ in the last bit).
    fn divide(a: &Tensor<T, S, Self>, divisor: T) -> Tensor<T, S, Self>;
}

/// The host kinds: loops over the elements.
#[diagnostic::do_not_recommend]
impl<T: Scalar, S: Shape, K: Storage<T, S>> KindArithmetic<T, S> for K {
    #[inline(always)]
    fn try_add(a: &Tensor<T, S, K>, b: &Tensor<T, S, K>) -> Result<Tensor<T, S, K>, ShapeError> {
        a.try_add(b)
    }
    #[inline(always)]
    fn try_sub(a: &Tensor<T, S, K>, b: &Tensor<T, S, K>) -> Result<Tensor<T, S, K>, ShapeError> {
        a.try_sub(b)
    }
    #[inline(always)]
    fn negate(a: &Tensor<T, S, K>) -> Tensor<T, S, K> {
        a.map(|x| -x)
    }
    #[inline(always)]
    fn scale(a: &Tensor<T, S, K>, factor: T) -> Tensor<T, S, K> {
        a.map(|x| x * factor)
    }
    #[inline(always)]
    fn divide(a: &Tensor<T, S, K>, divisor: T) -> Tensor<T, S, K> {
        a.map(|x| x / divisor)
    }
}

/// Two shapes that `+` and `−` accept together: one shape. Written as a bound so
/// that operands of two shapes are an error naming both, not a list of impls.
#[diagnostic::on_unimplemented(
    message = "the shapes `{Self}` and `{Rhs}` differ",
    label = "`+` and `-` need operands of one shape",
    note = "transpose, reshape or broadcast one operand first; a vector added to each row of a batch is `.add_rows(&v)`"
)]
pub trait SameShape<Rhs: Shape>: Shape {
    /// `rhs` as a tensor of shape `Self` (the shapes are one type).
    fn same_shape<T, K: StorageKind<T, Rhs> + StorageKind<T, Self>>(
        rhs: &Tensor<T, Rhs, K>,
    ) -> &Tensor<T, Self, K>;
}

#[diagnostic::do_not_recommend]
impl<S: Shape> SameShape<S> for S {
    #[inline(always)]
    fn same_shape<T, K: StorageKind<T, S>>(rhs: &Tensor<T, S, K>) -> &Tensor<T, S, K> {
        rhs
    }
}

/// `a op b` for `a` and `b` each a tensor or a reference to one (`[&]` or `[]`),
/// of one shape and one storage kind (the bounds name both when they differ).
macro_rules! binary_operator_for {
    ($Trait:ident, $method:ident, $try_method:ident, [$($lhs:tt)?], [$($rhs:tt)?]) => {
        impl<T, S, S2, K, K2> $Trait<$($rhs)? Tensor<T, S2, K2>> for $($lhs)? Tensor<T, S, K>
        where
            T: Scalar,
            S: SameShape<S2>,
            S2: Shape,
            K: KindArithmetic<T, S> + StorageKind<T, S2> + SameKind<K2>,
            K2: StorageKind<T, S2>,
        {
            type Output = Tensor<T, S, K>;
            #[track_caller]
            #[inline(always)]
            fn $method(self, rhs: $($rhs)? Tensor<T, S2, K2>) -> Tensor<T, S, K> {
                or_panic(K::$try_method(&self, S::same_shape(K::same_kind(&rhs))))
            }
        }
    };
}

macro_rules! binary_operator {
    ($Trait:ident, $method:ident, $try_method:ident, $Assign:ident, $assign:ident, $op:tt) => {
        binary_operator_for!($Trait, $method, $try_method, [&], [&]);
        binary_operator_for!($Trait, $method, $try_method, [], []);
        binary_operator_for!($Trait, $method, $try_method, [], [&]);
        binary_operator_for!($Trait, $method, $try_method, [&], []);

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

impl<T: Scalar, S: Shape, K: Storage<T, S>> AddAssign for Tensor<T, S, K> {
    #[track_caller]
    fn add_assign(&mut self, rhs: Tensor<T, S, K>) {
        *self += &rhs;
    }
}

impl<T: Scalar, S: Shape, K: Storage<T, S>> SubAssign for Tensor<T, S, K> {
    #[track_caller]
    fn sub_assign(&mut self, rhs: Tensor<T, S, K>) {
        *self -= &rhs;
    }
}
binary_operator!(Sub, sub, try_sub, SubAssign, sub_assign, -);

impl<T: Scalar, S: Shape, K: KindArithmetic<T, S>> Neg for Tensor<T, S, K> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        K::negate(&self)
    }
}

impl<T: Scalar, S: Shape, K: KindArithmetic<T, S>> Neg for &Tensor<T, S, K> {
    type Output = Tensor<T, S, K>;
    #[inline(always)]
    fn neg(self) -> Tensor<T, S, K> {
        K::negate(self)
    }
}

macro_rules! scalar_operator {
    ($Trait:ident, $method:ident, $AssignTrait:ident, $assign:ident, $op:tt, $kind_method:ident) => {
        /// In place, element by element.
        impl<T: Scalar, S: Shape, K: Storage<T, S>, R: ScalarFactor<T>> $AssignTrait<R> for Tensor<T, S, K> {
            #[inline(always)]
            fn $assign(&mut self, rhs: R) {
                let factor = rhs.into_element();
                self.iter_mut().for_each(|x| *x = *x $op factor);
            }
        }

        impl<T: Scalar, S: Shape, K: KindArithmetic<T, S>, R: ScalarFactor<T>> $Trait<R> for Tensor<T, S, K> {
            type Output = Tensor<T, S, K>;
            #[inline(always)]
            fn $method(self, rhs: R) -> Tensor<T, S, K> {
                K::$kind_method(&self, rhs.into_element())
            }
        }

        impl<T: Scalar, S: Shape, K: KindArithmetic<T, S>, R: ScalarFactor<T>> $Trait<R> for &Tensor<T, S, K> {
            type Output = Tensor<T, S, K>;
            #[inline(always)]
            fn $method(self, rhs: R) -> Tensor<T, S, K> {
                K::$kind_method(self, rhs.into_element())
            }
        }
    };
}

scalar_operator!(Mul, mul, MulAssign, mul_assign, *, scale);
scalar_operator!(Div, div, DivAssign, div_assign, /, divide);

/// `c * tensor` for the built-in scalar types, and a real `c` beside a complex tensor
/// (a generic impl on the left operand is not allowed for foreign types).
macro_rules! scalar_times_tensor {
    ($($factor:ty => $t:ty),*) => {$(
        impl<S: Shape, K: KindArithmetic<$t, S>> Mul<Tensor<$t, S, K>> for $factor {
            type Output = Tensor<$t, S, K>;
            #[inline(always)]
            fn mul(self, rhs: Tensor<$t, S, K>) -> Tensor<$t, S, K> {
                K::scale(&rhs, ScalarFactor::into_element(self))
            }
        }

        impl<S: Shape, K: KindArithmetic<$t, S>> Mul<&Tensor<$t, S, K>> for $factor {
            type Output = Tensor<$t, S, K>;
            #[inline(always)]
            fn mul(self, rhs: &Tensor<$t, S, K>) -> Tensor<$t, S, K> {
                K::scale(rhs, ScalarFactor::into_element(self))
            }
        }
    )*};
}

scalar_times_tensor!(
    f32 => f32, f64 => f64, Complex32 => Complex32, Complex64 => Complex64, f32 => Complex32, f64 => Complex64
);

// Reverse-mode rules. With the complex convention of the crate (the cotangent of
// z = x + iy is ∂L/∂x + i·∂L/∂y), a holomorphic f has x̄ = conj(f′(x))·ȳ.

/// x̄ = conj(f′(x))·ȳ for y = f(x) elementwise, written into `x_bar` or added to it
/// as `write` says.
///
/// # Panics
/// When the shapes of `x`, `ȳ` and `x̄` differ.
#[track_caller]
pub fn elementary_pullback<T: Scalar, S: Shape, K: Storage<T, S>>(
    f: Elementary<T::Real>,
    (x, y, y_bar): (&Tensor<T, S, K>, &Tensor<T, S, K>, &Tensor<T, S, K>),
    x_bar: &mut Tensor<T, S, K>,
    write: Write,
) {
    for other in [y, y_bar, &*x_bar] {
        or_panic(x.check_same_shape(other, "elementary_pullback"));
    }
    f.specialize(
        #[inline(always)]
        |f| {
            let cotangents = x.iter().zip(y.iter()).zip(y_bar.iter());
            let cotangents = cotangents.map(|((&x, &y), &y_bar)| f.derivative(x, y).conj() * y_bar);
            write_elements(write, x_bar.as_mut_slice(), cotangents);
        },
    )
}

/// x̄ = ȳ where x > 0, else 0 (the subgradient 0 at x = 0).
pub fn relu_pullback<T: RealScalar, S: Shape, K: Storage<T, S>>(
    x: &Tensor<T, S, K>,
    y_bar: &Tensor<T, S, K>,
) -> Tensor<T, S, K> {
    x.zip_map(y_bar, |x, y_bar| if x > T::zero() { y_bar } else { T::zero() })
}

/// x̄ = conj(ȳ) for y = conj(x).
pub fn conj_pullback<T: Scalar, S: Shape, K: Storage<T, S>>(y_bar: &Tensor<T, S, K>) -> Tensor<T, S, K> {
    y_bar.conj()
}

/// x̄ = ȳ·x/|x| for the real y = |x| (0 where x = 0).
pub fn abs_pullback<T: Scalar, S: Shape, K: Storage<T, S> + Storage<T::Real, S>>(
    x: &Tensor<T, S, K>,
    y_bar: &Tensor<T::Real, S, K>,
) -> Tensor<T, S, K> {
    x.zip_map(y_bar, abs_cotangent)
}

/// x̄ = u·ȳ for y = |x| of one element, u = [`unit`]`(x)`: the tape's and static
/// mode's pullback of |x|.
#[inline(always)]
pub(crate) fn abs_cotangent<T: Scalar>(x: T, y_bar: T::Real) -> T {
    unit(x) * T::from_real(y_bar)
}

/// ẏ = Re(conj(u)·ẋ) for y = |x| of one element, u = [`unit`]`(x)`: static mode's
/// tangent of |x| (u formed first, so an extreme |x| or ẋ does not over- or
/// underflow).
#[inline(always)]
pub(crate) fn abs_tangent<T: Scalar>(x: T, x_dot: T) -> T::Real {
    (unit(x).conj() * x_dot).re()
}

/// x/|x|, 0 at x = 0 (sign(x) for reals): the parts divided by |x| one by one, so a
/// subnormal x gives a unit number, not x·(1/|x|) = x·∞. An infinite x points along
/// its infinite parts (±1 for reals, (1 + i)/√2 for ∞ + i∞), not ∞/∞. (Forward
/// mode's duals and the GPU's complex kernels, which do not branch, give NaN there.)
#[inline(always)]
pub(crate) fn unit<T: Scalar>(x: T) -> T {
    let modulus = x.abs();
    if modulus == T::Real::zero() {
        return T::zero();
    }
    let (re, im) = (x.re(), x.im());
    if modulus == -T::Real::neg_infinity() {
        let along = |part: T::Real| {
            if part == modulus {
                <T::Real as num_traits::One>::one()
            } else if part == -modulus {
                -<T::Real as num_traits::One>::one()
            } else {
                T::Real::zero()
            }
        };
        let (re, im) = (along(re), along(im));
        let norm = re.hypot(im);
        return T::from_parts(re / norm, im / norm);
    }
    T::from_parts(re / modulus, im / modulus)
}

/// x̄ = ȳ (a real cotangent embedded) for y = Re x.
pub fn re_pullback<T: Scalar, S: Shape, K: Storage<T, S> + Storage<T::Real, S>>(
    y_bar: &Tensor<T::Real, S, K>,
) -> Tensor<T, S, K> {
    y_bar.map(T::from_real)
}

/// x̄ = i·ȳ for y = Im x (zero on real tensors, whose imaginary part is constant).
pub fn im_pullback<T: Scalar, S: Shape, K: Storage<T, S> + Storage<T::Real, S>>(
    y_bar: &Tensor<T::Real, S, K>,
) -> Tensor<T, S, K> {
    y_bar.map(|y_bar| T::from_parts(T::Real::zero(), y_bar))
}

/// x̄ = 2ȳ·x for y = |x|².
pub fn norm_sqr_pullback<T: Scalar, S: Shape, K: Storage<T, S> + Storage<T::Real, S>>(
    x: &Tensor<T, S, K>,
    y_bar: &Tensor<T::Real, S, K>,
) -> Tensor<T, S, K> {
    x.zip_map(y_bar, |x, y_bar| x * T::from_real(y_bar + y_bar))
}
