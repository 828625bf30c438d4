//! The names a model needs, in one import beside the crate's own prelude:
//!
//! ```
//! use fluxion::nn::prelude::*;
//! use fluxion::prelude::*;
//!
//! type Mlp = Sequential<(Linear<f32, 4, 8>, Relu, Linear<f32, 8, 3>)>;
//! let mut model: Mlp = Sequential((Linear::new(1), Relu, Linear::new(2)));
//! let x: Tensor<f32, (Dyn, Const<4>), Heap> = Tensor::full_shaped((Dyn(2), Const), 0.5);
//! let mut adam = Adam::new(AdamConfig::default());
//! let (loss, gradient) = value_and_grad(
//!     |m: <Mlp as Trace>::Traced| cross_entropy(&m.forward(&x), &[0, 2], Reduction::Mean),
//!     &model,
//! );
//! adam.step(&mut model, &gradient);
//! assert!(loss > 0.0);
//! ```
//!
//! Layers, `Module` and `Sequential` (and the arguments of the convolutions, poolings,
//! group normalisation and attention: `Padding`, `Stride`, `Window`, `Groups`,
//! `Heads`, `Tokens`, `Mask`); the optimisers with their settings, gradient
//! clipping and learning-rate schedules; with `std`, the batch losses, `argmax` and
//! `accuracy`, the initialisers, `Dropout` (and `evaluation`) and the parameter walk. The per-example
//! losses of static mode stay under [`nn::per_example`](crate::nn::per_example), whose
//! `cross_entropy` differs from the batch one.

#[cfg(feature = "std")]
pub use super::init::Init;
pub use super::layer::{
    AttentionModule, AvgPool2d, Checkpointed, Conv2d, Embedding, Flatten, Gelu, GeluFunction, GeluTanh,
    GeluTanhFunction, GlobalAvgPool2d, GroupNorm, LayerNorm, Linear, LinearNoBias, MaxPool2d, Module,
    MultiHeadAttention, NoBias, Relu, Residual, Sequential, Sigmoid, Silu, Softmax, Softplus, StaticModule,
    Tanh, WithBias, module, output_size,
};
#[cfg(feature = "std")]
pub use super::layer::{BatchNorm, Dropout, evaluation, inference};
#[cfg(feature = "std")]
pub use super::loss::{
    Reduction, accuracy, argmax, binary_cross_entropy_with_logits, cross_entropy, cross_entropy_one_hot, mse,
};
pub use super::optim::{
    Adam, AdamConfig, CosineDecay, LearningRateSchedule, Optimizer, Sgd, SgdConfig, StepDecay,
    clip_grad_norm, global_norm,
};
#[cfg(feature = "std")]
pub use super::params::Parameters;
pub use crate::ops::attention::{Heads, Mask, Tokens};
pub use crate::ops::conv::{Groups, Padding, Stride};
pub use crate::ops::pool::Window;
