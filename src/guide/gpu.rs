//! # GPU tensors (feature `cuda`)
//!
//! `Tensor<T, S, Cuda>` keeps `f32`, `f64`, `Complex32` or `Complex64` elements in
//! NVIDIA GPU memory, with the
//! same shapes, products and compile-time errors as the host kinds. Data moves only
//! when asked (`to_device`, `to_host`); mixing a host and a GPU tensor in one
//! operation does not compile. Operations keep their names, and `Var`s of GPU tensors
//! record GPU rules, so a model whose storage type says `Cuda` trains on the GPU (a
//! plain GPU tensor is a constant beside a traced one on either side of `+` and `−`
//! and on the right of `hadamard`, `dot`, the matrix products and the row
//! operations, as on the host; so is a plain batch given to a traced layer).
//!
//! The GPU tensors' methods that share a name with a host tensor's (`exp`, `scale`,
//! `sum_axis`, `softmax`, …) are methods of traits in the prelude (`CudaTensorOps`,
//! `CudaRealOps`, `CudaMatrixOps`, …; on traced tensors `CudaVarOps`, …): import the
//! prelude, or the trait the compiler names. The host's are inherent methods, which
//! the compiler tries first, and each operator (`+`, `−`, `*`, `/`) has one impl for
//! every storage kind, so turning the feature on changes nothing for host code, even
//! where a tensor's storage kind is inferred only later in the function.
//!
//! ## Library layers on the GPU
//!
//! Every library layer takes GPU batches, plain and traced: `Linear`, `LayerNorm`, `GroupNorm`,
//! `Conv2d` and the pooling layers (any window, stride and padding), `GlobalAvgPool2d`, `Flatten`,
//! `Embedding` (the same host slice of indices), `MultiHeadAttention` (with `forward_padded` and
//! `forward_to`: the key lengths stay a host slice), the elementwise layers, `Softmax`,
//! `Dropout` (the host's mask stream, copied), `Sequential`, `Residual` and
//! `Checkpointed`; the `nn::loss` losses and the optimisers
//! take GPU models, and `argmax` and `accuracy` take GPU scores (one kernel; only
//! the picked columns are copied back). `to_device()` (`nn::layer::ToDevice`, in the
//! prelude) copies a host layer, a tuple of layers or a whole `Sequential`, and
//! `to_host()` (`ToHost`) copies a GPU one back (PyTorch's `model.cpu()`). A model
//! struct of your own, generic over its storage kind, gets both from
//! `#[derive(Differentiable)]` with `#[storage_kind(K)]` (each field that names `K`,
//! each layer or parameter and each buffer copied by its own `to_device`, the other
//! constants cloned):
//!
//! ```
//! use fluxion::nn::layer::{BiasKind, LayerNorm, Linear, Module, WithBias, module};
//! use fluxion::prelude::*;
//!
//! #[derive(Clone, Differentiable)]
//! #[storage_kind(K)]
//! struct Encoder<K>
//! where
//!     K: StorageKind<f32, (Const<8>, Const<4>)> + StorageKind<f32, (Const<8>,)>,
//!     WithBias: BiasKind<f32, 8, K>,
//! {
//!     embed: Linear<f32, 4, 8, K>,
//!     norm: LayerNorm<f32, 8, K>,
//! }
//!
//! /// The forward pass once, for host and GPU tensors (`storage_kind(K)`: no bound
//! /// on `K` need say what the layers take; static mode on the host).
//! #[module(storage_kind(K))]
//! impl<K> Encoder<K>
//! where
//!     K: StorageKind<f32, (Const<8>, Const<4>)> + StorageKind<f32, (Const<8>,)>,
//!     WithBias: BiasKind<f32, 8, K>,
//! {
//!     fn forward(&self, x: &Tensor<f32, (Dyn, Const<4>), K>) -> Tensor<f32, (Dyn, Const<8>), K> {
//!         self.norm.forward(&self.embed.forward(x)).tanh()
//!     }
//! }
//!
//! let host = Encoder::<Heap> { embed: Linear::new(1), norm: LayerNorm::default() };
//! let x = Tensor::<f32, (Dyn, Const<4>), Heap>::full_shaped((Dyn(3), Const), 0.5);
//! # #[cfg(feature = "cuda")]
//! # if fluxion::backend::cuda::Device::get().is_ok() {
//! let device: Encoder<Cuda> = host.to_device();
//! let on_the_gpu = device.forward(&x.to_device()).to_host::<Heap>();
//! assert!(on_the_gpu.iter().zip(host.forward(&x).iter()).all(|(a, b)| (a - b).abs() < 1e-5));
//! let back: Encoder<Heap> = device.to_host();
//! assert_eq!(back.embed.weight.as_slice(), host.embed.weight.as_slice());
//! # }
//! ```
//!
//! Parameter
//! files and checkpoints (`nn::io::save`, `load`, `save_checkpoint`, …) take GPU
//! models and optimisers as they are, through host copies: a file saved from the GPU
//! loads into the host model and back.
//!
//! ```
//! # #[cfg(feature = "cuda")]
//! # fn main() {
//! # if fluxion::backend::cuda::Device::get().is_err() {
//! #     assert!(std::env::var_os("FLUXION_REQUIRE_GPU").is_none(), "a GPU is required here");
//! #     return; // no GPU here: the example is compiled, not run
//! # }
//! use fluxion::backend::cuda::Cuda;
//! use fluxion::nn::layer::{Linear, Relu, Sequential};
//! use fluxion::nn::loss::{Reduction, cross_entropy};
//! use fluxion::nn::optim::{Optimizer, Sgd, SgdConfig};
//! use fluxion::prelude::*;
//!
//! type Mlp = Sequential<(Linear<f32, 784, 256, Cuda>, Relu, Linear<f32, 256, 10, Cuda>)>;
//! let host = Sequential((Linear::<f32, 784, 256>::new(1), Relu, Linear::<f32, 256, 10>::new(2)));
//! let mut model: Mlp = host.to_device();
//! let batch = Var::constant(Tensor::<f32, (Dyn, Const<784>), Heap>::zeros_shaped((Dyn(128), Const)).to_device());
//! let classes = vec![0; 128];
//! let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.01, ..SgdConfig::default() });
//! let (loss, gradient) =
//!     value_and_grad(|m: <Mlp as Trace>::Traced| cross_entropy(&m.forward(&batch), &classes, Reduction::Mean), &model);
//! sgd.step(&mut model, &gradient);
//! # }
//! # #[cfg(not(feature = "cuda"))]
//! # fn main() {}
//! ```
//!
//! ## One training loop for every storage kind
//!
//! A training loop written over the model type, not over the storage kind, runs on
//! the host and on the GPU unchanged. Four bounds say what it needs: the model can be
//! traced, its traced twin maps the batch `X` to logits `[B, C]` on some kind `K`,
//! `K` has the row losses, and the optimiser takes the model. `tests/cuda.rs` trains
//! a `Sequential` MLP and a small CNN with such a function and checks that the GPU
//! follows the host's loss curve:
//!
//! ```
//! use fluxion::autodiff::RealOutput;
//! use fluxion::nn::layer::{Linear, Module, Relu, Sequential};
//! use fluxion::nn::loss::{Reduction, RowLosses, cross_entropy};
//! use fluxion::nn::optim::{Optimizer, Sgd, SgdConfig};
//! use fluxion::prelude::*;
//!
//! /// `steps` optimiser steps on the mean cross-entropy; the loss before each.
//! fn train<M, X, T, B, C, K>(
//!     model: &mut M,
//!     optimizer: &mut impl Optimizer<M>,
//!     x: &X,
//!     classes: &[usize],
//!     steps: usize,
//! ) -> Vec<T>
//! where
//!     M: Trace,
//!     M::Traced: Module<X, Output = Var<Tensor<T, (B, C), K>>>,
//!     T: RealOutput,
//!     B: Dim,
//!     C: Dim,
//!     K: RowLosses<T, B, C>,
//! {
//!     (0..steps)
//!         .map(|_| {
//!             let forward = |m: M::Traced| cross_entropy(&m.forward(x), classes, Reduction::Mean);
//!             let (loss, gradient) = value_and_grad(forward, &*model);
//!             optimizer.step(model, &gradient);
//!             loss
//!         })
//!         .collect()
//! }
//!
//! let mut model = Sequential((Linear::<f32, 4, 16>::new(1), Relu, Linear::<f32, 16, 3>::new(2)));
//! let x = Tensor::<f32, (Dyn, Const<4>), Heap>::random_uniform_shaped((Dyn(32), Const), -1.0, 1.0, 3);
//! let classes: Vec<usize> = (0..32).map(|b| b % 3).collect();
//! let config = SgdConfig { learning_rate: 0.1, ..SgdConfig::default() };
//! # #[cfg(feature = "cuda")]
//! # let on_the_gpu = fluxion::backend::cuda::Device::get().is_ok();
//! # #[cfg(feature = "cuda")]
//! if on_the_gpu {
//!     let mut device_model = model.to_device();
//!     let curve = train(&mut device_model, &mut Sgd::new(config), &x.to_device(), &classes, 5);
//!     assert!(curve[4] < curve[0]);
//! }
//! let curve = train(&mut model, &mut Sgd::new(config), &x, &classes, 5);
//! assert!(curve[4] < curve[0]);
//! ```
//!
//! The traced layers take a plain batch (a constant) as here, or a `Var` one. A model
//! whose forward pass calls tensor methods itself (`matmul`, `relu`, …) rather than
//! layers is written for one storage kind, since those methods belong to each kind;
//! a `macro_rules!` that takes the kind instantiates it for both.
//!
//! The optimisers' updates run on the GPU too: each is written once over any real
//! scalar (a `CoordinateUpdate`), run in one loop on the host and recorded as one
//! in-place kernel per parameter tensor on the GPU.
//!
//! A convolution is one cuBLAS product on the unfolded images. An `Embedding` cannot
//! sit behind another layer but can open a `Sequential`: its input is a slice.
//!
//! ## Forward mode on the GPU
//!
//! `jvp` and `linearize` take GPU tensors: the lifted `CudaDual<T, S>` (in
//! `fluxion::autodiff`; `T` the element type, `S` the shape) has the tensor's
//! operations (elementary functions, arithmetic, products, reductions along an axis,
//! softmax and its relatives, layout changes, the row and image operations), and
//! every library layer's lifted twin takes a batch of them. A constant operand is
//! `CudaDual::constant(tensor)`; a model held constant is
//! `model.lift(&model.zero_tangent())` (`Lift` is in the prelude):
//!
//! ```
//! # #[cfg(feature = "cuda")]
//! # fn main() {
//! # if fluxion::backend::cuda::Device::get().is_err() {
//! #     assert!(std::env::var_os("FLUXION_REQUIRE_GPU").is_none(), "a GPU is required here");
//! #     return; // no GPU here: the example is compiled, not run
//! # }
//! use fluxion::autodiff::CudaDual;
//! use fluxion::backend::cuda::Cuda;
//! use fluxion::nn::layer::{Linear, Module, Relu, Sequential};
//! use fluxion::prelude::*;
//!
//! type Mlp = Sequential<(Linear<f32, 4, 8, Cuda>, Relu, Linear<f32, 8, 3, Cuda>)>;
//! let model: Mlp = Sequential((Linear::<f32, 4, 8>::new(1), Relu, Linear::<f32, 8, 3>::new(2))).to_device();
//! let lifted = model.lift(&model.zero_tangent()); // the parameters without tangents
//! let batch = Tensor::<f32, (Dyn, Const<4>), Heap>::full_shaped((Dyn(16), Const), 0.5).to_device();
//! let direction = batch.clone();
//! // d/dε Σ model(x + ε·v) at ε = 0: the logits' sum and its directional derivative.
//! let (total, derivative) = jvp(|x: CudaDual<f32, (Dyn, Const<4>)>| lifted.forward(&x).sum(), &batch, &direction);
//! # }
//! # #[cfg(not(feature = "cuda"))]
//! # fn main() {}
//! ```
//!
//! ## Complex tensors on the GPU
//!
//! `Complex32` and `Complex64` tensors move to the GPU like real ones. Products are
//! cuBLAS's complex ones, `inner` conjugates its left operand as on the host, and a
//! real loss of complex parameters has the host's gradient ∂L/∂x + i·∂L/∂y:
//!
//! ```
//! # #[cfg(feature = "cuda")] {
//! # if fluxion::backend::cuda::Device::get().is_err() {
//! #     assert!(std::env::var_os("FLUXION_REQUIRE_GPU").is_none(), "a GPU is required here");
//! #     return; // no GPU here: the example is compiled, not run
//! # }
//! use fluxion::prelude::*;
//!
//! let a: Matrix<Complex64, 6, 4, Heap> = Matrix::random_uniform(-1.0, 1.0, 1);
//! let b: Vector<Complex64, 6, Heap> = Vector::random_uniform(-1.0, 1.0, 2);
//! let z: Vector<Complex64, 4, Heap> = Vector::random_uniform(-1.0, 1.0, 3);
//! let (a, b) = (Var::constant(a.to_device()), Var::constant(b.to_device()));
//! // ‖A·z − b‖², a real loss: its gradient is 2Aᴴ(A·z − b).
//! let gradient = grad(|z: Var<Vector<Complex64, 4, Cuda>>| (&a.matmul(&z) - &b).norm_sqr().sum(), &z.to_device());
//! let overlap: Complex64 = gradient.inner(&gradient); // Σ conj(gᵢ)·gᵢ, real and ≥ 0
//! # }
//! ```
//!
//! The elementary functions (`exp`, `ln`, `sqrt`, …) run on complex GPU tensors as
//! the host's definitions recorded on complex symbols. Layout changes (`transpose`, `permute`,
//! `reshape`, `concat`, `narrow`, `broadcast`), `add_rows`, `gather_rows`, `outer`,
//! `matmul_transposed`, `transposed_matmul`, `mul_rows` and `device_full` take
//! complex elements too.
//!
//! Forward mode takes complex GPU tensors as the host's `Dual<Complex64>` does: the
//! tangent is complex, ż ↦ f′(z)·ż for the elementary functions and products (seed
//! ż = 1 for the complex derivative of a holomorphic f), `conj`, `re` and `im` map ż
//! as they map z, and `abs` and `norm_sqr` give real tangents
//! (Re(conj(z)·ż)/|z| and 2·Re(conj(z)·ż)):
//!
//! ```
//! # #[cfg(feature = "cuda")]
//! # fn main() {
//! # if fluxion::backend::cuda::Device::get().is_err() {
//! #     assert!(std::env::var_os("FLUXION_REQUIRE_GPU").is_none(), "a GPU is required here");
//! #     return; // no GPU here: the example is compiled, not run
//! # }
//! use fluxion::autodiff::{CudaDual, jvp};
//! use fluxion::prelude::*;
//!
//! let z: Vector<Complex64, 3, Heap> = Vector::random_uniform(-1.0, 1.0, 4);
//! let ones = Vector::<Complex64, 3, Heap>::full(Complex64::new(1.0, 0.0)).to_device();
//! // Σ exp(zᵢ)·zᵢ and its complex derivative along ż = 1: Σ exp(zᵢ)·(zᵢ + 1).
//! let (value, derivative) =
//!     jvp(|z: CudaDual<Complex64, (Const<3>,)>| z.exp().hadamard(&z).sum(), &z.to_device(), &ones);
//! # }
//! # #[cfg(not(feature = "cuda"))]
//! # fn main() {}
//! ```
//!
//! ## Matrix-product precision
//!
//! `f32` products run in full `f32` by default. `Device::get()?.set_matmul_precision(
//! MatmulPrecision::Tf32)` (or `Bf16`; both in `fluxion::backend::cuda`) lets cuBLAS
//! use tensor cores: TF32 rounds the operands to a 10-bit mantissa, BF16 to 8 bits
//! (a kernel rounds them first), with `f32` sums; `MatmulPrecision::Full` goes back.
//! The setting is the device's, for every later product; `f64` and `Complex64`
//! products ignore it.
//!
//! Elementwise kernels are generated from the Rust definitions the CPU runs (the
//! elementary functions' table, a `ScalarFunction`): the definition runs once on a
//! symbolic scalar and the recorded formula is compiled by NVRTC. A `FusedFunction`
//! of several tensors is one kernel, and its derivative kernels are recorded from
//! the same definition run on symbolic duals.
//!
//! Separate elementwise operations on real tensors fuse without being asked: the
//! result of `exp`, `+`, `−`, `hadamard`, scaling, `relu` or a `ScalarFunction`
//! (`softplus`, `silu`, `clamp`, … are ones)
//! (on complex tensors: `+`, `−` and real scaling) waits as a formula
//! until something else reads it (a reduction, a product, `to_host`, an in-place
//! update), and a chain of them is computed then by one generated kernel:
//!
//! ```
//! # #[cfg(feature = "cuda")] {
//! # if fluxion::backend::cuda::Device::get().is_err() {
//! #     assert!(std::env::var_os("FLUXION_REQUIRE_GPU").is_none(), "a GPU is required here");
//! #     return; // no GPU here: the example is compiled, not run
//! # }
//! use fluxion::backend::cuda::Device;
//! use fluxion::prelude::*;
//!
//! let x = Vector::<f32, 4, Heap>::from_array([0.5, 1.0, 1.5, 2.0]).to_device();
//! let y = Vector::<f32, 4, Heap>::full(1.0).to_device();
//! let device = Device::get().unwrap();
//! let before = device.kernel_launches();
//! let z = (&(&x.exp() * 2.0) - &y).relu().softplus(); // five operations: no kernel yet
//! let total = z.sum(); // one fused kernel for z, then the sum's (one or two passes)
//! assert!(device.kernel_launches() - before <= 3);
//! # }
//! ```
//!
//! A formula takes in its inputs' formulas up to `MOST_LEAVES` buffers read and
//! `MOST_NODES` operations (an input beyond is computed first); a pending result that two chains read is
//! computed in each. Clones share a buffer, and a write in place copies it first
//! when something else holds it. Reductions along
//! an axis, softmax and its relatives, broadcasts and transposes have kernels too;
//! matrix products call cuBLAS. See the module `backend::cuda` (with the feature on)
//! and the README's GPU section for what is there, what is not yet, and the numbers.
