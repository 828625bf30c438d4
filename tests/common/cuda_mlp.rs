//! The W2/W4 classifier (input → hidden → classes, ReLU, softmax cross-entropy, SGD)
//! written with the primitives and their reverse-mode rules, once over host tensors
//! and once over `Cuda` tensors: the GPU parity test compares their loss curves and
//! the W4 benchmark times the GPU step.
#![allow(dead_code)]

use fluxion::autodiff::{Differentiable, Write, value_and_grad};
use fluxion::backend::cuda::CudaElement;
use fluxion::ops::cuda as device_rules;
use fluxion::ops::{elementwise as host_elementwise, layout as host_layout, softmax as host_softmax};
use fluxion::prelude::*;

type M<T, const R: usize, const C: usize, K> = Tensor<T, (Const<R>, Const<C>), K>;
type V<T, const N: usize, K> = Tensor<T, (Const<N>,), K>;

/// A batch of `B` inputs and their one-hot labels.
pub struct Batch<
    T: CudaElement,
    const B: usize,
    const I: usize = 32,
    const O: usize = 10,
    K: StorageKind<T, (Const<B>, Const<I>)> + StorageKind<T, (Const<B>, Const<O>)> = Heap,
> {
    pub inputs: M<T, B, I, K>,
    pub labels: M<T, B, O, K>,
}

impl<T: CudaElement, const B: usize, const I: usize, const O: usize> Batch<T, B, I, O> {
    /// Uniform inputs in [−1, 1] and labels spread over the classes.
    pub fn random(seed: u64) -> Self {
        let inputs = Tensor::random_uniform(T::from_f64(-1.0), T::from_f64(1.0), seed);
        let labels = Tensor::from_fn(
            |[b, c]: [usize; 2]| if (b * 7 + seed as usize) % O == c { T::one() } else { T::zero() },
        );
        Batch { inputs, labels }
    }

    pub fn to_device(&self) -> Batch<T, B, I, O, Cuda> {
        Batch { inputs: self.inputs.to_device(), labels: self.labels.to_device() }
    }
}

/// The model: hidden = relu(x·W₁ + b₁), logits = hidden·W₂ + b₂.
pub struct Mlp<T: CudaElement, const I: usize, const H: usize, const O: usize, K = Heap>
where
    K: StorageKind<T, (Const<I>, Const<H>)>
        + StorageKind<T, (Const<H>,)>
        + StorageKind<T, (Const<H>, Const<O>)>
        + StorageKind<T, (Const<O>,)>,
{
    pub w1: M<T, I, H, K>,
    pub b1: V<T, H, K>,
    pub w2: M<T, H, O, K>,
    pub b2: V<T, O, K>,
}

impl<T: CudaElement, const I: usize, const H: usize, const O: usize> Mlp<T, I, H, O> {
    /// Weights uniform in ±1/√fan-in, biases zero.
    pub fn init(seed: u64) -> Self {
        let scale = |n: usize| T::from_f64(1.0 / (n as f64).sqrt());
        Mlp {
            w1: Tensor::random_uniform(-scale(I), scale(I), seed),
            b1: Tensor::zeros(),
            w2: Tensor::random_uniform(-scale(H), scale(H), seed + 1),
            b2: Tensor::zeros(),
        }
    }

    pub fn to_device(&self) -> Mlp<T, I, H, O, Cuda> {
        Mlp {
            w1: self.w1.to_device(),
            b1: self.b1.to_device(),
            w2: self.w2.to_device(),
            b2: self.b2.to_device(),
        }
    }

    /// One SGD step on the host; returns the loss before the step.
    pub fn sgd_step<const B: usize>(&mut self, batch: &Batch<T, B, I, O>, rate: T) -> T {
        let pre: M<T, B, H, Heap> =
            &batch.inputs.matmul(&self.w1) + &self.b1.broadcast::<(Const<B>, Const<H>)>();
        let hidden = pre.relu();
        let logits: M<T, B, O, Heap> =
            &hidden.matmul(&self.w2) + &self.b2.broadcast::<(Const<B>, Const<O>)>();
        let log_p = logits.log_softmax(Axis::<1>);
        let loss = -log_p.hadamard(&batch.labels).sum() / T::from_f64(B as f64);

        let log_p_bar = batch.labels.scale(-T::one() / T::from_f64(B as f64));
        let logits_bar = host_softmax::log_softmax_pullback::<1, _, _, _>(&log_p, &log_p_bar);
        let b2_bar = host_layout::broadcast_pullback(&self.b2, &logits_bar);
        let (mut hidden_bar, mut w2_bar) = (hidden.clone(), self.w2.clone());
        hidden.matmul_pullback(
            &self.w2,
            &logits_bar,
            Some((&mut hidden_bar, Write::Overwrite)),
            Some((&mut w2_bar, Write::Overwrite)),
        );
        let pre_bar = host_elementwise::relu_pullback(&pre, &hidden_bar);
        let b1_bar = host_layout::broadcast_pullback(&self.b1, &pre_bar);
        let mut w1_bar = self.w1.clone();
        batch.inputs.matmul_pullback(&self.w1, &pre_bar, None, Some((&mut w1_bar, Write::Overwrite)));

        self.w1 -= &w1_bar.scale(rate);
        self.b1 -= &b1_bar.scale(rate);
        self.w2 -= &w2_bar.scale(rate);
        self.b2 -= &b2_bar.scale(rate);
        loss
    }
}

