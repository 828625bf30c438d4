//! Chains of layers in static mode (`StaticModule`): a `Sequential` or a tuple called
//! inside `#[differentiable]` code gives the tape's value and gradient, the explicit
//! chain's bit for bit, finite differences along random directions, forward mode by
//! the adjoint identity, and the same Jacobian by `jacfwd` and `jacrev`.

mod common_grad;

use common_grad::assert_close;
use fluxion::autodiff::differentiable;
use fluxion::nn::layer::{
    AvgPool2d, Conv2d, Flatten, Gelu, GlobalAvgPool2d, GroupNorm, LayerNorm, Linear, MaxPool2d, Module, Relu,
    Residual, Sequential, Sigmoid, Softmax, StaticModule, Tanh,
};
use fluxion::prelude::*;

type Batch<const F: usize> = Tensor<f64, (Dyn, Const<F>), Heap>;

fn batch<const F: usize>(rows: usize, seed: u64) -> Batch<F> {
    Tensor::random_normal_shaped((Dyn(rows), Const), 0.0, 1.0, seed)
}

/// Every kind of dense layer, and a nested `Sequential`.
type Mlp = Sequential<(
    Linear<f64, 3, 5>,
    Relu,
    LayerNorm<f64, 5>,
    Sequential<(Tanh, Linear<f64, 5, 4>, Gelu)>,
    Sigmoid,
    Linear<f64, 4, 3>,
    Softmax,
)>;

/// The same layers, flat, for the network written layer by layer.
type Flat = (Linear<f64, 3, 5>, LayerNorm<f64, 5>, Linear<f64, 5, 4>, Linear<f64, 4, 3>);

fn mlp() -> (Mlp, Flat) {
    let norm = LayerNorm {
        weight: Tensor::random_normal(1.0, 0.3, 9),
        bias: Tensor::random_normal(0.0, 0.3, 10),
        ..LayerNorm::default()
    };
    let (first, second, third) = (Linear::new(1), Linear::new(2), Linear::new(3));
    let flat = (first.clone(), norm.clone(), second.clone(), third.clone());
    (Sequential((first, Relu, norm, Sequential((Tanh, second, Gelu)), Sigmoid, third, Softmax)), flat)
}

#[differentiable]
fn mlp_loss(model: &Mlp, x: &Batch<3>) -> f64 {
    let p = model.apply_batch(x);
    p.hadamard(&p).sum()
}

#[differentiable]
fn mlp_loss_by_hand(model: &Flat, x: &Batch<3>) -> f64 {
    let h = model.1.apply_batch(&model.0.apply_batch(x).relu());
    let h = model.2.apply_batch(&h.tanh());
    let h = model.3.apply_batch(&h.map_function(fluxion::nn::layer::GeluFunction).sigmoid());
    let p = h.softmax(Axis::<1>);
    p.hadamard(&p).sum()
}

/// The real coordinates of `value`, in order.
fn reals(value: &impl RealLeaves) -> Vec<f64> {
    let mut reals = Vec::new();
    value.for_each_real(&mut |c| reals.push(c));
    reals
}

/// ⟨a, b⟩ over every real coordinate.
fn inner<V: RealLeaves>(a: &V, b: &V) -> f64 {
    let (mut left, mut right) = (Vec::new(), Vec::new());
    a.for_each_real(&mut |c| left.push(c));
    b.for_each_real(&mut |c| right.push(c));
    left.iter().zip(&right).map(|(a, b)| a * b).sum()
}

/// A tangent like `like` with seeded coordinates in [−1, 1].
fn direction<V: VectorSpace>(like: &V, seed: u64) -> V {
    let mut state = seed;
    let mut v = like.zero_like();
    v.map_reals(&mut |_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    });
    v
}

