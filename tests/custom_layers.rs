//! A layer of one's own written once with `#[module]`: its plain forward pass, its
//! traced twin's on the tape and its static form agree (value, gradient, finite
//! differences, forward mode by the adjoint identity), alone, inside library chains
//! and inside another `#[module]` layer.

mod common_grad;

use common_grad::assert_close;
use fluxion::autodiff::{Trace, differentiable, value_and_grad};
use fluxion::nn::prelude::*;
use fluxion::prelude::*;

type Rows<const F: usize> = Tensor<f64, (Dyn, Const<F>), Heap>;

fn rows<const F: usize>(count: usize, seed: u64) -> Rows<F> {
    Tensor::random_normal_shaped((Dyn(count), Const), 0.0, 1.0, seed)
}

/// x + W_d·(W_u·n(x) ⊙ σ(W_g·n(x))): a pre-norm gated feed-forward block.
#[derive(Clone, Debug, Differentiable)]
struct Gated {
    norm: LayerNorm<f64, 3>,
    up: Linear<f64, 3, 5>,
    gate: Linear<f64, 3, 5>,
    down: Linear<f64, 5, 3>,
}

#[module]
impl Gated {
    /// The block on rows of 3 features.
    fn forward(&self, x: &Rows<3>) -> Rows<3> {
        let h = self.norm.forward(x);
        let gated = self.up.forward(&h).hadamard(&self.gate.forward(&h).sigmoid());
        self.down.forward(&gated) + x
    }
}

impl Gated {
    fn new(seed: u64) -> Self {
        Gated {
            norm: LayerNorm {
                weight: Tensor::random_normal(1.0, 0.3, seed),
                bias: Tensor::random_normal(0.0, 0.3, seed + 1),
                ..LayerNorm::default()
            },
            up: Linear::new(seed + 2),
            gate: Linear::new(seed + 3),
            down: Linear::new(seed + 4),
        }
    }
}

/// Two blocks and a read-out, itself a `#[module]` layer calling the blocks' `forward`.
#[derive(Clone, Debug, Differentiable)]
struct Tower {
    blocks: (Gated, Gated),
    head: Linear<f64, 3, 2>,
}

#[module]
impl Tower {
    fn forward(&self, x: &Rows<3>) -> Rows<2> {
        self.head.forward(&self.blocks.forward(x).tanh())
    }
}

#[differentiable]
fn tower_loss(tower: &Tower, x: &Rows<3>) -> f64 {
    let y = tower.apply_batch(x);
    y.hadamard(&y).sum()
}

fn tower() -> Tower {
    Tower { blocks: (Gated::new(1), Gated::new(11)), head: Linear::new(21) }
}

fn reals<V: RealLeaves>(value: &V) -> Vec<f64> {
    let mut reals = Vec::new();
    value.for_each_real(&mut |c| reals.push(c));
    reals
}

#[test]
fn the_plain_traced_and_static_forms_give_one_value_and_gradient() {
    let (model, x) = (tower(), rows::<3>(6, 31));
    let plain = model.forward(&x);
    assert_eq!(plain.shape(), (Dyn(6), Const::<2>));
    assert_eq!(plain.as_slice(), model.apply_batch(&x).as_slice());
    let (value, (gradient, x_bar)) = tower_loss::value_and_grad(&model, &x);
    assert_close(value, plain.hadamard(&plain).sum(), 1e-13);
    let (tape_value, tape_gradient) = value_and_grad(
        |m: <Tower as Trace>::Traced| {
            let y = m.forward(&x);
            y.hadamard(&y).sum()
        },
        &model,
    );
    assert_close(tape_value, value, 1e-13);
    for (a, b) in reals(&gradient).iter().zip(reals(&tape_gradient)) {
        assert_close(*a, b, 1e-12);
    }
    // Finite differences along a direction of the parameters and one of the input,
    // and forward mode by the adjoint identity.
    let (v, u) = (gradient.scaled(0.0), x_bar.scaled(0.0));
    let (mut v, mut u) = (v, u);
    let mut state = 7u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    v.map_reals(&mut |_| next());
    u.map_reals(&mut |_| next());
    let along: f64 = reals(&gradient).iter().zip(reals(&v)).map(|(g, v)| g * v).sum::<f64>()
        + x_bar.iter().zip(u.iter()).map(|(g, u)| g * u).sum::<f64>();
    let h = 1e-6;
    let moved = |sign: f64| {
        let (mut m, mut y) = (model.clone(), x.clone());
        m.move_by(&v.scaled(sign * h));
        y.move_by(&u.scaled(sign * h));
        tower_loss(&m, &y)
    };
    assert!((along - (moved(1.0) - moved(-1.0)) / (2.0 * h)).abs() < 1e-7, "{along}");
    assert_close(tower_loss::jvp(&model, &x, &v, &u).1, along, 1e-12);
}

