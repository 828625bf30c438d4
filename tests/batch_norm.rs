//! Batch normalisation: values against the definition channel by channel (rows and
//! images), the running estimates' update rule, evaluation mode, gradients against
//! finite differences and the adjoint identity in training and in evaluation,
//! forward mode against reverse, buffers in parameter files, and a small
//! convolutional network with it trained by Adam.

mod common_grad;

use common_grad::{
    assert_close, assert_hvp_matches_differences, inner, ok, seeded_direction, some_direction,
};
use fluxion::autodiff::check::{CheckOptions, check_grad, check_vjp};
use fluxion::autodiff::{Dual, Lift, differentiable, jvp};
use fluxion::nn::layer::{
    BatchNorm, Conv2d, GlobalAvgPool2d, Linear, Module, Relu, Sequential, StaticModule, Tanh, evaluation,
};
use fluxion::prelude::*;

type Rows = Tensor<f64, (Dyn, Const<3>), Heap>;
type Images = Tensor<f64, (Dyn, Const<2>, Const<3>, Const<4>), Heap>;

fn rows(batch: usize, seed: u64) -> Rows {
    Tensor::random_normal_shaped((Dyn(batch), Const), 0.5, 2.0, seed)
}

fn images(batch: usize, seed: u64) -> Images {
    Tensor::random_normal_shaped((Dyn(batch), Const, Const, Const), -1.0, 3.0, seed)
}

/// A layer with gains and shifts away from 1 and 0.
fn layer<const C: usize>(seed: u64) -> BatchNorm<f64, C> {
    let mut norm = BatchNorm::new();
    norm.weight = Tensor::random_normal(1.0, 0.5, seed);
    norm.bias = Tensor::random_normal(0.0, 0.5, seed + 1);
    norm
}

/// Mean and biased variance of `values`.
fn moments(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (mean, values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n)
}

#[test]
fn rows_are_normalised_per_feature_over_the_batch_and_the_running_estimates_follow() {
    let norm = layer::<3>(1);
    let x = rows(5, 2);
    let y = norm.forward(&x);
    let (gamma, beta) = (norm.weight.to_vec(), norm.bias.to_vec());
    for c in 0..3 {
        let column: Vec<f64> = (0..5).map(|b| x[[b, c]]).collect();
        let (mean, variance) = moments(&column);
        for b in 0..5 {
            let expected = gamma[c] * (x[[b, c]] - mean) / (variance + 1e-5).sqrt() + beta[c];
            assert_close(y[[b, c]], expected, 1e-14);
        }
        // r ← 0.9·r + 0.1·s from 0 and 1, the variance's s unbiased (n/(n − 1)).
        assert_close(norm.running_mean.get()[[c]], 0.1 * mean, 1e-15);
        assert_close(norm.running_var.get()[[c]], 0.9 + 0.1 * variance * 5.0 / 4.0, 1e-15);
    }
    // A second batch moves them again from there.
    let (first_mean, first_var) = (norm.running_mean.get(), norm.running_var.get());
    let z = rows(4, 3);
    norm.forward(&z);
    for c in 0..3 {
        let (mean, variance) = moments(&(0..4).map(|b| z[[b, c]]).collect::<Vec<_>>());
        assert_close(norm.running_mean.get()[[c]], 0.9 * first_mean[[c]] + 0.1 * mean, 1e-15);
        assert_close(norm.running_var.get()[[c]], 0.9 * first_var[[c]] + 0.1 * variance * 4.0 / 3.0, 1e-15);
    }
}

