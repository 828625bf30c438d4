//! Layers with typed shapes, composed into models whose sizes the compiler checks.
//!
//! A layer is a struct deriving [`Differentiable`]:
//! its parameters, whose gradient is its `Tangent`. [`Module`] is the forward pass,
//! implemented for the plain layer on plain tensors (inference), for its traced twin
//! on traced tensors (training on the tape) and for its lifted twin on tensors of
//! dual numbers (forward mode: `jvp`, `jacfwd`), each from the layer's one forward
//! expression; each layer's `apply_batch` (`apply` for one example of `Linear`, and
//! for `Embedding`) takes it into static mode (`#[differentiable]`), and
//! [`StaticModule`] chains them: `model.apply_batch(x)` on a tuple or a
//! [`Sequential`] there. Inputs are batches `(B, Const<F>)` (examples in rows), with
//! `B` static or [`Dyn`]:
//!
//! | layer | y for a row x |
//! | --- | --- |
//! | [`Linear<T, I, O, K>`] | W·x + b, with W of shape `[O, I]` (PyTorch's layout) |
//! | [`Relu`], [`Tanh`], [`Sigmoid`] | max(x, 0), tanh x, 1/(1 + e⁻ˣ) elementwise |
//! | [`Gelu`] | x·Φ(x) = ½x(1 + erf(x/√2)) elementwise: PyTorch's `GELU()` |
//! | [`GeluTanh`] | ½x(1 + tanh(√(2/π)(x + 0.044715x³))) elementwise: PyTorch's `GELU(approximate="tanh")` (within about 10⁻³ of [`Gelu`]) |
//! | [`Softplus`], [`Silu`] | ln(1 + eˣ) (stable), x·σ(x) elementwise |
//! | [`Softmax`] | e^{xⱼ}/Σₖ e^{xₖ} along the row |
//! | [`LayerNorm<T, D, K>`] | γ ⊙ (x − μ)/√(σ² + ε) + β, with the row's mean μ and variance σ² |
//! | [`GroupNorm<T, C, G, K>`] | γ_c(x − μ_g)/√(σ_g² + ε) + β_c, with the mean and variance of each image's group g of C/G channels (all positions) |
//! | [`BatchNorm<T, C, K>`] | γ_c(x − μ_c)/√(σ_c² + ε) + β_c per channel c, with the batch's mean and variance per channel in training (running estimates kept), the running estimates in evaluation; rows `(B, C)` or images `(B, C, H, W)` |
//! | [`Dropout`] | x ⊙ m/(1 − p), m a fresh seeded Bernoulli(1 − p) mask per call, in training only |
//! | [`Embedding<T, V, D, K>`] | row i of a table `[V, D]` for each index i (input: `[usize]`) |
//! | [`Conv2d<T, C, O, KH, KW, HO, WO, K, P, S>`] | cross-correlation of `(B, C, H, W)` images padded by P (0 by default) with `[O, C, KH, KW]` kernels moved S positions per output (1 by default), plus a bias per channel: `(B, O, HO, WO)`, HO = ⌊(H + 2P − KH)/S⌋ + 1 |
//! | [`MaxPool2d<K, HO, WO, P, S>`] | the maximum of each K×K window moved S (K by default) over the images padded by P (0 by default): HO = ⌊(H + 2P − K)/S⌋ + 1, ⌊H/K⌋ by default |
//! | [`AvgPool2d<K, HO, WO, P, S>`] | the mean of each K×K window, moved and padded as for `MaxPool2d` |
//! | [`Flatten<F>`] | each image `(C, H, W)` as one row of F = C·H·W features |
//! | [`GlobalAvgPool2d`] | each channel's mean over its image: `(B, C, H, W)` → `(B, C)` |
//! | [`Checkpointed<L>`] | L's output; traced, L runs as one [`checkpoint`](crate::autodiff::checkpoint), recomputed in the backward sweep |
//! | [`Residual<L>`] | x + L(x), for a layer L that keeps its input's size (a skip connection) |
//!
//! Image layers carry their output size in their type (`Conv2d<f32, 1, 8, 3, 3, 26,
//! 26>` on 28×28 inputs); the compiler checks it against the input size, so a network
//! whose sizes do not fit does not compile. [`output_size`] works a size out where
//! the type is written (`{ output_size(28, 3, 0, 1) }` is 26).
//!
//! A tuple `(a, b, c)` of layers is a layer: a then b then c. [`Sequential`] wraps
//! one: its input is the first layer's, and each next layer must take the previous
//! one's output, or the model does not compile.
//!
//! ```
//! use fluxion::nn::layer::{Linear, Relu, Sequential};
//! use fluxion::prelude::*;
//!
//! type Mlp = Sequential<(Linear<f32, 4, 8>, Relu, Linear<f32, 8, 3>)>;
//! let model: Mlp = Sequential((Linear::new(1), Relu, Linear::new(2)));
//! let batch: Tensor<f32, (Dyn, Const<4>), Heap> = Tensor::full_shaped((Dyn(5), Const), 0.5);
//! // Inference on plain tensors.
//! let logits = model.forward(&batch);
//! assert_eq!(logits.shape(), (Dyn(5), Const::<3>));
//! // Training: the same forward pass on the traced model, inside a gradient (a plain
//! // batch enters the tape as a constant).
//! let (loss, gradient) = value_and_grad(|m: <Mlp as Trace>::Traced| m.forward(&batch).sum(), &model);
//! assert!((loss - logits.sum()).abs() < 1e-4);
//! assert_eq!(gradient.0.weight.shape(), (Const::<8>, Const::<4>));
//! ```
//!
//! A chain whose sizes do not fit is a compile error naming both sizes
//! (`Const<8>: SameFeatureCount<Const<6>>` is not satisfied; through the tape, "this
//! layer takes `Const<6>` features per example, but its input has `Const<8>`"):
//!
//! ```compile_fail
//! use fluxion::nn::layer::{Linear, Relu, Sequential};
//! use fluxion::prelude::*;
//!
//! let model = Sequential((Linear::<f32, 4, 8>::new(1), Relu, Linear::<f32, 6, 3>::new(2)));
//! let batch: Tensor<f32, (Dyn, Const<4>), Heap> = Tensor::full_shaped((Dyn(5), Const), 0.5);
//! model.forward(&batch); // the second Linear takes 6 features, the first gives 8
//! ```

#[cfg(feature = "std")]
use std::{any::Any, string::String, vec::Vec};

#[cfg(feature = "std")]
use crate::autodiff::VectorSpace;
#[cfg(feature = "cuda")]
use crate::autodiff::{
    CudaChannelVarOps, CudaDual, CudaElementaryVarOps, CudaImageVarOps, CudaMatrixVarOps,
    CudaRealMatrixVarOps, CudaRealVarOps, CudaVarOps,
};
use crate::autodiff::{Differentiable, Dual, LeafVisitor, Lift, Unlift, differentiable, rules};
#[cfg(feature = "std")]
use crate::autodiff::{Trace, TracedArithmetic, TracedInput, TracedLeaves, Var};
#[cfg(feature = "cuda")]
use crate::backend::cuda::{Cuda, CudaElement};
use crate::error::ShapeError;
#[cfg(feature = "std")]
use crate::nn::init::{Init, sub_seed};
#[cfg(feature = "std")]
use crate::nn::params::{ParameterLeaf, ParameterLeafMut, Parameters};
use crate::ops::conv::{Padding, Stride};
#[cfg(feature = "cuda")]
use crate::ops::cuda::{
    CudaChannelOps, CudaElementaryOps, CudaImageOps, CudaMatrixOps, CudaRealMatrixOps, CudaRealOps,
    CudaTensorOps,
};
use crate::ops::elementwise::ScalarFunction;
#[cfg(feature = "cuda")]
use crate::ops::functions::MapFunction;
use crate::ops::functions::{SiluFunction, SoftplusFunction};
use crate::ops::pool::Window;
use crate::product::{MatMul, MatMulTransposed};
use crate::scalar::{RealScalar, Scalar};
#[cfg(feature = "alloc")]
use crate::shape::Dyn;
use crate::shape::constraint::{Axis, ConvolvesTo, PoolsTo};
use crate::shape::{Const, Dim, Shape};
#[cfg(feature = "std")]
use crate::tensor::Zeros;
use crate::tensor::{Heap, Storage, StorageKind, Tensor};

pub use super::static_module::{DropoutInStaticMode, StaticForward, StaticModule};
pub use fluxion_derive::module;

/// A forward pass: the output of `self` on the input `X`.
#[diagnostic::on_unimplemented(
    message = "the layer `{Self}` does not take `{X}` as its input",
    label = "this layer's input size (or element or storage type) differs",
    note = "in a sequence `(a, b, …)` each layer must take the previous layer's output: compare the sizes"
)]
pub trait Module<X: ?Sized> {
    /// The output's type.
    type Output;

    /// The output on `x`.
    fn forward(&self, x: &X) -> Self::Output;
}

/// `Debug` and `PartialEq` of a layer from its fields' own impls: the derived forms
/// would ask the storage kind itself for them, where the tensors' impls are what
/// counts (a GPU tensor prints but has no `==`).
macro_rules! debug_and_eq_by_fields {
    ([$($generics:tt)*] $layer:ty, $name:literal where [$($bounds:tt)*] { $($field:ident: $field_type:ty),+ }) => {
        impl<$($generics)*> core::fmt::Debug for $layer
        where
            $($bounds)*
            $($field_type: core::fmt::Debug,)+
        {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct($name)$(.field(stringify!($field), &self.$field))+.finish()
            }
        }

        impl<$($generics)*> PartialEq for $layer
        where
            $($bounds)*
            $($field_type: PartialEq,)+
        {
            fn eq(&self, other: &Self) -> bool {
                true $(&& self.$field == other.$field)+
            }
        }
    };
}

/// A fully connected layer y = W·x + b on each row x of a batch: W of shape
/// `[O, I]`, b of length O (or none, with `B = NoBias`), storage `K` (`Heap` by
/// default; `Inline` for a fixed-size net with no heap; `Cuda` on the GPU, with the
/// `cuda` feature).
#[derive(Differentiable, Clone)]
pub struct Linear<T, const I: usize, const O: usize, K = Heap, B = WithBias>
where
    T: RealScalar,
    K: StorageKind<T, (Const<O>, Const<I>)>,
    B: BiasKind<T, O, K>,
{
    /// W, of shape `[O, I]`.
    pub weight: Tensor<T, (Const<O>, Const<I>), K>,
    /// b, of length O (`()` without a bias).
    pub bias: B::Bias,
}

/// A [`Linear`] layer without a bias, y = W·x (PyTorch's `bias=False`), on the heap
/// unless `K` says otherwise: `LinearNoBias<f32, 64, 32>`.
pub type LinearNoBias<T, const I: usize, const O: usize, K = Heap> = Linear<T, I, O, K, NoBias>;

debug_and_eq_by_fields!(
    [T, const I: usize, const O: usize, K, B] Linear<T, I, O, K, B>, "Linear"
    where [T: RealScalar, K: StorageKind<T, (Const<O>, Const<I>)>, B: BiasKind<T, O, K>,]
    { weight: Tensor<T, (Const<O>, Const<I>), K>, bias: B::Bias }
);

/// Whether a [`Linear`] layer adds a bias: [`WithBias`] or [`NoBias`].
pub trait BiasKind<T: RealScalar, const O: usize, K>: Clone + core::fmt::Debug + PartialEq + 'static {
    /// The bias parameter: a tensor of length O, or `()`.
    type Bias: Differentiable + Clone;
    /// A zero bias.
    fn zeros() -> Self::Bias;
    /// A bias drawn uniformly in ±`bound`, seeded.
    #[cfg(feature = "std")]
    fn uniform(bound: T, seed: u64) -> Self::Bias;
}

/// A [`Linear`] layer with a bias b (the default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WithBias;

/// A [`Linear`] layer without a bias: y = W·x (PyTorch's `bias=False`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoBias;

impl<T: RealScalar, const O: usize, K: Storage<T, (Const<O>,)>> BiasKind<T, O, K> for WithBias {
    type Bias = Tensor<T, (Const<O>,), K>;
    fn zeros() -> Self::Bias {
        Tensor::zeros()
    }
    #[cfg(feature = "std")]
    fn uniform(bound: T, seed: u64) -> Self::Bias {
        Tensor::random_uniform(-bound, bound, seed)
    }
}

impl<T: RealScalar, const O: usize, K: 'static> BiasKind<T, O, K> for NoBias {
    type Bias = ();
    fn zeros() {}
    #[cfg(feature = "std")]
    fn uniform(_: T, _: u64) {}
}

/// A bias added to a batch of rows: `add_rows` for a bias vector, nothing for `()`.
pub trait AddBias<X> {
    /// `x` with the bias added to each row.
    fn add_to(&self, x: X) -> X;
}

impl<X> AddBias<X> for () {
    fn add_to(&self, x: X) -> X {
        x
    }
}

impl<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (C,)>> AddBias<Tensor<T, (R, C), K>>
    for Tensor<T, (C,), K>
{
    #[track_caller]
    fn add_to(&self, x: Tensor<T, (R, C), K>) -> Tensor<T, (R, C), K> {
        x.add_rows(self)
    }
}

#[cfg(feature = "std")]
impl<T: Scalar, R: Dim, C: Dim, K: Storage<T, (R, C)> + Storage<T, (C,)>> AddBias<Var<Tensor<T, (R, C), K>>>
    for Var<Tensor<T, (C,), K>>
{
    #[track_caller]
    fn add_to(&self, x: Var<Tensor<T, (R, C), K>>) -> Var<Tensor<T, (R, C), K>> {
        x.add_rows(self)
    }
}

#[cfg(feature = "std")]
impl<T, const I: usize, const O: usize, K, B> Linear<T, I, O, K, B>
where
    T: RealScalar,
    K: Storage<T, (Const<O>, Const<I>)>,
    B: BiasKind<T, O, K>,
{
    /// PyTorch's initialisation: W and b uniform in ±1/√I, drawn from the stream of
    /// `seed` (the same seed, the same parameters).
    ///
    /// # Panics
    /// When I is 0.
    pub fn new(seed: u64) -> Self {
        assert!(I > 0, "Linear::new: a layer needs at least one input");
        let bound = T::from_f64(1.0 / (I as f64).sqrt());
        Linear {
            weight: Tensor::random_uniform(-bound, bound, sub_seed(seed, 0)),
            bias: B::uniform(bound, sub_seed(seed, 1)),
        }
    }

    /// W drawn by `init` (fan-in I, fan-out O), seeded; b zero.
    pub fn init(init: Init, seed: u64) -> Self {
        Linear { weight: init.tensor(Default::default(), I, O, seed), bias: B::zeros() }
    }
}

/// A bias on the GPU: the same values as on the host (drawn there, then copied).
#[cfg(feature = "cuda")]
impl<T: CudaElement, const O: usize> BiasKind<T, O, Cuda> for WithBias {
    type Bias = Tensor<T, (Const<O>,), Cuda>;
    fn zeros() -> Self::Bias {
        Tensor::device_zeros((Const,))
    }
    fn uniform(bound: T, seed: u64) -> Self::Bias {
        <WithBias as BiasKind<T, O, Heap>>::uniform(bound, seed).to_device()
    }
}

