//! Batch normalisation: each channel of a batch normalised by statistics over the
//! batch, y = γ_c·(x − μ_c)/√(σ_c² + ε) + β_c.
//!
//! In training, μ_c and σ_c² are the mean and biased variance of the n values of
//! channel c in the batch (n = B for rows `(B, C)`, n = B·H·W for images
//! `(B, C, H, W)`), differentiated through like any other operation (so each
//! example's output depends on the whole batch), and the running estimates move
//! towards them: r ← (1 − m)·r + m·s, with the variance's s unbiased, σ²·n/(n − 1).
//! In evaluation the running estimates take their place, as constants.

use super::*;
use crate::nn::params::Buffer;

/// Batch normalisation over the C channels of a batch: rows `(B, C)` (PyTorch's
/// `BatchNorm1d`, a channel per feature) or images `(B, C, H, W)` (`BatchNorm2d`).
/// y = γ_c·(x − μ_c)/√(σ_c² + ε) + β_c, with γ = `weight` (ones at first), β =
/// `bias` (zeros at first) and ε = 10⁻⁵.
///
/// In training, μ and σ² are the batch's mean and biased variance per channel, and
/// each call moves the running estimates towards them by the momentum m = 0.1:
/// r ← (1 − m)·r + m·s, the variance's s unbiased (PyTorch's rule). A batch with a
/// single value per channel is refused in training (its variance is 0), as PyTorch
/// does. In evaluation ([`BatchNorm::eval`], or any batch normalisation inside
/// [`evaluation`]) the running estimates are used instead, and nothing changes.
/// Every forward pass in training of the model itself moves them, whoever runs it:
/// each `jvp`, and each evaluation that `hvp` or a Hessian makes, counts (as each
/// call of a PyTorch model in training does; `check_grad`'s finite differences run
/// on clones); differentiate a clone, or inside [`evaluation`], to keep them. What is
/// computed again moves nothing: a [`checkpoint`](crate::autodiff::checkpoint)'s
/// recomputation (which normalises as the first run did), static mode's reverse
/// sweeps and `linearize`'s map ([`recomputing`](crate::autodiff::recomputing)).
///
/// The running estimates are [`Buffer`]s: saved and loaded with the parameters
/// (`running_mean`, `running_var`, as PyTorch names them; PyTorch's
/// `num_batches_tracked` count is read and ignored — the momentum here is fixed — and
/// not written, which PyTorch's `load_state_dict` accepts). The copies of a model that
/// a gradient or forward mode makes share them, so a training step's statistics
/// reach the model; `clone` copies them, so a clone is a snapshot that further
/// training leaves as it is (also a model cloned into a tuple, `(model.clone(), x)`,
/// to differentiate in both: the statistics go to the clone; and a `BatchNorm` held
/// in a `#[no_derivative]` field, which its struct's twins clone: keep such a frozen
/// layer in evaluation). `to_device` and
/// `to_host` move copies. `==` compares the parameters, the estimates, ε, the
/// momentum and the training setting.
///
/// ```
/// use fluxion::nn::layer::{BatchNorm, Linear, Module, Relu, Sequential, evaluation};
/// use fluxion::prelude::*;
///
/// let model = Sequential((Linear::<f64, 2, 3>::new(1), BatchNorm::<f64, 3>::new(), Relu));
/// let batch = Tensor::<f64, (Dyn, Const<2>), Heap>::from_shape_fn((Dyn(4), Const), |[b, f]| (b * 3 + f) as f64 % 5.0);
/// // Training: each feature normalised over the batch (before γ, β and the ReLU).
/// let normalised = model.0.1.forward(&model.0.0.forward(&batch));
/// let column = normalised.mean_axis(Axis::<0>);
/// assert!(column.to_vec().iter().all(|mean| mean.abs() < 1e-12));
/// // The training pass moved the running mean off 0; evaluation uses it.
/// assert!(model.0.1.running_mean.get().to_vec().iter().any(|&mean| mean != 0.0));
/// let _ = evaluation(|| model.forward(&batch));
/// ```
#[derive(Differentiable)]
pub struct BatchNorm<T, const C: usize, K = Heap>
where
    T: RealScalar,
    K: StorageKind<T, (Const<C>,)>,
{
    /// γ, the gain per channel.
    pub weight: Tensor<T, (Const<C>,), K>,
    /// β, the shift per channel.
    pub bias: Tensor<T, (Const<C>,), K>,
    /// The running estimate of each channel's mean (zeros at first).
    #[buffer]
    pub running_mean: Buffer<Tensor<T, (Const<C>,), K>>,
    /// The running estimate of each channel's variance (ones at first).
    #[buffer]
    pub running_var: Buffer<Tensor<T, (Const<C>,), K>>,
    /// ε.
    #[no_derivative]
    pub epsilon: T,
    /// m, the weight of each batch in the running estimates.
    #[no_derivative]
    pub momentum: T,
    #[no_derivative]
    training: bool,
}