#[test]
fn evaluation_uses_the_running_estimates_and_changes_nothing() {
    let norm = layer::<3>(4);
    norm.running_mean.set(Tensor::from_array([0.5, -1.0, 2.0]));
    norm.running_var.set(Tensor::from_array([4.0, 0.25, 1.0]));
    let x = rows(1, 5); // one example: fine in evaluation
    let (gamma, beta) = (norm.weight.to_vec(), norm.bias.to_vec());
    let check = |y: &Rows| {
        for (c, (mean, variance)) in [(0.5, 4.0), (-1.0, 0.25), (2.0, 1.0)].into_iter().enumerate() {
            let expected = gamma[c] * (x[[0, c]] - mean) / (variance + 1e-5f64).sqrt() + beta[c];
            assert_close(y[[0, c]], expected, 1e-14);
        }
    };
    check(&evaluation(|| norm.forward(&x)));
    check(&norm.clone().eval().forward(&x));
    assert_eq!(norm.running_mean.get().to_array(), [0.5, -1.0, 2.0]);
    assert_eq!(norm.running_var.get().to_array(), [4.0, 0.25, 1.0]);
    assert!(norm.is_training() && !norm.clone().eval().is_training());
}

#[test]
#[should_panic(
    expected = "batch normalisation in training needs more than one value per channel, the batch has 1"
)]
fn training_on_a_single_example_is_refused() {
    layer::<3>(6).forward(&rows(1, 7));
}

#[test]
fn images_are_normalised_per_channel_over_batch_height_and_width() {
    let norm = layer::<2>(8);
    let x = images(3, 9);
    let y = norm.forward(&x);
    assert_eq!(y.shape(), x.shape());
    let (gamma, beta) = (norm.weight.to_vec(), norm.bias.to_vec());
    for c in 0..2 {
        let values: Vec<f64> = (0..3 * 12).map(|k| x[[k / 12, c, (k % 12) / 4, k % 4]]).collect();
        let (mean, variance) = moments(&values);
        for k in 0..3 * 12 {
            let at = [k / 12, c, (k % 12) / 4, k % 4];
            assert_close(y[at], gamma[c] * (x[at] - mean) / (variance + 1e-5).sqrt() + beta[c], 1e-14);
        }
        assert_close(norm.running_mean.get()[[c]], 0.1 * mean, 1e-15);
        assert_close(norm.running_var.get()[[c]], 0.9 + 0.1 * variance * 36.0 / 35.0, 1e-15);
    }
}

#[test]
fn mul_channels_scales_each_channel_and_passes_the_checkers() {
    let x = images(2, 10);
    let gain: Tensor<f64, (Const<2>,), Heap> = Tensor::from_array([2.0, -0.5]);
    let y = x.mul_channels(&gain);
    for k in 0..2 * 2 * 12 {
        let at = [k / 24, (k / 12) % 2, (k % 12) / 4, k % 4];
        assert_eq!(y[at], x[at] * gain[[at[1]]]);
    }
    let weights = images(2, 11);
    let f = |(x, g): (Var<Images>, Var<Tensor<f64, (Const<2>,), Heap>>)| {
        x.mul_channels(&g).hadamard(&weights).sum()
    };
    ok("mul_channels", check_grad(f, &(x.clone(), gain.clone()), CheckOptions::f64()));
    let g = |(x, g): (Var<Images>, Var<Tensor<f64, (Const<2>,), Heap>>)| x.mul_channels(&g);
    ok("mul_channels", check_vjp(g, &(x, gain), CheckOptions::f64()));
}

type RowNet = Sequential<(Linear<f64, 3, 4>, BatchNorm<f64, 4>, Tanh, Linear<f64, 4, 2>)>;
type ImageNet =
    Sequential<(Conv2d<f64, 2, 3, 2, 2, 2, 3>, BatchNorm<f64, 3>, Relu, GlobalAvgPool2d, Linear<f64, 3, 2>)>;

fn row_net() -> RowNet {
    Sequential((Linear::new(12), layer(13), Tanh, Linear::new(14)))
}

fn image_net() -> ImageNet {
    Sequential((Conv2d::new(15), layer(16), Relu, GlobalAvgPool2d, Linear::new(17)))
}