/// A bias kind whose host bias can be copied to the GPU: [`WithBias`] (a tensor) and
/// [`NoBias`] (nothing).
#[cfg(feature = "cuda")]
pub trait DeviceBias<T: CudaElement, const O: usize>: BiasKind<T, O, Heap> + BiasKind<T, O, Cuda> {
    /// The host bias `bias` on the GPU.
    fn bias_to_device(bias: &<Self as BiasKind<T, O, Heap>>::Bias) -> <Self as BiasKind<T, O, Cuda>>::Bias;
    /// The GPU bias `bias` in host memory.
    fn bias_to_host(bias: &<Self as BiasKind<T, O, Cuda>>::Bias) -> <Self as BiasKind<T, O, Heap>>::Bias;
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const O: usize> DeviceBias<T, O> for WithBias {
    fn bias_to_device(bias: &Tensor<T, (Const<O>,), Heap>) -> Tensor<T, (Const<O>,), Cuda> {
        bias.to_device()
    }
    fn bias_to_host(bias: &Tensor<T, (Const<O>,), Cuda>) -> Tensor<T, (Const<O>,), Heap> {
        bias.to_host()
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const O: usize> DeviceBias<T, O> for NoBias {
    fn bias_to_device(_: &()) {}
    fn bias_to_host(_: &()) {}
}

/// A host layer, or a model of them, and its copy on the GPU: `model.to_device()`
/// holds the same values as `model` (`Linear::new(seed).to_device()` those of the
/// seed). Layers without parameters are their own copy; a tuple of layers and a
/// [`Sequential`] move layer by layer.
#[cfg(feature = "cuda")]
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no copy to make on the GPU",
    label = "not a host layer or model",
    note = "`to_device` copies host (`Heap`) layers and models of them; a `Cuda` one is on the GPU already"
)]
pub trait ToDevice {
    /// The same layer or model with `Cuda` storage.
    type OnDevice;

    /// The copy on the GPU.
    ///
    /// # Panics
    /// When there is no GPU or it cannot hold the parameters (the message names the
    /// CUDA error).
    fn to_device(&self) -> Self::OnDevice;
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const I: usize, const O: usize, B: DeviceBias<T, O>> ToDevice
    for Linear<T, I, O, Heap, B>
{
    type OnDevice = Linear<T, I, O, Cuda, B>;
    fn to_device(&self) -> Self::OnDevice {
        Linear { weight: self.weight.to_device(), bias: B::bias_to_device(&self.bias) }
    }
}

/// A tensor's copy on the GPU, as a field of a model moves (`#[storage_kind(K)]`).
#[cfg(feature = "cuda")]
impl<T: crate::backend::cuda::CudaScalar, S: Shape> ToDevice for Tensor<T, S, Heap> {
    type OnDevice = Tensor<T, S, Cuda>;
    fn to_device(&self) -> Self::OnDevice {
        Tensor::<T, S, Heap>::to_device(self)
    }
}

/// A buffer's copy on the GPU: a buffer of its own (as `BatchNorm`'s estimates move).
#[cfg(feature = "cuda")]
impl<X: Clone + ToDevice> ToDevice for crate::nn::params::Buffer<X> {
    type OnDevice = crate::nn::params::Buffer<X::OnDevice>;
    fn to_device(&self) -> Self::OnDevice {
        crate::nn::params::Buffer::new(self.get().to_device())
    }
}

/// A scalar parameter stays on the host: its copy is itself.
macro_rules! host_scalar_copies {
    ($($scalar:ty),*) => {$(
        #[cfg(feature = "cuda")]
        impl ToDevice for $scalar {
            type OnDevice = $scalar;
            fn to_device(&self) -> $scalar {
                *self
            }
        }

        #[cfg(feature = "cuda")]
        impl ToHost for $scalar {
            type OnHost = $scalar;
            fn to_host(&self) -> $scalar {
                *self
            }
        }
    )*};
}

host_scalar_copies!(f32, f64, crate::Complex32, crate::Complex64);

/// A GPU layer, or a model of them, and its copy in host memory (`Heap`):
/// `model.to_host()` after training on the GPU, for inference or saving on the host
/// (PyTorch's `model.cpu()`). Layers without parameters are their own copy; a tuple
/// of layers and a [`Sequential`] move layer by layer.
#[cfg(feature = "cuda")]
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no copy to make in host memory",
    label = "not a GPU layer or model",
    note = "`to_host` copies `Cuda` layers and models of them; a `Heap` one is in host memory already"
)]
pub trait ToHost {
    /// The same layer or model with `Heap` storage.
    type OnHost;

    /// The copy in host memory.
    ///
    /// # Panics
    /// When the copy from the GPU fails (the message names the CUDA error).
    fn to_host(&self) -> Self::OnHost;
}

/// A buffer's copy in host memory: a buffer of its own.
#[cfg(feature = "cuda")]
impl<X: Clone + ToHost> ToHost for crate::nn::params::Buffer<X> {
    type OnHost = crate::nn::params::Buffer<X::OnHost>;
    fn to_host(&self) -> Self::OnHost {
        crate::nn::params::Buffer::new(self.get().to_host())
    }
}

/// A tensor's copy in host memory, as a field of a model moves (`#[storage_kind(K)]`).
#[cfg(feature = "cuda")]
impl<T: crate::backend::cuda::CudaScalar, S: Shape> ToHost for Tensor<T, S, Cuda> {
    type OnHost = Tensor<T, S, Heap>;
    fn to_host(&self) -> Self::OnHost {
        Tensor::<T, S, Cuda>::to_host::<Heap>(self)
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const I: usize, const O: usize, B: DeviceBias<T, O>> ToHost
    for Linear<T, I, O, Cuda, B>
{
    type OnHost = Linear<T, I, O, Heap, B>;
    fn to_host(&self) -> Self::OnHost {
        Linear { weight: self.weight.to_host(), bias: B::bias_to_host(&self.bias) }
    }
}

/// x + 1·bᵀ on the GPU: one `add_rows` kernel.
#[cfg(feature = "cuda")]
impl<T: CudaElement, R: Dim, C: Dim> AddBias<Tensor<T, (R, C), Cuda>> for Tensor<T, (C,), Cuda> {
    #[track_caller]
    fn add_to(&self, x: Tensor<T, (R, C), Cuda>) -> Tensor<T, (R, C), Cuda> {
        x.add_rows(self)
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, R: Dim, C: Dim> AddBias<Var<Tensor<T, (R, C), Cuda>>> for Var<Tensor<T, (C,), Cuda>> {
    #[track_caller]
    fn add_to(&self, x: Var<Tensor<T, (R, C), Cuda>>) -> Var<Tensor<T, (R, C), Cuda>> {
        x.add_rows(self)
    }
}

impl<T, const I: usize, const O: usize, K> Linear<T, I, O, K, WithBias>
where
    T: RealScalar,
    K: Storage<T, (Const<O>, Const<I>)> + Storage<T, (Const<O>,)> + Storage<T, (Const<I>,)>,
{
    /// W·x + b for one example, written for static mode: inside a `#[differentiable]`
    /// function, `layer.apply(&x)` is differentiated with the rest (on inline storage
    /// also without std or a heap).
    #[differentiable]
    pub fn apply(&self, x: &Tensor<T, (Const<I>,), K>) -> Tensor<T, (Const<O>,), K> {
        self.weight.matmul(x) + &self.bias
    }

    /// x·Wᵀ + 1·bᵀ for a batch (one example per row), written for static mode: the
    /// forward pass of [`Module::forward`] as a `#[differentiable]` method.
    #[differentiable]
    pub fn apply_batch<R: Dim>(&self, x: &Tensor<T, (R, Const<I>), K>) -> Tensor<T, (R, Const<O>), K>
    where
        K: Storage<T, (R, Const<I>)> + Storage<T, (R, Const<O>)>,
    {
        x.matmul_transposed(&self.weight).add_rows(&self.bias)
    }
}

impl<T, const I: usize, const O: usize, K> Linear<T, I, O, K, NoBias>
where
    T: RealScalar,
    K: Storage<T, (Const<O>, Const<I>)> + Storage<T, (Const<I>,)> + Storage<T, (Const<O>,)>,
{
    /// W·x for one example, written for static mode (as the biased layer's `apply`).
    #[differentiable]
    pub fn apply(&self, x: &Tensor<T, (Const<I>,), K>) -> Tensor<T, (Const<O>,), K> {
        self.weight.matmul(x)
    }

    /// x·Wᵀ for a batch (one example per row), written for static mode.
    #[differentiable]
    pub fn apply_batch<R: Dim>(&self, x: &Tensor<T, (R, Const<I>), K>) -> Tensor<T, (R, Const<O>), K>
    where
        K: Storage<T, (R, Const<I>)> + Storage<T, (R, Const<O>)>,
    {
        x.matmul_transposed(&self.weight)
    }
}

/// `Linear` in a static chain, with or without a bias: on a batch (`apply_batch`) and
/// on one example as a vector (`apply`).
macro_rules! linear_static_modules {
    ($($bias:ident),+) => {$(
        crate::static_module!(
            impl[T, const I: usize, const O: usize, K, R: Dim] Linear<T, I, O, K, $bias>:
                apply_batch(Tensor<T, (R, Const<I>), K>) -> Tensor<T, (R, Const<O>), K>;
            where [
                T: RealScalar,
                K: Storage<T, (Const<O>, Const<I>)> + Storage<T, (Const<O>,)> + Storage<T, (Const<I>,)>,
                K: Storage<T, (R, Const<I>)> + Storage<T, (R, Const<O>)>,
            ]
        );

        crate::static_module!(
            impl[T, const I: usize, const O: usize, K] Linear<T, I, O, K, $bias>:
                apply(Tensor<T, (Const<I>,), K>) -> Tensor<T, (Const<O>,), K>;
            where [
                T: RealScalar,
                K: Storage<T, (Const<O>, Const<I>)> + Storage<T, (Const<O>,)> + Storage<T, (Const<I>,)>,
            ]
        );
    )+};
}

linear_static_modules!(WithBias, NoBias);

/// One forward expression for the plain layer and its traced twin: `$x` is the input
/// and `$layer` the layer, of `Tensor`s or of `Var`s, whose operations carry the
/// same names.
macro_rules! linear_forward {
    ($layer:expr, $x:expr) => {
        $layer.bias.add_to($x.matmul_transposed(&$layer.weight))
    };
}

/// The feature count `Self` of an input, which must be the layer's `Expected`:
/// written as a bound so that a mismatch is one error naming both counts.
#[diagnostic::on_unimplemented(
    message = "this layer takes `{Expected}` features per example, but its input has `{Self}`",
    label = "the input's feature count differs from the layer's (the batch's feature count must be the first layer's input size; in a sequence `(a, b, …)`, each layer takes the previous one's output size)"
)]
pub trait SameFeatureCount<Expected> {
    /// A batch with these features, seen with the expected ones (one type).
    fn fit<T, B: Dim, K>(x: &Tensor<T, (B, Self), K>) -> &Tensor<T, (B, Expected), K>
    where
        Self: Dim + Sized,
        Expected: Dim,
        K: StorageKind<T, (B, Self)> + StorageKind<T, (B, Expected)>;

    /// A traced batch with these features, seen with the expected ones.
    #[cfg(feature = "std")]
    fn fit_traced<T, B: Dim, K>(x: &Var<Tensor<T, (B, Self), K>>) -> &Var<Tensor<T, (B, Expected), K>>
    where
        Self: Dim + Sized,
        Expected: Dim,
        K: StorageKind<T, (B, Self)> + StorageKind<T, (B, Expected)>;
}

#[diagnostic::do_not_recommend]
impl<const N: usize> SameFeatureCount<Const<N>> for Const<N> {
    fn fit<T, B: Dim, K>(x: &Tensor<T, (B, Self), K>) -> &Tensor<T, (B, Self), K>
    where
        K: StorageKind<T, (B, Self)>,
    {
        x
    }

    #[cfg(feature = "std")]
    fn fit_traced<T, B: Dim, K>(x: &Var<Tensor<T, (B, Self), K>>) -> &Var<Tensor<T, (B, Self), K>>
    where
        K: StorageKind<T, (B, Self)>,
    {
        x
    }
}

/// The channel count `Self` of an image batch, which must be the layer's `Expected`:
/// written as a bound so that a mismatch is one error naming both counts.
#[diagnostic::on_unimplemented(
    message = "this layer takes `{Expected}` channels per image, but its input has `{Self}`",
    label = "the input's channel count differs from the layer's (in a sequence `(a, b, …)`, each layer takes the previous one's output channels)"
)]
pub trait SameChannelCount<Expected> {
    /// Images with these channels, seen with the expected ones (one type).
    fn fit<T, B: Dim, H: Dim, W: Dim, K>(
        x: &Tensor<T, (B, Self, H, W), K>,
    ) -> &Tensor<T, (B, Expected, H, W), K>
    where
        Self: Dim + Sized,
        Expected: Dim,
        K: StorageKind<T, (B, Self, H, W)> + StorageKind<T, (B, Expected, H, W)>;

    /// Traced images with these channels, seen with the expected ones.
    #[cfg(feature = "std")]
    fn fit_traced<T, B: Dim, H: Dim, W: Dim, K>(
        x: &Var<Tensor<T, (B, Self, H, W), K>>,
    ) -> &Var<Tensor<T, (B, Expected, H, W), K>>
    where
        Self: Dim + Sized,
        Expected: Dim,
        K: StorageKind<T, (B, Self, H, W)> + StorageKind<T, (B, Expected, H, W)>;
}

#[diagnostic::do_not_recommend]
impl<const N: usize> SameChannelCount<Const<N>> for Const<N> {
    fn fit<T, B: Dim, H: Dim, W: Dim, K>(x: &Tensor<T, (B, Self, H, W), K>) -> &Tensor<T, (B, Self, H, W), K>
    where
        K: StorageKind<T, (B, Self, H, W)>,
    {
        x
    }

    #[cfg(feature = "std")]
    fn fit_traced<T, B: Dim, H: Dim, W: Dim, K>(
        x: &Var<Tensor<T, (B, Self, H, W), K>>,
    ) -> &Var<Tensor<T, (B, Self, H, W), K>>
    where
        K: StorageKind<T, (B, Self, H, W)>,
    {
        x
    }
}

/// Image batches, plain or traced, seen with the layer's channel count `Expected`
/// ([`SameChannelCount`]): one forward expression for both.
pub trait FitChannels<Expected> {
    /// The batch with `Expected` channels.
    type Fitted;
    /// The batch with `Expected` channels (the same value).
    fn fit_channels(&self) -> &Self::Fitted;
}

impl<T, B: Dim, Ch, H: Dim, W: Dim, K, Expected: Dim> FitChannels<Expected> for Tensor<T, (B, Ch, H, W), K>
where
    Ch: Dim + SameChannelCount<Expected>,
    K: StorageKind<T, (B, Ch, H, W)> + StorageKind<T, (B, Expected, H, W)>,
{
    type Fitted = Tensor<T, (B, Expected, H, W), K>;
    fn fit_channels(&self) -> &Self::Fitted {
        Ch::fit(self)
    }
}