impl<T: RealScalar, const C: usize, K: Storage<T, (Const<C>,)>> BatchNorm<T, C, K> {
    /// γ = 1, β = 0, running mean 0 and variance 1, ε = 10⁻⁵, m = 0.1, in training.
    pub fn new() -> Self {
        BatchNorm {
            weight: Tensor::full(T::one()),
            bias: Tensor::zeros(),
            running_mean: Buffer::new(Tensor::zeros()),
            running_var: Buffer::new(Tensor::full(T::one())),
            epsilon: T::from_f64(1e-5),
            momentum: T::from_f64(0.1),
            training: true,
        }
    }
}

/// With copies of the running estimates: a snapshot (see [`BatchNorm`]).
impl<T: RealScalar, const C: usize, K: StorageKind<T, (Const<C>,)>> Clone for BatchNorm<T, C, K>
where
    Tensor<T, (Const<C>,), K>: Clone,
{
    fn clone(&self) -> Self {
        BatchNorm {
            weight: self.weight.clone(),
            bias: self.bias.clone(),
            running_mean: self.running_mean.clone(),
            running_var: self.running_var.clone(),
            epsilon: self.epsilon,
            momentum: self.momentum,
            training: self.training,
        }
    }
}

impl<T: RealScalar, const C: usize, K: Storage<T, (Const<C>,)>> Default for BatchNorm<T, C, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: RealScalar, const C: usize, K: StorageKind<T, (Const<C>,)>> BatchNorm<T, C, K> {
    training_switch!("batch statistics, running estimates updated", "running estimates");
}

