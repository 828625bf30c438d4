//! Multi-head attention on 8 sequences of 32 tokens of 64 values in 4 heads (f32),
//! causal. Group `attention/primitive`: the value and the three cotangents by the
//! library's kernels (`ours/{value,gradient}`) beside loops that pack each head into
//! fixed-size arrays and keep its probability matrix (`handwritten/{value,gradient}`). Group
//! `attention/block_gradient`: a pre-norm decoder block's gradient (attention and a
//! 64→256→64 GELU MLP, each residual, on the same rows) by static mode (`static`)
//! and the tape (`tape`), the same block as a struct with a `#[module]` body calling
//! `Gelu.forward` (`module_static`, `module_tape`), that struct's body split into
//! two helper methods (`helpers_static`), and its attention layer's alone
//! (`layer_static`, `layer_tape`), also over padded sequences (`padded_layer_*`).

use criterion::{BenchmarkId, Criterion, black_box, criterion_group};
use fluxion::autodiff::{Trace, differentiable, value_and_grad};
use fluxion::nn::layer::{
    AttentionModule, Gelu, LayerNorm, Linear, Module, MultiHeadAttention, Residual, Sequential, StaticModule,
    module,
};
use fluxion::nn::prelude::{Heads, Mask, Tokens};
use fluxion::ops::attention::attention_pullback;
use fluxion::prelude::*;

use crate::common::config;

criterion_group! {
    name = benches;
    config = config();
    targets = primitive, block_gradient
}

const SEQUENCES: usize = 8;
const TOKENS: usize = 32;
const WIDTH: usize = 64;
const HEADS: usize = 4;
const HEAD: usize = WIDTH / HEADS;
const ROWS: usize = SEQUENCES * TOKENS;

type Rows = Tensor<f32, (Dyn, Const<WIDTH>), Heap>;

fn rows(seed: u64) -> Rows {
    Tensor::random_normal_shaped((Dyn(ROWS), Const), 0.0, 1.0, seed)
}

/// One head of one sequence: `TOKENS` vectors of `HEAD`.
type HeadRows = [[f32; HEAD]; TOKENS];

/// Head `h` of sequence `s` of rows of `WIDTH`, packed into an array.
fn pack(x: &[f32], s: usize, h: usize) -> HeadRows {
    core::array::from_fn(|t| core::array::from_fn(|i| x[(s * TOKENS + t) * WIDTH + h * HEAD + i]))
}

/// Writes a head's array back into rows of `WIDTH`.
fn unpack(head: &HeadRows, out: &mut [f32], s: usize, h: usize) {
    for (t, row) in head.iter().enumerate() {
        out[(s * TOKENS + t) * WIDTH + h * HEAD..][..HEAD].copy_from_slice(row);
    }
}

/// The causal softmax of each query's scores over the keys it sees, as a matrix.
fn probabilities(q: &HeadRows, k: &HeadRows) -> [[f32; TOKENS]; TOKENS] {
    let scale = 1.0 / (HEAD as f32).sqrt();
    let mut p = [[0.0f32; TOKENS]; TOKENS];
    for (t, row) in p.iter_mut().enumerate() {
        let mut largest = f32::NEG_INFINITY;
        for u in 0..=t {
            row[u] = q[t].iter().zip(&k[u]).map(|(a, b)| a * b).sum::<f32>() * scale;
            largest = largest.max(row[u]);
        }
        let mut total = 0.0;
        for value in &mut row[..=t] {
            *value = (*value - largest).exp();
            total += *value;
        }
        row[..=t].iter_mut().for_each(|value| *value /= total);
    }
    p
}

/// o = P·V per sequence and head, each head packed into arrays first.
fn handwritten_value(q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) {
    for (s, h) in (0..SEQUENCES).flat_map(|s| (0..HEADS).map(move |h| (s, h))) {
        let (q, k, v) = (pack(q, s, h), pack(k, s, h), pack(v, s, h));
        let p = probabilities(&q, &k);
        let mut o = [[0.0f32; HEAD]; TOKENS];
        for (t, o) in o.iter_mut().enumerate() {
            for u in 0..=t {
                o.iter_mut().zip(&v[u]).for_each(|(o, v)| *o += p[t][u] * v);
            }
        }
        unpack(&o, out, s, h);
    }
}

