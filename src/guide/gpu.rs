//! # GPU tensors (feature `cuda`)
//!
//! `Tensor<T, S, Cuda>` keeps `f32` or `f64` elements in NVIDIA GPU memory, with the
//! same shapes, products and compile-time errors as the host kinds. Data moves only
//! when asked (`to_device`, `to_host`); mixing a host and a GPU tensor in one
//! operation does not compile. Operations keep their names, and `Var`s of GPU tensors
//! record GPU rules, so a model whose storage type says `Cuda` trains on the GPU (a
//! plain GPU tensor beside a traced one in `+`, `−` and `hadamard` is a constant, as
//! on the host; so is a plain batch given to a traced `Linear` or `LayerNorm`). `jvp`
//! and `linearize` take GPU tensors too: the lifted `fluxion::autodiff::CudaDual`
//! has the tensor's operations (elementary functions, arithmetic, products,
//! reductions along an axis, softmax and its relatives, layout changes, the row and
//! image operations), and every library layer takes a batch of them, so `jvp`
//! runs through a GPU model as through a host one; a constant operand is
//! `CudaDual::constant(tensor)`.
//!
//! ## Library layers on the GPU
//!
//! `Linear`, the elementwise layers (`Relu`, `Tanh`, `Sigmoid`, `GeluTanh`),
//! `Softmax`, `LayerNorm`, `Dropout` (the host's mask stream, copied) and
//! `Sequential` take GPU batches, plain and traced; the `nn::loss`
//! losses and the optimisers take GPU models. A host layer moves with
//! `to_device()` (`Linear`, `LayerNorm`), so one training loop, written once for a storage kind, runs on
//! either (`tests/cuda.rs` checks that both give the same loss curve):
//!
//! ```no_run
//! use fluxion::backend::cuda::Cuda;
//! use fluxion::nn::layer::{Linear, Relu, Sequential};
//! use fluxion::nn::loss::{Reduction, cross_entropy};
//! use fluxion::nn::optim::{Optimizer, Sgd, SgdConfig};
//! use fluxion::prelude::*;
//!
//! type Mlp = Sequential<(Linear<f32, 784, 256, Cuda>, Relu, Linear<f32, 256, 10, Cuda>)>;
//! let mut model: Mlp =
//!     Sequential((Linear::<f32, 784, 256>::new(1).to_device(), Relu, Linear::<f32, 256, 10>::new(2).to_device()));
//! let batch = Var::constant(Tensor::<f32, (Dyn, Const<784>), Heap>::zeros_shaped((Dyn(128), Const)).to_device());
//! let classes = vec![0; 128];
//! let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.01, ..SgdConfig::default() });
//! let (loss, gradient) =
//!     value_and_grad(|m: <Mlp as Trace>::Traced| cross_entropy(&m.forward(&batch), &classes, Reduction::Mean), &model);
//! sgd.step(&mut model, &gradient);
//! ```
//!
//! The optimisers' updates run on the GPU too: each is written once over any real
//! scalar (a `CoordinateUpdate`), run in one loop on the host and recorded as one
//! in-place kernel per parameter tensor on the GPU.
//!
//! Every library layer runs there too: `Conv2d` (any stride and padding),
//! `MaxPool2d` and `Flatten` take `(B, C, H, W)` GPU batches, `Embedding` takes the
//! same host slice of indices, and `to_device` copies a host layer with parameters.
//! A convolution is one cuBLAS product on the unfolded images.
//!
//! Elementwise kernels are generated from the Rust definitions the CPU runs (the
//! elementary functions' table, a `ScalarFunction`): the definition runs once on a
//! symbolic scalar and the recorded formula is compiled by NVRTC. Reductions along
//! an axis, softmax and its relatives, broadcasts and transposes have kernels too;
//! matrix products call cuBLAS. See the module `backend::cuda` (with the feature on)
//! and the README's GPU section for what is there, what is not yet, and the numbers.