/// A static-mode forward pass (`#[differentiable]`) `$method` on `$input`, from the
/// same steps as [`batch_norm_forward`]: `$add` and `$mul` apply a vector per channel
/// and `x $reduce` is the mean per channel.
macro_rules! static_forward {
    (
        $(#[$doc:meta])*
        $method:ident[$($generics:tt)*](|$x:ident| $input:ty) where [$($bounds:tt)*];
        $add:ident, $mul:ident, [$($reduce:tt)*]
    ) => {
        $(#[$doc])*
        #[differentiable]
        pub fn $method<$($generics)*>(&self, $x: &$input) -> $input
        where
            $($bounds)*
        {
            // The settings and running estimates, not differentiated.
            let layer = rules::stop_gradient(self);
            let inverse_deviation = InverseDeviation { epsilon: layer.epsilon };
            if layer.training {
                let mean = $x $($reduce)*;
                let centred = $x.$add(&-&mean);
                let square = centred.hadamard(&centred);
                let variance = square $($reduce)*;
                let statistics = (rules::stop_gradient(mean.clone()), rules::stop_gradient(variance.clone()));
                let count = $x.len() / C;
                layer.record(statistics, count);
                centred.$mul(&variance.map_function(inverse_deviation).hadamard(&self.weight)).$add(&self.bias)
            } else {
                let (mean, variance) = (layer.running_mean.get(), layer.running_var.get());
                let scale = variance.map_function(inverse_deviation);
                $x.$add(&-&mean).$mul(&scale.hadamard(&self.weight)).$add(&self.bias)
            }
        }
    };
}

impl<T: RealScalar, const C: usize, K: Storage<T, (Const<C>,)>> BatchNorm<T, C, K> {
    static_forward! {
        /// The forward pass on rows `(B, C)`, written for static mode
        /// (`#[differentiable]`; in training each run of a companion records the
        /// batch's statistics, as a forward pass on the tape does).
        apply_batch[B: Dim](|x| Tensor<T, (B, Const<C>), K>) where [K: Storage<T, (B, Const<C>)>];
        add_rows, mul_rows, [.mean_axis(Axis::<0>)]
    }

    static_forward! {
        /// The forward pass on images `(B, C, H, W)`, written for static mode (as
        /// [`apply_batch`](Self::apply_batch)).
        apply_images[B: Dim, H: Dim, W: Dim](|x| Tensor<T, (B, Const<C>, H, W), K>)
        where [K: ImageNormStorage<T, T, B, C, H, W>];
        add_channels, mul_channels, [.mean_axis(Axis::<3>).mean_axis(Axis::<2>).mean_axis(Axis::<0>)]
    }
}

/// What static mode reads of a [`BatchNorm`] without differentiating it
/// (`stop_gradient(&layer)`): whether it trains in this call, ε, the momentum, and
/// its running estimates (shared).
pub struct BatchNormSettings<T, const C: usize, K>
where
    T: RealScalar,
    K: StorageKind<T, (Const<C>,)>,
{
    /// In training, and not inside [`evaluation`].
    pub training: bool,
    /// ε.
    pub epsilon: f64,
    /// The momentum.
    pub momentum: f64,
    /// The layer's running mean.
    pub running_mean: Buffer<Tensor<T, (Const<C>,), K>>,
    /// The layer's running variance.
    pub running_var: Buffer<Tensor<T, (Const<C>,), K>>,
}

impl<T: RealScalar, const C: usize, K: Storage<T, (Const<C>,)>> BatchNormSettings<T, C, K> {
    /// Moves the running estimates towards a batch's mean and biased variance over
    /// `count` values per channel.
    #[track_caller]
    pub fn record(&self, statistics: (Tensor<T, (Const<C>,), K>, Tensor<T, (Const<C>,), K>), count: usize) {
        record(&self.running_mean, &self.running_var, self.momentum, statistics, count);
    }
}

#[diagnostic::do_not_recommend]
impl<T: RealScalar, const C: usize, K: StorageKind<T, (Const<C>,)>> rules::StopGradient
    for &BatchNorm<T, C, K>
{
    type Stopped = BatchNormSettings<T, C, K>;
    fn stop_gradient(self) -> Self::Stopped {
        BatchNormSettings {
            training: uses_batch_statistics(self.training),
            epsilon: self.epsilon.to_f64(),
            momentum: self.momentum.to_f64(),
            running_mean: self.running_mean.share(),
            running_var: self.running_var.share(),
        }
    }
}

crate::static_module!(
    impl[T: RealScalar, const C: usize, K: Storage<T, (Const<C>,)>, B: Dim] BatchNorm<T, C, K>:
        apply_batch(Tensor<T, (B, Const<C>), K>) -> Tensor<T, (B, Const<C>), K>;
    where [K: Storage<T, (B, Const<C>)>]
);

crate::static_module!(
    impl[T: RealScalar, const C: usize, K: Storage<T, (Const<C>,)>, B: Dim, H: Dim, W: Dim] BatchNorm<T, C, K>:
        apply_images(Tensor<T, (B, Const<C>, H, W), K>) -> Tensor<T, (B, Const<C>, H, W), K>;
    where [K: ImageNormStorage<T, T, B, C, H, W>]
);

debug_and_eq_by_fields!(
    [T: RealScalar, const C: usize, K: StorageKind<T, (Const<C>,)>] BatchNorm<T, C, K>, "BatchNorm"
    where [] {
        weight: Tensor<T, (Const<C>,), K>,
        bias: Tensor<T, (Const<C>,), K>,
        running_mean: Buffer<Tensor<T, (Const<C>,), K>>,
        running_var: Buffer<Tensor<T, (Const<C>,), K>>,
        epsilon: T,
        momentum: T,
        training: bool
    }
);

/// 1/√(v + ε), with derivative −½(v + ε)^(−3/2) = −½y³: a channel's inverse standard
/// deviation from its variance v (a function of its own, so that it has a GPU kernel).
#[derive(Clone, Copy, Debug)]
pub struct InverseDeviation {
    /// ε.
    pub epsilon: f64,
}

impl ScalarFunction for InverseDeviation {
    #[inline(always)]
    fn value<T: RealScalar>(&self, v: T) -> T {
        T::one() / (v + T::from_f64(self.epsilon)).sqrt()
    }

    #[inline(always)]
    fn derivative<T: RealScalar>(&self, _: T, y: T) -> T {
        T::from_f64(-0.5) * y * y * y
    }
}

/// A vector of one value per channel in the form the layer runs in (plain, traced,
/// dual, on the GPU), beside its plain values `P`: what the running estimates are
/// read from and written to.
pub trait ChannelVector<P> {
    /// The plain values (a traced vector's value, a dual vector's primal).
    fn primal(&self) -> P;
    /// Plain values as a constant of this form.
    fn constant(plain: &P) -> Self;
}

impl<T: RealScalar, C: Dim, K: Storage<T, (C,)>> ChannelVector<Tensor<T, (C,), K>> for Tensor<T, (C,), K> {
    fn primal(&self) -> Self {
        self.clone()
    }
    fn constant(plain: &Self) -> Self {
        plain.clone()
    }
}

impl<T: RealScalar, C: Dim, K> ChannelVector<Tensor<T, (C,), K>> for Tensor<Dual<T>, (C,), K>
where
    K: Storage<T, (C,)> + Storage<Dual<T>, (C,)>,
{
    fn primal(&self) -> Tensor<T, (C,), K> {
        self.map(|x| x.value())
    }
    fn constant(plain: &Tensor<T, (C,), K>) -> Self {
        plain.map(Dual::constant)
    }
}

impl<P, V: ChannelVector<P> + Clone + 'static> ChannelVector<P> for Var<V> {
    fn primal(&self) -> P {
        self.value().primal()
    }
    fn constant(plain: &P) -> Self {
        Var::constant(V::constant(plain))
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, C: Dim> ChannelVector<Tensor<T, (C,), Cuda>> for Tensor<T, (C,), Cuda> {
    fn primal(&self) -> Self {
        self.clone()
    }
    fn constant(plain: &Self) -> Self {
        plain.clone()
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, C: Dim> ChannelVector<Tensor<T, (C,), Cuda>> for CudaDual<T, (C,)> {
    fn primal(&self) -> Tensor<T, (C,), Cuda> {
        self.value.clone()
    }
    fn constant(plain: &Tensor<T, (C,), Cuda>) -> Self {
        CudaDual::constant(plain.clone())
    }
}

/// Running estimates blended with a batch's statistics, on the host or the GPU.
pub trait RunningEstimate: Sized {
    /// keep·self + take·batch, elementwise.
    fn blended(&self, batch: &Self, keep: f64, take: f64) -> Self;
}

impl<T: RealScalar, C: Dim, K: Storage<T, (C,)>> RunningEstimate for Tensor<T, (C,), K> {
    fn blended(&self, batch: &Self, keep: f64, take: f64) -> Self {
        let (running, batch) = (self.as_slice(), batch.as_slice());
        let (keep, take) = (T::from_f64(keep), T::from_f64(take));
        Tensor::from_flat_fn(self.shape(), |i| keep * running[i] + take * batch[i])
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, C: Dim> RunningEstimate for Tensor<T, (C,), Cuda> {
    fn blended(&self, batch: &Self, keep: f64, take: f64) -> Self {
        &self.scale(T::from_f64(keep)) + &batch.scale(T::from_f64(take))
    }
}

/// Whether a layer set to `training` normalises by the batch's statistics in this
/// call: in training and not inside [`evaluation`]; inside a checkpoint's
/// recomputation, as the first run did (one [`replayable_draw`]).
///
/// [`replayable_draw`]: crate::autodiff::replayable_draw
fn uses_batch_statistics(training: bool) -> bool {
    crate::autodiff::replayable_draw(|| u64::from(training_now(training))) == 1
}

/// Moves the running estimates of `layer` (any form of it) towards a batch's mean
/// and biased variance over `count` values per channel.
///
/// # Panics
/// When `count` is below 2: one value per channel has no spread to normalise by.
#[track_caller]
fn record<P: RunningEstimate>(
    running_mean: &Buffer<P>,
    running_var: &Buffer<P>,
    momentum: f64,
    (mean, variance): (P, P),
    count: usize,
) {
    assert!(
        count > 1,
        "batch normalisation in training needs more than one value per channel, the batch has {count} \
         (evaluate with `evaluation` or `BatchNorm::eval` for a single example)"
    );
    if crate::autodiff::recomputing() {
        return;
    }
    let unbiased = momentum * count as f64 / (count - 1) as f64;
    running_mean.update(|running| *running = running.blended(&mean, 1.0 - momentum, momentum));
    running_var.update(|running| *running = running.blended(&variance, 1.0 - momentum, unbiased));
}

/// The layer's output in any of its forms from one expression: `$add` and `$mul`
/// apply a vector per channel (of type `$channels`), `$reduce` (of `$v`) is the mean
/// per channel, and `$count` the number of values per channel.
macro_rules! batch_norm_forward {
    ($layer:expr, $x:expr, $count:expr, $channels:ty, $add:ident, $mul:ident, |$v:ident| $reduce:expr) => {{
        let (layer, x) = ($layer, $x);
        let inverse_deviation = InverseDeviation { epsilon: layer.epsilon.to_f64() };
        let (centred, scale) = if uses_batch_statistics(layer.training) {
            let mean = {
                let $v = x;
                $reduce
            };
            let centred = x.$add(&-&mean);
            let variance = {
                let $v = &centred.hadamard(&centred);
                $reduce
            };
            let statistics = (mean.primal(), variance.primal());
            record(&layer.running_mean, &layer.running_var, layer.momentum.to_f64(), statistics, $count);
            (centred, variance.map_function(inverse_deviation))
        } else {
            let mean: $channels = ChannelVector::constant(&layer.running_mean.get());
            let scale: $channels =
                ChannelVector::constant(&layer.running_var.get().map_function(inverse_deviation));
            (x.$add(&-&mean), scale)
        };
        centred.$mul(&scale.hadamard(&layer.weight)).$add(&layer.bias)
    }};
}

/// `Module<$input>` for one form of the layer, from [`batch_norm_forward`]: `$fit`
/// gives the input with C channels, `$count` the values per channel.
macro_rules! batch_norm_module {
    (
        $(#[$attribute:meta])*
        impl[$($generics:tt)*] $layer:ty: $input:ty => $output:ty;
        where [$($bounds:tt)*]
        |$x:ident| $fit:expr, $count:expr;
        $channels:ty, $add:ident, $mul:ident, |$v:ident| $reduce:expr
    ) => {
        $(#[$attribute])*
        impl<$($generics)*> Module<$input> for $layer
        where
            $($bounds)*
        {
            type Output = $output;

            #[track_caller]
            fn forward(&self, $x: &$input) -> $output {
                batch_norm_forward!(self, $fit, $count, $channels, $add, $mul, |$v| $reduce)
            }
        }
    };
}

/// Rows `(B, C)`: a channel per feature, its mean over the batch.
macro_rules! batch_norm_rows {
    (
        $(#[$attribute:meta])*
        impl[$($generics:tt)*] $layer:ty: $input:ty => $output:ty;
        where [$($bounds:tt)*]
        |$x:ident| $fit:expr, $rows:expr; $channels:ty
    ) => {
        batch_norm_module! {
            $(#[$attribute])*
            impl[$($generics)*] $layer: $input => $output;
            where [$($bounds)*]
            |$x| $fit, $rows.size();
            $channels, add_rows, mul_rows, |v| v.mean_axis(Axis::<0>)
        }
    };
}

/// Images `(B, C, H, W)`: a channel's mean over its B·H·W values.
macro_rules! batch_norm_images {
    (
        $(#[$attribute:meta])*
        impl[$($generics:tt)*] $layer:ty: $input:ty => $output:ty;
        where [$($bounds:tt)*]
        |$x:ident| $fit:expr, $shape:expr; $channels:ty
    ) => {
        batch_norm_module! {
            $(#[$attribute])*
            impl[$($generics)*] $layer: $input => $output;
            where [$($bounds)*]
            |$x| $fit, {
                let (batch, _, height, width) = $shape;
                batch.size() * height.size() * width.size()
            };
            $channels, add_channels, mul_channels,
            |v| v.mean_axis(Axis::<3>).mean_axis(Axis::<2>).mean_axis(Axis::<0>)
        }
    };
}

batch_norm_rows! {
    impl[T: RealScalar, B: Dim, F: Dim + SameFeatureCount<Const<C>>, const C: usize, K]
        BatchNorm<T, C, K>: Tensor<T, (B, F), K> => Tensor<T, (B, Const<C>), K>;
    where [K: Storage<T, (Const<C>,)> + Storage<T, (B, F)> + Storage<T, (B, Const<C>)>,]
    |x| F::fit(x), x.shape().0; Tensor<T, (Const<C>,), K>
}

batch_norm_rows! {
    impl[T: RealScalar, B: Dim, F: Dim + SameFeatureCount<Const<C>>, const C: usize, K]
        BatchNormTraced<T, C, K>: Var<Tensor<T, (B, F), K>> => Var<Tensor<T, (B, Const<C>), K>>;
    where [K: Storage<T, (Const<C>,)> + Storage<T, (B, F)> + Storage<T, (B, Const<C>)>,]
    |x| F::fit_traced(x), x.value().shape().0; Var<Tensor<T, (Const<C>,), K>>
}

batch_norm_rows! {
    impl[T: RealScalar, B: Dim, F: Dim + SameFeatureCount<Const<C>>, const C: usize, K]
        BatchNormLifted<T, C, K>: Tensor<Dual<T>, (B, F), K> => Tensor<Dual<T>, (B, Const<C>), K>;
    where [
        K: Storage<T, (Const<C>,)>
            + Storage<Dual<T>, (Const<C>,)>
            + Storage<Dual<T>, (B, F)>
            + Storage<Dual<T>, (B, Const<C>)>,
    ]
    |x| F::fit(x), x.shape().0; Tensor<Dual<T>, (Const<C>,), K>
}

batch_norm_rows! {
    impl[T: RealScalar, B: Dim, F: Dim + SameFeatureCount<Const<C>>, const C: usize, K]
        BatchNormLiftedTraced<T, C, K>: Var<Tensor<Dual<T>, (B, F), K>> => Var<Tensor<Dual<T>, (B, Const<C>), K>>;
    where [
        K: Storage<T, (Const<C>,)>
            + Storage<Dual<T>, (Const<C>,)>
            + Storage<Dual<T>, (B, F)>
            + Storage<Dual<T>, (B, Const<C>)>,
    ]
    |x| F::fit_traced(x), x.value().shape().0; Var<Tensor<Dual<T>, (Const<C>,), K>>
}

/// A host storage kind of image batches `(B, C, H, W)` of element `E` (`T`, or
/// `Dual<T>` in forward mode) that [`BatchNorm`] normalises: the batch, its means
/// along the way to one per channel, and the running estimates of element `T`.
pub trait ImageNormStorage<T, E, B, const C: usize, H, W>:
    Storage<T, (Const<C>,)>
    + Storage<E, (Const<C>,)>
    + Storage<E, (B, Const<C>, H, W)>
    + Storage<E, (B, Const<C>, H)>
    + Storage<E, (B, Const<C>)>
where
    B: Dim,
    H: Dim,
    W: Dim,
{
}

impl<T, E, B: Dim, const C: usize, H: Dim, W: Dim, K> ImageNormStorage<T, E, B, C, H, W> for K where
    K: Storage<T, (Const<C>,)>
        + Storage<E, (Const<C>,)>
        + Storage<E, (B, Const<C>, H, W)>
        + Storage<E, (B, Const<C>, H)>
        + Storage<E, (B, Const<C>)>
{
}

batch_norm_images! {
    impl[T: RealScalar, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, H: Dim, W: Dim, K]
        BatchNorm<T, C, K>: Tensor<T, (B, Ch, H, W), K> => Tensor<T, (B, Const<C>, H, W), K>;
    where [K: ImageNormStorage<T, T, B, C, H, W> + Storage<T, (B, Ch, H, W)>,]
    |x| Ch::fit(x), x.shape(); Tensor<T, (Const<C>,), K>
}

batch_norm_images! {
    impl[T: RealScalar, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, H: Dim, W: Dim, K]
        BatchNormTraced<T, C, K>: Var<Tensor<T, (B, Ch, H, W), K>> => Var<Tensor<T, (B, Const<C>, H, W), K>>;
    where [K: ImageNormStorage<T, T, B, C, H, W> + Storage<T, (B, Ch, H, W)>,]
    |x| Ch::fit_traced(x), x.value().shape(); Var<Tensor<T, (Const<C>,), K>>
}

batch_norm_images! {
    impl[T: RealScalar, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, H: Dim, W: Dim, K]
        BatchNormLifted<T, C, K>: Tensor<Dual<T>, (B, Ch, H, W), K> => Tensor<Dual<T>, (B, Const<C>, H, W), K>;
    where [K: ImageNormStorage<T, Dual<T>, B, C, H, W> + Storage<Dual<T>, (B, Ch, H, W)>,]
    |x| Ch::fit(x), x.shape(); Tensor<Dual<T>, (Const<C>,), K>
}

batch_norm_images! {
    impl[T: RealScalar, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, H: Dim, W: Dim, K]
        BatchNormLiftedTraced<T, C, K>:
        Var<Tensor<Dual<T>, (B, Ch, H, W), K>> => Var<Tensor<Dual<T>, (B, Const<C>, H, W), K>>;
    where [K: ImageNormStorage<T, Dual<T>, B, C, H, W> + Storage<Dual<T>, (B, Ch, H, W)>,]
    |x| Ch::fit_traced(x), x.value().shape(); Var<Tensor<Dual<T>, (Const<C>,), K>>
}

constant_input!(
    [T: RealScalar, B: Dim, F: Dim, const C: usize, K: StorageKind<T, (B, F)>]
    BatchNormTraced<T, C, K>, Tensor<T, (B, F), K>;
    where [K: StorageKind<T, (Const<C>,)>, Tensor<T, (Const<C>,), K>: Trace,]
);
constant_input!(
    [T: RealScalar, B: Dim, Ch: Dim, const C: usize, H: Dim, W: Dim, K: StorageKind<T, (B, Ch, H, W)>]
    BatchNormTraced<T, C, K>, Tensor<T, (B, Ch, H, W), K>;
    where [K: StorageKind<T, (Const<C>,)>, Tensor<T, (Const<C>,), K>: Trace,]
);
constant_input!(
    [T: RealScalar, B: Dim, F: Dim, const C: usize, K: Storage<T, (B, F)> + Storage<Dual<T>, (B, F)>]
    BatchNormLiftedTraced<T, C, K>, Tensor<T, (B, F), K> => Tensor<Dual<T>, (B, F), K>, |x| x.map(Dual::constant);
    where [
        K: StorageKind<T, (Const<C>,)> + Storage<Dual<T>, (Const<C>,)>,
        Tensor<T, (Const<C>,), K>: Lift<Lifted: Trace>,
    ]
);
constant_input!(
    [
        T: RealScalar, B: Dim, Ch: Dim, const C: usize, H: Dim, W: Dim,
        K: Storage<T, (B, Ch, H, W)> + Storage<Dual<T>, (B, Ch, H, W)>
    ]
    BatchNormLiftedTraced<T, C, K>,
    Tensor<T, (B, Ch, H, W), K> => Tensor<Dual<T>, (B, Ch, H, W), K>, |x| x.map(Dual::constant);
    where [
        K: StorageKind<T, (Const<C>,)> + Storage<Dual<T>, (Const<C>,)>,
        Tensor<T, (Const<C>,), K>: Lift<Lifted: Trace>,
    ]
);

batch_norm_rows! {
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, B: Dim, F: Dim + SameFeatureCount<Const<C>>, const C: usize]
        BatchNorm<T, C, Cuda>: Tensor<T, (B, F), Cuda> => Tensor<T, (B, Const<C>), Cuda>;
    where []
    |x| F::fit(x), x.shape().0; Tensor<T, (Const<C>,), Cuda>
}

batch_norm_rows! {
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, B: Dim, F: Dim + SameFeatureCount<Const<C>>, const C: usize]
        BatchNormTraced<T, C, Cuda>: Var<Tensor<T, (B, F), Cuda>> => Var<Tensor<T, (B, Const<C>), Cuda>>;
    where []
    |x| F::fit_traced(x), x.value().shape().0; Var<Tensor<T, (Const<C>,), Cuda>>
}

batch_norm_rows! {
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, B: Dim, const C: usize]
        BatchNormLifted<T, C, Cuda>: CudaDual<T, (B, Const<C>)> => CudaDual<T, (B, Const<C>)>;
    where []
    |x| x, x.value.shape().0; CudaDual<T, (Const<C>,)>
}

batch_norm_images! {
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, H: Dim, W: Dim]
        BatchNorm<T, C, Cuda>: Tensor<T, (B, Ch, H, W), Cuda> => Tensor<T, (B, Const<C>, H, W), Cuda>;
    where []
    |x| Ch::fit(x), x.shape(); Tensor<T, (Const<C>,), Cuda>
}

batch_norm_images! {
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, B: Dim, Ch: Dim + SameChannelCount<Const<C>>, const C: usize, H: Dim, W: Dim]
        BatchNormTraced<T, C, Cuda>: Var<Tensor<T, (B, Ch, H, W), Cuda>> => Var<Tensor<T, (B, Const<C>, H, W), Cuda>>;
    where []
    |x| Ch::fit_traced(x), x.value().shape(); Var<Tensor<T, (Const<C>,), Cuda>>
}

batch_norm_images! {
    #[cfg(feature = "cuda")]
    impl[T: CudaElement, B: Dim, const C: usize, H: Dim, W: Dim]
        BatchNormLifted<T, C, Cuda>: CudaDual<T, (B, Const<C>, H, W)> => CudaDual<T, (B, Const<C>, H, W)>;
    where []
    |x| x, x.value.shape(); CudaDual<T, (Const<C>,)>
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const C: usize> ToDevice for BatchNorm<T, C, Heap> {
    type OnDevice = BatchNorm<T, C, Cuda>;
    /// With copies of the running estimates on the device (training there updates
    /// those; `to_host` brings them back).
    fn to_device(&self) -> Self::OnDevice {
        BatchNorm {
            weight: self.weight.to_device(),
            bias: self.bias.to_device(),
            running_mean: Buffer::new(self.running_mean.get().to_device()),
            running_var: Buffer::new(self.running_var.get().to_device()),
            epsilon: self.epsilon,
            momentum: self.momentum,
            training: self.training,
        }
    }
}

#[cfg(feature = "cuda")]
impl<T: CudaElement, const C: usize> ToHost for BatchNorm<T, C, Cuda> {
    type OnHost = BatchNorm<T, C, Heap>;
    fn to_host(&self) -> Self::OnHost {
        BatchNorm {
            weight: self.weight.to_host(),
            bias: self.bias.to_host(),
            running_mean: Buffer::new(self.running_mean.get().to_host()),
            running_var: Buffer::new(self.running_var.get().to_host()),
            epsilon: self.epsilon,
            momentum: self.momentum,
            training: self.training,
        }
    }
}
