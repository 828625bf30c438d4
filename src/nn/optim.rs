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
//! `Adam` and `AdamW`. With `decay_vectors: false` in the settings, λ applies only to
//! leaves of rank 2 or more (weights, not biases or normalisation gains: [`decays`]),
//! the parameter groups that PyTorch code sets up by hand for AdamW. Each update is one fused pass over each tensor of the model
//! (parameter, gradient and state side by side), not a callback per coordinate: a
//! [`CoordinateUpdate`] written once over any real scalar, which a host tensor runs
//! in one loop and a GPU tensor as one generated kernel ([`Leaf::update`]).
//!
//! An update applies to every leaf or to none: the shapes of the model, the gradient
//! and the state are checked first, and a mismatch (a gradient with another dynamic
//! shape) returns an error naming both shapes and leaves the model and the state as
//! they were. (On `Cuda` tensors a device error panics, and can leave earlier leaves
//! updated.)
//!
//! [`clip_grad_norm`] rescales a gradient to a maximal global norm, and the
//! [`LearningRateSchedule`]s [`StepDecay`] and [`CosineDecay`] give η per epoch or
//! step, set before the epoch's steps:
//!
//! ```
//! use fluxion::nn::optim::{CosineDecay, LearningRateSchedule, Optimizer, Sgd, SgdConfig};
//!
//! // The type parameter is the model's type (here a single `f64` parameter).
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

use crate::autodiff::{CoordinateUpdate, Differentiable, Leaf, LeafVisitor, SameShapes, VectorSpace};
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
    ///
    /// # Panics
    /// When `learning_rate` is negative, infinite or NaN (the optimiser is left as
    /// it was).
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

/// Whether weight decay applies to `leaf`: always with `decay_vectors`, else to
/// leaves of rank 2 or more only (weights of `Linear`, `Conv2d`, `Embedding`; not
/// biases, `LayerNorm`/`GroupNorm`/`BatchNorm` gains and shifts, or scalars), the parameter
/// groups that nanoGPT and timm set up by hand in PyTorch.
pub fn decays<L: Leaf>(decay_vectors: bool, leaf: &L) -> bool {
    decay_vectors || leaf.coordinate_dims().is_some_and(|dims| dims.as_slice().len() >= 2)
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
    /// Whether λ applies to leaves of rank below 2 too (biases, normalisation gains
    /// and shifts, scalars): `true` (PyTorch's default); `false` decays only
    /// matrices and kernels ([`decays`]).
    pub decay_vectors: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            learning_rate: 0.01,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            decay_vectors: true,
        }
    }
}

impl SgdConfig {
    /// PyTorch's checks, and finite values: η, μ and λ are finite and ≥ 0, τ is
    /// finite, and Nesterov momentum needs μ > 0 and τ = 0. Otherwise, the setting's
    /// name and what it needs.
    pub fn check(&self) -> Result<(), InvalidSetting> {
        non_negative("learning_rate", self.learning_rate)?;
        non_negative("momentum", self.momentum)?;
        non_negative("weight_decay", self.weight_decay)?;
        if !self.dampening.is_finite() {
            return Err(InvalidSetting { name: "dampening", needs: "it must be a finite number" });
        }
        if self.nesterov && !(self.momentum > 0.0 && self.dampening == 0.0) {
            return Err(InvalidSetting {
                name: "nesterov",
                needs: "Nesterov momentum needs a momentum factor > 0 and no dampening",
            });
        }
        Ok(())
    }
}

/// A setting of an optimiser that is not allowed: its name, and what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The setting's field name.
    pub name: &'static str,
    /// What the setting needs.
    pub needs: &'static str,
}

impl core::fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "optimiser setting `{}`: {}", self.name, self.needs)
    }
}

/// `value` finite and ≥ 0.
fn non_negative(name: &'static str, value: f64) -> Result<(), InvalidSetting> {
    match value.is_finite() && value >= 0.0 {
        true => Ok(()),
        false => Err(InvalidSetting { name, needs: "it must be a finite number ≥ 0" }),
    }
}

