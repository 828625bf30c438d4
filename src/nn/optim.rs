//! Optimisers over tangents: a model's gradient is its `Tangent`, and so is each
//! piece of optimiser state (momentum, moment estimates), so the state is typed like
//! the model and lives where the model lives (inline for a fixed-size net, with no
//! heap and no std).
//!
//! With learning rate η, weight decay λ and gradient g at parameters x (step t ≥ 1):
//!
//! | optimiser | update |
//! | --- | --- |
//! | [`Sgd`] | g ← g + λx; v ← μv + (1 − τ)g (v₁ = g); d = g + μv (Nesterov) or v; x ← x − ηd |
//! | [`Adam`] | g ← g + λx; m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; x ← x − η·m̂/(√v̂ + ε) |
//! | [`Adam`] with [`AdamConfig::adamw`] | x ← x(1 − ηλ) first, then Adam without λ in g |
//!
//! where m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ): the definitions of PyTorch's `SGD`,
//! `Adam` and `AdamW`. Each update is one fused pass over each tensor of the model
//! (parameter, gradient and state side by side, [`Leaf::zip_reals`]), not a callback
//! per coordinate.
//!
//! An update applies to every leaf or to none: the shapes of the model, the gradient
//! and the state are checked first, and a mismatch (a gradient with another dynamic
//! shape) returns an error naming both shapes and leaves the model and the state as
//! they were. (On `Cuda` tensors the update goes through host copies, leaf by leaf; a
//! device error there panics and can leave earlier leaves updated.)
//!
//! [`clip_grad_norm`] rescales a gradient to a maximal global norm, and the
//! [`LearningRateSchedule`]s [`StepDecay`] and [`CosineDecay`] give η per epoch or
//! step, set before the epoch's steps:
//!
//! ```
//! use fluxion::nn::optim::{CosineDecay, LearningRateSchedule, Optimizer, Sgd, SgdConfig};
//!
//! let mut sgd = Sgd::<f64>::new(SgdConfig::default());
//! let schedule = CosineDecay { initial: 0.1, minimum: 0.001, steps: 30 };
//! for epoch in 0..30 {
//!     sgd.set_learning_rate(schedule.rate(epoch));
//!     // … the epoch's `sgd.step(&mut model, &gradient)` calls …
//! }
//! assert_eq!(sgd.learning_rate(), schedule.rate(29));
//! ```
//!
//! ```
//! use fluxion::nn::optim::{Adam, AdamConfig, Optimizer};
//! use fluxion::prelude::*;
//!
//! // Minimise ‖x − (1, 2)‖² with Adam.
//! let target: Vector<f64, 2> = Vector::from_array([1.0, 2.0]);
//! let mut x: Vector<f64, 2> = Vector::zeros();
//! let mut adam = Adam::new(AdamConfig { learning_rate: 0.1, ..AdamConfig::default() });
//! for _ in 0..500 {
//!     let gradient = (x - target).scale(2.0);
//!     adam.step(&mut x, &gradient);
//! }
//! assert!((x - target).as_slice().iter().all(|e| e.abs() < 1e-3));
//! ```

use crate::autodiff::{Differentiable, Leaf, LeafVisitor, SameShapes, VectorSpace};
use crate::error::{ShapeError, or_panic};
use crate::scalar::{RealScalar, Scalar};

/// A rule that moves a model `M` against its gradient.
pub trait Optimizer<M: Differentiable> {
    /// One update with `gradient`; on a shape mismatch between the model, the
    /// gradient and the state, an error naming both shapes, and nothing changed.
    fn try_step(&mut self, model: &mut M, gradient: &M::Tangent) -> Result<(), ShapeError>;

    /// One update with `gradient`.
    ///
    /// # Panics
    /// When a dynamic shape of the gradient differs from the model's (nothing is
    /// changed before the panic).
    #[track_caller]
    fn step(&mut self, model: &mut M, gradient: &M::Tangent) {
        or_panic(self.try_step(model, gradient));
    }