#[test]
fn a_sequential_in_static_mode_gives_the_tapes_value_and_gradient() {
    let ((model, flat), x) = (mlp(), batch::<3>(5, 4));
    let (value, (model_bar, x_bar)) = mlp_loss::value_and_grad(&model, &x);
    let (tape_value, (tape_model_bar, tape_x_bar)) = value_and_grad(
        |(m, x): (<Mlp as Trace>::Traced, Var<Batch<3>>)| {
            let p = m.forward(&x);
            p.hadamard(&p).sum()
        },
        &(model.clone(), x.clone()),
    );
    assert_close(value, tape_value, 1e-14);
    for seed in 0..3 {
        let v = direction(&model_bar, seed);
        assert_close(inner(&model_bar, &v), inner(&tape_model_bar, &v), 1e-13);
    }
    x_bar.iter().zip(tape_x_bar.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
    // Layer by layer in static mode: the same rules in the same order.
    let (by_hand_value, (by_hand_model_bar, by_hand_x_bar)) = mlp_loss_by_hand::value_and_grad(&flat, &x);
    assert_eq!(value, by_hand_value);
    assert_eq!(reals(&model_bar), reals(&by_hand_model_bar));
    assert_eq!(x_bar, by_hand_x_bar);
}

#[test]
fn a_sequential_in_static_mode_agrees_with_finite_differences_and_forward_mode() {
    let ((model, _), x) = (mlp(), batch::<3>(4, 5));
    let (_, (model_bar, x_bar)) = mlp_loss::value_and_grad(&model, &x);
    let h = 1e-6;
    for seed in 0..4 {
        let (v, u) = (direction(&model_bar, seed), direction(&x_bar, seed + 10));
        let moved = |sign: f64| {
            let (mut m, mut y) = (model.clone(), x.clone());
            m.move_by(&v.scaled(sign * h));
            y.move_by(&u.scaled(sign * h));
            mlp_loss(&m, &y)
        };
        let numeric = (moved(1.0) - moved(-1.0)) / (2.0 * h);
        let analytic = inner(&model_bar, &v) + inner(&x_bar, &u);
        assert!((analytic - numeric).abs() < 1e-7 * (1.0 + analytic.abs()), "{analytic} vs {numeric}");
        // Forward mode through the chain: ⟨∇f, v⟩ = ḟ(v).
        let (_, forward) = mlp_loss::jvp(&model, &x, &v, &u);
        assert_close(forward, analytic, 1e-12);
    }
}

/// Only the input differentiated: the chain skips the layers' parameter cotangents.
#[differentiable(wrt(x))]
fn outputs(model: &Mlp, x: &Matrix<f64, 2, 3, Heap>) -> Matrix<f64, 2, 3, Heap> {
    model.apply_batch(x)
}

#[test]
fn jacfwd_and_jacrev_through_a_sequential_agree_with_finite_differences() {
    let (model, _) = mlp();
    let x: Matrix<f64, 2, 3, Heap> = Tensor::from_array([[0.3, -0.8, 1.1], [0.5, 0.2, -0.4]]);
    let forward: Tensor<f64, (Const<2>, Const<3>, Const<2>, Const<3>), Heap> = outputs::jacfwd(&model, &x);
    let reverse: Tensor<f64, (Const<2>, Const<3>, Const<2>, Const<3>), Heap> = outputs::jacrev(&model, &x);
    let h = 1e-6;
    for (i, j) in [(0, 0), (0, 2), (1, 1)] {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[[i, j]] += h;
        minus[[i, j]] -= h;
        let (p, m) = (outputs(&model, &plus), outputs(&model, &minus));
        for (a, b) in [(0, 0), (1, 2), (0, 1)] {
            let numeric = (p[[a, b]] - m[[a, b]]) / (2.0 * h);
            assert_close(forward[[a, b, i, j]], reverse[[a, b, i, j]], 1e-13);
            assert!((reverse[[a, b, i, j]] - numeric).abs() < 1e-8, "{} vs {numeric}", reverse[[a, b, i, j]]);
        }
    }
    // The rows of a batch do not mix.
    assert!((0..3).all(|b| (0..3).all(|j| forward[[0, b, 1, j]] == 0.0)));
}

/// A bare tuple is a chain too, here of image layers on a fixed-size batch.
type Cnn = (Conv2d<f64, 1, 2, 3, 3, 4, 4, Inline>, MaxPool2d<2, 2, 2>, Flatten<8>, Linear<f64, 8, 2, Inline>);
type Images = Tensor<f64, (Const<2>, Const<1>, Const<6>, Const<6>), Inline>;

#[differentiable(wrt(model))]
fn cnn_loss(model: &Cnn, images: &Images) -> f64 {
    model.apply_batch(images).tanh().sum()
}

/// Two 6×6 images with values in [−1, 1].
fn images() -> Images {
    Tensor::from_shape_fn((Const, Const, Const, Const), |[b, _, i, j]| {
        ((b * 36 + i * 6 + j) as f64 * 0.37).sin()
    })
}

#[test]
fn a_tuple_of_image_layers_in_static_mode_gives_the_tapes_gradient() {
    let model: Cnn = (Conv2d::new(4), MaxPool2d, Flatten, Linear::new(5));
    let images = images();
    let (value, gradient) = cnn_loss::value_and_grad(&model, &images);
    let (tape_value, tape_gradient) =
        value_and_grad(|m: <Cnn as Trace>::Traced| m.forward(&images).tanh().sum(), &model);
    assert_close(value, tape_value, 1e-14);
    gradient
        .0
        .weight
        .iter()
        .zip(tape_gradient.0.weight.iter())
        .for_each(|(a, b)| assert_close(*a, *b, 1e-13));
    gradient.3.bias.iter().zip(tape_gradient.3.bias.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
    let h = 1e-6;
    let v = direction(&gradient, 3);
    let moved = |sign: f64| {
        let mut m = model.clone();
        m.move_by(&v.scaled(sign * h));
        cnn_loss(&m, &images)
    };
    assert!((inner(&gradient, &v) - (moved(1.0) - moved(-1.0)) / (2.0 * h)).abs() < 1e-7);
}

/// LeNet's pattern: convolution, tanh, average pooling (here 3×3 on 4×4, the last
/// row and column in no window), then a linear read-out.
type LeNet =
    (Conv2d<f64, 1, 2, 3, 3, 4, 4, Inline>, Tanh, AvgPool2d<3, 1, 1>, Flatten<2>, Linear<f64, 2, 2, Inline>);
/// A ResNet stem's overlapping pooling (window 3, stride 2, padding 1) after a padded
/// convolution and a group normalisation (4 channels in 2 groups): 6×6 → 3×3, then
/// average pooling the same way: 3×3 → 2×2.
type Stem = (
    Conv2d<f64, 1, 4, 3, 3, 6, 6, Inline, 1>,
    GroupNorm<f64, 4, 2, Inline>,
    Relu,
    MaxPool2d<3, 3, 3, 1, 2>,
    AvgPool2d<3, 2, 2, 1, 2>,
    Flatten<16>,
    Linear<f64, 16, 2, Inline>,
);

#[differentiable(wrt(model))]
fn le_net_loss(model: &LeNet, images: &Images) -> f64 {
    model.apply_batch(images).tanh().sum()
}

#[differentiable(wrt(model))]
fn stem_loss(model: &Stem, images: &Images) -> f64 {
    model.apply_batch(images).tanh().sum()
}

/// Static mode's value and gradient against the tape's, every coordinate.
fn assert_same_value_and_gradient<V: RealLeaves>(
    (value, gradient): (f64, V),
    (tape_value, tape_gradient): (f64, V),
) {
    assert_close(value, tape_value, 1e-14);
    let (reals, tape_reals) = (reals(&gradient), reals(&tape_gradient));
    assert_eq!(reals.len(), tape_reals.len());
    reals.iter().zip(&tape_reals).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
}

#[test]
fn pooling_and_group_normalisation_in_a_static_chain_give_the_tapes_gradient() {
    let (le_net, images): (LeNet, _) = ((Conv2d::new(6), Tanh, AvgPool2d, Flatten, Linear::new(7)), images());
    assert_same_value_and_gradient(
        le_net_loss::value_and_grad(&le_net, &images),
        value_and_grad(|m: <LeNet as Trace>::Traced| m.forward(&images).tanh().sum(), &le_net),
    );
    let norm = GroupNorm { weight: Tensor::random_normal(1.0, 0.5, 10), ..GroupNorm::default() };
    let stem: Stem = (Conv2d::new(8), norm, Relu, MaxPool2d, AvgPool2d, Flatten, Linear::new(9));
    assert_same_value_and_gradient(
        stem_loss::value_and_grad(&stem, &images),
        value_and_grad(|m: <Stem as Trace>::Traced| m.forward(&images).tanh().sum(), &stem),
    );
}

/// Indices into an embedding table start a chain; they are not differentiated.
type Embedder = Sequential<(fluxion::nn::layer::Embedding<f64, 6, 3>, Tanh, Linear<f64, 3, 2>)>;

#[differentiable(wrt(model))]
fn embedding_loss(model: &Embedder, indices: &[usize]) -> f64 {
    model.apply_batch(indices).sum()
}

#[test]
fn a_chain_can_start_from_indices() {
    let model: Embedder = Sequential((fluxion::nn::layer::Embedding::new(1), Tanh, Linear::new(2)));
    let indices = [4, 0, 4, 2];
    let (value, gradient) = embedding_loss::value_and_grad(&model, &indices);
    let (tape_value, tape_gradient) =
        value_and_grad(|m: <Embedder as Trace>::Traced| m.forward(&indices[..]).sum(), &model);
    assert_close(value, tape_value, 1e-14);
    gradient
        .0
        .weight
        .iter()
        .zip(tape_gradient.0.weight.iter())
        .for_each(|(a, b)| assert_close(*a, *b, 1e-14));
    // Rows 1, 3 and 5 were never looked up.
    assert!((0..3).all(|c| gradient.0.weight[[1, c]] == 0.0 && gradient.0.weight[[5, c]] == 0.0));
}

/// A layer of one's own joins a chain through `static_module!`.
#[derive(Clone, Debug, Differentiable)]
struct Shift {
    by: Tensor<f64, (Const<2>,), Heap>,
}

/// How many times `Shift`'s forward pass ran.
static SHIFT_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Shift {
    #[differentiable]
    fn apply_batch(&self, x: &Batch<2>) -> Batch<2> {
        SHIFT_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        x.add_rows(&self.by).tanh()
    }
}

fluxion::static_module!(impl[] Shift: apply_batch(Batch<2>) -> Batch<2>);

#[differentiable(wrt(model))]
fn shifted_loss(model: &(Linear<f64, 3, 2>, Shift, Relu), x: &Batch<3>) -> f64 {
    model.apply_batch(x).sum()
}

/// The same layers with a chain nested as the second layer.
#[differentiable(wrt(model))]
fn nested_shifted_loss(model: &(Linear<f64, 3, 2>, Sequential<(Shift, Relu)>), x: &Batch<3>) -> f64 {
    model.apply_batch(x).sum()
}

#[test]
fn a_layer_of_ones_own_joins_a_chain() {
    let model = (Linear::new(7), Shift { by: Tensor::from_array([0.25, -0.5]) }, Relu);
    let x = batch::<3>(3, 8);
    let (value, gradient) = shifted_loss::value_and_grad(&model, &x);
    // Its pullback kept its input: the forward pass ran once, not again in the
    // reverse sweep.
    assert_eq!(SHIFT_CALLS.load(std::sync::atomic::Ordering::Relaxed), 1);
    let expected = model.2.apply_batch(&model.1.apply_batch(&model.0.apply_batch(&x))).sum();
    assert_eq!(value, expected);
    // Nested in a chain, a chain keeps its input too: one more forward pass.
    let nested = (model.0.clone(), Sequential((model.1.clone(), Relu)));
    let (nested_value, nested_gradient) = nested_shifted_loss::value_and_grad(&nested, &x);
    assert_eq!(SHIFT_CALLS.load(std::sync::atomic::Ordering::Relaxed), 3);
    assert_eq!((nested_value, reals(&nested_gradient)), (value, reals(&gradient)));
    let h = 1e-6;
    let v = direction(&gradient, 11);
    let moved = |sign: f64| {
        let mut m = model.clone();
        m.move_by(&v.scaled(sign * h));
        shifted_loss(&m, &x)
    };
    assert!((inner(&gradient, &v) - (moved(1.0) - moved(-1.0)) / (2.0 * h)).abs() < 1e-8);
}

/// A scalar-generic loss of the input, with the model a constant: it compiles (no
/// second-order companions, the model has no twin at dual numbers) and its gradient
/// is the tape's.
type GenericNet<T> = Sequential<(Linear<T, 2, 3, Inline>, Tanh, Linear<T, 3, 1, Inline>)>;

#[differentiable(wrt(x))]
fn input_loss<T: RealScalar>(net: &GenericNet<T>, x: &Tensor<T, (Const<4>, Const<2>), Inline>) -> T {
    net.apply_batch(x).sum()
}

#[test]
fn a_scalar_generic_loss_of_the_input_with_a_model_constant_compiles() {
    let net: GenericNet<f64> = Sequential((Linear::new(1), Tanh, Linear::new(2)));
    let x: Tensor<f64, (Const<4>, Const<2>), Inline> =
        Tensor::from_flat_fn((Const, Const), |i| i as f64 * 0.1);
    let gradient = input_loss::grad(&net, &x);
    type Input = Tensor<f64, (Const<4>, Const<2>), Inline>;
    let (_, tape) = grad(
        |(m, x): (<GenericNet<f64> as Trace>::Traced, Var<Input>)| m.forward(&x).sum(),
        &(net.clone(), x),
    );
    gradient.iter().zip(tape.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
}

/// One example (a vector) through a chain: `Linear::apply` for each dense layer.
type Controller = Sequential<(Linear<f32, 2, 4, Inline>, Tanh, Linear<f32, 4, 1, Inline>)>;

#[differentiable(wrt(net))]
fn controller_loss(net: &Controller, x: &Vector<f32, 2>, target: f32) -> f32 {
    let r = net.apply_batch(x)[[0]] - target;
    r * r
}

#[test]
fn a_chain_takes_one_example_as_a_vector() {
    let net: Controller = Sequential((Linear::new(3), Tanh, Linear::new(4)));
    let x: Vector<f32, 2> = Vector::from_array([0.5, -0.25]);
    let (value, gradient) = controller_loss::value_and_grad(&net, &x, 1.0);
    let batch: Matrix<f32, 1, 2> = Matrix::from_array([[0.5, -0.25]]);
    let (tape_value, tape_gradient) = value_and_grad(
        |n: <Controller as Trace>::Traced| {
            let r = n.forward(&batch).sum() - 1.0;
            &r * &r
        },
        &net,
    );
    assert!((value - tape_value).abs() < 1e-6);
    assert!(reals(&gradient).iter().zip(reals(&tape_gradient)).all(|(a, b)| (a - b).abs() < 1e-5));
}

/// Residual blocks: first in the chain (its input borrowed), later (its input owned)
/// and nested.
type ResNet = Sequential<(
    Residual<(Linear<f64, 3, 3>, Tanh)>,
    Linear<f64, 3, 4>,
    Residual<Sequential<(Tanh, Linear<f64, 4, 4>)>>,
    Residual<(Linear<f64, 4, 4>, Residual<(Gelu, Linear<f64, 4, 4>)>)>,
    Linear<f64, 4, 2>,
)>;

fn res_net() -> ResNet {
    let nested = Residual((Linear::new(4), Residual((Gelu, Linear::new(5)))));
    Sequential((
        Residual((Linear::new(1), Tanh)),
        Linear::new(2),
        Residual(Sequential((Tanh, Linear::new(3)))),
        nested,
        Linear::new(6),
    ))
}

#[differentiable]
fn res_net_loss(model: &ResNet, x: &Batch<3>) -> f64 {
    model.apply_batch(x).tanh().sum()
}

#[differentiable(wrt(model))]
fn res_net_parameter_loss(model: &ResNet, x: &Batch<3>) -> f64 {
    model.apply_batch(x).tanh().sum()
}

#[differentiable(wrt(x))]
fn res_net_outputs(model: &ResNet, x: &Matrix<f64, 2, 3, Heap>) -> Matrix<f64, 2, 2, Heap> {
    model.apply_batch(x)
}

#[test]
fn residual_blocks_in_static_mode_give_the_tapes_gradient_and_pass_the_checks() {
    let (model, x) = (res_net(), batch::<3>(4, 12));
    let (value, (model_bar, x_bar)) = res_net_loss::value_and_grad(&model, &x);
    let (tape_value, (tape_model_bar, tape_x_bar)) = value_and_grad(
        |(m, x): (<ResNet as Trace>::Traced, Var<Batch<3>>)| m.forward(&x).tanh().sum(),
        &(model.clone(), x.clone()),
    );
    assert_close(value, tape_value, 1e-14);
    reals(&model_bar).iter().zip(reals(&tape_model_bar)).for_each(|(a, b)| assert_close(*a, b, 1e-13));
    x_bar.iter().zip(tape_x_bar.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
    // The parameters alone: the same cotangents, without the input's.
    let (_, parameters_only) = res_net_parameter_loss::value_and_grad(&model, &x);
    assert_eq!(reals(&parameters_only), reals(&model_bar));
    let h = 1e-6;
    for seed in 0..3 {
        let (v, u) = (direction(&model_bar, seed), direction(&x_bar, seed + 20));
        let moved = |sign: f64| {
            let (mut m, mut y) = (model.clone(), x.clone());
            m.move_by(&v.scaled(sign * h));
            y.move_by(&u.scaled(sign * h));
            res_net_loss(&m, &y)
        };
        let numeric = (moved(1.0) - moved(-1.0)) / (2.0 * h);
        let analytic = inner(&model_bar, &v) + inner(&x_bar, &u);
        assert!((analytic - numeric).abs() < 1e-7 * (1.0 + analytic.abs()), "{analytic} vs {numeric}");
        let (_, forward) = res_net_loss::jvp(&model, &x, &v, &u);
        assert_close(forward, analytic, 1e-12);
    }
}

#[test]
fn jacfwd_and_jacrev_through_residual_blocks_agree_with_finite_differences() {
    let model = res_net();
    let x: Matrix<f64, 2, 3, Heap> = Tensor::from_array([[0.3, -0.8, 1.1], [0.5, 0.2, -0.4]]);
    let forward: Tensor<f64, (Const<2>, Const<2>, Const<2>, Const<3>), Heap> =
        res_net_outputs::jacfwd(&model, &x);
    let reverse: Tensor<f64, (Const<2>, Const<2>, Const<2>, Const<3>), Heap> =
        res_net_outputs::jacrev(&model, &x);
    let h = 1e-6;
    for (i, j) in [(0, 0), (0, 2), (1, 1)] {
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus[[i, j]] += h;
        minus[[i, j]] -= h;
        let (p, m) = (res_net_outputs(&model, &plus), res_net_outputs(&model, &minus));
        for (a, b) in [(0, 0), (1, 1), (i, 1)] {
            let numeric = (p[[a, b]] - m[[a, b]]) / (2.0 * h);
            assert_close(forward[[a, b, i, j]], reverse[[a, b, i, j]], 1e-13);
            assert!((reverse[[a, b, i, j]] - numeric).abs() < 1e-8, "{} vs {numeric}", reverse[[a, b, i, j]]);
        }
    }
}

/// A convolution, global average pooling and a head, in static mode.
type PooledCnn = (Conv2d<f64, 1, 2, 3, 3, 4, 4, Inline>, Tanh, GlobalAvgPool2d, Linear<f64, 2, 2, Inline>);

#[differentiable]
fn pooled_cnn_loss(model: &PooledCnn, images: &Images) -> f64 {
    model.apply_batch(images).tanh().sum()
}

#[test]
fn global_average_pooling_in_static_mode_gives_the_tapes_gradient() {
    let model: PooledCnn = (Conv2d::new(1), Tanh, GlobalAvgPool2d, Linear::new(2));
    let images: Images = Tensor::random_normal(0.0, 1.0, 4);
    let (value, (model_bar, images_bar)) = pooled_cnn_loss::value_and_grad(&model, &images);
    let (tape_value, (tape_model_bar, tape_images_bar)) = value_and_grad(
        |(m, x): (<PooledCnn as Trace>::Traced, Var<Images>)| m.forward(&x).tanh().sum(),
        &(model.clone(), images),
    );
    assert_close(value, tape_value, 1e-14);
    reals(&model_bar).iter().zip(reals(&tape_model_bar)).for_each(|(a, b)| assert_close(*a, b, 1e-13));
    images_bar.iter().zip(tape_images_bar.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
}

/// A classifier trained in static mode on class indices, as on the tape.
type Classifier = (Linear<f64, 3, 4, Inline>, Tanh, Linear<f64, 4, 3, Inline>);
type ClassifierBatch = Tensor<f64, (Const<5>, Const<3>), Inline>;

#[differentiable(wrt(model))]
fn classifier_loss(model: &Classifier, x: &ClassifierBatch, classes: &[usize]) -> f64 {
    fluxion::nn::per_example::mean_cross_entropy(&model.apply_batch(x), classes)
}

#[test]
fn the_mean_cross_entropy_of_static_mode_is_the_tapes() {
    use fluxion::nn::loss::{Reduction, cross_entropy};
    let model: Classifier = (Linear::new(11), Tanh, Linear::new(12));
    let x: ClassifierBatch = Tensor::random_normal(0.0, 1.0, 13);
    let classes = [2, 0, 1, 1, 2];
    let (value, gradient) = classifier_loss::value_and_grad(&model, &x, &classes);
    assert_same_value_and_gradient(
        (value, gradient.clone()),
        value_and_grad(
            |m: <Classifier as Trace>::Traced| cross_entropy(&m.forward(&x), &classes, Reduction::Mean),
            &model,
        ),
    );
    // Forward mode agrees with reverse mode.
    let direction = direction(&gradient, 5);
    let (_, derivative) = classifier_loss::jvp(&model, &x, &classes, &direction);
    assert_close(derivative, inner(&gradient, &direction), 1e-13);
    // A masked class (a logit of −∞ other than the row's class) adds nothing, as on
    // the tape.
    let mut logits: Tensor<f64, (Const<2>, Const<3>), Inline> = Tensor::random_normal(0.0, 1.0, 14);
    logits[[0, 1]] = f64::NEG_INFINITY;
    let (value, logits_bar) = fluxion::nn::per_example::mean_cross_entropy::value_and_grad(&logits, &[2, 0]);
    let (tape_value, tape_bar) = value_and_grad(
        |z: Var<Tensor<f64, (Const<2>, Const<3>), Inline>>| cross_entropy(&z, &[2, 0], Reduction::Mean),
        &logits,
    );
    assert_close(value, tape_value, 1e-14);
    assert!(value.is_finite() && logits_bar[[0, 1]] == 0.0);
    logits_bar.as_slice().iter().zip(tape_bar.as_slice()).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
}

#[test]
#[should_panic(expected = "cross_entropy: class index 3 is out of range for 3 classes")]
fn the_mean_cross_entropy_refuses_a_class_out_of_range() {
    let logits: Tensor<f64, (Const<2>, Const<3>), Inline> = Tensor::zeros();
    fluxion::nn::per_example::mean_cross_entropy(&logits, &[0, 3]);
}

/// Counts its forward passes, as `Shift` does (a counter of its own: tests run at once).
#[derive(Clone, Debug, Differentiable)]
struct Counted {
    by: Tensor<f64, (Const<4>,), Heap>,
}

static COUNTED_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Counted {
    #[differentiable]
    fn apply_batch(&self, x: &Batch<4>) -> Batch<4> {
        COUNTED_CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        x.add_rows(&self.by).tanh()
    }
}

/// A layer built from layers (a gated feed-forward block with a skip connection):
/// its method calls its layers on its input and on values it computes.
#[derive(Clone, Debug, Differentiable)]
struct Block {
    norm: LayerNorm<f64, 3>,
    up: Linear<f64, 3, 4>,
    gate: Linear<f64, 3, 4>,
    counted: Counted,
    down: Linear<f64, 4, 3>,
}

impl Block {
    fn new(seed: u64) -> Self {
        Block {
            norm: LayerNorm {
                weight: Tensor::random_normal(1.0, 0.3, seed),
                bias: Tensor::random_normal(0.0, 0.3, seed + 1),
                ..LayerNorm::default()
            },
            up: Linear::new(seed + 2),
            gate: Linear::new(seed + 3),
            counted: Counted { by: Tensor::random_normal(0.0, 0.5, seed + 4) },
            down: Linear::new(seed + 5),
        }
    }

    #[differentiable]
    fn apply_batch(&self, x: &Batch<3>) -> Batch<3> {
        let h = self.norm.apply_batch(x);
        let up = self.counted.apply_batch(&self.up.apply_batch(&h));
        let gated = up.hadamard(&self.gate.apply_batch(&h).sigmoid());
        self.down.apply_batch(&gated) + x
    }
}

fluxion::static_module!(impl[] Block: apply_batch(Batch<3>) -> Batch<3>);

type Blocks = (Linear<f64, 3, 3>, Block, Block);

#[differentiable]
fn blocks_loss(model: &Blocks, x: &Batch<3>) -> f64 {
    model.apply_batch(x).tanh().sum()
}

/// `blocks_loss` with each block's body written out in the loss.
#[differentiable]
fn blocks_loss_by_hand(model: &Blocks, x: &Batch<3>) -> f64 {
    let y = model.0.apply_batch(x);
    let h = model.1.norm.apply_batch(&y);
    let up = model.1.counted.apply_batch(&model.1.up.apply_batch(&h));
    let gated = up.hadamard(&model.1.gate.apply_batch(&h).sigmoid());
    let y = model.1.down.apply_batch(&gated) + y;
    let h = model.2.norm.apply_batch(&y);
    let up = model.2.counted.apply_batch(&model.2.up.apply_batch(&h));
    let gated = up.hadamard(&model.2.gate.apply_batch(&h).sigmoid());
    let y = model.2.down.apply_batch(&gated) + y;
    y.tanh().sum()
}

#[test]
fn a_layer_built_from_layers_keeps_their_pullbacks_and_runs_each_forward_pass_once() {
    use std::sync::atomic::Ordering::Relaxed;
    let model: Blocks = (Linear::new(20), Block::new(21), Block::new(31));
    let x = batch::<3>(5, 41);
    let before = COUNTED_CALLS.load(Relaxed);
    let (value, (gradient, x_bar)) = blocks_loss::value_and_grad(&model, &x);
    // Each block's forward pass ran once: its pullback kept its layers' pullbacks
    // (the second block's input a local of the chain, its norm's a local of the block).
    assert_eq!(COUNTED_CALLS.load(Relaxed) - before, 2);
    let (by_hand, (by_hand_gradient, by_hand_x_bar)) = blocks_loss_by_hand::value_and_grad(&model, &x);
    assert_close(value, by_hand, 1e-13);
    for (a, b) in reals(&gradient).iter().zip(reals(&by_hand_gradient)) {
        assert_close(*a, b, 1e-12);
    }
    for (a, b) in x_bar.iter().zip(by_hand_x_bar.iter()) {
        assert_close(*a, *b, 1e-12);
    }
    // Finite differences along a direction of the parameters and of the input, and
    // forward mode by the adjoint identity.
    let (v, u) = (direction(&gradient, 43), direction(&x_bar, 44));
    let h = 1e-6;
    let moved = |sign: f64| {
        let (mut m, mut y) = (model.clone(), x.clone());
        m.move_by(&v.scaled(sign * h));
        y.move_by(&u.scaled(sign * h));
        blocks_loss(&m, &y)
    };
    let along = inner(&gradient, &v) + inner(&x_bar, &u);
    assert!((along - (moved(1.0) - moved(-1.0)) / (2.0 * h)).abs() < 1e-7, "{along}");
    let (_, tangent) = blocks_loss::jvp(&model, &x, &v, &u);
    assert_close(tangent, along, 1e-12);
}