/// `learning_rate`, checked as a setting.
///
/// # Panics
/// When it is negative, infinite or NaN.
#[track_caller]
fn checked_learning_rate(learning_rate: f64) -> f64 {
    if let Err(invalid) = non_negative("learning_rate", learning_rate) {
        panic!("set_learning_rate({learning_rate}): {invalid}");
    }
    learning_rate
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
    /// When a setting is not allowed ([`SgdConfig::check`]): a negative or NaN rate,
    /// momentum or weight decay, or `nesterov` without momentum or with dampening.
    #[track_caller]
    pub fn new(config: SgdConfig) -> Self {
        if let Err(invalid) = config.check() {
            panic!("{invalid}");
        }
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

/// One SGD update of a leaf: a [`CoordinateUpdate`] of the parameter (and the velocity).
struct SgdUpdate {
    config: SgdConfig,
    first_step: bool,
}

/// Without momentum: x ← x − η(g + λx), with p = (η, λ).
impl CoordinateUpdate<1, 1, 2> for SgdUpdate {
    const NAME: &'static str = "sgd";
    fn parameters(&self) -> [f64; 2] {
        [self.config.learning_rate, self.config.weight_decay]
    }
    fn apply<X: RealScalar>(&self, [x]: [X; 1], [g]: [X; 1], [rate, decay]: [X; 2]) -> [X; 1] {
        [x - rate * (g + decay * x)]
    }
}

/// With momentum, p = (η, λ, μ, 1 − τ); the first step and Nesterov momentum are
/// kernels of their own.
impl CoordinateUpdate<2, 1, 4> for SgdUpdate {
    const NAME: &'static str = "sgd_momentum";
    fn parameters(&self) -> [f64; 4] {
        let SgdConfig { learning_rate, momentum, dampening, weight_decay, .. } = self.config;
        [learning_rate, weight_decay, momentum, 1.0 - dampening]
    }
    fn apply<X: RealScalar>(&self, [x, v]: [X; 2], [g]: [X; 1], [rate, decay, mu, kept]: [X; 4]) -> [X; 2] {
        let g = g + decay * x;
        let v = if self.first_step { g } else { mu * v + kept * g };
        let direction = if self.config.nesterov { g + mu * v } else { v };
        [x - rate * direction, v]
    }
}

impl SgdUpdate {
    /// The update of one leaf: without weight decay where it does not apply.
    fn for_leaf<L: Leaf>(&self, leaf: &L) -> SgdUpdate {
        let weight_decay =
            if decays(self.config.decay_vectors, leaf) { self.config.weight_decay } else { 0.0 };
        SgdUpdate { config: SgdConfig { weight_decay, ..self.config }, ..*self }
    }
}

impl LeafVisitor<0, 1> for SgdUpdate {
    fn visit<L: Leaf>(&mut self, x: Option<&mut L>, _: [&mut L; 0], [g]: [&L; 1]) -> Result<(), ShapeError> {
        let update = self.for_leaf(g);
        L::update([parameter(x)], [g], &update);
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
        let update = self.for_leaf(g);
        L::update([parameter(x), v], [g], &update);
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

    #[track_caller]
    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.config.learning_rate = checked_learning_rate(learning_rate);
    }
}

/// A checkpoint of SGD holds its settings and its velocity.
#[cfg(feature = "safetensors")]
impl<M: Differentiable> crate::nn::io::OptimizerState<M> for Sgd<M> {
    const KIND: &'static str = "sgd";
    const STATE: &'static [&'static str] = &["velocity"];

    fn settings(&self) -> std::vec::Vec<(&'static str, f64)> {
        let SgdConfig { learning_rate, momentum, dampening, nesterov, weight_decay, decay_vectors } =
            self.config;
        std::vec![
            ("learning_rate", learning_rate),
            ("momentum", momentum),
            ("dampening", dampening),
            ("nesterov", f64::from(u8::from(nesterov))),
            ("weight_decay", weight_decay),
            ("decay_vectors", f64::from(u8::from(decay_vectors))),
        ]
    }

    fn state(&self) -> Option<&[M::Tangent]> {
        self.velocity.as_ref().map(|velocity| velocity.as_slice())
    }

    fn restore(
        &mut self,
        setting: &dyn Fn(&'static str) -> Option<f64>,
        state: Option<std::vec::Vec<M::Tangent>>,
    ) -> Result<(), &'static str> {
        let number = |name| setting(name).ok_or(name);
        let config = SgdConfig {
            learning_rate: number("learning_rate")?,
            momentum: number("momentum")?,
            dampening: number("dampening")?,
            nesterov: switch(setting, "nesterov")?,
            weight_decay: number("weight_decay")?,
            decay_vectors: switch_or_on(setting, "decay_vectors")?,
        };
        config.check().map_err(|invalid| invalid.name)?;
        // Plain SGD keeps no velocity.
        if config.momentum == 0.0 && state.is_some() {
            return Err("state");
        }
        let velocity = state_array(state)?;
        (self.config, self.velocity) = (config, velocity);
        Ok(())
    }
}

/// A switch kept as 0 or 1.
#[cfg(feature = "safetensors")]
fn switch(setting: &dyn Fn(&'static str) -> Option<f64>, name: &'static str) -> Result<bool, &'static str> {
    match setting(name) {
        Some(0.0) => Ok(false),
        Some(1.0) => Ok(true),
        _ => Err(name),
    }
}

/// A switch kept as 0 or 1 that checkpoints written before it existed lack: on then.
#[cfg(feature = "safetensors")]
fn switch_or_on(
    setting: &dyn Fn(&'static str) -> Option<f64>,
    name: &'static str,
) -> Result<bool, &'static str> {
    match setting(name) {
        None => Ok(true),
        Some(_) => switch(setting, name),
    }
}

/// The state tangents read from a checkpoint as the optimiser keeps them: `N` of
/// them, or none.
#[cfg(feature = "safetensors")]
fn state_array<T, const N: usize>(state: Option<std::vec::Vec<T>>) -> Result<Option<[T; N]>, &'static str> {
    state.map(|state| state.try_into().map_err(|_| "state")).transpose()
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
    /// Whether λ applies to leaves of rank below 2 too (biases, normalisation gains
    /// and shifts, scalars): `true` (PyTorch's default); `false` decays only
    /// matrices and kernels ([`decays`]).
    pub decay_vectors: bool,
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
            decay_vectors: true,
        }
    }
}