    /// The learning rate η of the next step.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate of the next steps (a schedule calls this).
    fn set_learning_rate(&mut self, learning_rate: f64);
}

/// Checks the shapes of the model, the gradient and the state (when there is one yet)
/// before an update changes anything, then returns the state, made from the gradient
/// at the first step.
fn checked_state<'s, M: Differentiable, const N: usize>(
    model: &mut M,
    gradient: &M::Tangent,
    state: &'s mut Option<[M::Tangent; N]>,
    operation: &'static str,
) -> Result<&'s mut [M::Tangent; N], ShapeError> {
    let check = &mut SameShapes { operation };
    match state {
        Some(state) => model.zip_leaves_with(state.each_mut(), [gradient], check)?,
        None => model.zip_leaves_with([], [gradient], check)?,
    }
    Ok(state.get_or_insert_with(|| core::array::from_fn(|_| gradient.zero_like())))
}

/// The parameter leaf that a walk over a model hands to the visitors below
/// (`Differentiable::zip_leaves_with` gives every leaf of `self` as the parameter).
fn parameter<L>(parameter: Option<&mut L>) -> &mut L {
    parameter.expect("an optimiser's update walks the model's own leaves")
}

/// Settings of [`Sgd`]; the default is plain gradient descent with η = 0.01.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// η.
    pub learning_rate: f64,
    /// μ, the momentum factor (0 for none).
    pub momentum: f64,
    /// τ, the dampening of the momentum.
    pub dampening: f64,
    /// Nesterov momentum (needs μ > 0 and τ = 0).
    pub nesterov: bool,
    /// λ, the L2 weight decay added to the gradient.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { learning_rate: 0.01, momentum: 0.0, dampening: 0.0, nesterov: false, weight_decay: 0.0 }
    }
}

/// Stochastic gradient descent with optional momentum (classical or Nesterov) and
/// weight decay; the velocity is a tangent of the model, made at the first step.
#[derive(Clone, Debug)]
pub struct Sgd<M: Differentiable> {
    config: SgdConfig,
    velocity: Option<[M::Tangent; 1]>,
}

impl<M: Differentiable> Sgd<M> {
    /// An optimiser with these settings.
    ///
    /// # Panics
    /// When `nesterov` is asked without momentum or with dampening.
    #[track_caller]
    pub fn new(config: SgdConfig) -> Self {
        assert!(
            !config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0),
            "Nesterov momentum needs a momentum factor > 0 and no dampening"
        );
        Sgd { config, velocity: None }
    }

    /// The settings.
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }

    /// The velocity v (after the first step with momentum).
    pub fn velocity(&self) -> Option<&M::Tangent> {
        self.velocity.as_ref().map(|[velocity]| velocity)
    }
}

/// One SGD update of a leaf, in the leaf's real type.
struct SgdUpdate {
    config: SgdConfig,
    first_step: bool,
}

impl LeafVisitor<0, 1> for SgdUpdate {
    fn visit<L: Leaf>(&mut self, x: Option<&mut L>, _: [&mut L; 0], [g]: [&L; 1]) -> Result<(), ShapeError> {
        let real = |c: f64| L::Real::from_f64(c);
        let (rate, decay) = (real(self.config.learning_rate), real(self.config.weight_decay));
        L::zip_reals([parameter(x)], [g], |[x], [g]| [x - rate * (g + decay * x)]);
        Ok(())
    }
}

impl LeafVisitor<1, 1> for SgdUpdate {
    fn visit<L: Leaf>(
        &mut self,
        x: Option<&mut L>,
        [v]: [&mut L; 1],
        [g]: [&L; 1],
    ) -> Result<(), ShapeError> {
        let real = |c: f64| L::Real::from_f64(c);
        let SgdConfig { learning_rate, momentum, dampening, nesterov, weight_decay } = self.config;
        let (rate, decay, mu, kept) =
            (real(learning_rate), real(weight_decay), real(momentum), real(1.0 - dampening));
        let first_step = self.first_step;
        L::zip_reals([parameter(x), v], [g], |[x, v], [g]| {
            let g = g + decay * x;
            let v = if first_step { g } else { mu * v + kept * g };
            let direction = if nesterov { g + mu * v } else { v };
            [x - rate * direction, v]
        });
        Ok(())
    }
}