impl<T: CudaElement, const I: usize, const H: usize, const O: usize> Mlp<T, I, H, O, Cuda> {
    /// One SGD step on the GPU, the same formulas as [`Mlp::sgd_step`] on the host;
    /// returns the loss before the step (reading it waits for the GPU).
    pub fn sgd_step<const B: usize>(&mut self, batch: &Batch<T, B, I, O, Cuda>, rate: T) -> T {
        let loss = self.sgd_step_queued(batch, rate);
        -loss.sum() / T::from_f64(B as f64)
    }

    /// One SGD step queued on the GPU; returns Σ labels ⊙ log p (still on the GPU).
    pub fn sgd_step_queued<const B: usize>(
        &mut self,
        batch: &Batch<T, B, I, O, Cuda>,
        rate: T,
    ) -> M<T, B, O, Cuda> {
        let pre: M<T, B, H, Cuda> =
            &batch.inputs.matmul(&self.w1) + &self.b1.broadcast::<(Const<B>, Const<H>)>();
        let hidden = pre.relu();
        let logits: M<T, B, O, Cuda> =
            &hidden.matmul(&self.w2) + &self.b2.broadcast::<(Const<B>, Const<O>)>();
        let log_p = logits.log_softmax(Axis::<1>);
        let picked = log_p.hadamard(&batch.labels);

        let log_p_bar = batch.labels.scale(-T::one() / T::from_f64(B as f64));
        let mut logits_bar = logits;
        device_rules::log_softmax_pullback::<1, _, _>(&log_p, &log_p_bar, &mut logits_bar, Write::Overwrite);
        let mut hidden_bar = Tensor::device_zeros(hidden.shape());
        let mut w2_bar = Tensor::device_zeros(self.w2.shape());
        hidden.matmul_pullback(
            &self.w2,
            &logits_bar,
            Some((&mut hidden_bar, Write::Overwrite)),
            Some((&mut w2_bar, Write::Overwrite)),
        );
        let mut pre_bar = hidden;
        device_rules::relu_pullback(&pre, &hidden_bar, &mut pre_bar, Write::Overwrite);
        let mut w1_bar = Tensor::device_zeros(self.w1.shape());
        batch.inputs.matmul_pullback(&self.w1, &pre_bar, None, Some((&mut w1_bar, Write::Overwrite)));

        let mut b2_bar = Tensor::device_zeros(self.b2.shape());
        device_rules::broadcast_pullback(&logits_bar, &mut b2_bar, Write::Overwrite);
        let mut b1_bar = Tensor::device_zeros(self.b1.shape());
        device_rules::broadcast_pullback(&pre_bar, &mut b1_bar, Write::Overwrite);
        self.w1.add_scaled(-rate, &w1_bar);
        self.b1.add_scaled(-rate, &b1_bar);
        self.w2.add_scaled(-rate, &w2_bar);
        self.b2.add_scaled(-rate, &b2_bar);
        picked
    }
}

/// The same classifier as a derived model on the GPU, trained through the tape:
/// `value_and_grad` records the forward pass and sweeps the device rules back.
#[derive(Clone, Debug, Differentiable)]
pub struct TapeMlp<const I: usize, const H: usize, const O: usize> {
    pub w1: M<f32, I, H, Cuda>,
    pub b1: V<f32, H, Cuda>,
    pub w2: M<f32, H, O, Cuda>,
    pub b2: V<f32, O, Cuda>,
}

impl<const I: usize, const H: usize, const O: usize> TapeMlp<I, H, O> {
    pub fn new(model: &Mlp<f32, I, H, O, Cuda>) -> Self {
        TapeMlp { w1: model.w1.clone(), b1: model.b1.clone(), w2: model.w2.clone(), b2: model.b2.clone() }
    }

    /// One SGD step through `value_and_grad`; returns the loss before the step.
    pub fn sgd_step<const B: usize>(
        &mut self,
        inputs: &Var<M<f32, B, I, Cuda>>,
        labels: &Var<M<f32, B, O, Cuda>>,
        rate: f32,
    ) -> f32 {
        let (loss, mut step) = value_and_grad(
            |m: TapeMlpTraced<I, H, O>| {
                let pre = &inputs.matmul(&m.w1) + &m.b1.broadcast::<(Const<B>, Const<H>)>();
                let logits = &pre.relu().matmul(&m.w2) + &m.b2.broadcast::<(Const<B>, Const<O>)>();
                let picked = logits.log_softmax(Axis::<1>).hadamard(labels).sum();
                -&(&picked / B as f32)
            },
            &*self,
        );
        step.scale_mut(-f64::from(rate));
        self.move_by(&step);
        loss
    }
}