#[cfg(feature = "std")]
impl<T, B: Dim, Ch, H: Dim, W: Dim, K, Expected: Dim> FitChannels<Expected>
    for Var<Tensor<T, (B, Ch, H, W), K>>
where
    Ch: Dim + SameChannelCount<Expected>,
    K: StorageKind<T, (B, Ch, H, W)> + StorageKind<T, (B, Expected, H, W)>,
{
    type Fitted = Var<Tensor<T, (B, Expected, H, W), K>>;
    fn fit_channels(&self) -> &Self::Fitted {
        Ch::fit_traced(self)
    }
}

/// The plain layer on any storage kind whose tensors have the product x·Wᵀ and a
/// bias addition (host kinds and, with the `cuda` feature, `Cuda`).
impl<T, R: Dim, F: Dim, const I: usize, const O: usize, K, B> Module<Tensor<T, (R, F), K>>
    for Linear<T, I, O, K, B>
where
    T: RealScalar,
    F: SameFeatureCount<Const<I>>,
    B: BiasKind<T, O, K, Bias: AddBias<Tensor<T, (R, Const<O>), K>>>,
    K: StorageKind<T, (Const<O>, Const<I>)>
        + StorageKind<T, (R, F)>
        + StorageKind<T, (R, Const<I>)>
        + StorageKind<T, (R, Const<O>)>,
    Tensor<T, (R, Const<I>), K>:
        MatMulTransposed<Tensor<T, (Const<O>, Const<I>), K>, Output = Tensor<T, (R, Const<O>), K>>,
{
    type Output = Tensor<T, (R, Const<O>), K>;

    #[track_caller]
    fn forward(&self, x: &Tensor<T, (R, F), K>) -> Self::Output {
        linear_forward!(self, F::fit(x))
    }
}

/// The traced layer on any storage kind, as the plain one.
#[cfg(feature = "std")]
impl<T, R: Dim, F: Dim, const I: usize, const O: usize, K, B> Module<Var<Tensor<T, (R, F), K>>>
    for LinearTraced<T, I, O, K, B>
where
    T: RealScalar,
    F: SameFeatureCount<Const<I>>,
    B: BiasKind<T, O, K, Bias: Trace<Traced: AddBias<Var<Tensor<T, (R, Const<O>), K>>>>>,
    K: Zeros<T, (Const<O>, Const<I>)>
        + StorageKind<T, (R, F)>
        + Zeros<T, (R, Const<I>)>
        + StorageKind<T, (R, Const<O>)>,
    Tensor<T, (Const<O>, Const<I>), K>:
        Differentiable<Tangent = Tensor<T, (Const<O>, Const<I>), K>> + VectorSpace,
    Tensor<T, (R, Const<I>), K>: Differentiable<Tangent = Tensor<T, (R, Const<I>), K>> + VectorSpace,
    Tensor<T, (R, Const<I>), K>:
        MatMulTransposed<Tensor<T, (Const<O>, Const<I>), K>, Output = Tensor<T, (R, Const<O>), K>>,
    Tensor<T, (R, Const<O>), K>: Differentiable<Tangent = Tensor<T, (R, Const<O>), K>>,
{
    type Output = Var<Tensor<T, (R, Const<O>), K>>;

    #[track_caller]
    fn forward(&self, x: &Var<Tensor<T, (R, F), K>>) -> Self::Output {
        linear_forward!(self, F::fit_traced(x))
    }
}

/// Forward mode: the lifted layer (every parameter a dual number) on a batch of
/// duals, from the same expression.
impl<T, R: Dim, F: Dim, const I: usize, const O: usize, K, B> Module<Tensor<Dual<T>, (R, F), K>>
    for LinearLifted<T, I, O, K, B>
where
    T: RealScalar,
    F: SameFeatureCount<Const<I>>,
    B: BiasKind<T, O, K, Bias: Lift<Lifted: AddBias<Tensor<Dual<T>, (R, Const<O>), K>>>>,
    K: Storage<T, (Const<O>, Const<I>)>
        + Storage<Dual<T>, (Const<O>, Const<I>)>
        + Storage<Dual<T>, (R, F)>
        + Storage<Dual<T>, (R, Const<I>)>
        + Storage<Dual<T>, (R, Const<O>)>,
{
    type Output = Tensor<Dual<T>, (R, Const<O>), K>;

    #[track_caller]
    fn forward(&self, x: &Tensor<Dual<T>, (R, F), K>) -> Self::Output {
        linear_forward!(self, F::fit(x))
    }
}

/// Forward over reverse (`hvp`, `coordinate_hessian` of a loss of the parameters):
/// the lifted layer traced, on a traced batch of duals, from the same expression.
#[cfg(feature = "std")]
impl<T, R: Dim, F: Dim, const I: usize, const O: usize, K, B> Module<Var<Tensor<Dual<T>, (R, F), K>>>
    for LinearLiftedTraced<T, I, O, K, B>
where
    T: RealScalar,
    F: SameFeatureCount<Const<I>>,
    B: BiasKind<T, O, K, Bias: Lift<Lifted: Trace<Traced: AddBias<Var<Tensor<Dual<T>, (R, Const<O>), K>>>>>>,
    K: Storage<T, (Const<O>, Const<I>)>
        + Storage<Dual<T>, (Const<O>, Const<I>)>
        + Storage<Dual<T>, (R, F)>
        + Storage<Dual<T>, (R, Const<I>)>
        + Storage<Dual<T>, (R, Const<O>)>,
{
    type Output = Var<Tensor<Dual<T>, (R, Const<O>), K>>;

    #[track_caller]
    fn forward(&self, x: &Var<Tensor<Dual<T>, (R, F), K>>) -> Self::Output {
        linear_forward!(self, F::fit_traced(x))
    }
}

/// GELU, x·Φ(x) = ½x(1 + erf(x/√2)) with Φ the standard normal distribution function,
/// as a scalar function with its derivative Φ(x) + x·φ(x) (so it also gets a GPU
/// kernel from the same definition): PyTorch's `GELU()`. Φ(x) is computed as
/// ½erfc(−x/√2), as JAX does, so the far negative tail keeps its relative accuracy
/// (1 + erf cancels there: GELU(−10) ≈ −7.6·10⁻²³, not 0).
#[derive(Clone, Copy, Debug)]
pub struct GeluFunction;

impl GeluFunction {
    /// Φ(x) = ½erfc(−x/√2).
    #[inline(always)]
    fn distribution<T: RealScalar>(x: T) -> T {
        T::from_f64(0.5) * (-x * T::from_f64(core::f64::consts::FRAC_1_SQRT_2)).erfc()
    }
}

impl ScalarFunction for GeluFunction {
    #[inline(always)]
    fn value<T: RealScalar>(&self, x: T) -> T {
        x * Self::distribution(x)
    }

    /// Φ(x) + x·φ(x), with φ(x) = e^(−x²/2)/√(2π).
    #[inline(always)]
    fn derivative<T: RealScalar>(&self, x: T, _: T) -> T {
        let half = T::from_f64(0.5);
        let distribution = Self::distribution(x);
        // 1/√(2π).
        let density = T::from_f64(0.398_942_280_401_432_7) * (-half * x * x).exp();
        distribution + x * density
    }
}

/// GELU, ½x(1 + tanh(√(2/π)(x + 0.044715x³))), as a scalar function with its
/// derivative (so it also gets a GPU kernel from the same definition).
#[derive(Clone, Copy, Debug)]
pub struct GeluTanhFunction;

impl GeluTanhFunction {
    /// √(2/π).
    const SCALE: f64 = 0.797_884_560_802_865_4;
    /// The cubic coefficient.
    const CUBIC: f64 = 0.044_715;
}

impl ScalarFunction for GeluTanhFunction {
    #[inline(always)]
    fn value<T: RealScalar>(&self, x: T) -> T {
        let u = T::from_f64(Self::SCALE) * (x + T::from_f64(Self::CUBIC) * x * x * x);
        T::from_f64(0.5) * x * (T::one() + u.tanh())
    }

    /// ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²).
    #[inline(always)]
    fn derivative<T: RealScalar>(&self, x: T, _: T) -> T {
        let half = T::from_f64(0.5);
        let cubic = T::from_f64(Self::CUBIC);
        let scale = T::from_f64(Self::SCALE);
        let t = (scale * (x + cubic * x * x * x)).tanh();
        half * (T::one() + t)
            + half * x * (T::one() - t * t) * scale * (T::one() + T::from_f64(3.0) * cubic * x * x)
    }
}