impl<M: Differentiable> Optimizer<M> for Sgd<M> {
    fn try_step(&mut self, model: &mut M, gradient: &M::Tangent) -> Result<(), ShapeError> {
        if self.config.momentum == 0.0 {
            model.zip_leaves_with([], [gradient], &mut SameShapes { operation: "Sgd::step" })?;
            let plain = &mut SgdUpdate { config: self.config, first_step: false };
            return model.zip_leaves_with([], [gradient], plain);
        }
        let first_step = self.velocity.is_none();
        let [velocity] = checked_state(model, gradient, &mut self.velocity, "Sgd::step")?;
        model.zip_leaves_with([velocity], [gradient], &mut SgdUpdate { config: self.config, first_step })
    }

    fn learning_rate(&self) -> f64 {
        self.config.learning_rate
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.config.learning_rate = learning_rate;
    }
}

/// Settings of [`Adam`]; the default is PyTorch's (η = 10⁻³, β = (0.9, 0.999),
/// ε = 10⁻⁸, no weight decay).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// η.
    pub learning_rate: f64,
    /// β₁, the decay of the first moment.
    pub beta1: f64,
    /// β₂, the decay of the second moment.
    pub beta2: f64,
    /// ε, added to √v̂.
    pub epsilon: f64,
    /// λ: added to the gradient as λx (Adam), or decoupled as x(1 − ηλ) (AdamW).
    pub weight_decay: f64,
    /// Decoupled weight decay (AdamW).
    pub decoupled_weight_decay: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
        }
    }
}

impl AdamConfig {
    /// AdamW's settings (PyTorch's defaults): decoupled weight decay λ = 0.01.
    pub fn adamw() -> Self {
        AdamConfig { weight_decay: 0.01, decoupled_weight_decay: true, ..AdamConfig::default() }
    }
}

/// Adam and AdamW: moment estimates m and v, tangents of the model made at the first
/// step, with bias correction.
#[derive(Clone, Debug)]
pub struct Adam<M: Differentiable> {
    config: AdamConfig,
    moments: Option<[M::Tangent; 2]>,
    steps: u64,
}

impl<M: Differentiable> Adam<M> {
    /// An optimiser with these settings.
    pub fn new(config: AdamConfig) -> Self {
        Adam { config, moments: None, steps: 0 }
    }

    /// The settings.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// The number of steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The first and second moment estimates m and v (after the first step).
    pub fn moments(&self) -> Option<(&M::Tangent, &M::Tangent)> {
        self.moments.as_ref().map(|[m, v]| (m, v))
    }
}

/// One Adam update of a leaf at step t, in the leaf's real type.
struct AdamUpdate {
    config: AdamConfig,
    step: u64,
}

impl LeafVisitor<2, 1> for AdamUpdate {
    fn visit<L: Leaf>(
        &mut self,
        x: Option<&mut L>,
        [m, v]: [&mut L; 2],
        [g]: [&L; 1],
    ) -> Result<(), ShapeError> {
        let real = |c: f64| L::Real::from_f64(c);
        let AdamConfig { learning_rate, beta1, beta2, epsilon, weight_decay, decoupled_weight_decay } =
            self.config;
        let (coupled, shrink) = match decoupled_weight_decay {
            true => (0.0, 1.0 - learning_rate * weight_decay),
            false => (weight_decay, 1.0),
        };
        let (coupled, shrink, epsilon) = (real(coupled), real(shrink), real(epsilon));
        let (b1, b2) = (real(beta1), real(beta2));
        let (one_minus_b1, one_minus_b2) = (real(1.0 - beta1), real(1.0 - beta2));
        // η·m̂/(√v̂ + ε) = (η/(1 − β₁ᵗ))·m / (√v/√(1 − β₂ᵗ) + ε)
        let t = self.step as f64;
        let corrected_rate = real(learning_rate / (1.0 - beta1.powf(t)));
        let second_correction = real((1.0 - beta2.powf(t)).sqrt());
        L::zip_reals([parameter(x), m, v], [g], |[x, m, v], [g]| {
            let g = g + coupled * x;
            let m = b1 * m + one_minus_b1 * g;
            let v = b2 * v + one_minus_b2 * g * g;
            [x * shrink - corrected_rate * m / (v.sqrt() / second_correction + epsilon), m, v]
        });
        Ok(())
    }
}