#[differentiable(wrt(model))]
fn chain_loss(model: &Sequential<(Linear<f64, 4, 3>, Gated, Relu, Gated)>, x: &Rows<4>) -> f64 {
    model.apply_batch(x).sum()
}

#[test]
fn a_module_layer_joins_library_chains_in_every_form() {
    let model = Sequential((Linear::new(41), Gated::new(42), Relu, Gated::new(43)));
    let x = rows::<4>(5, 44);
    let (value, gradient) = chain_loss::value_and_grad(&model, &x);
    assert_close(value, model.forward(&x).sum(), 1e-13);
    let (tape_value, tape_gradient) = value_and_grad(
        |m: <Sequential<(Linear<f64, 4, 3>, Gated, Relu, Gated)> as Trace>::Traced| m.forward(&x).sum(),
        &model,
    );
    assert_close(tape_value, value, 1e-13);
    for (a, b) in reals(&gradient).iter().zip(reals(&tape_gradient)) {
        assert_close(*a, b, 1e-12);
    }
    // Inference runs the plain form, as a library layer's.
    assert_eq!(inference(&model, |m| m.forward(&x)).as_slice(), model.forward(&x).as_slice());
}

type Images = Tensor<f64, (Dyn, Const<2>, Const<5>, Const<5>), Heap>;

/// ResNet's basic block: x + BN(conv(ReLU(BN(conv(x))))), then ReLU; padded 3×3
/// convolutions keep the 5×5 images. Its `forward` calls image layers
/// (`BatchNorm`'s static form on images is not its rows' `apply_batch`).
#[derive(Clone, Debug, Differentiable)]
struct Basic {
    first: Conv2d<f64, 2, 2, 3, 3, 5, 5, Heap, 1>,
    first_norm: BatchNorm<f64, 2>,
    second: Conv2d<f64, 2, 2, 3, 3, 5, 5, Heap, 1>,
    second_norm: BatchNorm<f64, 2>,
}

#[module]
impl Basic {
    fn forward(&self, x: &Images) -> Images {
        let h = self.first_norm.forward(&self.first.forward(x)).relu();
        (self.second_norm.forward(&self.second.forward(&h)) + x).relu()
    }
}

#[differentiable(wrt(block))]
fn basic_loss(block: &Basic, x: &Images) -> f64 {
    block.apply_batch(x).tanh().sum()
}

#[test]
fn an_image_block_with_batch_norm_gives_the_tapes_gradient() {
    let block = Basic {
        first: Conv2d::new(51),
        first_norm: BatchNorm::new(),
        second: Conv2d::new(52),
        second_norm: BatchNorm::new(),
    };
    let x: Images = Tensor::random_normal_shaped((Dyn(3), Const, Const, Const), 0.0, 1.0, 53);
    let (value, gradient) = basic_loss::value_and_grad(&block, &x);
    let (tape_value, tape_gradient) =
        value_and_grad(|b: <Basic as Trace>::Traced| b.forward(&x).tanh().sum(), &block);
    assert_close(value, tape_value, 1e-13);
    let (ours, tape) = (reals(&gradient), reals(&tape_gradient));
    assert_eq!(ours.len(), tape.len());
    ours.iter().zip(&tape).for_each(|(a, b)| assert_close(*a, *b, 1e-12));
}