/// A parameter-free layer: no tangent (`()`), and it is its own traced twin, so it
/// takes plain and traced tensors alike. `[generics] Type`.
macro_rules! parameter_free {
    ([$($generics:tt)*] $layer:ty) => {
        parameter_free!([$($generics)*] $layer, to the device by Clone::clone);
    };
    // `$copy` makes the layer's copy for the GPU; every other copy is a clone.
    ([$($generics:tt)*] $layer:ty, to the device by $copy:path) => {
        /// No parameters: the layer itself.
        #[cfg(feature = "cuda")]
        impl<$($generics)*> ToDevice for $layer {
            type OnDevice = Self;
            fn to_device(&self) -> Self {
                $copy(self)
            }
        }

        /// No parameters: the layer itself.
        #[cfg(feature = "cuda")]
        impl<$($generics)*> ToHost for $layer {
            type OnHost = Self;
            fn to_host(&self) -> Self {
                $copy(self)
            }
        }

        #[diagnostic::do_not_recommend]
        impl<$($generics)*> Differentiable for $layer {
            type Tangent = ();
            fn try_move_by(&mut self, _: &()) -> Result<(), ShapeError> {
                Ok(())
            }
            fn zero_tangent(&self) {}
            fn zip_leaves_with<const FW: usize, const FR: usize, V: LeafVisitor<FW, FR>>(
                &mut self,
                _: [&mut (); FW],
                _: [&(); FR],
                _: &mut V,
            ) -> Result<(), ShapeError> {
                Ok(())
            }
        }

        #[cfg(feature = "std")]
        impl<$($generics)*> Trace for $layer {
            type Traced = Self;
            fn trace(&self) -> Self {
                self.clone()
            }
            fn as_constant(&self) -> Self {
                self.clone()
            }
            fn gradient_buffers<'g>(&self, _: &'g mut (), _: &mut Vec<&'g mut dyn Any>) {}
            fn untrace(traced: &Self, _: &mut TracedLeaves) -> Self {
                traced.clone()
            }
        }

        // Left out of an unmet bound's list of the types that implement the trait.
        #[cfg(feature = "std")]
        #[diagnostic::do_not_recommend]
        impl<$($generics)*> TracedInput for $layer {
            type Value = Self;
        }

        impl<$($generics)*> Lift for $layer {
            type Lifted = Self;
            fn lift(&self, _: &()) -> Self {
                self.clone()
            }
        }

        impl<$($generics)*> Unlift for $layer {
            type Primal = Self;
            fn unlift(&self) -> (Self, ()) {
                (self.clone(), ())
            }
        }

        #[cfg(feature = "std")]
        impl<$($generics)*> Parameters for $layer {
            fn visit_parameters(&self, _: &mut String, _: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {}
            fn visit_parameters_mut(&mut self, _: &mut String, _: &mut dyn FnMut(&str, ParameterLeafMut<'_>)) {}
        }
    };
}

/// The forward pass of a layer, twice from one expression: `Module<$input>` for the
/// plain layer and `Module<Var<$input>>` for its traced twin (the same type for a
/// parameter-free layer); the operations carry the same names on tensors and `Var`s.
macro_rules! forward_pass {
    (
        $(#[$attribute:meta])*
        impl[$($generics:tt)*] $plain:ty, traced $traced:ty;
        $input:ty => $output:ty;
        where [$($bounds:tt)*]
        |$layer:ident, $x:ident| $body:expr
    ) => {
        $(#[$attribute])*
        impl<$($generics)*> Module<$input> for $plain
        where
            $($bounds)*
        {
            type Output = $output;
            #[track_caller]
            fn forward(&self, $x: &$input) -> $output {
                let $layer = self;
                $body
            }
        }

        #[cfg(feature = "std")]
        $(#[$attribute])*
        impl<$($generics)*> Module<Var<$input>> for $traced
        where
            $($bounds)*
        {
            type Output = Var<$output>;
            #[track_caller]
            fn forward(&self, $x: &Var<$input>) -> Var<$output> {
                let $layer = self;
                $body
            }
        }
    };
}

/// A plain input to a traced layer: taken as a constant of the tape (of duals with
/// zero tangents, for a lifted layer), so that `traced_model.forward(&batch)` needs
/// no `Var::constant` around the batch.
macro_rules! constant_input {
    ([$($generics:tt)*] $traced:ty, $input:ty; where [$($bounds:tt)*]) => {
        constant_input!([$($generics)*] $traced, $input => $input, |x| x.clone(); where [$($bounds)*]);
    };
    ([$($generics:tt)*] $traced:ty, $input:ty => $traced_input:ty, |$x:ident| $constant:expr; where [$($bounds:tt)*]) => {
        #[cfg(feature = "std")]
        impl<$($generics)*> Module<$input> for $traced
        where
            $($bounds)*
            $traced: Module<Var<$traced_input>>,
        {
            type Output = <$traced as Module<Var<$traced_input>>>::Output;
            #[track_caller]
            fn forward(&self, $x: &$input) -> Self::Output {
                <$traced as Module<Var<$traced_input>>>::forward(self, &Var::constant($constant))
            }
        }
    };
}

constant_input!(
    [T: RealScalar, R: Dim, F: Dim, const I: usize, const O: usize, K: StorageKind<T, (R, F)>, B]
    LinearTraced<T, I, O, K, B>, Tensor<T, (R, F), K>;
    where [
        K: StorageKind<T, (Const<O>, Const<I>)>,
        Tensor<T, (Const<O>, Const<I>), K>: Trace,
        B: BiasKind<T, O, K, Bias: Trace>,
    ]
);
constant_input!(
    [T: RealScalar, R: Dim, F: Dim, const D: usize, K: StorageKind<T, (R, F)>]
    LayerNormTraced<T, D, K>, Tensor<T, (R, F), K>;
    where [K: StorageKind<T, (Const<D>,)>, Tensor<T, (Const<D>,), K>: Trace,]
);
constant_input!(
    [T: RealScalar, R: Dim, F: Dim, const I: usize, const O: usize, K: Storage<T, (R, F)> + Storage<Dual<T>, (R, F)>, B]
    LinearLiftedTraced<T, I, O, K, B>, Tensor<T, (R, F), K> => Tensor<Dual<T>, (R, F), K>, |x| x.map(Dual::constant);
    where [
        K: StorageKind<T, (Const<O>, Const<I>)> + Storage<Dual<T>, (Const<O>, Const<I>)>,
        Tensor<T, (Const<O>, Const<I>), K>: Lift<Lifted: Trace>,
        B: BiasKind<T, O, K, Bias: Lift<Lifted: Trace>>,
    ]
);
constant_input!(
    [
        T: RealScalar, B: Dim, Ch: Dim, const C: usize, const H: usize, const W: usize, const O: usize,
        const KH: usize, const KW: usize, const HO: usize, const WO: usize,
        K: Storage<T, (B, Ch, Const<H>, Const<W>)> + Storage<Dual<T>, (B, Ch, Const<H>, Const<W>)>,
        const P: usize, const S: usize
    ]
    Conv2dLiftedTraced<T, C, O, KH, KW, HO, WO, K, P, S>,
    Tensor<T, (B, Ch, Const<H>, Const<W>), K> => Tensor<Dual<T>, (B, Ch, Const<H>, Const<W>), K>,
    |x| x.map(Dual::constant);
    where [
        K: StorageKind<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
            + Storage<Dual<T>, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
            + StorageKind<T, (Const<O>,)>
            + Storage<Dual<T>, (Const<O>,)>,
        Tensor<T, (Const<O>, Const<C>, Const<KH>, Const<KW>), K>: Lift<Lifted: Trace>,
        Tensor<T, (Const<O>,), K>: Lift<Lifted: Trace>,
    ]
);
constant_input!(
    [T: RealScalar, R: Dim, F: Dim, const D: usize, K: Storage<T, (R, F)> + Storage<Dual<T>, (R, F)>]
    LayerNormLiftedTraced<T, D, K>, Tensor<T, (R, F), K> => Tensor<Dual<T>, (R, F), K>, |x| x.map(Dual::constant);
    where [
        K: StorageKind<T, (Const<D>,)> + Storage<Dual<T>, (Const<D>,)>,
        Tensor<T, (Const<D>,), K>: Lift<Lifted: Trace>,
    ]
);
constant_input!(
    [
        T: RealScalar, B: Dim, Ch: Dim, const C: usize, const H: usize, const W: usize, const O: usize,
        const KH: usize, const KW: usize, const HO: usize, const WO: usize,
        K: StorageKind<T, (B, Ch, Const<H>, Const<W>)>, const P: usize, const S: usize
    ]
    Conv2dTraced<T, C, O, KH, KW, HO, WO, K, P, S>, Tensor<T, (B, Ch, Const<H>, Const<W>), K>;
    where [
        K: StorageKind<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)> + StorageKind<T, (Const<O>,)>,
        Tensor<T, (B, Ch, Const<H>, Const<W>), K>: Trace,
        Tensor<T, (Const<O>, Const<C>, Const<KH>, Const<KW>), K>: Trace,
        Tensor<T, (Const<O>,), K>: Trace,
    ]
);

/// An elementwise, parameter-free layer on tensors of any shape.
macro_rules! elementwise_layer {
    ($(#[$doc:meta])* $name:ident, |$x:ident| $forward:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        parameter_free!([] $name);

        impl $name {
            /// The forward pass, written for static mode (`#[differentiable]`; the
            /// layer's tangent is `()`).
            #[differentiable]
            pub fn apply_batch<T: RealScalar, S: Shape, K: Storage<T, S>>(&self, $x: &Tensor<T, S, K>) -> Tensor<T, S, K> {
                $forward
            }
        }

        crate::static_module!(
            impl[T: RealScalar, S: Shape, K: Storage<T, S>] $name: apply_batch(Tensor<T, S, K>) -> Tensor<T, S, K>
        );

        forward_pass! {
            impl[T: RealScalar, S: Shape, K: Storage<T, S>] $name, traced $name;
            Tensor<T, S, K> => Tensor<T, S, K>;
            where []
            |_layer, $x| $forward
        }

        forward_pass! {
            #[cfg(feature = "cuda")]
            impl[T: CudaElement, S: Shape] $name, traced $name;
            Tensor<T, S, Cuda> => Tensor<T, S, Cuda>;
            where []
            |_layer, $x| $forward
        }

        #[cfg(feature = "cuda")]
        impl<T: CudaElement, S: Shape> Module<CudaDual<T, S>> for $name {
            type Output = CudaDual<T, S>;
            fn forward(&self, $x: &CudaDual<T, S>) -> CudaDual<T, S> {
                $forward
            }
        }
    };
}

elementwise_layer!(
    /// max(x, 0) elementwise.
    Relu,
    |x| x.relu()
);
elementwise_layer!(
    /// tanh x elementwise.
    Tanh,
    |x| x.tanh()
);
elementwise_layer!(
    /// 1/(1 + e⁻ˣ) elementwise.
    Sigmoid,
    |x| x.sigmoid()
);
elementwise_layer!(
    /// GELU elementwise, with erf ([`GeluFunction`]).
    Gelu,
    |x| x.map_function(GeluFunction)
);
elementwise_layer!(
    /// GELU elementwise, in the tanh form ([`GeluTanhFunction`]).
    GeluTanh,
    |x| x.map_function(GeluTanhFunction)
);
elementwise_layer!(
    /// softplus(x) = ln(1 + eˣ) elementwise, stable at any magnitude
    /// ([`SoftplusFunction`]).
    Softplus,
    |x| x.map_function(SoftplusFunction)
);
elementwise_layer!(
    /// SiLU (swish), x·σ(x) elementwise ([`SiluFunction`]).
    Silu,
    |x| x.map_function(SiluFunction)
);

/// Softmax along each row of a batch `(B, C)`: e^{xⱼ}/Σₖ e^{xₖ} (shifted by the row
/// maximum, stable at any magnitude). For a loss, give the logits to
/// [`cross_entropy`](crate::nn::loss::cross_entropy) instead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Softmax;

parameter_free!([] Softmax);

impl Softmax {
    /// The forward pass on a batch, written for static mode (`#[differentiable]`; the
    /// layer's tangent is `()`).
    #[differentiable]
    pub fn apply_batch<T: RealScalar, B: Dim, C: Dim, K: Storage<T, (B, C)> + Storage<T, (B,)>>(
        &self,
        x: &Tensor<T, (B, C), K>,
    ) -> Tensor<T, (B, C), K> {
        x.softmax(Axis::<1>)
    }
}

crate::static_module!(
    impl[T: RealScalar, B: Dim, C: Dim, K: Storage<T, (B, C)> + Storage<T, (B,)>] Softmax:
        apply_batch(Tensor<T, (B, C), K>) -> Tensor<T, (B, C), K>
);

forward_pass! {
    impl[T: RealScalar, B: Dim, C: Dim, K: Storage<T, (B, C)> + Storage<T, (B,)>] Softmax, traced Softmax;
    Tensor<T, (B, C), K> => Tensor<T, (B, C), K>;
    where []
    |_layer, x| x.softmax(Axis::<1>)
}

forward_pass! {
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, B: Dim, C: Dim] Softmax, traced Softmax;
    Tensor<T, (B, C), Cuda> => Tensor<T, (B, C), Cuda>;
    where []
    |_layer, x| x.softmax(Axis::<1>)
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, B: Dim, C: Dim> Module<CudaDual<T, (B, C)>> for Softmax {
    type Output = CudaDual<T, (B, C)>;
    fn forward(&self, x: &CudaDual<T, (B, C)>) -> CudaDual<T, (B, C)> {
        x.softmax(Axis::<1>)
    }
}

/// A tuple of layers applied in order: each must take the previous one's output.
macro_rules! sequential {
    ($first:ident $first_index:tt $(, $layer:ident after $previous:ident $index:tt)+; last $last:ident) => {
        impl<X: ?Sized, $first: Module<X>, $($layer: Module<$previous::Output>),+> Module<X> for ($first, $($layer),+) {
            type Output = $last::Output;

            #[track_caller]
            fn forward(&self, x: &X) -> Self::Output {
                let y = self.$first_index.forward(x);
                $(let y = self.$index.forward(&y);)+
                y
            }
        }
    };
}

sequential!(A 0, B after A 1; last B);
sequential!(A 0, B after A 1, C after B 2; last C);
sequential!(A 0, B after A 1, C after B 2, D after C 3; last D);
sequential!(A 0, B after A 1, C after B 2, D after C 3, E after D 4; last E);
sequential!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5; last F);
sequential!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6; last G);
sequential!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6, H after G 7; last H);
sequential!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6, H after G 7, I after H 8; last I);
sequential!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6, H after G 7, I after H 8, J after I 9; last J);
sequential!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6, H after G 7, I after H 8, J after I 9, K after J 10; last K);
sequential!(A 0, B after A 1, C after B 2, D after C 3, E after D 4, F after E 5, G after F 6, H after G 7, I after H 8, J after I 9, K after J 10, L after K 11; last L);

/// A tuple of layers moves layer by layer.
#[cfg(feature = "cuda")]
macro_rules! tuple_to_device {
    ($($layer:ident $index:tt),+) => {
        impl<$($layer: ToDevice),+> ToDevice for ($($layer,)+) {
            type OnDevice = ($($layer::OnDevice,)+);
            fn to_device(&self) -> Self::OnDevice {
                ($(self.$index.to_device(),)+)
            }
        }
    };
}

#[cfg(feature = "cuda")]
for_each_tuple!(tuple_to_device);

/// A tuple of GPU layers comes back layer by layer.
#[cfg(feature = "cuda")]
macro_rules! tuple_to_host {
    ($($layer:ident $index:tt),+) => {
        impl<$($layer: ToHost),+> ToHost for ($($layer,)+) {
            type OnHost = ($($layer::OnHost,)+);
            fn to_host(&self) -> Self::OnHost {
                ($(self.$index.to_host(),)+)
            }
        }
    };
}

#[cfg(feature = "cuda")]
for_each_tuple!(tuple_to_host);

/// Layers applied in order: `Sequential((a, b, c))` is a then b then c, each taking
/// the previous one's output. A chain whose sizes do not fit does not compile: the
/// traced call (inside a gradient) is one short error naming both sizes; the plain
/// call's error is the compiler's "trait bounds were not satisfied", whose notes name
/// both sizes (`Const<8>: SameFeatureCount<Const<6>>`; for image layers, the pooling
/// or convolution relation, `Const<6>: PoolsTo<2, 2>`, below typenum's arithmetic).
/// On a bare tuple, which is also a [`Module`], the message names the whole tuple.
///
/// A tuple holds up to twelve layers; for more, nest sequences.
///
/// It is transparent: its tangent is the tuple's, its traced twin is
/// `Sequential<L::Traced>`, and its parameters are named as the tuple's (`0.weight`).
/// So a gradient is one level shallower than the model: the second layer's weight is
/// `model.0.1.weight` and its gradient `gradient.1.weight`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sequential<L>(pub L);

impl<L> Sequential<L> {
    /// The output of the layers in order on `x`.
    #[track_caller]
    pub fn forward<X: ?Sized>(&self, x: &X) -> L::Output
    where
        L: Module<X>,
    {
        self.0.forward(x)
    }
}

/// A `Sequential` is itself a layer, so sequences nest: `Sequential((Sequential((a,
/// b)), c))`.
impl<X: ?Sized, L: Module<X>> Module<X> for Sequential<L> {
    type Output = L::Output;
    #[track_caller]
    fn forward(&self, x: &X) -> L::Output {
        self.0.forward(x)
    }
}