#[test]
fn gradients_through_the_batch_statistics_pass_the_checkers() {
    let (net, x) = (row_net(), rows(6, 18));
    let both = (net.clone(), x.clone());
    type TracedRows = (<RowNet as Trace>::Traced, Var<Rows>);
    ok("rows", check_grad(|(m, x): TracedRows| m.forward(&x).tanh().sum(), &both, CheckOptions::f64()));
    ok("rows", check_vjp(|(m, x): TracedRows| m.forward(&x), &both, CheckOptions::f64()));

    let (net, x) = (image_net(), images(3, 19));
    let both = (net.clone(), x.clone());
    type TracedImages = (<ImageNet as Trace>::Traced, Var<Images>);
    ok("images", check_grad(|(m, x): TracedImages| m.forward(&x).tanh().sum(), &both, CheckOptions::f64()));
    ok("images", check_vjp(|(m, x): TracedImages| m.forward(&x), &both, CheckOptions::f64()));
}

#[test]
fn gradients_in_evaluation_pass_the_checkers() {
    let net = image_net();
    net.forward(&images(4, 20)); // running estimates away from 0 and 1
    let x = images(2, 21);
    let both = (net.clone(), x.clone());
    type TracedImages = (<ImageNet as Trace>::Traced, Var<Images>);
    evaluation(|| {
        ok(
            "evaluation",
            check_grad(|(m, x): TracedImages| m.forward(&x).tanh().sum(), &both, CheckOptions::f64()),
        );
        ok("evaluation", check_vjp(|(m, x): TracedImages| m.forward(&x), &both, CheckOptions::f64()));
    });
}

#[test]
fn forward_mode_agrees_with_reverse_mode() {
    let (net, x) = (image_net(), images(3, 22));
    let gradient = grad(|m: <ImageNet as Trace>::Traced| m.forward(&x).tanh().sum(), &net);
    let direction = some_direction(net.zero_tangent());
    let x_dual = x.map(Dual::constant);
    let (_, derivative) =
        jvp(|m: <ImageNet as Lift>::Lifted| m.forward(&x_dual).tanh().sum(), &net, &direction);
    assert_close(derivative, inner(&gradient, &direction), 1e-13);
}

#[test]
fn clones_are_snapshots_and_the_traced_copies_share_the_running_estimates() {
    let norm = layer::<3>(23);
    let snapshot = norm.clone();
    norm.forward(&rows(4, 24));
    assert_ne!(norm.running_mean.get(), snapshot.running_mean.get());
    assert_eq!(snapshot.running_mean.get().to_array(), [0.0; 3]);
    // A training step updates the model's estimates through the traced copy, in
    // reverse mode, forward mode and through a sequence.
    let x = rows(4, 25);
    let before = norm.running_var.get();
    grad(|n: <BatchNorm<f64, 3> as Trace>::Traced| n.forward(&x).sum(), &norm);
    assert_ne!(norm.running_var.get(), before);
    let before = norm.running_var.get();
    let direction = norm.zero_tangent();
    let x_dual = x.map(Dual::constant);
    jvp(|n: <BatchNorm<f64, 3> as Lift>::Lifted| n.forward(&x_dual).sum(), &norm, &direction);
    assert_ne!(norm.running_var.get(), before);
    let net = row_net();
    let before = net.0.1.running_mean.get();
    grad(|m: <RowNet as Trace>::Traced| m.forward(&x).sum(), &net);
    assert_ne!(net.0.1.running_mean.get(), before);
}

/// A layer of one's own with a buffer: saved with the parameters, not differentiated.
#[derive(Differentiable, Clone)]
struct Tracker {
    scale: Tensor<f64, (Const<2>,), Heap>,
    #[buffer]
    calls: fluxion::nn::params::Buffer<f64>,
}