/// A generic layer: the attribute keeps the block's generics and bounds.
#[derive(Clone, Debug, Differentiable)]
struct Gate<T: RealScalar> {
    gate: Linear<T, 3, 3>,
}

// Its bound in a `where` clause, which the `impl`s of its forms' methods keep.
#[module]
impl<T> Gate<T>
where
    T: RealScalar,
{
    fn forward(&self, x: &Tensor<T, (Dyn, Const<3>), Heap>) -> Tensor<T, (Dyn, Const<3>), Heap> {
        x.hadamard(&self.opening(x))
    }

    fn opening(&self, x: &Tensor<T, (Dyn, Const<3>), Heap>) -> Tensor<T, (Dyn, Const<3>), Heap> {
        self.gate.forward(x).sigmoid()
    }
}

#[differentiable(wrt(gate))]
fn gate_loss<T: RealScalar>(gate: &Gate<T>, x: &Tensor<T, (Dyn, Const<3>), Heap>) -> T {
    gate.apply_batch(x).sum()
}

#[test]
fn a_generic_layer_has_every_form_at_each_scalar_type() {
    let gate = Gate::<f64> { gate: Linear::new(71) };
    let x = rows::<3>(4, 72);
    let (value, gradient) = gate_loss::value_and_grad(&gate, &x);
    let (tape_value, tape_gradient) =
        value_and_grad(|g: <Gate<f64> as Trace>::Traced| g.forward(&x).sum(), &gate);
    assert_close(value, tape_value, 1e-14);
    reals(&gradient).iter().zip(reals(&tape_gradient)).for_each(|(a, b)| assert_close(*a, b, 1e-13));
    let single = Gate::<f32> { gate: Linear::new(71) };
    let x32 = x.map(|v| v as f32);
    assert!((single.forward(&x32).sum() - value as f32).abs() < 1e-4);
    assert_eq!(gate_loss::value_and_grad(&single, &x32).0, single.forward(&x32).sum());
}

/// A layer static mode has no form for (dropout draws a mask per call): the plain
/// and traced forms only.
#[derive(Clone, Debug, Differentiable)]
struct Regularised {
    map: Linear<f64, 3, 3>,
    dropout: Dropout,
}

#[module(no_static)]
impl Regularised {
    fn forward(&self, x: &Rows<3>) -> Rows<3> {
        self.dropout.forward(&self.map.forward(x))
    }
}

#[test]
fn a_layer_without_a_static_form_has_the_plain_and_traced_ones() {
    let layer = Regularised { map: Linear::new(81), dropout: Dropout::new(0.5, 82) };
    let x = rows::<3>(4, 83);
    // In evaluation the dropout lets everything through: the map alone.
    assert_eq!(evaluation(|| layer.forward(&x)).as_slice(), layer.map.forward(&x).as_slice());
    let (value, gradient) =
        evaluation(|| value_and_grad(|l: <Regularised as Trace>::Traced| l.forward(&x).sum(), &layer));
    let (map_value, map_gradient) =
        value_and_grad(|m: <Linear<f64, 3, 3> as Trace>::Traced| m.forward(&x).sum(), &layer.map);
    assert_eq!(value, map_value);
    assert_eq!(reals(&gradient.map), reals(&map_gradient));
    // In training about half the values are dropped, the others doubled.
    let trained = layer.forward(&x);
    let kept = trained.as_slice().iter().filter(|v| **v != 0.0).count();
    assert!((2..=10).contains(&kept), "{kept} of 12 kept");
}

