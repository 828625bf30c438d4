//! Group normalisation: values against the definition group by group (and the
//! special cases G = 1 and G = C), gradients against finite differences and the
//! adjoint identity, forward mode against reverse, second order against differences
//! of the gradient, and static mode against the tape.

mod common_grad;

use common_grad::{
    assert_close, assert_hvp_matches_differences, inner, ok, seeded_direction, some_direction,
};
use fluxion::autodiff::check::{CheckOptions, check_grad, check_vjp};
use fluxion::autodiff::{Dual, Lift, differentiable, hvp, jvp};
use fluxion::nn::layer::{Conv2d, GlobalAvgPool2d, GroupNorm, Linear, Module, Sequential, Silu};
use fluxion::nn::prelude::Groups;
use fluxion::prelude::*;

/// Batches of 6 channels of 2×3.
type Images = Tensor<f64, (Dyn, Const<6>, Const<2>, Const<3>), Heap>;

fn images(batch: usize, seed: u64) -> Images {
    Tensor::random_normal_shaped((Dyn(batch), Const, Const, Const), 0.5, 2.0, seed)
}

/// A layer with gains and shifts away from 1 and 0.
fn layer<const G: usize>(seed: u64) -> GroupNorm<f64, 6, G> {
    GroupNorm {
        weight: Tensor::random_normal(1.0, 0.5, seed),
        bias: Tensor::random_normal(0.0, 0.5, seed + 1),
        epsilon: 1e-5,
    }
}

/// Each group of `channels` consecutive channels of image b normalised by its own
/// mean and biased variance, by the definition.
fn reference(x: &Images, channels: usize) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for (group, values) in x.as_slice().chunks(channels * 6).enumerate() {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        for (k, v) in values.iter().enumerate() {
            out[group * channels * 6 + k] = (v - mean) / (variance + 1e-5).sqrt();
        }
    }
    out
}

#[test]
fn each_group_is_normalised_over_its_channels_and_positions() {
    let x = images(3, 1);
    let check = |normalised: &Images, channels: usize| {
        for (a, b) in normalised.as_slice().iter().zip(reference(&x, channels)) {
            assert_close(*a, b, 1e-13);
        }
    };
    check(&x.normalize_groups(Groups::<3>, 1e-5), 2);
    // G = 1: each image as a whole; G = C: each channel (instance normalisation).
    check(&x.normalize_groups(Groups::<1>, 1e-5), 6);
    check(&x.normalize_groups(Groups::<6>, 1e-5), 1);
    // The layer adds a gain and a shift per channel.
    let norm = layer::<3>(2);
    let y = norm.forward(&x);
    let plain = x.normalize_groups(Groups::<3>, 1e-5);
    for [b, c, i, j] in [[0, 0, 0, 0], [1, 5, 1, 2], [2, 3, 0, 1]] {
        assert_close(y[[b, c, i, j]], norm.weight[[c]] * plain[[b, c, i, j]] + norm.bias[[c]], 1e-14);
    }
}

type Net = Sequential<(
    Conv2d<f64, 2, 6, 2, 2, 2, 3>,
    GroupNorm<f64, 6, 3>,
    Silu,
    GlobalAvgPool2d,
    Linear<f64, 6, 2>,
)>;
type Inputs = Tensor<f64, (Dyn, Const<2>, Const<3>, Const<4>), Heap>;

fn net() -> Net {
    Sequential((Conv2d::new(3), layer(4), Silu, GlobalAvgPool2d, Linear::new(5)))
}

fn inputs(batch: usize, seed: u64) -> Inputs {
    Tensor::random_normal_shaped((Dyn(batch), Const, Const, Const), 0.0, 1.0, seed)
}

#[test]
fn gradients_pass_the_checkers() {
    let x = images(2, 6);
    let g = |x: Var<Images>| x.normalize_groups(Groups::<2>, 1e-5);
    ok("normalize_groups", check_vjp(g, &x, CheckOptions::f64()));
    ok("normalize_groups", check_grad(|x: Var<Images>| g(x).tanh().sum(), &x, CheckOptions::f64()));

    let both = (net(), inputs(3, 7));
    type Traced = (<Net as Trace>::Traced, Var<Inputs>);
    ok("net", check_grad(|(m, x): Traced| m.forward(&x).tanh().sum(), &both, CheckOptions::f64()));
    ok("net", check_vjp(|(m, x): Traced| m.forward(&x), &both, CheckOptions::f64()));
}