#[test]
fn a_derived_struct_walks_its_buffer_fields_apart_from_its_parameters() {
    use fluxion::nn::params::{Buffer, Parameters};
    let tracker = Tracker { scale: Tensor::from_array([1.0, 2.0]), calls: Buffer::new(3.0) };
    let mut buffers = Vec::new();
    tracker.visit_buffers(&mut String::new(), &mut |name, leaf| {
        buffers.push((name.to_owned(), leaf.shape.to_vec()))
    });
    assert_eq!(buffers, [("calls".to_owned(), vec![])]);
    assert_eq!(tracker.parameter_count(), 2);
    // Through a tuple, a sequence and a vector the buffers keep their paths.
    let nested = (Relu, Sequential(vec![tracker.clone()]));
    let mut names = Vec::new();
    nested.visit_buffers(&mut String::new(), &mut |name, _| names.push(name.to_owned()));
    assert_eq!(names, ["1.0.calls"]);
    let mut state = Vec::new();
    nested.visit_state(&mut String::new(), &mut |name, _| state.push(name.to_owned()));
    assert_eq!(state, ["1.0.scale", "1.0.calls"]);
    // A `Buffer` anywhere holds buffers only, nested ones included.
    let loose = (
        Linear::<f64, 1, 1>::new(1),
        Buffer::new((Tensor::<f64, (Const<2>,), Heap>::zeros(), Buffer::new(1.0))),
    );
    let mut names = Vec::new();
    loose.visit_buffers(&mut String::new(), &mut |name, _| names.push(name.to_owned()));
    assert_eq!((names, loose.parameter_count()), (vec!["1.0".to_owned(), "1.1".to_owned()], 2));
    // Not differentiated: the gradient has the parameter only.
    let gradient: TrackerTangent = grad(|t: TrackerTraced| t.scale.sum(), &tracker);
    assert_eq!(gradient.scale.to_array(), [1.0, 1.0]);
}

#[test]
fn a_small_convolutional_network_with_batch_normalisation_learns() {
    use fluxion::nn::loss::{Reduction, cross_entropy};
    use fluxion::nn::optim::{Adam, AdamConfig, Optimizer};
    let mut net = image_net();
    let x = images(8, 28);
    // Label: whether the first channel's mean is above the batch's median.
    let means: Vec<f64> = (0..8).map(|b| (0..12).map(|k| x[[b, 0, k / 4, k % 4]]).sum::<f64>()).collect();
    let mut sorted = means.clone();
    sorted.sort_by(f64::total_cmp);
    let labels: Vec<usize> = means.iter().map(|&m| usize::from(m > sorted[3])).collect();
    let loss = |m: &<ImageNet as Trace>::Traced| cross_entropy(&m.forward(&x), &labels, Reduction::Mean);
    let mut adam = Adam::new(AdamConfig { learning_rate: 0.05, ..AdamConfig::default() });
    let first = value_and_grad(|m: <ImageNet as Trace>::Traced| loss(&m), &net).0;
    let mut last = first;
    for _ in 0..60 {
        let (value, gradient) = value_and_grad(|m: <ImageNet as Trace>::Traced| loss(&m), &net);
        adam.step(&mut net, &gradient);
        last = value;
    }
    assert!(last < 0.5 * first, "the loss went from {first} to {last}");
}

type StaticImages = Tensor<f64, (Const<3>, Const<2>, Const<3>, Const<4>), Inline>;
/// A convolution with batch normalisation in static mode.
type StaticCnn = (
    Conv2d<f64, 2, 3, 2, 2, 2, 3, Inline>,
    BatchNorm<f64, 3, Inline>,
    Relu,
    GlobalAvgPool2d,
    Linear<f64, 3, 4, Inline>,
    BatchNorm<f64, 4, Inline>,
    Tanh,
);

#[differentiable]
fn static_cnn_loss(model: &StaticCnn, images: &StaticImages) -> f64 {
    model.apply_batch(images).sum()
}