/// A layer generic over its input's width only (the struct names no parameter),
/// with a helper method generic over it too, called through `Self`.
#[derive(Clone, Debug, Differentiable)]
struct Squash;

#[module]
impl<const F: usize> Squash {
    fn forward(&self, x: &Rows<F>) -> Rows<F> {
        Self::squashed(self, x).hadamard(x)
    }

    fn squashed(&self, x: &Rows<F>) -> Rows<F> {
        x.tanh()
    }
}

#[differentiable(wrt(x))]
fn squash_loss(layer: &Squash, x: &Rows<3>) -> f64 {
    layer.apply_batch(x).sum()
}

#[test]
fn a_layer_generic_over_its_input_width_has_its_static_form() {
    let x = rows::<3>(3, 91);
    let (value, x_bar) = squash_loss::value_and_grad(&Squash, &x);
    assert_close(value, Squash.forward(&x).sum(), 1e-14);
    // d(x·tanh x)/dx = tanh x + x·(1 − tanh² x).
    for (g, &v) in x_bar.iter().zip(x.as_slice()) {
        assert_close(*g, v.tanh() + v * (1.0 - v.tanh() * v.tanh()), 1e-14);
    }
}

static FEED_FORWARD_PASSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static GATE_PASSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A block split into helper methods: one of two outputs, a gate of two inputs and
/// a constant, a feed-forward helper calling another helper, each called on values
/// the body made.
#[derive(Clone, Debug, Differentiable)]
struct Helped {
    norm: LayerNorm<f64, 3>,
    mix: Linear<f64, 3, 3>,
    up: Linear<f64, 3, 5>,
    down: Linear<f64, 5, 3>,
}

#[module]
impl Helped {
    fn forward(&self, x: &Rows<3>) -> Rows<3> {
        let (mixed, squashed) = self.mixed(x);
        let h = self.gate(&squashed, &mixed, 2);
        // One value as both inputs: their cotangents add up.
        let h = (&h + &self.gate(&h, &h, 1)).mul_rows(&self.gain());
        &h + &self.feed_forward(&h)
    }

    /// A helper of no traced argument: 2γ of the normalisation.
    fn gain(&self) -> Tensor<f64, (Const<3>,), Heap> {
        self.norm.weight.scale(2.0)
    }

    fn mixed(&self, x: &Rows<3>) -> (Rows<3>, Rows<3>) {
        (self.mix.forward(x), x.tanh())
    }

    /// a ⊙ σ(b)ⁿ (n a constant).
    fn gate(&self, a: &Rows<3>, b: &Rows<3>, n: i32) -> Rows<3> {
        GATE_PASSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // An input shadowed in the body.
        let b = b.sigmoid();
        a.hadamard(&b.powi(n))
    }

    fn feed_forward(&self, h: &Rows<3>) -> Rows<3> {
        FEED_FORWARD_PASSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // An annotation holds in every form (a traced value in the traced one).
        let normed: Rows<3> = self.norm.forward(h);
        self.down.forward(&self.expand(&normed))
    }

    fn expand(&self, h: &Rows<3>) -> Rows<5> {
        self.up.forward(h).tanh()
    }
}

#[differentiable]
fn helped_loss(block: &Helped, x: &Rows<3>) -> f64 {
    let y = block.apply_batch(x);
    y.hadamard(&y).sum()
}