/// The traits of a layer that wraps one layer and is otherwise transparent (its
/// tangent, traced and lifted forms, parameter names and device copies are the inner
/// layer's, wrapped): [`Sequential`], [`Checkpointed`] and [`Residual`].
macro_rules! transparent_layer {
    ($wrapper:ident) => {
        #[diagnostic::do_not_recommend]
        impl<L: Differentiable> Differentiable for $wrapper<L> {
            type Tangent = L::Tangent;
            fn try_move_by(&mut self, offset: &L::Tangent) -> Result<(), ShapeError> {
                self.0.try_move_by(offset)
            }
            fn zero_tangent(&self) -> L::Tangent {
                self.0.zero_tangent()
            }
            fn zip_leaves_with<const W: usize, const R: usize, V: LeafVisitor<W, R>>(
                &mut self,
                written: [&mut L::Tangent; W],
                read: [&L::Tangent; R],
                visitor: &mut V,
            ) -> Result<(), ShapeError> {
                self.0.zip_leaves_with(written, read, visitor)
            }
        }

        impl<L: Lift> Lift for $wrapper<L> {
            type Lifted = $wrapper<L::Lifted>;
            fn lift(&self, tangent: &L::Tangent) -> Self::Lifted {
                $wrapper(self.0.lift(tangent))
            }
        }

        impl<L: Unlift> Unlift for $wrapper<L> {
            type Primal = $wrapper<L::Primal>;
            fn unlift(&self) -> (Self::Primal, <L::Primal as Differentiable>::Tangent) {
                let (value, tangent) = self.0.unlift();
                ($wrapper(value), tangent)
            }
        }

        #[cfg(feature = "std")]
        impl<L: Trace> Trace for $wrapper<L> {
            type Traced = $wrapper<L::Traced>;
            fn trace(&self) -> Self::Traced {
                $wrapper(self.0.trace())
            }
            fn as_constant(&self) -> Self::Traced {
                $wrapper(self.0.as_constant())
            }
            fn gradient_buffers<'g>(&self, gradient: &'g mut L::Tangent, buffers: &mut Vec<&'g mut dyn Any>) {
                self.0.gradient_buffers(gradient, buffers);
            }
            fn untrace(traced: &Self::Traced, leaves: &mut TracedLeaves) -> Self {
                $wrapper(L::untrace(&traced.0, leaves))
            }
        }

        #[cfg(feature = "std")]
        #[diagnostic::do_not_recommend]
        impl<L: TracedInput> TracedInput for $wrapper<L> {
            type Value = $wrapper<L::Value>;
        }

        #[cfg(feature = "std")]
        impl<L: Parameters> Parameters for $wrapper<L> {
            fn visit_parameters(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
                self.0.visit_parameters(path, f);
            }
            fn visit_parameters_mut(
                &mut self,
                path: &mut String,
                f: &mut dyn FnMut(&str, ParameterLeafMut<'_>),
            ) {
                self.0.visit_parameters_mut(path, f);
            }
            fn visit_buffers(&self, path: &mut String, f: &mut dyn FnMut(&str, ParameterLeaf<'_>)) {
                self.0.visit_buffers(path, f);
            }
            fn visit_buffers_mut(
                &mut self,
                path: &mut String,
                f: &mut dyn FnMut(&str, ParameterLeafMut<'_>),
            ) {
                self.0.visit_buffers_mut(path, f);
            }
        }

        #[cfg(feature = "cuda")]
        impl<L: ToDevice> ToDevice for $wrapper<L> {
            type OnDevice = $wrapper<L::OnDevice>;
            fn to_device(&self) -> Self::OnDevice {
                $wrapper(self.0.to_device())
            }
        }

        #[cfg(feature = "cuda")]
        impl<L: ToHost> ToHost for $wrapper<L> {
            type OnHost = $wrapper<L::OnHost>;
            fn to_host(&self) -> Self::OnHost {
                $wrapper(self.0.to_host())
            }
        }
    };
}

transparent_layer!(Sequential);

/// A layer run as one [`checkpoint`](crate::autodiff::checkpoint) when traced: the
/// tape keeps its input, not the values inside it, and the backward sweep runs it
/// again (PyTorch's `checkpoint_sequential`, one segment per `Checkpointed`). On
/// plain tensors (inference) and duals it is the inner layer. It is transparent
/// otherwise: its tangent, parameter names and device copy are the inner layer's.
///
/// ```
/// use fluxion::nn::layer::Checkpointed;
/// use fluxion::nn::prelude::*;
/// use fluxion::prelude::*;
///
/// type Block = Sequential<(Linear<f64, 8, 8>, Relu, Linear<f64, 8, 8>)>;
/// let block = |seed| -> Block { Sequential((Linear::new(seed), Relu, Linear::new(seed + 1))) };
/// // Two blocks, each recomputed in the backward sweep, then a head.
/// let model = Sequential((Checkpointed(block(1)), Checkpointed(block(3)), Linear::<f64, 8, 2>::new(5)));
/// let x: Tensor<f64, (Dyn, Const<8>), Heap> = Tensor::full_shaped((Dyn(4), Const), 0.25);
/// let (loss, gradient) = value_and_grad(|m| cross_entropy(&m.forward(&x), &[0, 1, 1, 0], Reduction::Mean), &model);
/// assert!(loss > 0.0);
/// // The same gradient as without the checkpoints (each block reads its input once).
/// let plain = Sequential((block(1), block(3), Linear::<f64, 8, 2>::new(5)));
/// let (_, expected) = value_and_grad(|m| cross_entropy(&m.forward(&x), &[0, 1, 1, 0], Reduction::Mean), &plain);
/// assert_eq!(gradient.0.0.weight, expected.0.0.weight);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Checkpointed<L>(pub L);

transparent_layer!(Checkpointed);

/// A plain batch: the inner layer, as one checkpoint when it is traced (its output
/// a `Var`) and as it is otherwise (inference, forward mode).
impl<T, S, K, L> Module<Tensor<T, S, K>> for Checkpointed<L>
where
    T: Scalar,
    S: Shape,
    K: Storage<T, S>,
    L: Module<Tensor<T, S, K>, Output: CheckpointedRun<L, Tensor<T, S, K>>>,
{
    type Output = L::Output;
    #[track_caller]
    fn forward(&self, x: &Tensor<T, S, K>) -> L::Output {
        L::Output::run(&self.0, x)
    }
}

/// How a [`Checkpointed`] layer runs on a plain input `X`, told by the inner layer's
/// output: a traced layer (output a `Var`, the batch a constant of the tape) runs as
/// one checkpoint, a plain one (output a tensor) as it is.
pub trait CheckpointedRun<L, X>: Sized {
    /// `layer`'s output on `x`.
    fn run(layer: &L, x: &X) -> Self;
}

impl<L: Module<X, Output = Self>, X, T, S: Shape, K: StorageKind<T, S>> CheckpointedRun<L, X>
    for Tensor<T, S, K>
{
    #[track_caller]
    fn run(layer: &L, x: &X) -> Self {
        layer.forward(x)
    }
}

/// The batch is captured as plain data: the checkpoint's input is the layer.
#[cfg(feature = "std")]
impl<L, T, S, K, Y> CheckpointedRun<L, Tensor<T, S, K>> for Var<Y>
where
    T: Scalar,
    S: Shape,
    K: Storage<T, S>,
    Tensor<T, S, K>: Clone + 'static,
    L: Module<Tensor<T, S, K>, Output = Var<Y>> + TracedInput<Value: 'static> + Clone + 'static,
    Y: Differentiable + Clone + 'static,
{
    fn run(layer: &L, x: &Tensor<T, S, K>) -> Var<Y> {
        let x = x.clone();
        crate::autodiff::checkpoint(move |layer: L| layer.forward(&x), layer)
    }
}

/// Traced: the inner layer as one checkpoint.
#[cfg(feature = "std")]
impl<T, S, K, L, Y> Module<Var<Tensor<T, S, K>>> for Checkpointed<L>
where
    T: Scalar,
    S: Shape,
    K: Storage<T, S>,
    Tensor<T, S, K>: Differentiable + Clone + 'static,
    L: Module<Var<Tensor<T, S, K>>, Output = Var<Y>> + TracedInput<Value: 'static> + Clone + 'static,
    Y: Differentiable + Clone + 'static,
{
    type Output = Var<Y>;
    fn forward(&self, x: &Var<Tensor<T, S, K>>) -> Var<Y> {
        let forward = |(layer, x): (L, Var<Tensor<T, S, K>>)| layer.forward(&x);
        crate::autodiff::checkpoint(forward, &(self.0.clone(), x.clone()))
    }
}

/// x + f(x): a skip connection around a layer f whose output has its input's type
/// (the residual blocks of ResNets and transformers). On every input f takes — plain
/// and traced tensors, duals, GPU tensors, and in static mode through
/// [`StaticModule`] — the identity's cotangent ȳ joins f's: x̄ = ȳ + J_fᵀȳ.
/// It is transparent otherwise: its tangent, traced and lifted twins, parameter
/// names (`0.weight`) and device copy are f's.
///
/// ```
/// use fluxion::nn::prelude::*;
/// use fluxion::prelude::*;
///
/// type Rows = Tensor<f64, (Dyn, Const<4>), Heap>;
/// // x + Linear(tanh(Linear(x))), then a head.
/// let block = |seed| Residual(Sequential((Linear::<f64, 4, 4>::new(seed), Tanh, Linear::<f64, 4, 4>::new(seed + 1))));
/// let model = Sequential((block(1), block(3), Linear::<f64, 4, 2>::new(5)));
/// let x = Rows::from_shape_fn((Dyn(3), Const), |[r, c]| (r + c) as f64 / 4.0);
/// let (loss, gradient) = value_and_grad(|m| cross_entropy(&m.forward(&x), &[0, 1, 0], Reduction::Mean), &model);
/// assert!(loss > 0.0);
/// assert_eq!(gradient.0.0.weight.shape(), (Const::<4>, Const::<4>)); // block 1, its first Linear
/// // Inference: the skip adds the block's input.
/// let inner = Sequential((Linear::<f64, 4, 4>::new(1), Tanh, Linear::<f64, 4, 4>::new(2)));
/// assert_eq!(block(1).forward(&x), &x + &inner.forward(&x));
/// ```
///
/// A block that changes its input's size has no skip connection: the compiler
/// refuses `Residual(Linear::<f64, 4, 8>::new(1))` where it is used. Inside a
/// gradient the error says the layer inside `Residual` must keep its input's size;
/// on plain tensors it is the compiler's "trait bounds were not satisfied", whose
/// notes name the bound that fails (`SameAsBlockInput` of the two types, or, for a
/// lone `Linear`, `Const<8>: SameFeatureCount<Const<4>>`: its output fed back to it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Residual<L>(pub L);

transparent_layer!(Residual);

/// x + f(x) on any input that f maps to its own type (the tensor sum, on the tape
/// the traced sum), and on a plain input to a traced f (the input a constant).
impl<X, L: Module<X, Output: SameAsBlockInput<X>>> Module<X> for Residual<L> {
    type Output = <L::Output as SameAsBlockInput<X>>::Sum;
    #[track_caller]
    fn forward(&self, x: &X) -> Self::Output {
        self.0.forward(x).plus_block_input(x)
    }
}

/// The output of the layer inside a [`Residual`], which its input is added to: of
/// the input's type, or its traced form. Written as a bound so that a block that
/// changes its input's size is an error naming both types.
#[diagnostic::on_unimplemented(
    message = "a residual block's output `{Self}` is not of its input's type `{X}`",
    label = "the layer inside `Residual` must keep its input's size",
    note = "x + f(x) adds f's output to its input: project the input first, or take the layer out of `Residual`"
)]
pub trait SameAsBlockInput<X> {
    /// The type of x + f(x).
    type Sum;
    /// `x + self`.
    fn plus_block_input(self, x: &X) -> Self::Sum;
}

impl<X> SameAsBlockInput<X> for X
where
    for<'a> &'a X: core::ops::Add<&'a X, Output = X>,
{
    type Sum = X;
    #[inline]
    fn plus_block_input(self, x: &X) -> X {
        x + &self
    }
}

/// A traced block on a plain input (the first block of a traced model).
#[cfg(feature = "std")]
impl<T: Scalar, S: Shape, K: TracedArithmetic<T, S>> SameAsBlockInput<Tensor<T, S, K>>
    for Var<Tensor<T, S, K>>
where
    Tensor<T, S, K>: Differentiable<Tangent = Tensor<T, S, K>>,
{
    type Sum = Self;
    #[inline]
    fn plus_block_input(self, x: &Tensor<T, S, K>) -> Self {
        self + x
    }
}

/// A lifted and traced block (forward over reverse) on a plain input, as a batch of
/// duals with zero tangents.
#[cfg(feature = "std")]
impl<T, S, K> SameAsBlockInput<Tensor<T, S, K>> for Var<Tensor<Dual<T>, S, K>>
where
    T: RealScalar,
    S: Shape,
    K: Storage<T, S> + Storage<Dual<T>, S> + TracedArithmetic<Dual<T>, S>,
    Tensor<Dual<T>, S, K>: Differentiable<Tangent = Tensor<Dual<T>, S, K>>,
{
    type Sum = Self;
    #[inline]
    fn plus_block_input(self, x: &Tensor<T, S, K>) -> Self {
        self + x.map(Dual::constant)
    }
}

/// Layer normalisation over the features of each row: γ ⊙ (x − μ)/√(σ² + ε) + β,
/// with μ and σ² the row's mean and biased variance, and ε = 10⁻⁵ by default
/// (PyTorch's `LayerNorm`; γ is `weight`, β is `bias`).
#[derive(Differentiable, Clone)]
pub struct LayerNorm<T, const D: usize, K = Heap>
where
    T: RealScalar,
    K: StorageKind<T, (Const<D>,)>,
{
    /// γ, the gain per feature (ones at first).
    pub weight: Tensor<T, (Const<D>,), K>,
    /// β, the shift per feature (zeros at first).
    pub bias: Tensor<T, (Const<D>,), K>,
    /// ε.
    #[no_derivative]
    pub epsilon: T,
}

impl<T: RealScalar, const D: usize, K: Storage<T, (Const<D>,)>> Default for LayerNorm<T, D, K> {
    fn default() -> Self {
        LayerNorm { weight: Tensor::full(T::one()), bias: Tensor::zeros(), epsilon: T::from_f64(1e-5) }
    }
}

impl<T: RealScalar, const D: usize, K: Storage<T, (Const<D>,)>> LayerNorm<T, D, K> {
    /// The forward pass on a batch, written for static mode (`#[differentiable]`).
    #[differentiable]
    pub fn apply_batch<R: Dim>(&self, x: &Tensor<T, (R, Const<D>), K>) -> Tensor<T, (R, Const<D>), K>
    where
        K: Storage<T, (R, Const<D>)> + Storage<T, (R,)>,
    {
        // ε is a constant (`#[no_derivative]`), which the macro cannot see from here.
        x.normalize_rows(rules::stop_gradient(self.epsilon)).mul_rows(&self.weight).add_rows(&self.bias)
    }
}

crate::static_module!(
    impl[T: RealScalar, const D: usize, K: Storage<T, (Const<D>,)>, R: Dim] LayerNorm<T, D, K>:
        apply_batch(Tensor<T, (R, Const<D>), K>) -> Tensor<T, (R, Const<D>), K>;
    where [K: Storage<T, (R, Const<D>)> + Storage<T, (R,)>]
);

// By hand, as for `Linear`: a GPU layer prints but has no `==`.
impl<T: RealScalar, const D: usize, K: StorageKind<T, (Const<D>,)>> core::fmt::Debug for LayerNorm<T, D, K>
where
    Tensor<T, (Const<D>,), K>: core::fmt::Debug,
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LayerNorm")
            .field("weight", &self.weight)
            .field("bias", &self.bias)
            .field("epsilon", &self.epsilon)
            .finish()
    }
}