fn static_cnn() -> StaticCnn {
    let mut norm = BatchNorm::new();
    norm.weight = Tensor::random_normal(1.0, 0.5, 40);
    norm.bias = Tensor::random_normal(0.0, 0.5, 41);
    (Conv2d::new(42), norm, Relu, GlobalAvgPool2d, Linear::new(43), BatchNorm::new(), Tanh)
}

#[test]
fn static_mode_normalises_as_the_tape_does_in_training_and_in_evaluation() {
    let images: StaticImages = Tensor::random_normal(0.0, 2.0, 44);
    for evaluating in [false, true] {
        // The tape differentiates in the model and the images: both in one value.
        let (model, both) = (static_cnn(), (static_cnn(), images));
        let tape_model = &both.0;
        if evaluating {
            // Running estimates away from 0 and 1, the same in both.
            model.apply_batch(&images);
            tape_model.forward(&images);
        }
        let run = || {
            let (value, (model_bar, images_bar)) = static_cnn_loss::value_and_grad(&model, &images);
            let (tape_value, (tape_model_bar, tape_images_bar)) = value_and_grad(
                |(m, x): (<StaticCnn as Trace>::Traced, Var<StaticImages>)| m.forward(&x).sum(),
                &both,
            );
            assert_close(value, tape_value, 1e-13);
            let reals = |v: &dyn Fn(&mut dyn FnMut(f64))| {
                let mut out = Vec::new();
                v(&mut |c| out.push(c));
                out
            };
            let (a, b) =
                (reals(&|f| model_bar.for_each_real(f)), reals(&|f| tape_model_bar.for_each_real(f)));
            a.iter().zip(&b).for_each(|(a, b)| assert_close(*a, *b, 1e-12));
            let (a, b) =
                (reals(&|f| images_bar.for_each_real(f)), reals(&|f| tape_images_bar.for_each_real(f)));
            a.iter().zip(&b).for_each(|(a, b)| assert_close(*a, *b, 1e-12));
        };
        if evaluating {
            evaluation(run)
        } else {
            run()
        }
        // One forward sweep each: the same running estimates.
        assert_eq!(model.1.running_mean.get(), tape_model.1.running_mean.get());
        let (static_var, tape_var) = (model.5.running_var.get(), tape_model.5.running_var.get());
        static_var.iter().zip(tape_var.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
    }
    // Forward mode agrees with reverse mode through the batch statistics.
    let model = static_cnn();
    let direction = seeded_direction(model.zero_tangent(), 0.4);
    let gradient = static_cnn_loss::grad(&model, &images).0;
    let (_, derivative) = static_cnn_loss::jvp(&model, &images, &direction, &images.zero_tangent());
    assert_close(derivative, inner(&gradient, &direction), 1e-12);
}

#[test]
fn second_order_through_the_batch_statistics_matches_differences_of_the_gradient() {
    use fluxion::autodiff::hvp;
    let (net, x) = (row_net(), rows(5, 45));
    let loss = |m: <RowNet as Trace>::Traced| m.forward(&x).tanh().sum();
    let v = some_direction(net.zero_tangent());
    // A plain batch enters the lifted, traced model as a constant.
    let product = hvp(|m: <<RowNet as Lift>::Lifted as Trace>::Traced| m.forward(&x).tanh().sum(), &net, &v);
    let w = seeded_direction(net.zero_tangent(), 0.7);
    assert_hvp_matches_differences(&net, &v, &w, &product, |moved| grad(loss, moved));
}

#[test]
fn a_checkpointed_layer_normalises_as_its_first_run_did_and_updates_once() {
    use fluxion::nn::layer::Checkpointed;
    let x = rows(5, 46);
    for evaluating in [false, true] {
        let (plain, checkpointed) = (layer::<3>(47), Checkpointed(layer::<3>(47)));
        let mode = |forward: &dyn Fn() -> Var<Rows>| if evaluating { evaluation(forward) } else { forward() };
        let expected =
            grad(|n: <BatchNorm<f64, 3> as Trace>::Traced| mode(&|| n.forward(&x)).tanh().sum(), &plain);
        // The backward sweep, and so the recomputation, runs after `evaluation` returns.
        let gradient = grad(
            // A plain batch: the traced layer still runs as one checkpoint.
            |n: <Checkpointed<BatchNorm<f64, 3>> as Trace>::Traced| mode(&|| n.forward(&x)).tanh().sum(),
            &checkpointed,
        );
        assert_eq!(gradient.weight, expected.weight);
        assert_eq!(gradient.bias, expected.bias);
        assert_eq!(checkpointed.0.running_mean.get(), plain.running_mean.get());
        assert_eq!(checkpointed.0.running_var.get(), plain.running_var.get());
    }
}

type StaticRows = Tensor<f64, (Const<4>, Const<3>), Inline>;

/// Calls inside a branch and a loop, which the reverse sweep runs again.
#[differentiable(wrt(norm))]
fn static_branch_and_loop_loss(norm: &BatchNorm<f64, 3, Inline>, x: &StaticRows, twice: bool) -> f64 {
    let y = if twice { norm.apply_batch(&norm.apply_batch(x)) } else { norm.apply_batch(x) };
    let mut h = y;
    for _ in 0..2 {
        h = norm.apply_batch(&h).tanh();
    }
    h.sum()
}

#[test]
fn static_mode_updates_the_running_estimates_once_per_forward_pass() {
    let x: StaticRows = Tensor::random_normal(0.5, 2.0, 48);
    for twice in [false, true] {
        let (norm, tape_norm) = (layer::<3>(49), layer::<3>(49));
        let norm: BatchNorm<f64, 3, Inline> = {
            let mut inline = BatchNorm::new();
            inline.weight = Tensor::from_shape_slice(Default::default(), norm.weight.as_slice()).unwrap();
            inline.bias = Tensor::from_shape_slice(Default::default(), norm.bias.as_slice()).unwrap();
            inline
        };
        let (value, _) = static_branch_and_loop_loss::value_and_grad(&norm, &x, twice);
        let x = Tensor::<f64, (Const<4>, Const<3>), Heap>::from_shape_slice(Default::default(), x.as_slice())
            .unwrap();
        let tape_value = value_and_grad(
            |n: <BatchNorm<f64, 3> as Trace>::Traced| {
                let y = if twice { n.forward(&n.forward(&x)) } else { n.forward(&x) };
                let mut h = y;
                for _ in 0..2 {
                    h = n.forward(&h).tanh();
                }
                h.sum()
            },
            &tape_norm,
        )
        .0;
        assert_close(value, tape_value, 1e-13);
        // Three or four forward passes: as many updates as on the tape.
        let (ours, theirs) = (norm.running_var.get(), tape_norm.running_var.get());
        ours.iter().zip(theirs.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
        // And the linear map of `linearize` recomputes without updating.
        let before = norm.running_mean.get();
        let x = x_inline(&x);
        let (_, map) = static_branch_and_loop_loss::linearize(&norm, &x, twice);
        let after_value = norm.running_mean.get();
        map(&norm.zero_tangent());
        assert_eq!(norm.running_mean.get(), after_value);
        assert_ne!(after_value, before);
    }
}

fn x_inline(x: &Tensor<f64, (Const<4>, Const<3>), Heap>) -> StaticRows {
    Tensor::from_shape_slice(Default::default(), x.as_slice()).unwrap()
}

#[test]
#[should_panic(expected = "mul_channels: 3 channels, a vector of 2 values per channel")]
fn a_gain_of_another_length_than_the_channels_is_refused() {
    let x: Tensor<f64, (Dyn, Dyn, Const<2>, Const<2>), Heap> =
        Tensor::zeros_shaped((Dyn(1), Dyn(3), Const, Const));
    let gain: Tensor<f64, (Dyn,), Heap> = Tensor::zeros_shaped((Dyn(2),));
    x.mul_channels(&gain);
}