#[test]
fn helper_methods_have_every_form() {
    use std::sync::atomic::Ordering::Relaxed;
    let norm = LayerNorm { weight: Tensor::random_normal(1.0, 0.3, 61), ..LayerNorm::default() };
    let block = Helped { norm, mix: Linear::new(62), up: Linear::new(63), down: Linear::new(64) };
    let x = rows::<3>(4, 65);
    let plain = block.forward(&x);
    assert_eq!(plain.as_slice(), block.apply_batch(&x).as_slice());
    let before = [FEED_FORWARD_PASSES.load(Relaxed), GATE_PASSES.load(Relaxed)];
    let (value, (gradient, x_bar)) = helped_loss::value_and_grad(&block, &x);
    // The helpers called on values the body made (of one input, and of two with a
    // constant) ran forward once: the block's record kept their reverse sweeps (with
    // clones of those values).
    assert_eq!(
        [FEED_FORWARD_PASSES.load(Relaxed) - before[0], GATE_PASSES.load(Relaxed) - before[1]],
        [1, 2]
    );
    assert_close(value, plain.hadamard(&plain).sum(), 1e-13);
    let (tape_value, tape_gradient) = value_and_grad(
        |b: <Helped as Trace>::Traced| {
            let y = b.forward(&x);
            y.hadamard(&y).sum()
        },
        &block,
    );
    assert_close(tape_value, value, 1e-13);
    for (a, b) in reals(&gradient).iter().zip(reals(&tape_gradient)) {
        assert_close(*a, b, 1e-12);
    }
    // Central differences along each coordinate of the input, and forward mode by
    // the adjoint identity.
    let h = 1e-6;
    for index in 0..x.len() {
        let moved = |step: f64| {
            let mut y = x.clone();
            y.as_mut_slice()[index] += step;
            helped_loss(&block, &y)
        };
        assert!((x_bar.as_slice()[index] - (moved(h) - moved(-h)) / (2.0 * h)).abs() < 1e-7);
    }
    let v = gradient.scaled(0.5);
    let along: f64 = reals(&gradient).iter().zip(reals(&v)).map(|(g, v)| g * v).sum();
    assert_close(helped_loss::jvp(&block, &x, &v, &x_bar.scaled(0.0)).1, along, 1e-12);
}

/// Adds a position embedding to each sequence of 4 rows, reading the batch's size.
#[derive(Clone, Debug, Differentiable)]
struct Positioned {
    positions: Embedding<f64, 4, 3>,
}

#[module]
impl Positioned {
    fn forward(&self, x: &Rows<3>) -> Rows<3> {
        let rows = x.dims().as_slice()[0];
        let positions: Vec<usize> = Tokens::<4>.positions(rows).collect();
        x + self.positions.forward(&positions[..])
    }
}

#[differentiable]
fn positioned_loss(layer: &Positioned, x: &Rows<3>) -> f64 {
    layer.apply_batch(x).tanh().sum()
}

#[test]
fn a_body_reads_its_batch_size_in_every_form() {
    let layer = Positioned { positions: Embedding::new(71) };
    let x = rows::<3>(8, 72);
    let plain = layer.forward(&x);
    let table = layer.positions.weight.as_slice();
    for (index, (y, x)) in plain.as_slice().iter().zip(x.as_slice()).enumerate() {
        let (row, column) = (index / 3, index % 3);
        assert_eq!(*y, x + table[(row % 4) * 3 + column]);
    }
    let (value, (gradient, _)) = positioned_loss::value_and_grad(&layer, &x);
    let (tape_value, tape_gradient) =
        value_and_grad(|l: <Positioned as Trace>::Traced| l.forward(&x).tanh().sum(), &layer);
    assert_close(value, tape_value, 1e-13);
    for (a, b) in reals(&gradient).iter().zip(reals(&tape_gradient)) {
        assert_close(*a, b, 1e-13);
    }
    // Each position's row of the table: the sum over the rows it was added to of
    // 1 − tanh², as central differences give.
    let h = 1e-6;
    for index in 0..table.len() {
        let moved = |step: f64| {
            let mut l = layer.clone();
            l.positions.weight.as_mut_slice()[index] += step;
            positioned_loss(&l, &x)
        };
        assert!((reals(&gradient)[index] - (moved(h) - moved(-h)) / (2.0 * h)).abs() < 1e-7);
    }
}

#[differentiable(wrt(model))]
fn helped_chain_loss(model: &(Linear<f64, 3, 3>, Helped), x: &Rows<3>) -> f64 {
    model.apply_batch(x).tanh().sum()
}