#[test]
fn a_plain_batch_enters_the_traced_and_the_lifted_traced_layer() {
    let (norm, x) = (layer::<2>(12), images(2, 13));
    let loss = |n: <GroupNorm<f64, 6, 2> as Trace>::Traced| n.forward(&x).tanh().sum();
    ok("traced layer", check_grad(loss, &norm, CheckOptions::f64()));
    let (v, w) = (some_direction(norm.zero_tangent()), seeded_direction(norm.zero_tangent(), 0.7));
    type LiftedTraced = <<GroupNorm<f64, 6, 2> as Lift>::Lifted as Trace>::Traced;
    let product = hvp(|n: LiftedTraced| n.forward(&x).tanh().sum(), &norm, &v);
    assert_hvp_matches_differences(&norm, &v, &w, &product, |moved| grad(loss, moved));
}

#[test]
fn forward_mode_agrees_with_reverse_mode_and_second_order_with_differences() {
    let (net, x) = (net(), inputs(3, 8));
    let loss = |m: <Net as Trace>::Traced| m.forward(&x).tanh().sum();
    let gradient = grad(loss, &net);
    let direction = some_direction(net.zero_tangent());
    let x_dual = x.map(Dual::constant);
    let (_, derivative) = jvp(|m: <Net as Lift>::Lifted| m.forward(&x_dual).tanh().sum(), &net, &direction);
    assert_close(derivative, inner(&gradient, &direction), 1e-13);

    let product =
        hvp(|m: <<Net as Lift>::Lifted as Trace>::Traced| m.forward(&x).tanh().sum(), &net, &direction);
    let w = seeded_direction(net.zero_tangent(), 0.7);
    assert_hvp_matches_differences(&net, &direction, &w, &product, |moved| grad(loss, moved));
}

type StaticImages = Tensor<f64, (Const<2>, Const<6>, Const<2>, Const<3>), Inline>;
type StaticNorm = GroupNorm<f64, 6, 2, Inline>;

#[differentiable]
fn static_loss(norm: &StaticNorm, x: &StaticImages) -> f64 {
    norm.apply_images(x).tanh().sum()
}

#[test]
fn static_mode_normalises_and_differentiates_as_the_tape_does() {
    let norm: StaticNorm = GroupNorm {
        weight: Tensor::random_normal(1.0, 0.5, 9),
        bias: Tensor::random_normal(0.0, 0.5, 10),
        epsilon: 1e-5,
    };
    let x: StaticImages = Tensor::random_normal(0.0, 2.0, 11);
    let (value, (norm_bar, x_bar)) = static_loss::value_and_grad(&norm, &x);
    let both = (norm.clone(), x);
    let (tape_value, (tape_norm_bar, tape_x_bar)) = value_and_grad(
        |(m, x): (<StaticNorm as Trace>::Traced, Var<StaticImages>)| m.forward(&x).tanh().sum(),
        &both,
    );
    assert_close(value, tape_value, 1e-13);
    let pairs = [
        (norm_bar.weight.as_slice(), tape_norm_bar.weight.as_slice()),
        (norm_bar.bias.as_slice(), tape_norm_bar.bias.as_slice()),
        (x_bar.as_slice(), tape_x_bar.as_slice()),
    ];
    for (a, b) in pairs {
        a.iter().zip(b).for_each(|(a, b)| assert_close(*a, *b, 1e-12));
    }
    // Forward mode agrees with reverse mode, along the layer and the images at once.
    let (direction, x_direction) = (seeded_direction(norm.zero_tangent(), 0.4), seeded_direction(x, 0.6));
    let (_, derivative) = static_loss::jvp(&norm, &x, &direction, &x_direction);
    assert_close(derivative, inner(&norm_bar, &direction) + inner(&x_bar, &x_direction), 1e-12);
}