impl<T: RealScalar, const D: usize, K: StorageKind<T, (Const<D>,)>> PartialEq for LayerNorm<T, D, K>
where
    Tensor<T, (Const<D>,), K>: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.weight == other.weight && self.bias == other.bias && self.epsilon == other.epsilon
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const D: usize> ToDevice for LayerNorm<T, D, Heap> {
    type OnDevice = LayerNorm<T, D, Cuda>;
    fn to_device(&self) -> Self::OnDevice {
        LayerNorm { weight: self.weight.to_device(), bias: self.bias.to_device(), epsilon: self.epsilon }
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const D: usize> ToHost for LayerNorm<T, D, Cuda> {
    type OnHost = LayerNorm<T, D, Heap>;
    fn to_host(&self) -> Self::OnHost {
        LayerNorm { weight: self.weight.to_host(), bias: self.bias.to_host(), epsilon: self.epsilon }
    }
}

/// One forward expression for every form of the layer, with ε as its input's
/// element (a dual constant for the lifted forms).
macro_rules! layer_norm_forward {
    ($layer:expr, $x:expr, $epsilon:expr) => {
        $x.normalize_rows($epsilon).mul_rows(&$layer.weight).add_rows(&$layer.bias)
    };
}

impl<T, B: Dim, F: Dim, const D: usize, K> Module<Tensor<T, (B, F), K>> for LayerNorm<T, D, K>
where
    T: RealScalar,
    F: SameFeatureCount<Const<D>>,
    K: Storage<T, (Const<D>,)> + Storage<T, (B, F)> + Storage<T, (B, Const<D>)> + Storage<T, (B,)>,
{
    type Output = Tensor<T, (B, Const<D>), K>;

    #[track_caller]
    fn forward(&self, x: &Tensor<T, (B, F), K>) -> Self::Output {
        layer_norm_forward!(self, F::fit(x), self.epsilon)
    }
}

#[cfg(feature = "std")]
impl<T, B: Dim, F: Dim, const D: usize, K> Module<Var<Tensor<T, (B, F), K>>> for LayerNormTraced<T, D, K>
where
    T: RealScalar,
    F: SameFeatureCount<Const<D>>,
    K: Storage<T, (Const<D>,)> + Storage<T, (B, F)> + Storage<T, (B, Const<D>)> + Storage<T, (B,)>,
{
    type Output = Var<Tensor<T, (B, Const<D>), K>>;

    #[track_caller]
    fn forward(&self, x: &Var<Tensor<T, (B, F), K>>) -> Self::Output {
        layer_norm_forward!(self, F::fit_traced(x), self.epsilon)
    }
}

/// On the GPU, from the same expression (generated kernels for the row statistics).
#[cfg(feature = "cuda")]
impl<T: CudaElement, B: Dim, F: Dim + SameFeatureCount<Const<D>>, const D: usize>
    Module<Tensor<T, (B, F), Cuda>> for LayerNorm<T, D, Cuda>
{
    type Output = Tensor<T, (B, Const<D>), Cuda>;

    #[track_caller]
    fn forward(&self, x: &Tensor<T, (B, F), Cuda>) -> Self::Output {
        layer_norm_forward!(self, F::fit(x), self.epsilon)
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, B: Dim, F: Dim + SameFeatureCount<Const<D>>, const D: usize>
    Module<Var<Tensor<T, (B, F), Cuda>>> for LayerNormTraced<T, D, Cuda>
{
    type Output = Var<Tensor<T, (B, Const<D>), Cuda>>;

    #[track_caller]
    fn forward(&self, x: &Var<Tensor<T, (B, F), Cuda>>) -> Self::Output {
        layer_norm_forward!(self, F::fit_traced(x), self.epsilon)
    }
}

/// Forward mode: the lifted layer on a batch of duals.
impl<T, B: Dim, F: Dim, const D: usize, K> Module<Tensor<Dual<T>, (B, F), K>> for LayerNormLifted<T, D, K>
where
    T: RealScalar,
    F: SameFeatureCount<Const<D>>,
    K: Storage<T, (Const<D>,)>
        + Storage<Dual<T>, (Const<D>,)>
        + Storage<Dual<T>, (B, F)>
        + Storage<Dual<T>, (B, Const<D>)>
        + Storage<Dual<T>, (B,)>,
{
    type Output = Tensor<Dual<T>, (B, Const<D>), K>;

    #[track_caller]
    fn forward(&self, x: &Tensor<Dual<T>, (B, F), K>) -> Self::Output {
        layer_norm_forward!(self, F::fit(x), Dual::constant(self.epsilon))
    }
}

/// Forward over reverse: the lifted layer traced, on a traced batch of duals.
#[cfg(feature = "std")]
impl<T, B: Dim, F: Dim, const D: usize, K> Module<Var<Tensor<Dual<T>, (B, F), K>>>
    for LayerNormLiftedTraced<T, D, K>
where
    T: RealScalar,
    F: SameFeatureCount<Const<D>>,
    K: Storage<T, (Const<D>,)>
        + Storage<Dual<T>, (Const<D>,)>
        + Storage<Dual<T>, (B, F)>
        + Storage<Dual<T>, (B, Const<D>)>
        + Storage<Dual<T>, (B,)>,
{
    type Output = Var<Tensor<Dual<T>, (B, Const<D>), K>>;

    #[track_caller]
    fn forward(&self, x: &Var<Tensor<Dual<T>, (B, F), K>>) -> Self::Output {
        layer_norm_forward!(self, F::fit_traced(x), Dual::constant(self.epsilon))
    }
}

/// A table of V vectors of length D, `weight` of shape `[V, D]`; its input is a
/// slice of indices, its output the rows they pick, `(Dyn, D)`.
#[derive(Differentiable, Clone)]
pub struct Embedding<T, const V: usize, const D: usize, K = Heap>
where
    T: RealScalar,
    K: StorageKind<T, (Const<V>, Const<D>)>,
{
    /// The table, one row per index.
    pub weight: Tensor<T, (Const<V>, Const<D>), K>,
}

debug_and_eq_by_fields!(
    [T, const V: usize, const D: usize, K] Embedding<T, V, D, K>, "Embedding"
    where [T: RealScalar, K: StorageKind<T, (Const<V>, Const<D>)>,]
    { weight: Tensor<T, (Const<V>, Const<D>), K> }
);

#[cfg(feature = "cuda")]
impl<T: CudaElement, const V: usize, const D: usize> ToDevice for Embedding<T, V, D, Heap> {
    type OnDevice = Embedding<T, V, D, Cuda>;
    fn to_device(&self) -> Self::OnDevice {
        Embedding { weight: self.weight.to_device() }
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const V: usize, const D: usize> ToHost for Embedding<T, V, D, Cuda> {
    type OnHost = Embedding<T, V, D, Heap>;
    fn to_host(&self) -> Self::OnHost {
        Embedding { weight: self.weight.to_host() }
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const V: usize, const D: usize> Module<[usize]> for Embedding<T, V, D, Cuda> {
    type Output = Tensor<T, (Dyn, Const<D>), Cuda>;

    /// # Panics
    /// When an index is V or more.
    #[track_caller]
    fn forward(&self, indices: &[usize]) -> Self::Output {
        self.weight.gather_rows(indices)
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const V: usize, const D: usize> Module<[usize]> for EmbeddingTraced<T, V, D, Cuda> {
    type Output = Var<Tensor<T, (Dyn, Const<D>), Cuda>>;

    /// # Panics
    /// When an index is V or more.
    #[track_caller]
    fn forward(&self, indices: &[usize]) -> Self::Output {
        self.weight.gather_rows(indices)
    }
}

#[cfg(feature = "std")]
impl<T: RealScalar, const V: usize, const D: usize, K: Storage<T, (Const<V>, Const<D>)>>
    Embedding<T, V, D, K>
{
    /// Rows drawn from N(0, 1), seeded (PyTorch's initialisation).
    pub fn new(seed: u64) -> Self {
        Embedding { weight: Tensor::random_normal(T::zero(), T::one(), seed) }
    }

    /// Rows drawn by `init` with PyTorch's fans for a `[V, D]` table (fan-in D,
    /// fan-out V), seeded.
    ///
    /// # Panics
    /// When D is 0.
    pub fn init(init: Init, seed: u64) -> Self {
        Embedding { weight: init.tensor(Default::default(), D, V, seed) }
    }
}

#[cfg(feature = "alloc")]
impl<T: RealScalar, const V: usize, const D: usize, K> Embedding<T, V, D, K>
where
    K: Storage<T, (Const<V>, Const<D>)> + Clone,
{
    /// The rows of `indices`, written for static mode (`#[differentiable]`; the
    /// indices are not differentiated).
    ///
    /// # Panics
    /// When an index is V or more.
    #[differentiable(wrt(self))]
    pub fn apply(&self, indices: &[usize]) -> Tensor<T, (Dyn, Const<D>), K>
    where
        K: Storage<T, (Dyn, Const<D>)>,
    {
        self.weight.gather_rows(indices)
    }
}

#[cfg(feature = "alloc")]
crate::static_module!(
    impl[T: RealScalar, const V: usize, const D: usize, K] Embedding<T, V, D, K>:
        apply([usize]) -> Tensor<T, (Dyn, Const<D>), K>, input tangent rules::NotDifferentiated;
    where [K: Storage<T, (Const<V>, Const<D>)> + Clone + Storage<T, (Dyn, Const<D>)>]
);

#[cfg(feature = "alloc")]
impl<T, const V: usize, const D: usize, K> Module<[usize]> for Embedding<T, V, D, K>
where
    T: RealScalar,
    K: Storage<T, (Const<V>, Const<D>)> + Storage<T, (Dyn, Const<D>)>,
{
    type Output = Tensor<T, (Dyn, Const<D>), K>;

    /// # Panics
    /// When an index is V or more.
    #[track_caller]
    fn forward(&self, indices: &[usize]) -> Self::Output {
        self.weight.gather_rows(indices)
    }
}

#[cfg(feature = "std")]
impl<T, const V: usize, const D: usize, K> Module<[usize]> for EmbeddingTraced<T, V, D, K>
where
    T: RealScalar,
    K: Storage<T, (Const<V>, Const<D>)> + Storage<T, (Dyn, Const<D>)>,
{
    type Output = Var<Tensor<T, (Dyn, Const<D>), K>>;

    #[track_caller]
    fn forward(&self, indices: &[usize]) -> Self::Output {
        self.weight.gather_rows(indices)
    }
}

/// Forward mode: the lifted table's rows, as duals.
#[cfg(feature = "alloc")]
impl<T, const V: usize, const D: usize, K> Module<[usize]> for EmbeddingLifted<T, V, D, K>
where
    T: RealScalar,
    K: Storage<T, (Const<V>, Const<D>)>
        + Storage<Dual<T>, (Const<V>, Const<D>)>
        + Storage<Dual<T>, (Dyn, Const<D>)>,
{
    type Output = Tensor<Dual<T>, (Dyn, Const<D>), K>;

    #[track_caller]
    fn forward(&self, indices: &[usize]) -> Self::Output {
        self.weight.gather_rows(indices)
    }
}

/// `set_training`, `eval` and `is_training` of a layer with a `training` field,
/// which [`evaluation`] overrides: what the layer does in training and in
/// evaluation, for the docs.
#[cfg(feature = "std")]
macro_rules! training_switch {
    ($training:literal, $evaluation:literal) => {
        #[doc = concat!("Switches to training (", $training, ") or evaluation (", $evaluation, ").")]
        pub fn set_training(&mut self, training: bool) {
            self.training = training;
        }

        /// The same layer in evaluation mode.
        pub fn eval(mut self) -> Self {
            self.training = false;
            self
        }

        #[doc = concat!("Whether it is set to training (", $training, "; not inside [`evaluation`]).")]
        pub fn is_training(&self) -> bool {
            self.training
        }
    };
}

/// Dropout: in training, each element is kept with probability 1 − p and scaled by
/// 1/(1 − p) (so the expectation is unchanged), with a fresh mask per call drawn
/// from a generator seeded by `seed` and the call count; in evaluation
/// ([`Dropout::eval`], or any dropout inside [`evaluation`]) it is the identity. No
/// parameters.
///
/// Clones share the mask stream (the copies a gradient traces are clones, so each
/// step draws a fresh mask). [`Dropout::fork`] and `to_device` start a stream of
/// their own at the same point: they draw the masks this layer would draw next, so
/// a model copied to the GPU drops what the host model would. Inside
/// [`checkpoint`](crate::autodiff::checkpoint), the recomputation in the backward
/// sweep draws the first run's masks again.
#[cfg(feature = "std")]
#[derive(Clone, Debug)]
pub struct Dropout {
    probability: f64,
    training: bool,
    seed: u64,
    /// Masks drawn so far, shared with the traced copies the tape makes of the layer,
    /// so every training step draws a fresh mask.
    calls: std::sync::Arc<core::sync::atomic::AtomicU64>,
}

#[cfg(feature = "std")]
impl Dropout {
    /// Dropout with probability `probability` of zeroing an element, in training
    /// (1 zeroes every element, as in PyTorch).
    ///
    /// # Panics
    /// When `probability` is not in [0, 1].
    #[track_caller]
    pub fn new(probability: f64, seed: u64) -> Self {
        assert!((0.0..=1.0).contains(&probability), "dropout probability {probability} is not in [0, 1]");
        Dropout {
            probability,
            training: true,
            seed,
            calls: std::sync::Arc::new(core::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// A copy with a mask stream of its own, at this layer's point: it draws the
    /// masks this layer would draw next, whatever this layer draws meanwhile (a
    /// clone shares the stream instead).
    pub fn fork(&self) -> Self {
        let calls = self.calls.load(core::sync::atomic::Ordering::Relaxed);
        Dropout { calls: std::sync::Arc::new(core::sync::atomic::AtomicU64::new(calls)), ..*self }
    }

    training_switch!("masks drawn", "the identity");

    /// Whether this call draws a mask: in training, and not inside [`evaluation`].
    fn draws_masks(&self) -> bool {
        training_now(self.training)
    }

    /// What the layer multiplies by now: in training, the next mask of its stream
    /// (m/(1 − p) with m ~ Bernoulli(1 − p) per element; the next call draws the one
    /// after), and ones in evaluation ([`Dropout::eval`], or inside [`evaluation`]).
    /// Static mode (`#[differentiable]`), where the layer has no method, multiplies by
    /// it as a constant argument: `x.hadamard(mask)`, the mask taken outside.
    pub fn mask<T: RealScalar, S: Shape, K: Storage<T, S>>(&self, shape: S) -> Tensor<T, S, K> {
        self.next_mask(shape).unwrap_or_else(|| Tensor::full_shaped(shape, T::one()))
    }

    /// The mask of this call, m/(1 − p) with m ~ Bernoulli(1 − p) per element, the
    /// next of the stream; `None` in evaluation. Whether a mask is drawn, and which,
    /// is one [`replayable_draw`](crate::autodiff::replayable_draw): inside a
    /// [`checkpoint`](crate::autodiff::checkpoint), the recomputation gets the first
    /// run's answer again, whatever the evaluation setting when the sweep runs.
    fn next_mask<T: RealScalar, S: Shape, K: Storage<T, S>>(&self, shape: S) -> Option<Tensor<T, S, K>> {
        // 0: no mask; c + 1: the stream's mask number c.
        let draw = crate::autodiff::replayable_draw(|| match self.draws_masks() {
            true => self.calls.fetch_add(1, core::sync::atomic::Ordering::Relaxed) + 1,
            false => 0,
        });
        let call = draw.checked_sub(1)?;
        if self.probability == 1.0 {
            // Every element dropped: zeros, not 0·∞ where a draw rounds up to 1.
            return Some(Tensor::full_shaped(shape, T::zero()));
        }
        let seed = self.seed ^ call.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let uniform: Tensor<T, S, K> = Tensor::random_uniform_shaped(shape, T::zero(), T::one(), seed);
        let (threshold, scale) = (T::from_f64(self.probability), T::from_f64(1.0 / (1.0 - self.probability)));
        Some(uniform.map(|u| if u < threshold { T::zero() } else { scale }))
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    /// Set inside [`evaluation`].
    static EVALUATING: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Whether a layer set to `training` trains in this call: not inside [`evaluation`].
#[cfg(feature = "std")]
fn training_now(training: bool) -> bool {
    training && !EVALUATING.with(core::cell::Cell::get)
}

/// Runs `f` with every [`Dropout`] the identity and every [`BatchNorm`] on its
/// running estimates, whatever their own setting: a whole model in evaluation for
/// the call (PyTorch's `model.eval()`, without changing the model), on this thread
/// only (threads that `f` spawns train unless they call `evaluation` themselves). The previous setting comes back when `f` returns or
/// panics, so calls nest.
///
/// ```
/// use fluxion::nn::layer::{Dropout, Linear, Module, Sequential, evaluation};
/// use fluxion::prelude::*;
///
/// let model = Sequential((Linear::<f64, 3, 3>::new(1), Dropout::new(0.5, 2)));
/// let x = Tensor::<f64, (Dyn, Const<3>), Heap>::full_shaped((Dyn(4), Const), 1.0);
/// let deterministic = evaluation(|| model.forward(&x));
/// assert_eq!(deterministic, model.0.0.forward(&x)); // the linear layer alone
/// ```
#[cfg(feature = "std")]
pub fn evaluation<R>(f: impl FnOnce() -> R) -> R {
    /// Puts the outer setting back, also when `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            EVALUATING.with(|evaluating| evaluating.set(self.0));
        }
    }
    let _restore = Restore(EVALUATING.with(|evaluating| evaluating.replace(true)));
    f()
}

/// Inference with the forward pass written for training: `forward` runs on the
/// model's constant twin ([`Trace::as_constant`], nothing recorded) inside
/// [`evaluation`] (every dropout off, batch normalisation on its running
/// estimates), and its value is returned as a plain tensor.
///
/// ```
/// use fluxion::nn::layer::{Dropout, Linear, Module, Sequential, inference};
/// use fluxion::prelude::*;
///
/// type Net = Sequential<(Linear<f64, 3, 2>, Dropout)>;
/// let net: Net = Sequential((Linear::new(1), Dropout::new(0.5, 2)));
/// let x = Tensor::<f64, (Dyn, Const<3>), Heap>::full_shaped((Dyn(4), Const), 1.0);
/// let y: Tensor<f64, (Dyn, Const<2>), Heap> = inference(&net, |n| n.forward(&x));
/// assert_eq!(y, net.0.0.forward(&x));
/// ```
#[cfg(feature = "std")]
pub fn inference<M: Trace, V: Clone>(model: &M, forward: impl FnOnce(M::Traced) -> Var<V>) -> V {
    evaluation(|| forward(model.as_constant()).into_value())
}

/// Equal settings (probability, training, seed); where each stream stands is not
/// compared, so a layer equals its fork even after either draws.
#[cfg(feature = "std")]
impl PartialEq for Dropout {
    fn eq(&self, other: &Self) -> bool {
        (self.probability, self.training, self.seed) == (other.probability, other.training, other.seed)
    }
}

#[cfg(feature = "std")]
parameter_free!([] Dropout, to the device by Dropout::fork);

#[cfg(feature = "std")]
impl<T: RealScalar, S: Shape, K: Storage<T, S>> Module<Tensor<T, S, K>> for Dropout {
    type Output = Tensor<T, S, K>;
    fn forward(&self, x: &Tensor<T, S, K>) -> Self::Output {
        match self.next_mask(x.shape()) {
            Some(mask) => x.hadamard(&mask),
            None => x.clone(),
        }
    }
}

#[cfg(feature = "std")]
impl<T: RealScalar, S: Shape, K: Storage<T, S>> Module<Var<Tensor<T, S, K>>> for Dropout {
    type Output = Var<Tensor<T, S, K>>;
    fn forward(&self, x: &Var<Tensor<T, S, K>>) -> Self::Output {
        match self.next_mask(x.value().shape()) {
            Some(mask) => x.hadamard(&mask),
            None => x.clone(),
        }
    }
}

/// On the GPU: the host's mask stream (the same seed drops the same elements), copied
/// to the device.
#[cfg(feature = "cuda")]
impl<T: CudaElement, S: Shape> Module<Tensor<T, S, Cuda>> for Dropout {
    type Output = Tensor<T, S, Cuda>;
    fn forward(&self, x: &Tensor<T, S, Cuda>) -> Self::Output {
        match self.next_mask::<T, S, Heap>(x.shape()) {
            Some(mask) => x.hadamard(&mask.to_device()),
            None => x.clone(),
        }
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, S: Shape> Module<Var<Tensor<T, S, Cuda>>> for Dropout {
    type Output = Var<Tensor<T, S, Cuda>>;
    fn forward(&self, x: &Var<Tensor<T, S, Cuda>>) -> Self::Output {
        match self.next_mask::<T, S, Heap>(x.value().shape()) {
            Some(mask) => x.hadamard(&Var::constant(mask.to_device())),
            None => x.clone(),
        }
    }
}

/// The number of positions of a window of `kernel` moved `stride` at a time over an
/// axis of `length` padded by `padding` at both ends: ⌊(length + 2·padding −
/// kernel)/stride⌋ + 1, the output size of a convolution or pooling (PyTorch's
/// formula without dilation), for the sizes written in [`Conv2d`]'s, [`MaxPool2d`]'s
/// and [`AvgPool2d`]'s types. A `const fn`: in a type, a block `{ … }` of it, or a
/// constant.
///
/// ```
/// use fluxion::nn::layer::{Conv2d, Flatten, Linear, MaxPool2d, Module, Relu, Sequential, output_size};
/// use fluxion::prelude::*;
///
/// // 28×28 images: a 5×5 convolution with padding 2, then 2×2 max pooling.
/// const CONV: usize = output_size(28, 5, 2, 1);
/// const POOLED: usize = output_size(CONV, 2, 0, 2);
/// type Net = Sequential<(
///     Conv2d<f32, 1, 6, 5, 5, CONV, CONV, Heap, 2>,
///     Relu,
///     MaxPool2d<2, POOLED, POOLED>,
///     Flatten<{ 6 * POOLED * POOLED }>,
///     Linear<f32, { 6 * POOLED * POOLED }, 10>,
/// )>;
/// let net: Net = Sequential((Conv2d::new(1), Relu, MaxPool2d, Flatten, Linear::new(2)));
/// let images: Tensor<f32, (Dyn, Const<1>, Const<28>, Const<28>), Heap> =
///     Tensor::zeros_shaped((Dyn(3), Const, Const, Const));
/// assert_eq!((CONV, POOLED), (28, 14));
/// assert_eq!(net.forward(&images).shape(), (Dyn(3), Const::<10>));
/// ```
///
/// # Panics
/// When the window does not fit once (`kernel` is 0 or more than `length + 2·padding`)
/// or `stride` is 0: in a type or a constant, a compile-time error with this message.
#[track_caller]
pub const fn output_size(length: usize, kernel: usize, padding: usize, stride: usize) -> usize {
    assert!(stride > 0, "output_size: a stride of 0");
    assert!(
        kernel > 0 && kernel <= length + 2 * padding,
        "output_size: the window is longer than the padded axis (or 0)"
    );
    (length + 2 * padding - kernel) / stride + 1
}

/// A 2-D convolution layer on `(B, C, H, W)` images: O kernels of shape
/// `[C, KH, KW]` moved S positions per output (1 by default) over the images padded
/// by P zeros on every side (none by default), and a bias per output channel, giving
/// `(B, O, HO, WO)` with HO = ⌊(H + 2P − KH)/S⌋ + 1 and WO = ⌊(W + 2P − KW)/S⌋ + 1,
/// checked at compile time (for S = 1, HO = H + 2P − KH + 1).
///
/// ```
/// use fluxion::nn::layer::{Conv2d, Module};
/// use fluxion::prelude::*;
///
/// // 3×3 kernels, stride 2, padding 1: 28×28 images give ⌊(28 + 2 − 3)/2⌋ + 1 = 14.
/// let downsample: Conv2d<f32, 1, 8, 3, 3, 14, 14, Heap, 1, 2> = Conv2d::new(7);
/// let images: Tensor<f32, (Dyn, Const<1>, Const<28>, Const<28>), Heap> =
///     Tensor::zeros_shaped((Dyn(4), Const, Const, Const));
/// assert_eq!(downsample.forward(&images).shape(), (Dyn(4), Const::<8>, Const::<14>, Const::<14>));
/// ```
#[derive(Differentiable, Clone)]
pub struct Conv2d<
    T,
    const C: usize,
    const O: usize,
    const KH: usize,
    const KW: usize,
    const HO: usize,
    const WO: usize,
    K = Heap,
    const P: usize = 0,
    const S: usize = 1,
> where
    T: RealScalar,
    K: StorageKind<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)> + StorageKind<T, (Const<O>,)>,
{
    /// The kernels, `[O, C, KH, KW]`.
    pub weight: Tensor<T, (Const<O>, Const<C>, Const<KH>, Const<KW>), K>,
    /// The bias per output channel.
    pub bias: Tensor<T, (Const<O>,), K>,
}

debug_and_eq_by_fields!(
    [
        T, const C: usize, const O: usize, const KH: usize, const KW: usize, const HO: usize,
        const WO: usize, K, const P: usize, const S: usize
    ] Conv2d<T, C, O, KH, KW, HO, WO, K, P, S>, "Conv2d"
    where [
        T: RealScalar,
        K: StorageKind<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)> + StorageKind<T, (Const<O>,)>,
    ]
    { weight: Tensor<T, (Const<O>, Const<C>, Const<KH>, Const<KW>), K>, bias: Tensor<T, (Const<O>,), K> }
);

#[cfg(feature = "cuda")]
impl<
    T: CudaElement,
    const C: usize,
    const O: usize,
    const KH: usize,
    const KW: usize,
    const HO: usize,
    const WO: usize,
    const P: usize,
    const S: usize,
> ToDevice for Conv2d<T, C, O, KH, KW, HO, WO, Heap, P, S>
{
    type OnDevice = Conv2d<T, C, O, KH, KW, HO, WO, Cuda, P, S>;
    fn to_device(&self) -> Self::OnDevice {
        Conv2d { weight: self.weight.to_device(), bias: self.bias.to_device() }
    }
}

#[cfg(feature = "cuda")]
impl<
    T: CudaElement,
    const C: usize,
    const O: usize,
    const KH: usize,
    const KW: usize,
    const HO: usize,
    const WO: usize,
    const P: usize,
    const S: usize,
> ToHost for Conv2d<T, C, O, KH, KW, HO, WO, Cuda, P, S>
{
    type OnHost = Conv2d<T, C, O, KH, KW, HO, WO, Heap, P, S>;
    fn to_host(&self) -> Self::OnHost {
        Conv2d { weight: self.weight.to_host(), bias: self.bias.to_host() }
    }
}

impl<
    T,
    const C: usize,
    const O: usize,
    const KH: usize,
    const KW: usize,
    const HO: usize,
    const WO: usize,
    K,
    const P: usize,
    const S: usize,
> Conv2d<T, C, O, KH, KW, HO, WO, K, P, S>
where
    T: RealScalar,
    K: Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)> + Storage<T, (Const<O>,)>,
{
    /// PyTorch's initialisation: kernels and bias uniform in ±1/√(C·KH·KW), seeded.
    #[cfg(feature = "std")]
    pub fn new(seed: u64) -> Self {
        assert!(
            C * KH * KW > 0,
            "Conv2d::new: a layer needs at least one input channel and a kernel of at least 1×1"
        );
        let bound = T::from_f64(1.0 / ((C * KH * KW) as f64).sqrt());
        Conv2d {
            weight: Tensor::random_uniform(-bound, bound, sub_seed(seed, 0)),
            bias: Tensor::random_uniform(-bound, bound, sub_seed(seed, 1)),
        }
    }

    /// Kernels drawn by `init` with PyTorch's fans for a convolution (fan-in C·KH·KW,
    /// fan-out O·KH·KW), seeded; bias zero.
    ///
    /// # Panics
    /// When C·KH·KW is 0.
    #[cfg(feature = "std")]
    pub fn init(init: Init, seed: u64) -> Self {
        Conv2d {
            weight: init.tensor(Default::default(), C * KH * KW, O * KH * KW, seed),
            bias: Tensor::full(T::zero()),
        }
    }

    /// The forward pass on a batch of images, written for static mode
    /// (`#[differentiable]`).
    #[differentiable]
    pub fn apply_batch<B: Dim, const H: usize, const W: usize>(
        &self,
        x: &Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>,
    ) -> Tensor<T, (B, Const<O>, Const<HO>, Const<WO>), K>
    where
        Const<H>: ConvolvesTo<KH, P, HO, S>,
        Const<W>: ConvolvesTo<KW, P, WO, S>,
        K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<O>, Const<HO>, Const<WO>)>,
    {
        x.conv2d_strided(&self.weight, Stride::<S>, Padding::<P>).add_channels(&self.bias)
    }
}

crate::static_module!(
    impl[
        T, const C: usize, const O: usize, const KH: usize, const KW: usize, const HO: usize,
        const WO: usize, K, const P: usize, const S: usize, B: Dim, const H: usize, const W: usize
    ] Conv2d<T, C, O, KH, KW, HO, WO, K, P, S>:
        apply_batch(Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>) -> Tensor<T, (B, Const<O>, Const<HO>, Const<WO>), K>;
    where [
        T: RealScalar,
        K: Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)> + Storage<T, (Const<O>,)>,
        Const<H>: ConvolvesTo<KH, P, HO, S>,
        Const<W>: ConvolvesTo<KW, P, WO, S>,
        K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<O>, Const<HO>, Const<WO>)>,
    ]
);

/// One forward expression for every form of the layer: `$x` the input with the
/// layer's channels.
macro_rules! conv2d_forward {
    ($layer:expr, $x:expr) => {
        $x.conv2d_strided(&$layer.weight, Stride::<S>, Padding::<P>).add_channels(&$layer.bias)
    };
}

forward_pass! {
    impl[
        T, B: Dim, Ch, const C: usize, const H: usize, const W: usize, const O: usize,
        const KH: usize, const KW: usize, const HO: usize, const WO: usize, K, const P: usize,
        const S: usize
    ] Conv2d<T, C, O, KH, KW, HO, WO, K, P, S>, traced Conv2dTraced<T, C, O, KH, KW, HO, WO, K, P, S>;
    Tensor<T, (B, Ch, Const<H>, Const<W>), K> => Tensor<T, (B, Const<O>, Const<HO>, Const<WO>), K>;
    where [
        T: RealScalar,
        Ch: Dim + SameChannelCount<Const<C>>,
        Const<H>: ConvolvesTo<KH, P, HO, S>,
        Const<W>: ConvolvesTo<KW, P, WO, S>,
        K: Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
            + Storage<T, (Const<O>,)>
            + Storage<T, (B, Ch, Const<H>, Const<W>)>
            + Storage<T, (B, Const<C>, Const<H>, Const<W>)>
            + Storage<T, (B, Const<O>, Const<HO>, Const<WO>)>,
    ]
    |layer, x| conv2d_forward!(layer, FitChannels::<Const<C>>::fit_channels(x))
}

forward_pass! {
    #[cfg(feature = "cuda")]
    impl[
        T: CudaElement, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, const H: usize,
        const W: usize, const O: usize, const KH: usize, const KW: usize, const HO: usize, const WO: usize,
        const P: usize, const S: usize
    ] Conv2d<T, C, O, KH, KW, HO, WO, Cuda, P, S>, traced Conv2dTraced<T, C, O, KH, KW, HO, WO, Cuda, P, S>;
    Tensor<T, (B, Ch, Const<H>, Const<W>), Cuda> => Tensor<T, (B, Const<O>, Const<HO>, Const<WO>), Cuda>;
    where [Const<H>: ConvolvesTo<KH, P, HO, S>, Const<W>: ConvolvesTo<KW, P, WO, S>,]
    |layer, x| conv2d_forward!(layer, FitChannels::<Const<C>>::fit_channels(x))
}

/// The lifted layer's forward pass on a batch of dual images (`$input`, a tensor or
/// a traced one), from the plain layer's expression.
macro_rules! conv2d_dual_forward {
    ($(#[$attribute:meta])* $layer:ident: $input:ty => $output:ty) => {
        $(#[$attribute])*
        impl<
            T,
            B: Dim,
            Ch: Dim + SameChannelCount<Const<C>>,
            const C: usize,
            const H: usize,
            const W: usize,
            const O: usize,
            const KH: usize,
            const KW: usize,
            const HO: usize,
            const WO: usize,
            K,
            const P: usize,
            const S: usize,
        > Module<$input> for $layer<T, C, O, KH, KW, HO, WO, K, P, S>
        where
            T: RealScalar,
            Const<H>: ConvolvesTo<KH, P, HO, S>,
            Const<W>: ConvolvesTo<KW, P, WO, S>,
            K: Storage<T, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
                + Storage<T, (Const<O>,)>
                + Storage<Dual<T>, (Const<O>, Const<C>, Const<KH>, Const<KW>)>
                + Storage<Dual<T>, (Const<O>,)>
                + Storage<Dual<T>, (B, Ch, Const<H>, Const<W>)>
                + Storage<Dual<T>, (B, Const<C>, Const<H>, Const<W>)>
                + Storage<Dual<T>, (B, Const<O>, Const<HO>, Const<WO>)>,
        {
            type Output = $output;

            fn forward(&self, x: &$input) -> Self::Output {
                conv2d_forward!(self, FitChannels::<Const<C>>::fit_channels(x))
            }
        }
    };
}

conv2d_dual_forward!(
    /// Forward mode: the lifted layer on a batch of dual images.
    Conv2dLifted: Tensor<Dual<T>, (B, Ch, Const<H>, Const<W>), K>
        => Tensor<Dual<T>, (B, Const<O>, Const<HO>, Const<WO>), K>
);
conv2d_dual_forward!(
    /// Forward over reverse (`hvp`, `coordinate_hessian` of a loss of the
    /// parameters): the lifted layer traced, on a traced batch of dual images.
    #[cfg(feature = "std")]
    Conv2dLiftedTraced: Var<Tensor<Dual<T>, (B, Ch, Const<H>, Const<W>), K>>
        => Var<Tensor<Dual<T>, (B, Const<O>, Const<HO>, Const<WO>), K>>
);

/// A pooling layer over K×K windows moved S per output over the images padded by P:
/// the struct, its static-mode forward pass and its forward passes on host, traced,
/// GPU and GPU-dual batches, all calling the image operation `$pool` (a strided one).
macro_rules! pooling_layer {
    ($(#[$doc:meta])* $name:ident, $pool:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name<const K: usize, const HO: usize, const WO: usize, const P: usize = 0, const S: usize = K>;

        parameter_free!([const K: usize, const HO: usize, const WO: usize, const P: usize, const S: usize] $name<K, HO, WO, P, S>);

        impl<const KS: usize, const HO: usize, const WO: usize, const P: usize, const S: usize> $name<KS, HO, WO, P, S> {
            /// The forward pass on a batch of images, written for static mode
            /// (`#[differentiable]`; the layer's tangent is `()`).
            #[differentiable]
            pub fn apply_batch<T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, K>(
                &self,
                x: &Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>,
            ) -> Tensor<T, (B, Const<C>, Const<HO>, Const<WO>), K>
            where
                Const<H>: PoolsTo<KS, HO, P, S>,
                Const<W>: PoolsTo<KS, WO, P, S>,
                K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
            {
                x.$pool(Window::<KS>, Stride::<S>, Padding::<P>)
            }
        }

        crate::static_module!(
            impl[
                T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize,
                const KS: usize, const HO: usize, const WO: usize, const P: usize, const S: usize, K
            ] $name<KS, HO, WO, P, S>:
                apply_batch(Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>) -> Tensor<T, (B, Const<C>, Const<HO>, Const<WO>), K>;
            where [
                Const<H>: PoolsTo<KS, HO, P, S>,
                Const<W>: PoolsTo<KS, WO, P, S>,
                K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
            ]
        );

        forward_pass! {
            impl[
                T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize,
                const KS: usize, const HO: usize, const WO: usize, const P: usize, const S: usize, K
            ] $name<KS, HO, WO, P, S>, traced $name<KS, HO, WO, P, S>;
            Tensor<T, (B, Const<C>, Const<H>, Const<W>), K> => Tensor<T, (B, Const<C>, Const<HO>, Const<WO>), K>;
            where [
                Const<H>: PoolsTo<KS, HO, P, S>,
                Const<W>: PoolsTo<KS, WO, P, S>,
                K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<C>, Const<HO>, Const<WO>)>,
            ]
            |_layer, x| x.$pool(Window::<KS>, Stride::<S>, Padding::<P>)
        }

        forward_pass! {
            #[cfg(feature = "cuda")]
            impl[
                T: CudaElement, B: Dim, const C: usize, const H: usize, const W: usize,
                const KS: usize, const HO: usize, const WO: usize, const P: usize, const S: usize
            ] $name<KS, HO, WO, P, S>, traced $name<KS, HO, WO, P, S>;
            Tensor<T, (B, Const<C>, Const<H>, Const<W>), Cuda> => Tensor<T, (B, Const<C>, Const<HO>, Const<WO>), Cuda>;
            where [Const<H>: PoolsTo<KS, HO, P, S>, Const<W>: PoolsTo<KS, WO, P, S>,]
            |_layer, x| x.$pool(Window::<KS>, Stride::<S>, Padding::<P>)
        }

        /// Forward mode on the GPU.
        #[cfg(feature = "cuda")]
        impl<
            T: CudaElement,
            B: Dim,
            const C: usize,
            const H: usize,
            const W: usize,
            const K: usize,
            const HO: usize,
            const WO: usize,
            const P: usize,
            const S: usize,
        > Module<CudaDual<T, (B, Const<C>, Const<H>, Const<W>)>> for $name<K, HO, WO, P, S>
        where
            Const<H>: PoolsTo<K, HO, P, S>,
            Const<W>: PoolsTo<K, WO, P, S>,
        {
            type Output = CudaDual<T, (B, Const<C>, Const<HO>, Const<WO>)>;

            fn forward(&self, x: &CudaDual<T, (B, Const<C>, Const<H>, Const<W>)>) -> Self::Output {
                x.$pool(Window::<K>, Stride::<S>, Padding::<P>)
            }
        }
    };
}

pooling_layer!(
    /// Max pooling of `(B, C, H, W)` images over K×K windows, giving `(B, C, HO, WO)`:
    /// with stride K and no padding by default (`MaxPool2d<2, 14, 14>`, HO = ⌊H/K⌋);
    /// the last two parameters are the padding P and the stride S, as `Conv2d`'s
    /// (`MaxPool2d<3, 56, 56, 1, 2>` is PyTorch's `MaxPool2d(3, stride=2, padding=1)`
    /// of a ResNet's stem, HO = ⌊(H + 2P − K)/S⌋ + 1, 2P ≤ K; padding is never the
    /// maximum). Sizes are checked at compile time. No parameters. The derivative
    /// goes to each window's first maximum.
    MaxPool2d,
    max_pool2d_strided
);

pooling_layer!(
    /// Average pooling of `(B, C, H, W)` images over K×K windows, giving
    /// `(B, C, HO, WO)`: the mean of each window, with stride K and no padding by
    /// default (`AvgPool2d<2, 14, 14>`, HO = ⌊H/K⌋, PyTorch's `AvgPool2d(2)`); the last
    /// two parameters are the padding P and the stride S, as for [`MaxPool2d`]. A
    /// padded window's sum is divided by K², padding counting as zeros (PyTorch's
    /// default `count_include_pad=True`). Sizes are checked at compile time. No
    /// parameters.
    AvgPool2d,
    avg_pool2d_strided
);

/// Each image `(C, H, W)` of a batch as one row of F = C·H·W features, between
/// image layers and [`Linear`]. No parameters. F = C·H·W is checked when the program
/// is built (`cargo build` or `cargo test` report it; `cargo check` does not).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flatten<const F: usize>;

parameter_free!([const F: usize] Flatten<F>);

impl<const F: usize> Flatten<F> {
    /// The forward pass on a batch of images, written for static mode
    /// (`#[differentiable]`; the layer's tangent is `()`).
    #[differentiable]
    pub fn apply_batch<T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, K>(
        &self,
        x: &Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>,
    ) -> Tensor<T, (B, Const<F>), K>
    where
        K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<F>)>,
    {
        x.flatten_images::<F>()
    }
}

crate::static_module!(
    impl[T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, const F: usize, K] Flatten<F>:
        apply_batch(Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>) -> Tensor<T, (B, Const<F>), K>;
    where [K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<F>)>]
);

forward_pass! {
    impl[T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, const F: usize, K]
        Flatten<F>, traced Flatten<F>;
    Tensor<T, (B, Const<C>, Const<H>, Const<W>), K> => Tensor<T, (B, Const<F>), K>;
    where [K: Storage<T, (B, Const<C>, Const<H>, Const<W>)> + Storage<T, (B, Const<F>)>,]
    |_layer, x| x.flatten_images()
}

forward_pass! {
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, B: Dim, const C: usize, const H: usize, const W: usize, const F: usize]
        Flatten<F>, traced Flatten<F>;
    Tensor<T, (B, Const<C>, Const<H>, Const<W>), Cuda> => Tensor<T, (B, Const<F>), Cuda>;
    where []
    |_layer, x| x.flatten_images()
}

/// The mean of each channel over its image: `(B, C, H, W)` → `(B, C)`, the head of a
/// ResNet before its last [`Linear`] (PyTorch's `AdaptiveAvgPool2d(1)` then
/// `Flatten`; Keras's `GlobalAveragePooling2D`). No parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalAvgPool2d;

parameter_free!([] GlobalAvgPool2d);

impl GlobalAvgPool2d {
    /// The forward pass on a batch of images, written for static mode
    /// (`#[differentiable]`; the layer's tangent is `()`).
    #[differentiable]
    pub fn apply_batch<T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, K>(
        &self,
        x: &Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>,
    ) -> Tensor<T, (B, Const<C>), K>
    where
        K: Storage<T, (B, Const<C>, Const<H>, Const<W>)>
            + Storage<T, (B, Const<C>, Const<H>)>
            + Storage<T, (B, Const<C>)>,
    {
        x.mean_axis(Axis::<3>).mean_axis(Axis::<2>)
    }
}

crate::static_module!(
    impl[T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, K] GlobalAvgPool2d:
        apply_batch(Tensor<T, (B, Const<C>, Const<H>, Const<W>), K>) -> Tensor<T, (B, Const<C>), K>;
    where [
        K: Storage<T, (B, Const<C>, Const<H>, Const<W>)>
            + Storage<T, (B, Const<C>, Const<H>)>
            + Storage<T, (B, Const<C>)>
    ]
);

forward_pass! {
    impl[T: RealScalar, B: Dim, const C: usize, const H: usize, const W: usize, K]
        GlobalAvgPool2d, traced GlobalAvgPool2d;
    Tensor<T, (B, Const<C>, Const<H>, Const<W>), K> => Tensor<T, (B, Const<C>), K>;
    where [
        K: Storage<T, (B, Const<C>, Const<H>, Const<W>)>
            + Storage<T, (B, Const<C>, Const<H>)>
            + Storage<T, (B, Const<C>)>,
    ]
    |_layer, x| x.mean_axis(Axis::<3>).mean_axis(Axis::<2>)
}

forward_pass! {
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, B: Dim, const C: usize, const H: usize, const W: usize]
        GlobalAvgPool2d, traced GlobalAvgPool2d;
    Tensor<T, (B, Const<C>, Const<H>, Const<W>), Cuda> => Tensor<T, (B, Const<C>), Cuda>;
    where []
    |_layer, x| x.mean_axis(Axis::<3>).mean_axis(Axis::<2>)
}

/// Forward mode on the GPU: each layer's lifted twin on a batch of [`CudaDual`]s (what
/// [`jvp`](crate::autodiff::jvp) lifts a GPU model and batch to), with the layer's
/// one forward expression.
#[cfg(feature = "cuda")]
mod gpu_forward_mode {
    use super::*;

    impl<T: CudaElement, R: Dim, C: Dim> AddBias<CudaDual<T, (R, C)>> for CudaDual<T, (C,)> {
        #[track_caller]
        fn add_to(&self, x: CudaDual<T, (R, C)>) -> CudaDual<T, (R, C)> {
            x.add_rows(self)
        }
    }

    impl<T: CudaElement, R: Dim, const I: usize, const O: usize, B> Module<CudaDual<T, (R, Const<I>)>>
        for LinearLifted<T, I, O, Cuda, B>
    where
        B: BiasKind<T, O, Cuda, Bias: Lift<Lifted: AddBias<CudaDual<T, (R, Const<O>)>>>>,
    {
        type Output = CudaDual<T, (R, Const<O>)>;

        #[track_caller]
        fn forward(&self, x: &CudaDual<T, (R, Const<I>)>) -> Self::Output {
            linear_forward!(self, x)
        }
    }

    impl<T: CudaElement, B: Dim, const D: usize> Module<CudaDual<T, (B, Const<D>)>>
        for LayerNormLifted<T, D, Cuda>
    {
        type Output = CudaDual<T, (B, Const<D>)>;

        #[track_caller]
        fn forward(&self, x: &CudaDual<T, (B, Const<D>)>) -> Self::Output {
            x.normalize_rows(self.epsilon).mul_rows(&self.weight).add_rows(&self.bias)
        }
    }

    impl<
        T: CudaElement,
        B: Dim,
        const C: usize,
        const H: usize,
        const W: usize,
        const O: usize,
        const KH: usize,
        const KW: usize,
        const HO: usize,
        const WO: usize,
        const P: usize,
        const S: usize,
    > Module<CudaDual<T, (B, Const<C>, Const<H>, Const<W>)>>
        for Conv2dLifted<T, C, O, KH, KW, HO, WO, Cuda, P, S>
    where
        Const<H>: ConvolvesTo<KH, P, HO, S>,
        Const<W>: ConvolvesTo<KW, P, WO, S>,
    {
        type Output = CudaDual<T, (B, Const<O>, Const<HO>, Const<WO>)>;

        fn forward(&self, x: &CudaDual<T, (B, Const<C>, Const<H>, Const<W>)>) -> Self::Output {
            conv2d_forward!(self, x)
        }
    }

    impl<T: CudaElement, B: Dim, const C: usize, const H: usize, const W: usize, const F: usize>
        Module<CudaDual<T, (B, Const<C>, Const<H>, Const<W>)>> for Flatten<F>
    {
        type Output = CudaDual<T, (B, Const<F>)>;

        fn forward(&self, x: &CudaDual<T, (B, Const<C>, Const<H>, Const<W>)>) -> Self::Output {
            x.flatten_images()
        }
    }

    impl<T: CudaElement, B: Dim, const C: usize, const H: usize, const W: usize>
        Module<CudaDual<T, (B, Const<C>, Const<H>, Const<W>)>> for GlobalAvgPool2d
    {
        type Output = CudaDual<T, (B, Const<C>)>;

        fn forward(&self, x: &CudaDual<T, (B, Const<C>, Const<H>, Const<W>)>) -> Self::Output {
            x.mean_axis(Axis::<3>).mean_axis(Axis::<2>)
        }
    }

    impl<T: CudaElement, const V: usize, const D: usize> Module<[usize]> for EmbeddingLifted<T, V, D, Cuda> {
        type Output = CudaDual<T, (Dyn, Const<D>)>;

        /// # Panics
        /// When an index is V or more.
        #[track_caller]
        fn forward(&self, indices: &[usize]) -> Self::Output {
            self.weight.gather_rows(indices)
        }
    }

    /// The same mask on the value and the tangent.
    impl<T: CudaElement, S: Shape> Module<CudaDual<T, S>> for Dropout {
        type Output = CudaDual<T, S>;

        fn forward(&self, x: &CudaDual<T, S>) -> Self::Output {
            match self.next_mask::<T, S, Heap>(x.value.shape()) {
                Some(mask) => {
                    let mask = mask.to_device();
                    CudaDual { value: x.value.hadamard(&mask), tangent: x.tangent.hadamard(&mask) }
                }
                None => x.clone(),
            }
        }
    }
}

#[cfg(feature = "std")]
mod batch_norm;
#[cfg(feature = "std")]
pub use batch_norm::{
    BatchNorm, BatchNormLifted, BatchNormLiftedTraced, BatchNormTangent, BatchNormTraced, ChannelVector,
    ImageNormStorage, InverseDeviation, RunningEstimate,
};

mod group_norm;
pub use group_norm::{GroupNorm, GroupNormLifted, GroupNormStorage, GroupNormTangent};
#[cfg(feature = "std")]
pub use group_norm::{GroupNormLiftedTraced, GroupNormTraced};

mod attention;
pub use attention::{
    AttentionModule, MultiHeadAttention, MultiHeadAttentionLifted, MultiHeadAttentionTangent,
};
#[cfg(feature = "std")]
pub use attention::{MultiHeadAttentionLiftedTraced, MultiHeadAttentionTraced};