#[test]
fn a_block_with_helpers_second_in_a_chain_gives_the_tapes_gradient() {
    let norm = LayerNorm { weight: Tensor::random_normal(1.0, 0.3, 66), ..LayerNorm::default() };
    let block = Helped { norm, mix: Linear::new(67), up: Linear::new(68), down: Linear::new(69) };
    let model = (Linear::<f64, 3, 3>::new(70), block);
    let x = rows::<3>(5, 71);
    // The chain hands the block its input, which the block's helpers take clones of.
    let (value, gradient) = helped_chain_loss::value_and_grad(&model, &x);
    let (tape_value, tape_gradient) = value_and_grad(
        |m: <(Linear<f64, 3, 3>, Helped) as Trace>::Traced| m.forward(&x).tanh().sum(),
        &model,
    );
    assert_close(value, tape_value, 1e-13);
    let (ours, tape) = (reals(&gradient), reals(&tape_gradient));
    assert_eq!(ours.len(), tape.len());
    for (a, b) in ours.iter().zip(&tape) {
        assert_close(*a, *b, 1e-12);
    }
    // Central differences along a direction of the parameters.
    let mut direction = gradient.scaled(0.0);
    let mut state = 3u64;
    direction.map_reals(&mut |_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    });
    let along: f64 = ours.iter().zip(reals(&direction)).map(|(g, v)| g * v).sum();
    let h = 1e-6;
    let moved = |sign: f64| {
        let mut m = model.clone();
        m.move_by(&direction.scaled(sign * h));
        helped_chain_loss(&m, &x)
    };
    assert!((along - (moved(1.0) - moved(-1.0)) / (2.0 * h)).abs() < 1e-7, "{along}");
}

/// Every sequence of 4 rows with its first 3 tokens real.
const THREE_OF_FOUR: [usize; 2] = [3, 3];

/// A pre-norm encoder block over padded sequences: its helper passes the key
/// lengths to the attention layer in every form.
#[derive(Clone, Debug, Differentiable)]
struct PaddedEncoder {
    norm: LayerNorm<f64, 4>,
    attention: MultiHeadAttention<f64, 4, 2, 4>,
}

#[module]
impl PaddedEncoder {
    fn forward(&self, x: &Rows<4>) -> Rows<4> {
        self.encode(x, &THREE_OF_FOUR)
    }

    fn encode(&self, x: &Rows<4>, lengths: &[usize]) -> Rows<4> {
        x + &self.attention.forward_padded(&self.norm.forward(x), lengths)
    }
}

#[differentiable]
fn padded_encoder_loss(block: &PaddedEncoder, x: &Rows<4>) -> f64 {
    block.apply_batch(x).tanh().sum()
}

#[test]
fn a_module_helper_passes_key_lengths_in_every_form() {
    let block =
        PaddedEncoder { norm: LayerNorm::default(), attention: MultiHeadAttention::new(Mask::Full, 66) };
    let x = rows::<4>(8, 67);
    let plain = block.forward(&x);
    // The padding rows (3 and 7) change no real token's output.
    let mut padded = x.clone();
    (0..4).for_each(|c| padded[[3, c]] = 9.0);
    let moved = block.forward(&padded);
    assert!([0, 1, 2, 4, 5, 6].iter().all(|&r| (0..4).all(|c| moved[[r, c]] == plain[[r, c]])));
    let (value, (gradient, _)) = padded_encoder_loss::value_and_grad(&block, &x);
    let (tape_value, tape_gradient) =
        value_and_grad(|b: <PaddedEncoder as Trace>::Traced| b.forward(&x).tanh().sum(), &block);
    assert_close(value, tape_value, 1e-13);
    assert_close(value, plain.tanh().sum(), 1e-13);
    for (a, b) in reals(&gradient).iter().zip(reals(&tape_gradient)) {
        assert_close(*a, b, 1e-12);
    }
}
