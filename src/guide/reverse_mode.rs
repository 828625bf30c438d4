//! # Reverse mode: gradients of a scalar loss
//!
//! Write the loss over `Var`s, the traced form of your
//! values, and ask for its gradient. The gradient comes back typed as the input's
//! tangent: for a tensor, a tensor of the same shape; for a derived struct, its
//! `…Tangent` twin with the same field names.
//!
//! ```
//! use fluxion::prelude::*;
//!
//! // d/dx Σ tanh(x)² = 2·tanh(x)·(1 − tanh²(x)), elementwise.
//! let x: Vector<f64, 3> = Vector::from_array([0.5, -1.0, 2.0]);
//! let g = grad(|x: Var<Vector<f64, 3>>| x.tanh().hadamard(&x.tanh()).sum(), &x);
//! let t = 0.5f64.tanh();
//! assert!((g[[0]] - 2.0 * t * (1.0 - t * t)).abs() < 1e-15);
//! ```
//!
//! ## Models
//!
//! `#[derive(Differentiable)]` on a struct of parameters writes its tangent
//! (`LayerTangent`), its traced form (`LayerTraced`, every field a `Var`) and its
//! forward-mode form (`LayerLifted`). Write the forward pass once over the traced
//! form; it serves training inside `value_and_grad` and inference on
//! `model.as_constant()`, which records nothing.
//!
//! ```
//! use fluxion::prelude::*;
//!
//! #[derive(Clone, Differentiable)]
//! struct Layer {
//!     w: Matrix<f64, 2, 3>,
//!     b: Vector<f64, 2>,
//! }
//!
//! fn predict(layer: &LayerTraced, x: &Vector<f64, 3>) -> Var<Vector<f64, 2>> {
//!     (&layer.w.matmul(&Var::constant(*x)) + &layer.b).tanh()
//! }
//!
//! let mut layer = Layer { w: Matrix::full(0.1), b: Vector::zeros() };
//! let (x, target) = (Vector::from_array([1.0, 2.0, -1.0]), Vector::from_array([0.5, -0.5]));
//! let loss = |l: LayerTraced| {
//!     let error = &predict(&l, &x) - &target; // a plain tensor beside a traced one
//!     error.hadamard(&error).sum()
//! };
//! let (first, _) = value_and_grad(loss, &layer);
//! for _ in 0..200 {
//!     let (_, gradient) = value_and_grad(loss, &layer);
//!     layer.move_by(&gradient.scaled(-0.2));
//! }
//! let (last, _) = value_and_grad(loss, &layer);
//! assert!(last < 1e-3 * first);
//! // Inference with the same forward definition, no tape:
//! let y = predict(&layer.as_constant(), &x);
//! assert!((y.value()[[0]] - 0.5).abs() < 0.05);
//! ```
//!
//! ## The tape
//!
//! Every operation on a `Var` whose inputs are traced records one node with its
//! pullback; the backward sweep visits the nodes in reverse. Any Rust control flow
//! works, since the tape sees only the operations that ran. The tape is per thread and
//! exists while `grad` and friends run. A finished tape keeps its nodes for the next
//! gradient on the same thread, so a training loop on inline tensors allocates almost
//! nothing after the first step; `release_tape_memory` frees them. In loops,
//! `value_and_grad_into` writes the gradient into a tangent you keep.
//!
//! Constants mix in as in maths: `1.0 - x`, `2.0 / x`, `&x + &c` and `c - x` with a
//! plain tensor `c`, `x * 0.5`; a real constant on either side of a complex scalar
//! (`&z * 0.5`, `1.0 - &z`, in forward and static mode too) and a real factor of a
//! complex tensor on either side (`0.5 * &z`; in static mode `z / s` for a real `s`). A
//! value that should not be differentiated is wrapped in `Var::constant`, or cut
//! with `stop_gradient`.
//!
//! ## Checkpointing: memory for a recomputation
//!
//! The tape keeps every value its pullbacks need until the sweep. For a deep model,
//! [`checkpoint`](crate::autodiff::checkpoint)`(f, &x)` records `f(x)` as one node that
//! keeps only `x`: the sweep runs `f` again when the node's cotangent arrives and
//! pulls it back through that fresh tape (JAX's `jax.checkpoint`, PyTorch's
//! `torch.utils.checkpoint`). Checkpointing each block of a tower keeps the blocks'
//! inputs and one block's inner values at a time, for one more forward pass
//! (`examples/checkpointing.rs`: 24 residual blocks, 61 MB of peak memory down to
//! 28 MB, the gradient buffers included). The gradient is the same up to the order
//! of a sum: a value read several times inside a checkpoint has its cotangents
//! summed there first (bit for bit when each input is read once).
//!
//! In a model of library layers, wrap a block in
//! [`Checkpointed`](crate::nn::layer::Checkpointed): `Sequential((Checkpointed(block),
//! head))` runs the block as one checkpoint when traced and as itself otherwise, with
//! the block's parameter names.
//!
//! The function returns a `Var` or a tuple of them (an LSTM cell's `(h, c)`); `x` is
//! what a differentiated function receives: a `Var`, a tuple of them, a
//! derived struct's traced twin (which is `Clone`, so a block read by reference is
//! cloned in), or a layer. The function owns what it captures, since it runs again
//! later (a heap batch's clone shares its buffer), and reads traced values only
//! through `x`: a captured `Var` panics with a message naming `checkpoint`. A
//! dropout mask drawn inside is drawn again, identically, by the recomputation
//! ([`replayable_draw`](crate::autodiff::replayable_draw) does the same for your own
//! random operations).
//!
//! ```
//! use fluxion::autodiff::checkpoint;
//! use fluxion::nn::layer::LinearTraced;
//! use fluxion::nn::prelude::*;
//! use fluxion::prelude::*;
//!
//! #[derive(Differentiable, Clone)]
//! struct Tower {
//!     blocks: Vec<Linear<f64, 4, 4>>,
//! }
//!
//! type Batch = Tensor<f64, (Dyn, Const<4>), Heap>;
//!
//! impl TowerTraced {
//!     fn forward(&self, x: &Batch) -> Var<Batch> {
//!         let block = |(layer, h): (LinearTraced<f64, 4, 4>, Var<Batch>)| &h + &layer.forward(&h).tanh();
//!         let mut h = Var::constant(x.clone());
//!         for layer in &self.blocks {
//!             h = checkpoint(block, &(layer.clone(), h));
//!         }
//!         h
//!     }
//! }
//!
//! let tower = Tower { blocks: (0..8).map(Linear::new).collect() };
//! let x: Batch = Tensor::full_shaped((Dyn(2), Const), 0.5);
//! let gradient = grad(|t: TowerTraced| t.forward(&x).sum(), &tower);
//! assert_eq!(gradient.blocks.len(), 8);
//! ```
