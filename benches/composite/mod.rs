//! A layer built from layers in static mode: two pre-norm gated feed-forward blocks
//! (x + W_d·(W_u·n(x) ⊙ σ(W_g·n(x))), D = 64 values per row, 256 hidden, 128 rows,
//! f32), each block a struct whose `#[differentiable]` method calls its layers. Group
//! `composite/block_gradient`: the loss's gradient through the blocks' method
//! (`method`), beside the same loss with both blocks' bodies written out in it
//! (`inlined`, where every call keeps its pullback: what the method's record should
//! cost). Group `composite/layer_norm_gradient`: a layer normalisation's gradient
//! with respect to its parameters and its input, by static mode and the tape.

use criterion::{Criterion, black_box, criterion_group};
use fluxion::autodiff::{Trace, differentiable, value_and_grad};
use fluxion::nn::layer::{LayerNorm, Linear, Module, StaticModule};
use fluxion::prelude::*;

use crate::common::config;

criterion_group! {
    name = benches;
    config = config();
    targets = block_gradient, layer_norm_gradient
}

const WIDTH: usize = 64;
const HIDDEN: usize = 256;
const ROWS: usize = 128;

type Rows = Tensor<f32, (Dyn, Const<WIDTH>), Heap>;

#[derive(Clone, Differentiable)]
struct GatedBlock {
    norm: LayerNorm<f32, WIDTH>,
    up: Linear<f32, WIDTH, HIDDEN>,
    gate: Linear<f32, WIDTH, HIDDEN>,
    down: Linear<f32, HIDDEN, WIDTH>,
}

impl GatedBlock {
    fn new(seed: u64) -> Self {
        GatedBlock {
            norm: LayerNorm::default(),
            up: Linear::new(seed),
            gate: Linear::new(seed + 1),
            down: Linear::new(seed + 2),
        }
    }

    #[differentiable]
    fn apply_batch(&self, x: &Rows) -> Rows {
        let h = self.norm.apply_batch(x);
        let gated = self.up.apply_batch(&h).hadamard(&self.gate.apply_batch(&h).sigmoid());
        self.down.apply_batch(&gated) + x
    }
}

fluxion::static_module!(impl[] GatedBlock: apply_batch(Rows) -> Rows);

type Model = (GatedBlock, GatedBlock);

#[differentiable(wrt(model))]
fn method_loss(model: &Model, x: &Rows) -> f32 {
    model.apply_batch(x).tanh().sum()
}

#[differentiable(wrt(model))]
fn inlined_loss(model: &Model, x: &Rows) -> f32 {
    let h = model.0.norm.apply_batch(x);
    let gated = model.0.up.apply_batch(&h).hadamard(&model.0.gate.apply_batch(&h).sigmoid());
    let y = model.0.down.apply_batch(&gated) + x;
    let h = model.1.norm.apply_batch(&y);
    let gated = model.1.up.apply_batch(&h).hadamard(&model.1.gate.apply_batch(&h).sigmoid());
    let y = model.1.down.apply_batch(&gated) + y;
    y.tanh().sum()
}

fn block_gradient(c: &mut Criterion) {
    let model = (GatedBlock::new(1), GatedBlock::new(4));
    let x: Rows = Tensor::random_normal_shaped((Dyn(ROWS), Const), 0.0, 1.0, 7);
    // Both compute the same gradient.
    let (method, inlined) = (method_loss::grad(&model, &x), inlined_loss::grad(&model, &x));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    method.for_each_real(&mut |c| a.push(c));
    inlined.for_each_real(&mut |c| b.push(c));
    a.iter().zip(&b).for_each(|(a, b)| assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}"));
    let mut group = c.benchmark_group("composite/block_gradient");
    group.bench_function("method", |b| b.iter(|| method_loss::value_and_grad(black_box(&model), &x)));
    group.bench_function("inlined", |b| b.iter(|| inlined_loss::value_and_grad(black_box(&model), &x)));
    group.finish();
}

type Norm = LayerNorm<f32, WIDTH>;

#[differentiable]
fn norm_loss(norm: &Norm, x: &Rows) -> f32 {
    norm.apply_batch(x).tanh().sum()
}

fn layer_norm_gradient(c: &mut Criterion) {
    let norm: Norm = LayerNorm {
        weight: Tensor::random_normal(1.0, 0.3, 8),
        bias: Tensor::random_normal(0.0, 0.3, 9),
        ..LayerNorm::default()
    };
    let x: Rows = Tensor::random_normal_shaped((Dyn(ROWS), Const), 0.0, 1.0, 10);
    let mut group = c.benchmark_group("composite/layer_norm_gradient");
    group.bench_function("static", |b| b.iter(|| norm_loss::value_and_grad(black_box(&norm), &x)));
    // The tape differentiates the pair (layer, input).
    let pair = (norm.clone(), x.clone());
    group.bench_function("tape", |b| {
        b.iter(|| {
            value_and_grad(
                |(n, x): (<Norm as Trace>::Traced, fluxion::autodiff::Var<Rows>)| n.forward(&x).tanh().sum(),
                black_box(&pair),
            )
        })
    });
    group.finish();
}
