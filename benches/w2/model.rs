//! Workload W2 in fluxion: an MLP 784→256→10 with ReLU (`nn::layer`, weights `[out,
//! in]` as PyTorch stores them), batch 128, f32, mean softmax cross-entropy from the
//! logits, and one SGD step (η = 0.01): forward, backward on the tape, update.
//!
//! Shared by the benchmark (`benches/w2/mod.rs`) and the tests (`tests/w2.rs`).

use super::handwritten::W2Tensors;
use fluxion::autodiff::{differentiable, value_and_grad_into};
use fluxion::nn::layer::{Linear, Relu, Sequential, StaticModule};
use fluxion::nn::loss::{Reduction, cross_entropy};
use fluxion::nn::optim::{Optimizer, Sgd, SgdConfig};
use fluxion::prelude::*;

/// The model's layers.
pub type Layers = (Linear<f32, 784, 256>, Relu, Linear<f32, 256, 10>);
/// The model.
pub type Mlp = Sequential<Layers>;
/// Its parameters' gradient.
pub type MlpGradient = <Mlp as Differentiable>::Tangent;
/// A batch of 128 inputs.
pub type Batch = Tensor<f32, (Const<128>, Const<784>), Heap>;

/// The model with the hand-written baseline's parameters.
pub fn from_handwritten(tensors: &W2Tensors) -> Mlp {
    Sequential((
        Linear { weight: tensor(&tensors.w1), bias: tensor(&tensors.b1) },
        Relu,
        Linear { weight: tensor(&tensors.w2), bias: tensor(&tensors.b2) },
    ))
}

/// A static-shape heap tensor of `values`.
fn tensor<S: StaticShape>(values: &[f32]) -> Tensor<f32, S, Heap> {
    Tensor::from_shape_vec(S::default(), values.to_vec()).expect("the sizes agree")
}

/// A batch of the baseline's inputs, as a constant of the tape (made once).
pub fn batch(inputs: &[f32]) -> Var<Batch> {
    Var::constant(tensor(inputs))
}

/// The one-hot rows of `labels`, for the static-mode loss.
pub fn one_hot(labels: &[usize]) -> Tensor<f32, (Const<128>, Const<10>), Heap> {
    Tensor::from_shape_fn(Default::default(), |[row, class]| if labels[row] == class { 1.0 } else { 0.0 })
}

/// The same loss written once as an ordinary function over the model, the layers as
/// a chain (`StaticModule::apply_batch`); static mode generates its gradient at
/// compile time (`static_loss::value_and_grad_into`).
#[differentiable(wrt(model))]
pub fn static_loss(model: &Mlp, x: &Batch, one_hot: &Tensor<f32, (Const<128>, Const<10>), Heap>) -> f32 {
    let logits = model.apply_batch(x);
    -logits.log_softmax(Axis::<1>).hadamard(one_hot).sum() / 128.0
}

/// The model with the gradient buffer and the optimiser of its training loop.
pub struct Trainer {
    /// The parameters.
    pub model: Mlp,
    gradient: MlpGradient,
    sgd: Sgd<Mlp>,
}

impl Trainer {
    /// `model`, trained by SGD with η = 0.01.
    pub fn new(model: Mlp) -> Self {
        let gradient = model.zero_tangent();
        Trainer { model, gradient, sgd: Sgd::new(SgdConfig { learning_rate: 0.01, ..SgdConfig::default() }) }
    }

    /// One training step on `(x, labels)`; the loss before the update.
    pub fn step(&mut self, x: &Var<Batch>, labels: &[usize]) -> f32 {
        let loss = value_and_grad_into(
            |m: <Mlp as Trace>::Traced| cross_entropy(&m.forward(x), labels, Reduction::Mean),
            &self.model,
            &mut self.gradient,
        );
        self.sgd.step(&mut self.model, &self.gradient);
        loss
    }

    /// One training step with the static-mode gradient; the loss before the update.
    pub fn static_step(&mut self, x: &Batch, one_hot: &Tensor<f32, (Const<128>, Const<10>), Heap>) -> f32 {
        let loss = static_loss::value_and_grad_into(&self.model, x, one_hot, &mut self.gradient);
        self.sgd.step(&mut self.model, &self.gradient);
        loss
    }
}