impl AdamConfig {
    /// AdamW's settings (PyTorch's defaults): decoupled weight decay λ = 0.01.
    pub fn adamw() -> Self {
        AdamConfig { weight_decay: 0.01, decoupled_weight_decay: true, ..AdamConfig::default() }
    }

    /// PyTorch's checks, and finite values: η, ε and λ are finite and ≥ 0, and β₁, β₂
    /// in [0, 1).
    /// Otherwise, the setting's name and what it needs.
    pub fn check(&self) -> Result<(), InvalidSetting> {
        non_negative("learning_rate", self.learning_rate)?;
        non_negative("epsilon", self.epsilon)?;
        non_negative("weight_decay", self.weight_decay)?;
        for (name, beta) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(InvalidSetting { name, needs: "a decay must be in [0, 1)" });
            }
        }
        Ok(())
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
    ///
    /// # Panics
    /// When a setting is not allowed ([`AdamConfig::check`]): a negative or NaN rate,
    /// ε or weight decay, or a β outside [0, 1).
    #[track_caller]
    pub fn new(config: AdamConfig) -> Self {
        if let Err(invalid) = config.check() {
            panic!("{invalid}");
        }
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

/// One Adam update of a leaf at step t: a [`CoordinateUpdate`] of the parameter and
/// both moments.
struct AdamUpdate {
    config: AdamConfig,
    step: u64,
}

/// p = (coupled λ, decoupled shrink 1 − ηλ, ε, β₁, β₂, 1 − β₁, 1 − β₂, η/(1 − β₁ᵗ),
/// √(1 − β₂ᵗ)), with η·m̂/(√v̂ + ε) = (η/(1 − β₁ᵗ))·m / (√v/√(1 − β₂ᵗ) + ε).
impl CoordinateUpdate<3, 1, 9> for AdamUpdate {
    const NAME: &'static str = "adam";
    fn parameters(&self) -> [f64; 9] {
        let AdamConfig { learning_rate, beta1, beta2, epsilon, weight_decay, decoupled_weight_decay, .. } =
            self.config;
        let (coupled, shrink) = match decoupled_weight_decay {
            true => (0.0, 1.0 - learning_rate * weight_decay),
            false => (weight_decay, 1.0),
        };
        // `Scalar`'s methods: without std, `f64` has no `powf` or `sqrt` of its own.
        let t = self.step as f64;
        let corrected_rate = learning_rate / (1.0 - Scalar::powf(beta1, t));
        let second_correction = Scalar::sqrt(1.0 - Scalar::powf(beta2, t));
        [coupled, shrink, epsilon, beta1, beta2, 1.0 - beta1, 1.0 - beta2, corrected_rate, second_correction]
    }
    fn apply<X: RealScalar>(&self, [x, m, v]: [X; 3], [g]: [X; 1], parameters: [X; 9]) -> [X; 3] {
        let [coupled, shrink, epsilon, b1, b2, one_minus_b1, one_minus_b2, corrected_rate, second_correction] =
            parameters;
        let g = g + coupled * x;
        let m = b1 * m + one_minus_b1 * g;
        let v = b2 * v + one_minus_b2 * g * g;
        [x * shrink - corrected_rate * m / (v.sqrt() / second_correction + epsilon), m, v]
    }
}

impl LeafVisitor<2, 1> for AdamUpdate {
    fn visit<L: Leaf>(
        &mut self,
        x: Option<&mut L>,
        [m, v]: [&mut L; 2],
        [g]: [&L; 1],
    ) -> Result<(), ShapeError> {
        let weight_decay = if decays(self.config.decay_vectors, g) { self.config.weight_decay } else { 0.0 };
        let update = AdamUpdate { config: AdamConfig { weight_decay, ..self.config }, ..*self };
        L::update([parameter(x), m, v], [g], &update);
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

    #[track_caller]
    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.config.learning_rate = checked_learning_rate(learning_rate);
    }
}

/// The largest step count a checkpoint holds exactly (2⁵³).
#[cfg(feature = "safetensors")]
const MAX_SAVED_STEPS: f64 = 9_007_199_254_740_992.0;

/// A checkpoint of Adam holds its settings, its step count and both moments.
#[cfg(feature = "safetensors")]
impl<M: Differentiable> crate::nn::io::OptimizerState<M> for Adam<M> {
    const KIND: &'static str = "adam";
    const STATE: &'static [&'static str] = &["m", "v"];

    fn settings(&self) -> std::vec::Vec<(&'static str, f64)> {
        let AdamConfig {
            learning_rate,
            beta1,
            beta2,
            epsilon,
            weight_decay,
            decoupled_weight_decay,
            decay_vectors,
        } = self.config;
        std::vec![
            ("learning_rate", learning_rate),
            ("beta1", beta1),
            ("beta2", beta2),
            ("epsilon", epsilon),
            ("weight_decay", weight_decay),
            ("decoupled_weight_decay", f64::from(u8::from(decoupled_weight_decay))),
            ("decay_vectors", f64::from(u8::from(decay_vectors))),
            // Exact below 2⁵³ steps.
            ("steps", self.steps as f64),
        ]
    }

    fn state(&self) -> Option<&[M::Tangent]> {
        self.moments.as_ref().map(|moments| moments.as_slice())
    }

    fn restore(
        &mut self,
        setting: &dyn Fn(&'static str) -> Option<f64>,
        state: Option<std::vec::Vec<M::Tangent>>,
    ) -> Result<(), &'static str> {
        let number = |name| setting(name).ok_or(name);
        let config = AdamConfig {
            learning_rate: number("learning_rate")?,
            beta1: number("beta1")?,
            beta2: number("beta2")?,
            epsilon: number("epsilon")?,
            weight_decay: number("weight_decay")?,
            decoupled_weight_decay: switch(setting, "decoupled_weight_decay")?,
            decay_vectors: switch_or_on(setting, "decay_vectors")?,
        };
        config.check().map_err(|invalid| invalid.name)?;
        // A whole number below 2⁵³ (what a saved count is), with moments after a step.
        let steps = number("steps")?;
        if !(0.0..=MAX_SAVED_STEPS).contains(&steps)
            || steps.fract() != 0.0
            || (steps > 0.0) != state.is_some()
        {
            return Err("steps");
        }
        let moments = state_array(state)?;
        (self.config, self.steps, self.moments) = (config, steps as u64, moments);
        Ok(())
    }
}

