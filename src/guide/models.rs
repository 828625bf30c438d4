//! # Models: layers, losses, optimisers and parameter files
//!
//! A model is a value deriving [`Differentiable`](crate::autodiff::Differentiable):
//! its gradient is its `Tangent`, with the same fields. The pieces in
//! [`crate::nn`] are built that way, so they compose with your own structs. A
//! [`Sequential`](crate::nn::layer::Sequential) is its tuple to a gradient: the
//! tangent of `model.0.0.weight` is `gradient.0.weight`, one level less deep (a
//! parameter file names it `0.weight` too).
//!
//! Which mode trains it: the tape (`value_and_grad_into` in the loop) takes any
//! model and any code over `Var`s, and is the place to start; a model written as a
//! chain or a [`#[module]`](crate::nn::layer::module) block also has a static form
//! (`model.apply_batch(&x)` inside `#[differentiable]` code, "Models in static mode"
//! below), 2.4× as fast on a small MLP, as fast once products dominate, and with no
//! heap on inline tensors (the [performance guide](super::performance) has the
//! numbers). Writing one parameter for a finite-difference check is
//! `model.layer.weight[[i, j]] += h` on a clone (a heap buffer shared by clones is
//! copied on the first write).
//!
//! ## Layers and their sizes
//!
//! [`Linear<T, I, O>`](crate::nn::layer::Linear) takes batches `(B, Const<I>)` (one
//! example per row; `B` static or `Dyn`) and gives `(B, Const<O>)`. A
//! [`Sequential`](crate::nn::layer::Sequential) of a tuple applies layers in order;
//! the compiler checks that each layer takes the previous one's output. One forward
//! pass serves inference (on plain tensors) and training (on the traced model, inside
//! `value_and_grad`). [`nn::prelude`](crate::nn::prelude) brings the layers, losses
//! and optimisers in one import:
//!
//! ```
//! use fluxion::nn::prelude::*;
//! use fluxion::prelude::*;
//!
//! type Classifier = Sequential<(Linear<f64, 2, 16>, Relu, Linear<f64, 16, 2>)>;
//! let mut model: Classifier = Sequential((Linear::new(1), Relu, Linear::new(2)));
//!
//! // Two classes: the sign of the first feature.
//! let x = Tensor::<f64, (Dyn, Const<2>), Heap>::from_shape_fn((Dyn(32), Const), |[r, c]| {
//!     let v = (r as f64 * 0.37 + c as f64 * 1.3).sin();
//!     if c == 0 && r % 2 == 0 { v.abs() + 0.2 } else if c == 0 { -v.abs() - 0.2 } else { v }
//! });
//! let labels: Vec<usize> = (0..32).map(|r| r % 2).collect();
//!
//! let mut adam = Adam::new(AdamConfig { learning_rate: 0.05, ..AdamConfig::default() });
//! for _ in 0..50 {
//!     // A plain batch enters the traced model as a constant of the tape.
//!     let (_, gradient) = value_and_grad(
//!         |m: <Classifier as Trace>::Traced| cross_entropy(&m.forward(&x), &labels, Reduction::Mean),
//!         &model,
//!     );
//!     adam.step(&mut model, &gradient);
//! }
//! assert_eq!(accuracy(&model.forward(&x), &labels), 1.0);
//! ```
//!
//! The closure's annotation (`m: <Classifier as Trace>::Traced`) is optional: the
//! compiler infers the traced model from the value passed. A traced model takes a
//! plain batch as a constant of the tape, as here; other plain data enters it as
//! `Var::constant(t)`, best made once outside the loop. `Linear::new(seed)` and the
//! other constructors draw PyTorch's initialisation from a seeded stream: the same
//! seed gives the same parameters. `autodiff::check::check_grad(loss, &model,
//! CheckOptions::f64())` compares a model's gradient with finite differences.
//!
//! A layer of the wrong size is a compile error that names both sizes:
//! `Sequential((Linear::<f32, 4, 8>::new(1), Relu, Linear::<f32, 6, 3>::new(2)))`
//! applied to a batch reports that `Const<8>: SameFeatureCount<Const<6>>` does not
//! hold (through the tape: "this layer takes `Const<6>` features per example, but
//! its input has `Const<8>`"). A [`Sequential`](crate::nn::layer::Sequential) holds up to twelve layers
//! (nest sequences for more).
//!
//! ## Your own model
//!
//! A struct of layers derives `Differentiable` (its gradient is `NetTangent`, with
//! the same fields) and gets a traced twin, `NetTraced`, whose fields are the traced
//! layers. Write the forward pass once, over the twin: training runs it inside
//! `value_and_grad`, and inference runs it on `net.as_constant()`, which puts nothing
//! on the tape (or write it once in a `#[module]` block, below, for `net.forward(&x)`
//! on plain tensors, the twin's and the static form from one body):
//!
//! ```
//! use fluxion::nn::prelude::*;
//! use fluxion::prelude::*;
//!
//! #[derive(Differentiable, Clone)]
//! struct Net {
//!     hidden: Linear<f64, 2, 8>,
//!     output: Linear<f64, 8, 2>,
//! }
//!
//! type Batch<const F: usize> = Tensor<f64, (Dyn, Const<F>), Heap>;
//!
//! impl NetTraced {
//!     fn forward(&self, x: &Batch<2>) -> Var<Batch<2>> {
//!         self.output.forward(&self.hidden.forward(x).tanh())
//!     }
//! }
//!
//! let x = Batch::<2>::from_shape_fn((Dyn(16), Const), |[r, c]| if c == 0 { r as f64 - 7.5 } else { 0.3 });
//! let labels: Vec<usize> = (0..16).map(|r| usize::from(r >= 8)).collect();
//! let mut net = Net { hidden: Linear::new(1), output: Linear::new(2) };
//! let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.1, ..SgdConfig::default() });
//! for _ in 0..100 {
//!     let (_, gradient): (f64, NetTangent) =
//!         value_and_grad(|n: NetTraced| cross_entropy(&n.forward(&x), &labels, Reduction::Mean), &net);
//!     sgd.step(&mut net, &gradient);
//! }
//! // Inference: the same forward pass on the constant twin, dropout off.
//! let logits = inference(&net, |n: NetTraced| n.forward(&x));
//! assert_eq!(accuracy(&logits, &labels), 1.0);
//! ```
//!
//! [`inference`](crate::nn::layer::inference) is `net.as_constant()` (nothing
//! recorded) inside [`evaluation`](crate::nn::layer::evaluation)`(|| …)`, which turns
//! every [`Dropout`](crate::nn::layer::Dropout) off for the call (PyTorch's
//! `model.eval()`); one layer switches with `set_training`.
//!
//! A skip connection needs no code: [`Residual`](crate::nn::layer::Residual)`(block)`
//! is x + block(x), for a block that keeps its input's size, on every input the
//! block takes (plain, traced, dual, GPU tensors, static mode). A block of your own
//! joins a [`Sequential`](crate::nn::layer::Sequential) (or a
//! [`Checkpointed`](crate::nn::layer::Checkpointed) or a `Residual`) as a
//! [`Module`](crate::nn::layer::Module). Write its forward pass once, as a method
//! `forward` in an `impl` block marked [`#[module]`](crate::nn::layer::module): it
//! becomes `Module` for the plain struct (inference), `Module` of traced tensors for
//! its traced twin (training on the tape; a plain input is taken as a constant, as
//! the library's layers take it) and the layer's static form, `apply_batch` inside
//! `#[differentiable]` code with [`StaticModule`](crate::nn::layer::StaticModule)
//! (each `.forward(` call of a layer in the body is read as that layer's static
//! form). A gated block:
//!
//! ```
//! use fluxion::nn::layer::Checkpointed;
//! use fluxion::nn::prelude::*;
//! use fluxion::prelude::*;
//!
//! type Rows = Tensor<f64, (Dyn, Const<4>), Heap>;
//!
//! /// x ⊙ σ(Linear(x)): each feature let through by a learned gate.
//! #[derive(Differentiable, Clone)]
//! struct Gated {
//!     gate: Linear<f64, 4, 4>,
//! }
//!
//! #[module]
//! impl Gated {
//!     fn forward(&self, x: &Rows) -> Rows {
//!         x.hadamard(&self.gate.forward(x).sigmoid())
//!     }
//! }
//!
//! let block = |seed| Gated { gate: Linear::new(seed) };
//! let net = Sequential((block(1), Residual(Checkpointed(block(2))), Linear::<f64, 4, 2>::new(3)));
//! let x = Rows::full_shaped((Dyn(3), Const), 0.5);
//! let (loss, gradient) = value_and_grad(|n| cross_entropy(&n.forward(&x), &[0, 1, 0], Reduction::Mean), &net);
//! assert!(loss > 0.0 && gradient.1.gate.weight.as_slice().iter().any(|g| *g != 0.0));
//! assert_eq!(net.forward(&x).dims().as_slice(), &[3, 2]);
//!
//! // The same block in static mode, alone or in a chain.
//! #[differentiable(wrt(block))]
//! fn gated_loss(block: &Gated, x: &Rows) -> f64 {
//!     block.apply_batch(x).sum()
//! }
//! let (value, _) = gated_loss::value_and_grad(&block(1), &x);
//! assert_eq!(value, block(1).forward(&x).sum());
//! ```
//!
//! The body must compile for plain and traced tensors alike (the tensor methods and
//! operators both have, any layer's `forward`: `Gelu.forward(&h)` too; `x.dims()`,
//! `shape()` and `len()` read a traced tensor's sizes as a plain one's) and be code
//! that static mode differentiates; the struct may be generic (`#[module]
//! impl<T: RealScalar> Gated<T>`). A `let` annotation with a value holds in every
//! form (`let h: Rows = …` is a traced `Rows` on the tape); one of a type never
//! traced (an integer, a `Vec`, an array, a reference) or of a value whose type comes
//! from it (`collect()`, `sum()`, `into()`, `parse()`, `unwrap()` of one) stays as
//! written, as in the plain form. A long body splits into layers (a
//! field that is itself a `#[module]` struct, or a tuple of layers, is called with
//! `.forward` like any layer) or into helper methods in the same block:
//!
//! - a helper is `fn name(&self, …) -> Output`, with no generic parameters of its own
//!   (the block's are its), called as `self.name(…)` from `forward` or another
//!   helper (`Self::name(self, …)` works too, but static mode runs such a call
//!   forward again in the reverse sweep);
//! - its reference arguments are traced on the tape and differentiated in static mode;
//!   its arguments by value, its slices and its references to values never traced
//!   (`&[usize]`, `&Vec<usize>`, `&usize`) are constants (a constant real number goes
//!   by value, `scale: f64`, not `&f64`);
//! - a tuple of outputs is a tuple of traced values on the tape (`let (q, k) =
//!   self.project(x)`);
//! - in static mode a helper called on values the body made keeps its reverse sweep,
//!   as a layer's call does, with clones of its reference arguments (one with a
//!   constant reference argument, a slice or a `&Vec<usize>`, runs forward again in
//!   the reverse sweep instead; the [static mode guide](crate::guide::static_mode)
//!   says which calls do): worth it for a helper
//!   that does real work, not for one that adds two tensors, which costs less
//!   written inline;
//! - a helper returns traced values (a size, `usize`, is read where it is needed
//!   with `x.dims()`), and its traced arguments take traced values: a constant
//!   tensor (a `#[no_derivative]` field, `Tensor::zeros`) goes to a helper as an
//!   argument taken by value;
//! - a method outside the block has no traced or static form: a block with a static
//!   form refuses a body calling one on `self` ("move `name` into this block"), and
//!   a helper may not be named `apply_batch`; two blocks of one struct (a static one
//!   and a `no_static` one) share the struct's methods, so their helpers need names
//!   of their own.
//!
//! One `#[module]` block per struct gets the static form (its method is the struct's
//! `apply_batch`): a second block for another input type takes
//! `#[module(no_static)]`. A block generic over its storage kind takes
//! `#[module(storage_kind(K))]`: it is written out for `Heap` and `Cuda`, so its
//! bounds need not say what each form's layers take (the GPU guide shows one, with
//! the struct's `#[storage_kind(K)]` for `to_device`). A size mistake in a block is
//! reported by each form and by each of the static form's companions (about ten
//! errors for one mistake): the first names the layer and the input it was given, in
//! static mode, and the plain form's says which sizes differ ("this layer takes
//! `Const<6>` features per example, but its input has `Const<8>`"). A body static
//! mode does not differentiate (one with a `Dropout`, which draws a mask per call)
//! takes `#[module(no_static)]`: the plain and traced forms only. A layer whose forms
//! must differ implements `Module` for the struct and for its traced twin by hand,
//! and joins static mode through [`static_module!`](crate::static_module) from a
//! `#[differentiable]` method. In static mode such a block keeps its layers' reverse
//! sweeps, as the library's chains do: the [static mode guide](crate::guide::static_mode)
//! says which calls do.
//!
//! ## Optimisers
//!
//! [`Sgd`](crate::nn::optim::Sgd) (momentum, Nesterov, weight decay) and
//! [`Adam`](crate::nn::optim::Adam) (Adam, AdamW) keep their state as tangents of the
//! model and update each tensor in one fused pass. A step either applies to every
//! parameter or returns an error and changes nothing; `try_step` reports it, `step`
//! panics with it. [`clip_grad_norm`](crate::nn::optim::clip_grad_norm) bounds the
//! gradient's global norm ([`global_norm`](crate::nn::optim::global_norm) measures it:
//! √Σ of every parameter's squared derivative), and [`StepDecay`](crate::nn::optim::StepDecay) and
//! [`CosineDecay`](crate::nn::optim::CosineDecay) give a learning rate per epoch,
//! set with `set_learning_rate`. None of this needs std or a heap: a fixed-size net
//! of `Inline` tensors trains in static mode on a microcontroller, through
//! `Linear::apply` and the losses of [`nn::per_example`](crate::nn::per_example)
//! (squared error, cross-entropy from a class index or from one-hot or probability
//! targets, binary cross-entropy from logits; sum a batch's with a loop or take its
//! mean by dividing) — the `nostd-check` crate does it, and CI builds it for a
//! Cortex-M4F (`thumbv7em-none-eabihf`).
//!
//! The most common group needs none of this: `decay_vectors: false` in
//! [`AdamConfig`](crate::nn::optim::AdamConfig) or
//! [`SgdConfig`](crate::nn::optim::SgdConfig) keeps weight decay off biases,
//! normalisation gains and shifts (every leaf of rank below 2), as nanoGPT's and
//! timm's AdamW groups do.
//!
//! Parameter groups (PyTorch's `param_groups`: another learning rate or no weight
//! decay for part of a model) are parts of the model: an optimiser updates any
//! `Differentiable` value, and the gradient's fields are the model's, so each part
//! gets its own optimiser and its own slice of the gradient, checked by the types:
//!
//! ```
//! use fluxion::nn::prelude::*;
//! use fluxion::prelude::*;
//!
//! #[derive(Differentiable, Clone)]
//! struct Net {
//!     body: Linear<f64, 4, 8>,
//!     head: Linear<f64, 8, 3>,
//! }
//!
//! let mut net = Net { body: Linear::new(1), head: Linear::new(2) };
//! // The body with weight decay; the head ten times faster and without.
//! let mut body = Adam::new(AdamConfig { learning_rate: 1e-3, ..AdamConfig::adamw() });
//! let mut head = Adam::new(AdamConfig { learning_rate: 1e-2, ..AdamConfig::default() });
//! let x = Tensor::<f64, (Dyn, Const<4>), Heap>::from_shape_fn((Dyn(6), Const), |[r, c]| r as f64 - c as f64);
//! let labels = [0, 1, 2, 0, 1, 2];
//! let loss = |n: NetTraced| {
//!     cross_entropy(&n.head.forward(&n.body.forward(&x).relu()), &labels, Reduction::Mean)
//! };
//! let gradient: NetTangent = grad(loss, &net);
//! body.step(&mut net.body, &gradient.body);
//! head.step(&mut net.head, &gradient.head);
//! assert_eq!(head.steps(), 1);
//! ```
//!
//! ## Batch normalisation, training and evaluation
//!
//! [`BatchNorm<T, C>`](crate::nn::layer::BatchNorm) normalises each of C channels
//! over the batch: rows `(B, C)` (PyTorch's `BatchNorm1d`) or images `(B, C, H, W)`
//! (`BatchNorm2d`). In training it uses the batch's mean and variance, differentiated
//! through (each example's output depends on the whole batch), and moves its running
//! estimates towards them; in evaluation it uses the running estimates. A model is in
//! evaluation inside [`evaluation`](crate::nn::layer::evaluation)`(|| …)` (PyTorch's
//! `model.eval()` for one call, dropout off too) or layer by layer with
//! `set_training(false)`.
//!
//! The running estimates are *buffers* ([`Buffer`](crate::nn::params::Buffer)):
//! state saved in parameter files beside the parameters (`1.running_mean`) but
//! not trained. A PyTorch file's `num_batches_tracked` counts are read and ignored
//! (the momentum here is fixed), so a PyTorch `state_dict` of the same layers loads. A forward pass takes the model by reference, so a buffer sits behind
//! a lock, shared by the traced copy a gradient makes: a training step updates the
//! model's estimates. `model.clone()` copies them (PyTorch's `copy.deepcopy`): a
//! snapshot that further training leaves as it is. A field of your own struct marked
//! `#[buffer]` is saved and shared the same way. Every forward pass in training of
//! the model itself moves the estimates, including each evaluation that `hvp` or a
//! Hessian makes of it (the checker's finite differences run on clones); check or
//! take second derivatives of a clone, or inside `evaluation`, to keep them. A
//! `Dropout`'s mask stream, unlike a buffer, stays shared by clones.
//!
//! ```
//! use fluxion::nn::layer::{BatchNorm, Conv2d, GlobalAvgPool2d, Linear, Relu, Sequential, evaluation};
//! use fluxion::nn::prelude::*;
//! use fluxion::prelude::*;
//!
//! type Net = Sequential<(Conv2d<f64, 1, 4, 3, 3, 6, 6>, BatchNorm<f64, 4>, Relu, GlobalAvgPool2d, Linear<f64, 4, 2>)>;
//! let mut net: Net = Sequential((Conv2d::new(1), BatchNorm::new(), Relu, GlobalAvgPool2d, Linear::new(2)));
//! let images = Tensor::<f64, (Dyn, Const<1>, Const<8>, Const<8>), Heap>::random_normal_shaped((Dyn(16), Const, Const, Const), 0.0, 1.0, 3);
//! let labels: Vec<usize> = (0..16).map(|i| i % 2).collect();
//! let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.1, ..SgdConfig::default() });
//! for _ in 0..3 {
//!     let (_, gradient) = value_and_grad(|m: <Net as Trace>::Traced| cross_entropy(&m.forward(&images), &labels, Reduction::Mean), &net);
//!     sgd.step(&mut net, &gradient);
//! }
//! // Three training steps moved the running mean three times from 0.
//! assert!(net.0.1.running_mean.get().iter().all(|&m| m != 0.0));
//! // One example at a time, as in deployment: the running estimates.
//! let one = Tensor::<f64, (Dyn, Const<1>, Const<8>, Const<8>), Heap>::zeros_shaped((Dyn(1), Const, Const, Const));
//! let logits = evaluation(|| net.forward(&one));
//! assert_eq!(logits.shape(), (Dyn(1), Const::<2>));
//! ```
//!
//! Early in training the running estimates lag behind the batches (each step moves
//! them a tenth of the way, momentum 0.1), so accuracy in evaluation can trail the
//! training batches' for a while; `momentum` is a field of the layer. In training, a
//! batch with one value per channel is refused (its variance is 0), as PyTorch
//! does. In static mode `BatchNorm` follows the same rules, `apply_batch` on
//! rows and `apply_images` on images (a chain picks the right one).
//!
//! [`GroupNorm<T, C, G>`](crate::nn::layer::GroupNorm) normalises each image on its
//! own, over each of G groups of C/G channels (PyTorch's `GroupNorm(G, C)`, the
//! normalisation of diffusion models' blocks and of small-batch training): no batch
//! statistics and no state, so training and evaluation agree. G = 1 normalises each
//! image as a whole, G = C each channel. G must divide C ("cannot split 6 channels
//! into 4 groups" when the program is built).
//!
//! ## Parameter files
//!
//! With the `safetensors` feature, `nn::io::save` writes every
//! parameter and buffer under its field path ([`nn::params`](crate::nn::params):
//! `0.weight`, `encoder.layers.2.bias`, `1.running_var`) and
//! `nn::io::load` reads them back, bit for bit, after checking every name, shape and
//! element type: a mismatch, a truncated or a malformed file is an error that names
//! it, and the model is left as it was. `nn::io::load_part(&mut model.body, path,
//! "body")` reads only the tensors under a prefix into a part of a model
//! (fine-tuning a pretrained body under a new head), with the same checks within it.
//!
//! To resume training later, save a checkpoint of the model and its optimiser:
//! `nn::io::save_checkpoint(&model, &adam, path)` writes the parameters and the
//! optimiser's settings, step count and state (`optimizer.m.0.weight`; `velocity`
//! for SGD), and `nn::io::load_checkpoint(&mut model, &mut adam, path)` checks
//! everything against the types and restores all of it, or nothing, so the next
//! steps are those an uninterrupted run would have taken, bit for bit, given the same
//! batches (a `Dropout`'s sequence of masks is not saved). `save_optimizer` and
//! `load_optimizer` do the same for the optimiser alone.
//!
//! Every layer, the losses and the optimisers run on `Cuda` tensors too: see
//! [the GPU guide](crate::guide::gpu).
//!
//! ## Models in static mode
//!
//! Inside a `#[differentiable]` function a model
//! calls `apply_batch` ([`StaticModule`](crate::nn::layer::StaticModule)) where the
//! tape calls `forward`: on a layer, a tuple of layers or a `Sequential`, the same
//! model value and the same chain whose sizes the compiler checks. For a gradient,
//! each layer's forward sweep runs once and its reverse sweep keeps that layer's
//! input, so a chain costs what the layers called one by one cost (W2 in
//! `BENCHMARKS.md`); inside a branch or a loop, and for `jacrev`, the layers run
//! again, as any call there does. The kept inputs are values: an `Inline` tensor is
//! copied as it moves (a batch of 16 images of 4×10×10 `f32` is 25 KB), so for image
//! batches and long sequences prefer `Heap` (W8, a small CNN's gradient: 27 µs on
//! `Heap`, 36 µs on `Inline`):
//!
//! ```
//! use fluxion::nn::layer::{Linear, Sequential, StaticModule, Tanh};
//! use fluxion::nn::per_example::squared_error;
//! use fluxion::prelude::*;
//!
//! type Net = Sequential<(Linear<f32, 2, 8, Inline>, Tanh, Linear<f32, 8, 3, Inline>)>;
//!
//! /// The loss of a batch of four, its gradient generated at compile time (no heap).
//! #[differentiable(wrt(net))]
//! fn loss(net: &Net, x: &Matrix<f32, 4, 2>, target: &Matrix<f32, 4, 3>) -> f32 {
//!     squared_error(&net.apply_batch(x), target)
//! }
//!
//! let net: Net = Sequential((Linear::new(1), Tanh, Linear::new(2)));
//! let (x, target) = (Matrix::full(0.5), Matrix::full(1.0));
//! let (value, gradient) = loss::value_and_grad(&net, &x, &target);
//! assert!(value > 0.0 && gradient.2.weight.iter().all(|g| g.is_finite()));
//! ```
//!
//! The layers' own static methods remain: `Linear::apply` (one example) and
//! `Embedding::apply` (indices), with the activations and losses as plain method
//! calls (GELU is `x.map_function(GeluFunction)`). [`Dropout`](crate::nn::layer::Dropout)
//! has no static form: a chain holding one does not compile (the error says so when
//! the chain is applied inside `#[differentiable]` code; a call the compiler resolves
//! as a method first reports that the chain's `StaticModule` bounds do not hold,
//! naming the tuple with `Dropout` in it). Multiply by
//! [`Dropout::mask`](crate::nn::layer::Dropout::mask), taken outside and passed in
//! as a constant (ones in evaluation). A layer of your own joins a chain through
//! `#[module]` (above), or [`static_module!`](crate::static_module) from its
//! `#[differentiable]` method. Two
//! limits: inside `#[differentiable]` code a layer's field cannot be read through a
//! `Sequential` (`net.0.0.weight` does not compile: its tangent is the tuple's, one
//! level less deep; pass the tuple, `&net.0`, instead), and a chain whose sizes do
//! not fit gives three errors for one mistake: the first names the layer and the
//! input it was given ("the layer `Linear<f64, 6, 3>` does not take `Tensor<f64,
//! (Dyn, Const<8>), Heap>` as its input in static mode"), the others follow from it
//! (an image layer's size mistake is still reported as unmet bounds of `apply_batch`,
//! its `PoolsTo` or `ConvolvesTo` in the notes: check the chain with `forward` on the
//! tape for the short message). The batch losses of `nn::loss` are the tape's; in
//! static mode use [`nn::per_example`](crate::nn::per_example)'s:
//! `mean_cross_entropy(&model.apply_batch(x), &classes)` is the tape's
//! `cross_entropy(…, Reduction::Mean)`.
//! A chain's `apply_batch` also takes one example as a vector when every layer takes
//! one (`Linear`, which runs `Linear::apply` on it, and the elementwise activations;
//! not `Softmax`, `LayerNorm` or the image layers), as the `nostd-check` crate's
//! controller does.
//!
//! ## Image layers
//!
//! [`Conv2d`](crate::nn::layer::Conv2d), [`MaxPool2d`](crate::nn::layer::MaxPool2d),
//! [`AvgPool2d`](crate::nn::layer::AvgPool2d) (LeNet's pooling, the mean of each window)
//! and [`Flatten`](crate::nn::layer::Flatten) take batches `(B, C, H, W)` and carry
//! their output size in their type; the compiler checks each against its input
//! (`Flatten`'s F = C·H·W when the program is built, as for every static reshape).
//! `Conv2d`'s last two parameters are its padding P and stride S (0 and 1 unless
//! given), as PyTorch's `padding` and `stride`: `Conv2d<f32, 1, 8, 3, 3, 14, 14, Heap,
//! 1, 2>` takes 28×28 images to ⌊(28 + 2·1 − 3)/2⌋ + 1 = 14, which
//! [`output_size(28, 3, 1, 2)`](crate::nn::layer::output_size), a `const fn`, works
//! out in a constant or a type (`{ output_size(28, 3, 1, 2) }`).
//! [`GlobalAvgPool2d`](crate::nn::layer::GlobalAvgPool2d) ends a convolutional body
//! with each channel's mean, `(B, C, H, W)` → `(B, C)`, whatever H and W.
//! The pooling layers take K×K windows with stride K by default; like `Conv2d`, their
//! last two parameters are the padding and the stride: a ResNet stem's
//! `nn.MaxPool2d(3, stride=2, padding=1)` on 112×112 is `MaxPool2d<3, 56, 56, 1, 2>`
//! (⌊(112 + 2 − 3)/2⌋ + 1 = 56; the padding may be at most half the window, which
//! `cargo build` checks and `cargo check` does not). `Conv2d` has its storage kind
//! before padding and stride (`Conv2d<f32, 1, 8, 3, 3, 56, 56, Heap, 1, 2>`); the
//! pooling layers have none.
//!
//! ```
//! use fluxion::nn::layer::{Conv2d, Flatten, Linear, MaxPool2d, Relu, Sequential};
//! use fluxion::prelude::*;
//!
//! // 1×12×12 images → 4 channels of 10×10 → pooled to 5×5 → 100 features → 10 classes.
//! type Cnn = Sequential<(Conv2d<f32, 1, 4, 3, 3, 10, 10>, Relu, MaxPool2d<2, 5, 5>, Flatten<100>, Linear<f32, 100, 10>)>;
//! let model: Cnn = Sequential((Conv2d::new(1), Relu, MaxPool2d, Flatten, Linear::new(2)));
//! let images = Tensor::<f32, (Dyn, Const<1>, Const<12>, Const<12>), Heap>::zeros_shaped((Dyn(8), Const, Const, Const));
//! assert_eq!(model.forward(&images).shape(), (Dyn(8), Const::<10>));
//! ```
//!
//! ## Attention
//!
//! Sequences travel as rows: a batch of N sequences of L tokens with D values each is
//! `(N·L, D)`, L consecutive rows per sequence, so `Linear`, `LayerNorm`, `Embedding`
//! and the activations act on every token as they act on any rows.
//! [`MultiHeadAttention<T, D, H, L>`](crate::nn::layer::MultiHeadAttention) mixes the
//! tokens of each sequence: queries, keys and values by three linear maps, scaled
//! dot-product attention in H heads of D/H values (each token attending to its whole
//! sequence, `Mask::Full`, or to itself and the tokens before it, `Mask::Causal`),
//! then a fourth map over the heads side by side. H dividing D is checked when the
//! program is built (`cargo build` reports it, `cargo check` does not), whole
//! sequences (N·L rows) when it runs. L is the layer's: layers with different
//! sequence lengths in one model cut the same rows into different sequences without
//! an error when both lengths divide the row count, so give every layer the same L. Without the maps,
//! [`q.attention(&k, &v, Heads::<H>, Tokens::<L>, mask)`](crate::Tensor::attention)
//! is the primitive (PyTorch's `scaled_dot_product_attention` on `(N, H, L, D/H)`),
//! with its derivatives in every mode; it keeps no L×L matrix (the probabilities of a
//! query are recomputed, L values on the stack, in each derivative).
//!
//! A pre-norm decoder (GPT's block) is layers you already know:
//!
//! ```
//! use fluxion::nn::layer::{Embedding, Gelu, LayerNorm, Linear, Module, MultiHeadAttention, Residual, Sequential};
//! use fluxion::nn::loss::{Reduction, cross_entropy};
//! use fluxion::nn::prelude::{Mask, Tokens};
//! use fluxion::prelude::*;
//!
//! // Tokens of a 16-word vocabulary, 8 per sequence, 32 values each in 4 heads.
//! type Block = Sequential<(
//!     Residual<Sequential<(LayerNorm<f32, 32>, MultiHeadAttention<f32, 32, 4, 8>)>>,
//!     Residual<Sequential<(LayerNorm<f32, 32>, Linear<f32, 32, 128>, Gelu, Linear<f32, 128, 32>)>>,
//! )>;
//! type Decoder = (Embedding<f32, 16, 32>, Embedding<f32, 8, 32>, Block, LayerNorm<f32, 32>, Linear<f32, 32, 16>);
//!
//! let block: Block = Sequential((
//!     Residual(Sequential((LayerNorm::default(), MultiHeadAttention::new(Mask::Causal, 1)))),
//!     Residual(Sequential((LayerNorm::default(), Linear::new(2), Gelu, Linear::new(3)))),
//! ));
//! let model: Decoder = (Embedding::new(4), Embedding::new(5), block, LayerNorm::default(), Linear::new(6));
//! // Two sequences; each token's target is the next token.
//! let tokens: Vec<usize> = (0..16).map(|t| (3 * t) % 16).collect();
//! let (inputs, targets): (Vec<usize>, Vec<usize>) = (tokens.clone(), tokens.iter().map(|t| (t + 3) % 16).collect());
//! let positions: Vec<usize> = Tokens::<8>.positions(16).collect();
//! let (loss, gradient) = value_and_grad(
//!     |m: <Decoder as Trace>::Traced| {
//!         let x = &m.0.forward(&inputs[..]) + &m.1.forward(&positions[..]);
//!         cross_entropy(&m.4.forward(&m.3.forward(&m.2.forward(&x))), &targets, Reduction::Mean)
//!     },
//!     &model,
//! );
//! assert!(loss > 0.0 && gradient.2.0.1.query.weight.iter().any(|g| *g != 0.0));
//! ```
//!
//! In static mode the block is a chain like any other (`model.2.apply_batch(&x)`).
//! To generate under a causal mask, give the model a sequence of L tokens whose first
//! n are the prompt (any tokens after them, say zeros): row n − 1's logits are the
//! next token's, exactly, as no earlier token sees the ones after it; write the
//! chosen token at position n and repeat.
//!
//! Sequences of different lengths share a batch padded to L tokens: with
//! `lengths[n]` the real tokens of sequence n,
//! [`mha.forward_padded(&x, &lengths)`](crate::nn::layer::AttentionModule::forward_padded)
//! keeps every token from attending to the padding (PyTorch's
//! `key_padding_mask`; the padding rows still get outputs, which a loss leaves out:
//! [`Tokens::<L>.unpadded_rows(&lengths)`](crate::nn::prelude::Tokens::unpadded_rows)
//! are the real tokens' rows, and `logits.gather_rows(&rows)` their logits — in
//! every mode, static included — where PyTorch has `ignore_index`).
//! An encoder–decoder's decoder reads the encoder's output, a memory of LK tokens
//! per sequence, by cross-attention:
//! [`mha.forward_to(&x, &memory, Tokens::<LK>, Some(&lengths))`](crate::nn::layer::AttentionModule::forward_to)
//! takes its queries from `x` (the layer's L tokens per sequence) and its keys and
//! values from `memory` (PyTorch's `mha(x, memory, memory, key_padding_mask=…)`;
//! `None` when no memory token is padding). Both come from the trait
//! [`AttentionModule`](crate::nn::layer::AttentionModule) (in `nn::prelude`) for
//! every form of the layer, traced, lifted and on the GPU; on the plain layer they
//! are `#[differentiable]` methods of the same names, for static mode. The
//! primitives are [`q.padded_attention(&k, &v, Heads::<H>, Tokens::<L>, mask, &lengths)`](crate::Tensor::padded_attention)
//! and [`q.cross_attention(&k, &v, Heads::<H>, Tokens::<LQ>, Tokens::<LK>, mask, lengths)`](crate::Tensor::cross_attention).
//!
//! ```
//! use fluxion::nn::layer::{AttentionModule, MultiHeadAttention};
//! use fluxion::nn::prelude::{Mask, Tokens};
//! use fluxion::prelude::*;
//!
//! type Rows = Tensor<f32, (Dyn, Const<16>), Heap>;
//! // Two source sentences padded to 6 tokens (4 and 6 real), two targets of 3 tokens.
//! let (encoder, decoder) = (MultiHeadAttention::<f32, 16, 2, 6>::new(Mask::Full, 1), MultiHeadAttention::<f32, 16, 2, 3>::new(Mask::Full, 2));
//! let (source, target) = (Rows::random_normal_shaped((Dyn(12), Const), 0.0, 1.0, 3), Rows::random_normal_shaped((Dyn(6), Const), 0.0, 1.0, 4));
//! let lengths = [4, 6];
//! let memory = encoder.forward_padded(&source, &lengths);
//! let read = decoder.forward_to(&target, &memory, Tokens::<6>, Some(&lengths));
//! assert_eq!(read.shape(), target.shape());
//! ```
//!
//! `examples/reverse.rs` trains such an encoder–decoder to reverse sequences of 1 to
//! 8 tokens, its loss over the real tokens alone. In a
//! [`#[module]`](crate::nn::layer::module) block the lengths (or a memory) go to a
//! helper method, `fn encode(&self, x: &Rows, lengths: &[usize]) -> Rows` calling
//! `self.attention.forward_padded(…, lengths)`, which has every form as the block
//! does (`tests/custom_layers.rs`).
//!
//! Not offered yet: padding before a sequence's tokens (the lengths say how many come
//! first; a length of 0 is an error, where PyTorch gives rows of NaN), arbitrary
//! attention masks, dropout on the probabilities, a memory whose rows are of
//! another type than the queries' in `forward_to` (the primitive takes any), and
//! PyTorch's packed `in_proj_weight` in parameter files (the maps are stored as
//! `query`, `key`, `value` and `output`).