impl<M: Differentiable> Optimizer<M> for Adam<M> {
    fn try_step(&mut self, model: &mut M, gradient: &M::Tangent) -> Result<(), ShapeError> {
        let [m, v] = checked_state(model, gradient, &mut self.moments, "Adam::step")?;
        self.steps += 1;
        model.zip_leaves_with([m, v], [gradient], &mut AdamUpdate { config: self.config, step: self.steps })
    }

    fn learning_rate(&self) -> f64 {
        self.config.learning_rate
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.config.learning_rate = learning_rate;
    }
}

/// Σ of the squares of the real coordinates visited, in f64 (an f32 sum of squares
/// overflows from coordinates of about 2⁶⁴ and loses digits on large tensors).
struct SquaredNorm(f64);

impl LeafVisitor<0, 1> for SquaredNorm {
    fn visit<L: Leaf>(&mut self, _: Option<&mut L>, _: [&mut L; 0], [g]: [&L; 1]) -> Result<(), ShapeError> {
        L::zip_reals([], [g], |[], [g]| {
            let g = g.to_f64();
            self.0 += g * g;
            []
        });
        Ok(())
    }
}

/// The global Euclidean norm of a tangent, √(Σ over every real coordinate of every
/// leaf of c²).
pub fn global_norm<V: VectorSpace>(tangent: &V) -> f64 {
    let mut squared = SquaredNorm(0.0);
    // A walk over one value cannot fail: no lengths to compare, no check in the visitor.
    or_panic(V::zip_leaves([], [tangent], &mut squared));
    squared.0.sqrt()
}

/// Scales `gradient` so that its global norm is at most `max_norm` (by
/// `max_norm / (norm + 10⁻⁶)` when the norm exceeds it, as PyTorch's
/// `clip_grad_norm_`), and returns the norm before clipping.
pub fn clip_grad_norm<V: VectorSpace>(gradient: &mut V, max_norm: f64) -> f64 {
    let norm = global_norm(gradient);
    if norm > max_norm {
        gradient.scale(max_norm / (norm + 1e-6));
    }
    norm
}

/// A learning rate per step (or per epoch; the caller chooses what it counts).
pub trait LearningRateSchedule {
    /// η at step `step` (from 0).
    fn rate(&self, step: usize) -> f64;
}

/// η₀·γ^⌊step / every⌋: the rate is multiplied by γ every `every` steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDecay {
    /// η₀.
    pub initial: f64,
    /// γ.
    pub factor: f64,
    /// The number of steps between decays.
    pub every: usize,
}

impl LearningRateSchedule for StepDecay {
    #[track_caller]
    fn rate(&self, step: usize) -> f64 {
        assert!(self.every > 0, "StepDecay::every must be at least 1");
        self.initial * self.factor.powi((step / self.every) as i32)
    }
}

/// Cosine annealing from η₀ to η_min over `steps` steps:
/// η_min + (η₀ − η_min)·(1 + cos(π·step/steps))/2, and η_min after.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineDecay {
    /// η₀.
    pub initial: f64,
    /// η_min.
    pub minimum: f64,
    /// The number of steps of the decay.
    pub steps: usize,
}

impl LearningRateSchedule for CosineDecay {
    fn rate(&self, step: usize) -> f64 {
        if self.steps == 0 {
            return self.minimum;
        }
        let progress = step.min(self.steps) as f64 / self.steps as f64;
        let cosine = (core::f64::consts::PI * progress).cos();
        self.minimum + (self.initial - self.minimum) * (1.0 + cosine) / 2.0
    }
}