/// The GPU kernels of every optimiser's update: plain SGD, SGD with momentum (first
/// and later steps, classical and Nesterov) and Adam. What the offline check compiles.
#[cfg(feature = "cuda")]
pub(crate) fn update_kernels() -> std::vec::Vec<crate::backend::cuda::UpdateKernel> {
    use crate::backend::cuda::{CudaError, UpdateKernel};
    let sgd = |momentum: f64, nesterov: bool, first_step: bool| SgdUpdate {
        config: SgdConfig { momentum, nesterov, ..SgdConfig::default() },
        first_step,
    };
    let kernels: [Result<UpdateKernel, CudaError>; 6] = [
        UpdateKernel::new::<1, 1, 2, _>(&sgd(0.0, false, false)),
        UpdateKernel::new::<2, 1, 4, _>(&sgd(0.9, false, true)),
        UpdateKernel::new::<2, 1, 4, _>(&sgd(0.9, false, false)),
        UpdateKernel::new::<2, 1, 4, _>(&sgd(0.9, true, true)),
        UpdateKernel::new::<2, 1, 4, _>(&sgd(0.9, true, false)),
        UpdateKernel::new(&AdamUpdate { config: AdamConfig::default(), step: 1 }),
    ];
    kernels.into_iter().map(|kernel| kernel.expect("the optimisers' updates record")).collect()
}