/// (q̄, k̄, v̄) from ȳ per sequence and head, with the head's P kept from its forward
/// pass.
fn handwritten_gradient(q: &[f32], k: &[f32], v: &[f32], y_bar: &[f32], bars: &mut [Vec<f32>; 3]) {
    let scale = 1.0 / (HEAD as f32).sqrt();
    for (s, h) in (0..SEQUENCES).flat_map(|s| (0..HEADS).map(move |h| (s, h))) {
        let (q, k, v, g) = (pack(q, s, h), pack(k, s, h), pack(v, s, h), pack(y_bar, s, h));
        let p = probabilities(&q, &k);
        let (mut q_bar, mut k_bar, mut v_bar) =
            ([[0.0f32; HEAD]; TOKENS], [[0.0f32; HEAD]; TOKENS], [[0.0f32; HEAD]; TOKENS]);
        for t in 0..TOKENS {
            let mut p_bar = [0.0f32; TOKENS];
            for u in 0..=t {
                v_bar[u].iter_mut().zip(&g[t]).for_each(|(v_bar, g)| *v_bar += p[t][u] * g);
                p_bar[u] = g[t].iter().zip(&v[u]).map(|(a, b)| a * b).sum();
            }
            let centre: f32 = (0..=t).map(|u| p[t][u] * p_bar[u]).sum();
            for u in 0..=t {
                let s_bar = p[t][u] * (p_bar[u] - centre) * scale;
                q_bar[t].iter_mut().zip(&k[u]).for_each(|(q_bar, k)| *q_bar += s_bar * k);
                k_bar[u].iter_mut().zip(&q[t]).for_each(|(k_bar, q)| *k_bar += s_bar * q);
            }
        }
        for (bar, head) in bars.iter_mut().zip([q_bar, k_bar, v_bar]) {
            unpack(&head, bar, s, h);
        }
    }
}

fn primitive(c: &mut Criterion) {
    let (q, k, v, y_bar) = (rows(1), rows(2), rows(3), rows(4));
    let args = (Heads::<HEADS>, Tokens::<TOKENS>, Mask::Causal);
    let (sq, sk, sv, sg) = (q.as_slice(), k.as_slice(), v.as_slice(), y_bar.as_slice());
    let mut out = vec![0.0f32; ROWS * WIDTH];
    let mut bars = [(); 3].map(|()| vec![0.0f32; ROWS * WIDTH]);
    // The baseline computes what the library does.
    let close = |a: &[f32], b: &[f32]| {
        a.iter().zip(b).for_each(|(a, b)| assert!((a - b).abs() <= 1e-4 * (1.0 + b.abs()), "{a} vs {b}"))
    };
    handwritten_value(sq, sk, sv, &mut out);
    close(q.attention(&k, &v, args.0, args.1, args.2).as_slice(), &out);
    handwritten_gradient(sq, sk, sv, sg, &mut bars);
    attention_pullback([&q, &k, &v], &y_bar, args)
        .iter()
        .zip(&bars)
        .for_each(|(a, b)| close(a.as_slice(), b));
    let mut group = c.benchmark_group("attention/primitive");
    group.bench_function(BenchmarkId::new("ours", "value"), |b| {
        b.iter(|| black_box(&q).attention(&k, &v, args.0, args.1, args.2))
    });
    group.bench_function(BenchmarkId::new("handwritten", "value"), |b| {
        b.iter(|| handwritten_value(black_box(sq), sk, sv, &mut out))
    });
    group.bench_function(BenchmarkId::new("ours", "gradient"), |b| {
        b.iter(|| attention_pullback([black_box(&q), &k, &v], &y_bar, args))
    });
    group.bench_function(BenchmarkId::new("handwritten", "gradient"), |b| {
        b.iter(|| handwritten_gradient(black_box(sq), sk, sv, sg, &mut bars))
    });
    group.finish();
}

type Block = Sequential<(
    Residual<Sequential<(LayerNorm<f32, WIDTH>, MultiHeadAttention<f32, WIDTH, HEADS, TOKENS>)>>,
    Residual<Sequential<(LayerNorm<f32, WIDTH>, Linear<f32, WIDTH, 256>, Gelu, Linear<f32, 256, WIDTH>)>>,
)>;

#[differentiable(wrt(model))]
fn block_loss(model: &Block, x: &Rows) -> f32 {
    model.apply_batch(x).tanh().sum()
}

/// `Block` written as a struct of its own, as a model author writes one.
#[derive(Clone, Differentiable)]
struct ModuleBlock {
    norm1: LayerNorm<f32, WIDTH>,
    attention: MultiHeadAttention<f32, WIDTH, HEADS, TOKENS>,
    norm2: LayerNorm<f32, WIDTH>,
    up: Linear<f32, WIDTH, 256>,
    down: Linear<f32, 256, WIDTH>,
}