/// Σ of the squares of the real coordinates visited ([`Leaf::squared_norm`]).
struct SquaredNorm(f64);

impl LeafVisitor<0, 1> for SquaredNorm {
    fn visit<L: Leaf>(&mut self, _: Option<&mut L>, _: [&mut L; 0], [g]: [&L; 1]) -> Result<(), ShapeError> {
        self.0 += g.squared_norm();
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

/// Scales `gradient` so that its global norm is at most `max_norm`, by
/// `max_norm / (norm + 10⁻⁶)` (PyTorch's `clip_grad_norm_` factor) when the norm
/// exceeds `max_norm`, and returns the norm before clipping. A norm at or below
/// `max_norm` leaves the gradient as it is, where PyTorch multiplies by
/// min(1, max_norm/(norm + 10⁻⁶)) always: the two differ only for a norm within 10⁻⁶
/// below `max_norm` or at it, by a relative 10⁻⁶/norm. A NaN anywhere in the gradient
/// makes the norm NaN and, as in PyTorch, every coordinate NaN: the step after it
/// cannot apply the finite part of a broken gradient unnoticed.
///
/// # Panics
/// When `max_norm` is negative or NaN (∞ clips nothing).
#[track_caller]
pub fn clip_grad_norm<V: VectorSpace>(gradient: &mut V, max_norm: f64) -> f64 {
    assert!(max_norm >= 0.0, "clip_grad_norm: the largest norm {max_norm} must be a number ≥ 0");
    let norm = global_norm(gradient);
    if norm > max_norm || norm.is_nan() {
        gradient.scale_mut(max_norm / (norm + 1e-6));
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
    /// # Panics
    /// When `every` is 0, or `initial` or `factor` is negative, infinite or NaN.
    #[track_caller]
    fn rate(&self, step: usize) -> f64 {
        assert!(self.every > 0, "StepDecay::every must be at least 1");
        for (name, value) in [("initial", self.initial), ("factor", self.factor)] {
            assert!(
                value.is_finite() && value >= 0.0,
                "StepDecay::{name} = {value} must be a finite number ≥ 0"
            );
        }
        self.initial * self.factor.powf((step / self.every) as f64)
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
    /// # Panics
    /// When `initial` or `minimum` is negative, infinite or NaN.
    #[track_caller]
    fn rate(&self, step: usize) -> f64 {
        for (name, value) in [("initial", self.initial), ("minimum", self.minimum)] {
            assert!(
                value.is_finite() && value >= 0.0,
                "CosineDecay::{name} = {value} must be a finite number ≥ 0"
            );
        }
        if self.steps == 0 {
            return self.minimum;
        }
        let progress = step.min(self.steps) as f64 / self.steps as f64;
        let cosine = (core::f64::consts::PI * progress).cos();
        self.minimum + (self.initial - self.minimum) * (1.0 + cosine) / 2.0
    }
}

#[cfg(all(test, feature = "cuda"))]
mod tests {
    use std::vec::Vec;

    use super::*;
    use crate::backend::cuda::{CType, UpdateKernel};

    /// The GPU kernel of `update`, evaluated on the host as its CUDA C computes, gives
    /// what the host update gives, at a few points (with λ ≠ 0 and t > 1, so that
    /// every parameter counts).
    fn kernel_matches_host<const W: usize, const P: usize, U: CoordinateUpdate<W, 1, P>>(update: U) {
        let kernel = UpdateKernel::new(&update).unwrap();
        for point in [[0.5, -0.25, 0.125, 2.0], [-3.0, 1.5, 0.75, -0.5], [0.0, 0.0, 1e-3, 1e3]] {
            let written: [f64; W] = core::array::from_fn(|k| point[k]);
            let gradient = point[3];
            let host = update.apply(written, [gradient], update.parameters());
            let inputs: Vec<f64> = written.iter().copied().chain([gradient]).collect();
            let device = kernel.evaluate(&inputs, &update.parameters());
            assert_eq!(device, host.to_vec(), "{} at {point:?}", U::NAME);
        }
    }

    #[test]
    fn the_update_kernels_compute_the_host_updates() {
        let config =
            SgdConfig { learning_rate: 0.1, weight_decay: 0.01, dampening: 0.25, ..SgdConfig::default() };
        kernel_matches_host::<1, 2, _>(SgdUpdate { config, first_step: false });
        for (nesterov, dampening) in [(false, 0.25), (true, 0.0)] {
            for first_step in [true, false] {
                let config = SgdConfig { momentum: 0.9, nesterov, dampening, ..config };
                kernel_matches_host::<2, 4, _>(SgdUpdate { config, first_step });
            }
        }
        for config in [AdamConfig { weight_decay: 0.05, ..AdamConfig::default() }, AdamConfig::adamw()] {
            kernel_matches_host(AdamUpdate { config, step: 3 });
        }
    }

    #[test]
    fn settings_that_change_the_formula_get_kernels_of_their_own() {
        let names: Vec<_> = update_kernels().iter().map(|kernel| kernel.compiled_name(CType::F32)).collect();
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        // A learning rate is a kernel argument: another rate, the same kernel.
        let rate = |learning_rate| SgdUpdate {
            config: SgdConfig { learning_rate, ..SgdConfig::default() },
            first_step: false,
        };
        let name = |update| UpdateKernel::new::<1, 1, 2, _>(&update).unwrap().compiled_name(CType::F64);
        assert_eq!(name(rate(0.1)), name(rate(0.5)));
        // Adam's bias corrections change every step: arguments too.
        let adam = |step| UpdateKernel::new(&AdamUpdate { config: AdamConfig::default(), step }).unwrap();
        assert_eq!(adam(1).compiled_name(CType::F32), adam(3).compiled_name(CType::F32));
    }
}