#[module]
impl ModuleBlock {
    fn forward(&self, x: &Rows) -> Rows {
        let h = x + self.attention.forward(&self.norm1.forward(x));
        &h + &self.down.forward(&Gelu.forward(&self.up.forward(&self.norm2.forward(&h))))
    }
}

#[differentiable(wrt(model))]
fn module_block_loss(model: &ModuleBlock, x: &Rows) -> f32 {
    model.apply_batch(x).tanh().sum()
}

/// `ModuleBlock`'s layers with its body split into helper methods.
#[derive(Clone, Differentiable)]
struct HelperBlock(ModuleBlock);

#[module]
impl HelperBlock {
    fn forward(&self, x: &Rows) -> Rows {
        let h = x + self.attend(x);
        &h + &self.feed_forward(&h)
    }

    fn attend(&self, x: &Rows) -> Rows {
        self.0.attention.forward(&self.0.norm1.forward(x))
    }

    fn feed_forward(&self, h: &Rows) -> Rows {
        self.0.down.forward(&Gelu.forward(&self.0.up.forward(&self.0.norm2.forward(h))))
    }
}

#[differentiable(wrt(model))]
fn helper_block_loss(model: &HelperBlock, x: &Rows) -> f32 {
    model.apply_batch(x).tanh().sum()
}

type Layer = MultiHeadAttention<f32, WIDTH, HEADS, TOKENS>;

#[differentiable(wrt(layer))]
fn layer_loss(layer: &Layer, x: &Rows) -> f32 {
    layer.apply_batch(x).tanh().sum()
}

#[differentiable(wrt(layer))]
fn padded_layer_loss(layer: &Layer, x: &Rows, lengths: &[usize]) -> f32 {
    layer.forward_padded(x, lengths).tanh().sum()
}

fn block_gradient(c: &mut Criterion) {
    let model: Block = Sequential((
        Residual(Sequential((LayerNorm::default(), MultiHeadAttention::new(Mask::Causal, 5)))),
        Residual(Sequential((LayerNorm::default(), Linear::new(6), Gelu, Linear::new(7)))),
    ));
    let x = rows(8);
    let mut group = c.benchmark_group("attention/block_gradient");
    group.bench_function("static", |b| b.iter(|| block_loss::value_and_grad(black_box(&model), &x)));
    group.bench_function("tape", |b| {
        b.iter(|| value_and_grad(|m: <Block as Trace>::Traced| m.forward(&x).tanh().sum(), black_box(&model)))
    });
    let block = ModuleBlock {
        norm1: LayerNorm::default(),
        attention: MultiHeadAttention::new(Mask::Causal, 5),
        norm2: LayerNorm::default(),
        up: Linear::new(6),
        down: Linear::new(7),
    };
    // The same parameters as `model`'s: the same value.
    assert_eq!(module_block_loss(&block, &x), block_loss(&model, &x));
    group.bench_function("module_static", |b| {
        b.iter(|| module_block_loss::value_and_grad(black_box(&block), &x))
    });
    group.bench_function("module_tape", |b| {
        b.iter(|| value_and_grad(|m: ModuleBlockTraced| m.forward(&x).tanh().sum(), black_box(&block)))
    });
    let helpers = HelperBlock(block.clone());
    assert_eq!(helper_block_loss(&helpers, &x), block_loss(&model, &x));
    group.bench_function("helpers_static", |b| {
        b.iter(|| helper_block_loss::value_and_grad(black_box(&helpers), &x))
    });
    // The attention layer alone, called directly.
    let layer = &model.0.0.0.0.1;
    group.bench_function("layer_static", |b| b.iter(|| layer_loss::value_and_grad(black_box(layer), &x)));
    group.bench_function("layer_tape", |b| {
        b.iter(|| value_and_grad(|m: <Layer as Trace>::Traced| m.forward(&x).tanh().sum(), black_box(layer)))
    });
    // Over padded sequences (32 down to 4 real tokens of 32).
    let lengths: Vec<usize> = (0..SEQUENCES).map(|n| TOKENS - 4 * n).collect();
    group.bench_function("padded_layer_static", |b| {
        b.iter(|| padded_layer_loss::value_and_grad(black_box(layer), &x, &lengths))
    });
    group.bench_function("padded_layer_tape", |b| {
        b.iter(|| {
            value_and_grad(
                |m: <Layer as Trace>::Traced| m.forward_padded(&x, &lengths).tanh().sum(),
                black_box(layer),
            )
        })
    });
    group.finish();
}
