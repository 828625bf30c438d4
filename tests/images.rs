//! Image operations and layers: convolution, per-channel bias, pooling (max and
//! average, plain and overlapping with padding) and flattening against their formulas, their gradients against finite differences and
//! the adjoint identity, and a small convolutional network end to end.

mod common_grad;

use common_grad::{assert_close, ok};
use fluxion::autodiff::check::{CheckOptions, check_grad};
use fluxion::nn::layer::Module;
use fluxion::nn::layer::{Conv2d, Flatten, Linear, MaxPool2d, Relu, Sequential, Tanh, output_size};
use fluxion::ops::conv::{Padding, Stride};
use fluxion::ops::pool::{Window, avg_pool2d_pullback};
use fluxion::prelude::*;

type Images<const C: usize, const H: usize, const W: usize> =
    Tensor<f64, (Dyn, Const<C>, Const<H>, Const<W>), Heap>;
type Kernels = Tensor<f64, (Const<3>, Const<2>, Const<3>, Const<2>), Heap>;

fn images<const C: usize, const H: usize, const W: usize>(batch: usize, seed: u64) -> Images<C, H, W> {
    Tensor::random_normal_shaped((Dyn(batch), Const, Const, Const), 0.0, 1.0, seed)
}

#[test]
fn conv2d_is_the_valid_cross_correlation() {
    let x = images::<2, 5, 6>(2, 1);
    let w: Kernels = Tensor::random_normal(0.0, 1.0, 2);
    let y: Images<3, 3, 5> = x.conv2d(&w);
    for [b, o, i, j] in [[0, 0, 0, 0], [1, 2, 2, 4], [0, 1, 1, 3], [1, 0, 2, 0]] {
        let mut expected = 0.0;
        for c in 0..2 {
            for p in 0..3 {
                for q in 0..2 {
                    expected += w[[o, c, p, q]] * x[[b, c, i + p, j + q]];
                }
            }
        }
        assert_close(y[[b, o, i, j]], expected, 1e-14);
    }
    let bias: Tensor<f64, (Const<3>,), Heap> = Tensor::from_array([1.0, -2.0, 0.5]);
    let shifted = y.add_channels(&bias);
    assert_close(shifted[[1, 1, 2, 3]], y[[1, 1, 2, 3]] - 2.0, 1e-15);
}

/// Asserts y_{b o i j} = Σ_{c p q} w_{o c p q}·x_{b c (S·i + p − P) (S·j + q − P)}
/// for every output, x read as zero outside the image.
fn assert_is_reference_convolution<const H: usize, const W: usize, const HO: usize, const WO: usize>(
    x: &Images<2, H, W>,
    w: &Kernels,
    y: &Images<3, HO, WO>,
    stride: usize,
    padding: usize,
) {
    let padded =
        |b: usize, c: usize, r: usize, q: usize| match (r.checked_sub(padding), q.checked_sub(padding)) {
            (Some(r), Some(q)) if r < H && q < W => x[[b, c, r, q]],
            _ => 0.0,
        };
    for b in 0..x.shape().0.size() {
        for o in 0..3 {
            for i in 0..HO {
                for j in 0..WO {
                    let mut expected = 0.0;
                    for c in 0..2 {
                        for p in 0..3 {
                            for q in 0..2 {
                                expected += w[[o, c, p, q]] * padded(b, c, stride * i + p, stride * j + q);
                            }
                        }
                    }
                    assert_close(y[[b, o, i, j]], expected, 1e-14);
                }
            }
        }
    }
}

#[test]
fn padded_convolution_reads_zeros_beyond_the_edges() {
    let x = images::<2, 4, 5>(2, 11);
    let w: Kernels = Tensor::random_normal(0.0, 1.0, 12);
    // Padding 1 with a 3×2 kernel: 4 + 2 − 3 + 1 = 4 rows, 5 + 2 − 2 + 1 = 6 columns.
    let y: Images<3, 4, 6> = x.conv2d_padded(&w, Padding::<1>);
    assert_is_reference_convolution(&x, &w, &y, 1, 1);
    let weights = images::<3, 4, 6>(2, 13);
    ok(
        "conv2d_padded",
        check_grad(
            |(x, w): (Var<Images<2, 4, 5>>, Var<Kernels>)| {
                let y: Var<Images<3, 4, 6>> = x.conv2d_padded(&w, Padding::<1>);
                y.tanh().hadamard(&weights).sum()
            },
            &(x, w),
            CheckOptions::f64(),
        ),
    );
    // A "same" layer: 3×3 kernels padded by 1 keep 6×6.
    let same: Conv2d<f64, 1, 2, 3, 3, 6, 6, Heap, 1> = Conv2d::new(14);
    let out = same.forward(&images::<1, 6, 6>(1, 15));
    assert_eq!(out.shape(), (Dyn(1), Const::<2>, Const::<6>, Const::<6>));
}

#[test]
fn strided_convolution_moves_the_kernel_by_its_stride() {
    let x = images::<2, 7, 6>(2, 21);
    let w: Kernels = Tensor::random_normal(0.0, 1.0, 22);
    // Stride 2, padding 1: ⌊(7 + 2 − 3)/2⌋ + 1 = 4 rows, ⌊(6 + 2 − 2)/2⌋ + 1 = 4 columns.
    let y: Images<3, 4, 4> = x.conv2d_strided(&w, Stride::<2>, Padding::<1>);
    assert_is_reference_convolution(&x, &w, &y, 2, 1);
    // Stride 3, no padding, the last input row unread: ⌊(7 − 3)/3⌋ + 1 = 2, ⌊(6 − 2)/3⌋ + 1 = 2.
    let z: Images<3, 2, 2> = x.conv2d_strided(&w, Stride::<3>, Padding::<0>);
    assert_is_reference_convolution(&x, &w, &z, 3, 0);
    // Stride 1 is `conv2d_padded`.
    let same: Images<3, 7, 7> = x.conv2d_strided(&w, Stride::<1>, Padding::<1>);
    assert_eq!(same, x.conv2d_padded(&w, Padding::<1>));

    let weights = images::<3, 4, 4>(2, 23);
    ok(
        "conv2d_strided",
        check_grad(
            |(x, w): (Var<Images<2, 7, 6>>, Var<Kernels>)| {
                let y: Var<Images<3, 4, 4>> = x.conv2d_strided(&w, Stride::<2>, Padding::<1>);
                y.tanh().hadamard(&weights).sum()
            },
            &(x.clone(), w.clone()),
            CheckOptions::f64(),
        ),
    );
    let weights = images::<3, 2, 2>(2, 24);
    ok(
        "conv2d_strided without padding",
        check_grad(
            |(x, w): (Var<Images<2, 7, 6>>, Var<Kernels>)| {
                let z: Var<Images<3, 2, 2>> = x.conv2d_strided(&w, Stride::<3>, Padding::<0>);
                z.tanh().hadamard(&weights).sum()
            },
            &(x, w),
            CheckOptions::f64(),
        ),
    );
}

#[test]
fn max_pooling_and_flattening_follow_their_definitions() {
    let x = images::<2, 5, 4>(2, 3);
    let y: Images<2, 2, 2> = x.max_pool2d::<2, 2, 2>();
    for [b, c, i, j] in [[0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 1, 0]] {
        let window = [
            x[[b, c, 2 * i, 2 * j]],
            x[[b, c, 2 * i, 2 * j + 1]],
            x[[b, c, 2 * i + 1, 2 * j]],
            x[[b, c, 2 * i + 1, 2 * j + 1]],
        ];
        assert_eq!(y[[b, c, i, j]], window.into_iter().fold(f64::NEG_INFINITY, f64::max));
    }
    let rows: Tensor<f64, (Dyn, Const<40>), Heap> = x.flatten_images();
    assert_eq!(rows[[1, 2 * 5 * 4 - 1]], x[[1, 1, 4, 3]]);
    assert_eq!(rows[[0, 4 + 1]], x[[0, 0, 1, 1]]);
}

#[test]
fn average_pooling_is_the_mean_of_each_window_and_skips_what_no_window_covers() {
    let x = images::<2, 7, 5>(2, 31);
    let y: Images<2, 2, 1> = x.avg_pool2d::<3, 2, 1>();
    for [b, c, i, j] in [[0, 0, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 0]] {
        let window = (0..3).flat_map(|p| (0..3).map(move |q| (3 * i + p, 3 * j + q)));
        let mean = window.map(|(h, w)| x[[b, c, h, w]]).sum::<f64>() / 9.0;
        assert!((y[[b, c, i, j]] - mean).abs() < 1e-15, "window {:?}", [b, c, i, j]);
    }
    // The pullback spreads ȳ/9 over each window and gives the last row and the last
    // two columns, in no window, nothing.
    let y_bar: Images<2, 2, 1> = images(2, 32);
    let x_bar: Images<2, 7, 5> = avg_pool2d_pullback(&y_bar, (Window::<3>, Stride::<3>, Padding::<0>));
    for [b, c, h, w] in [[0, 0, 0, 0], [1, 1, 5, 2], [0, 1, 3, 1]] {
        assert_eq!(x_bar[[b, c, h, w]], y_bar[[b, c, h / 3, 0]] / 9.0);
    }
    for [b, c, h, w] in [[0, 0, 6, 0], [1, 1, 2, 3], [0, 1, 6, 4]] {
        assert_eq!(x_bar[[b, c, h, w]], 0.0);
    }
}

/// The elements of image (b, c) that window (i, j) of K×K windows moved S per output
/// over the image padded by P reads, by the definition.
fn window_values<const H: usize, const W: usize>(
    x: &Images<2, H, W>,
    [b, c, i, j]: [usize; 4],
    [k, s, p]: [usize; 3],
) -> Vec<f64> {
    let taps = (0..k).flat_map(|u| (0..k).map(move |v| (s * i + u, s * j + v)));
    let inside = taps.filter(|&(h, w)| (p..p + H).contains(&h) && (p..p + W).contains(&w));
    inside.map(|(h, w)| x[[b, c, h - p, w - p]]).collect()
}

/// Every output of a max and an average pooling of `x` against the definition.
fn assert_pools_by_definition<const H: usize, const W: usize, const HO: usize, const WO: usize>(
    x: &Images<2, H, W>,
    (largest, mean): (&Images<2, HO, WO>, &Images<2, HO, WO>),
    [k, s, p]: [usize; 3],
) {
    for [b, c] in [[0, 0], [0, 1], [1, 0], [1, 1]] {
        for (i, j) in (0..HO).flat_map(|i| (0..WO).map(move |j| (i, j))) {
            let window = window_values(x, [b, c, i, j], [k, s, p]);
            assert_eq!(largest[[b, c, i, j]], window.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            // Padding counts as zeros in the mean: a sum over K².
            assert!((mean[[b, c, i, j]] - window.iter().sum::<f64>() / (k * k) as f64).abs() < 1e-15);
        }
    }
}

#[test]
fn strided_padded_pooling_reads_the_windows_inside_the_image() {
    // PyTorch's MaxPool2d(3, stride=2, padding=1) and AvgPool2d(3, 2, 1): 7×6 gives
    // ⌊(7 + 2 − 3)/2⌋ + 1 = 4 by ⌊(6 + 2 − 3)/2⌋ + 1 = 3, windows overlapping.
    let x = images::<2, 7, 6>(2, 33);
    let largest: Images<2, 4, 3> = x.max_pool2d_strided(Window::<3>, Stride::<2>, Padding::<1>);
    let mean: Images<2, 4, 3> = x.avg_pool2d_strided(Window::<3>, Stride::<2>, Padding::<1>);
    assert_pools_by_definition(&x, (&largest, &mean), [3, 2, 1]);
    // Windows of 2 three apart with padding 1 on 7×8: ⌊(7 + 2 − 2)/3⌋ + 1 = 3 by 3,
    // with rows and columns between the windows that none reads.
    let x = images::<2, 7, 8>(2, 35);
    let largest: Images<2, 3, 3> = x.max_pool2d_strided(Window::<2>, Stride::<3>, Padding::<1>);
    let mean: Images<2, 3, 3> = x.avg_pool2d_strided(Window::<2>, Stride::<3>, Padding::<1>);
    assert_pools_by_definition(&x, (&largest, &mean), [2, 3, 1]);
}

#[test]
fn image_operations_have_gradients_that_match_finite_differences() {
    let x = images::<2, 5, 6>(2, 4);
    let w: Kernels = Tensor::random_normal(0.0, 1.0, 5);
    let bias: Tensor<f64, (Const<3>,), Heap> = Tensor::random_normal(0.0, 1.0, 6);
    let weights = images::<3, 3, 5>(2, 7);
    ok(
        "conv2d and add_channels",
        check_grad(
            |(x, w, b): (Var<Images<2, 5, 6>>, Var<Kernels>, Var<Tensor<f64, (Const<3>,), Heap>>)| {
                let y: Var<Images<3, 3, 5>> = x.conv2d(&w);
                y.add_channels(&b).tanh().hadamard(&weights).sum()
            },
            &(x.clone(), w, bias),
            CheckOptions::f64(),
        ),
    );
    let pooled_weights = images::<2, 2, 3>(2, 8);
    ok(
        "max_pool2d",
        check_grad(
            |x: Var<Images<2, 5, 6>>| x.max_pool2d::<2, 2, 3>().hadamard(&pooled_weights).sum(),
            &x,
            CheckOptions::f64(),
        ),
    );
    ok(
        "avg_pool2d",
        check_grad(
            |x: Var<Images<2, 5, 6>>| x.avg_pool2d::<2, 2, 3>().tanh().hadamard(&pooled_weights).sum(),
            &x,
            CheckOptions::f64(),
        ),
    );
    let strided_weights = images::<2, 3, 3>(2, 34);
    ok(
        "max_pool2d_strided",
        check_grad(
            |x: Var<Images<2, 5, 6>>| {
                let y: Var<Images<2, 3, 3>> = x.max_pool2d_strided(Window::<3>, Stride::<2>, Padding::<1>);
                y.hadamard(&strided_weights).sum()
            },
            &x,
            CheckOptions::f64(),
        ),
    );
    let gapped_weights = images::<2, 2, 3>(2, 36);
    ok(
        "max_pool2d_strided with gaps",
        check_grad(
            |x: Var<Images<2, 5, 6>>| {
                let y: Var<Images<2, 2, 3>> = x.max_pool2d_strided(Window::<2>, Stride::<3>, Padding::<1>);
                y.hadamard(&gapped_weights).sum()
            },
            &x,
            CheckOptions::f64(),
        ),
    );
    ok(
        "avg_pool2d_strided",
        check_grad(
            |x: Var<Images<2, 5, 6>>| {
                let y: Var<Images<2, 3, 3>> = x.avg_pool2d_strided(Window::<3>, Stride::<2>, Padding::<1>);
                y.tanh().hadamard(&strided_weights).sum()
            },
            &x,
            CheckOptions::f64(),
        ),
    );
    let row_weights: Tensor<f64, (Dyn, Const<60>), Heap> =
        Tensor::random_normal_shaped((Dyn(2), Const), 0.0, 1.0, 9);
    ok(
        "flatten_images",
        check_grad(
            |x: Var<Images<2, 5, 6>>| x.flatten_images().hadamard(&row_weights).sum(),
            &x,
            CheckOptions::f64(),
        ),
    );
}

type Cnn =
    Sequential<(Conv2d<f64, 1, 2, 3, 3, 4, 4>, Relu, MaxPool2d<2, 2, 2>, Flatten<8>, Linear<f64, 8, 3>)>;

#[test]
fn a_small_convolutional_network_has_checked_gradients_end_to_end() {
    let model: Cnn = Sequential((Conv2d::new(1), Relu, MaxPool2d, Flatten, Linear::new(2)));
    let x = images::<1, 6, 6>(3, 10);
    let logits = model.forward(&x);
    assert_eq!(logits.shape(), (Dyn(3), Const::<3>));
    ok(
        "cnn",
        check_grad(
            |m: <Cnn as Trace>::Traced| m.forward(&Var::constant(x.clone())).tanh().sum(),
            &model,
            CheckOptions::f64(),
        ),
    );
    let traced = model.as_constant().forward(&Var::constant(x.clone()));
    assert_eq!(traced.value(), &logits);
}

/// A LeNet-style chain of ten layers: sequences take up to twelve.
type DeepCnn = Sequential<(
    Conv2d<f64, 1, 2, 3, 3, 6, 6>,
    Relu,
    MaxPool2d<2, 3, 3>,
    Conv2d<f64, 2, 3, 2, 2, 2, 2>,
    Tanh,
    Flatten<12>,
    Linear<f64, 12, 6>,
    Relu,
    Linear<f64, 6, 4>,
    Tanh,
)>;

#[test]
fn a_ten_layer_sequence_runs_names_its_parameters_and_has_checked_gradients() {
    use fluxion::nn::params::Parameters;
    let model: DeepCnn = Sequential((
        Conv2d::new(1),
        Relu,
        MaxPool2d,
        Conv2d::new(2),
        Tanh,
        Flatten,
        Linear::new(3),
        Relu,
        Linear::new(4),
        Tanh,
    ));
    let x = images::<1, 8, 8>(3, 11);
    assert_eq!(model.forward(&x).shape(), (Dyn(3), Const::<4>));
    ok(
        "ten layers",
        check_grad(
            |m: <DeepCnn as Trace>::Traced| m.forward(&Var::constant(x.clone())).sum(),
            &model,
            CheckOptions::f64(),
        ),
    );
    let mut names = Vec::new();
    model.visit_parameters(&mut String::new(), &mut |name, _| names.push(name.to_owned()));
    let expected = ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias", "8.weight", "8.bias"];
    assert_eq!(names, expected);
}

/// The same kind of network in static mode: its layers' `apply_batch` methods.
type Layers =
    (Conv2d<f64, 1, 2, 3, 3, 6, 6, Heap, 1>, Relu, MaxPool2d<2, 3, 3>, Flatten<18>, Linear<f64, 18, 3>);

#[fluxion::autodiff::differentiable(wrt(model))]
fn static_cnn_loss(model: &Layers, x: &Images<1, 6, 6>) -> f64 {
    let features = model.0.apply_batch(x).relu();
    let pooled = model.2.apply_batch(&features);
    model.4.apply_batch(&model.3.apply_batch(&pooled)).tanh().sum()
}

#[test]
fn static_mode_differentiates_a_convolutional_network_as_the_tape_does() {
    let model: Layers = (Conv2d::new(11), Relu, MaxPool2d, Flatten, Linear::new(12));
    let x = images::<1, 6, 6>(3, 13);
    let (value, gradient) = static_cnn_loss::value_and_grad(&model, &x);
    let sequential = Sequential(model.clone());
    let (tape_value, tape_gradient) = value_and_grad(
        |m: <Sequential<Layers> as Trace>::Traced| m.forward(&Var::constant(x.clone())).tanh().sum(),
        &sequential,
    );
    assert_close(value, tape_value, 1e-14);
    let pairs = [
        (gradient.0.weight.as_slice(), tape_gradient.0.weight.as_slice()),
        (gradient.0.bias.as_slice(), tape_gradient.0.bias.as_slice()),
        (gradient.4.weight.as_slice(), tape_gradient.4.weight.as_slice()),
        (gradient.4.bias.as_slice(), tape_gradient.4.bias.as_slice()),
    ];
    assert_same_gradients(&pairs);
    // Forward mode from the same definition: ⟨∇f, v⟩ along the gradient itself.
    let (_, derivative) = static_cnn_loss::jvp(&model, &x, &gradient);
    assert_close(derivative, squared_norm(&pairs), 1e-12);
}

/// Each static-mode gradient slice equals the tape's.
fn assert_same_gradients(pairs: &[(&[f64], &[f64])]) {
    for (ours, tape) in pairs {
        assert_eq!(ours.len(), tape.len());
        ours.iter().zip(*tape).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
    }
}

/// ‖g‖² over the static-mode slices of `pairs`.
fn squared_norm(pairs: &[(&[f64], &[f64])]) -> f64 {
    pairs.iter().flat_map(|(ours, _)| ours.iter()).map(|g| g * g).sum()
}

/// A downsampling network: 3×3 kernels with stride 2 and padding 1 take 6×6 to 3×3.
type StridedLayers = (Conv2d<f64, 1, 2, 3, 3, 3, 3, Heap, 1, 2>, Tanh, Flatten<18>, Linear<f64, 18, 2>);

#[fluxion::autodiff::differentiable(wrt(model))]
fn static_strided_cnn_loss(model: &StridedLayers, x: &Images<1, 6, 6>) -> f64 {
    let features = model.0.apply_batch(x).tanh();
    model.3.apply_batch(&model.2.apply_batch(&features)).tanh().sum()
}

#[test]
fn a_strided_convolution_layer_differentiates_alike_in_every_mode() {
    let model: StridedLayers = (Conv2d::new(31), Tanh, Flatten, Linear::new(32));
    let x = images::<1, 6, 6>(2, 33);
    let sequential = Sequential(model.clone());
    let constant = Var::constant(x.clone());
    let tape_loss = |m: <Sequential<StridedLayers> as Trace>::Traced| m.forward(&constant).tanh().sum();
    ok("strided cnn", check_grad(tape_loss, &sequential, CheckOptions::f64()));
    let (tape_value, tape_gradient) = value_and_grad(tape_loss, &sequential);
    // The traced layer also takes the plain batch.
    let (plain_value, _) = value_and_grad(
        |m: <Sequential<StridedLayers> as Trace>::Traced| m.forward(&x).tanh().sum(),
        &sequential,
    );
    assert_eq!(plain_value, tape_value);
    let (value, gradient) = static_strided_cnn_loss::value_and_grad(&model, &x);
    assert_close(value, tape_value, 1e-14);
    let pairs = [
        (gradient.0.weight.as_slice(), tape_gradient.0.weight.as_slice()),
        (gradient.0.bias.as_slice(), tape_gradient.0.bias.as_slice()),
        (gradient.3.weight.as_slice(), tape_gradient.3.weight.as_slice()),
    ];
    assert_same_gradients(&pairs);
    let (_, derivative) = static_strided_cnn_loss::jvp(&model, &x, &gradient);
    let full_norm = squared_norm(&pairs) + gradient.3.bias.iter().map(|g| g * g).sum::<f64>();
    assert_close(derivative, full_norm, 1e-12);
}

/// An embedding's rows in static mode; the indices are plain.
#[fluxion::autodiff::differentiable(wrt(table))]
fn static_embedding_loss(table: &fluxion::nn::layer::Embedding<f64, 5, 3>, indices: &[usize]) -> f64 {
    table.apply(indices).tanh().sum()
}

#[test]
fn static_mode_differentiates_an_embedding_as_the_tape_does() {
    use fluxion::nn::layer::Embedding;
    let table: Embedding<f64, 5, 3> = Embedding::new(14);
    let indices = [4, 0, 4, 2];
    let (value, gradient) = static_embedding_loss::value_and_grad(&table, &indices);
    let (tape_value, tape_gradient) = value_and_grad(
        |t: <Embedding<f64, 5, 3> as Trace>::Traced| t.forward(&indices[..]).tanh().sum(),
        &table,
    );
    assert_close(value, tape_value, 1e-14);
    gradient.weight.iter().zip(tape_gradient.weight.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-14));
    // Row 1 and row 3 are never picked; row 4 twice.
    assert!(gradient.weight.as_slice()[3..6].iter().all(|&g| g == 0.0));
    let (_, derivative) = static_embedding_loss::jvp(&table, &indices, &gradient);
    assert_close(derivative, gradient.weight.iter().map(|g| g * g).sum(), 1e-13);
    ok(
        "embedding",
        check_grad(
            |t: <Embedding<f64, 5, 3> as Trace>::Traced| t.forward(&indices[..]).tanh().sum(),
            &table,
            CheckOptions::f64(),
        ),
    );
}

/// A NaN anywhere in a pooling window gives NaN, as `max` does (not only a NaN first
/// in the window).
#[test]
fn max_pooling_propagates_a_nan_anywhere_in_its_window() {
    for position in 0..4 {
        let x = Images::<1, 2, 2>::from_shape_fn((Dyn(1), Const, Const, Const), |[_, _, i, j]| {
            if 2 * i + j == position { f64::NAN } else { (2 * i + j) as f64 }
        });
        let y: Images<1, 1, 1> = x.max_pool2d::<2, 1, 1>();
        assert!(y[[0, 0, 0, 0]].is_nan(), "NaN at window position {position}");
    }
}

#[test]
fn padding_wider_than_the_image_reads_only_zeros_there() {
    // A 5×5 kernel over a 1×1 image padded by 2: one output, from the kernel's centre;
    // the kernel columns that reach only padding contribute nothing.
    type Kernel5 = Tensor<f64, (Const<1>, Const<1>, Const<5>, Const<5>), Heap>;
    let x: Images<1, 1, 1> = Tensor::full_shaped((Dyn(1), Const, Const, Const), 2.0);
    let w: Kernel5 = Tensor::from_flat_fn((Const, Const, Const, Const), |i| i as f64);
    let y: Images<1, 1, 1> = x.conv2d_padded(&w, Padding::<2>);
    assert_eq!(y.as_slice(), &[24.0]);
    let (gx, gw) = grad(
        |(x, w): (Var<Images<1, 1, 1>>, Var<Kernel5>)| {
            let y: Var<Images<1, 1, 1>> = x.conv2d_padded(&w, Padding::<2>);
            y.sum()
        },
        &(x.clone(), w.clone()),
    );
    assert_eq!(gx.as_slice(), &[12.0]);
    let expected: Vec<f64> = (0..25).map(|i| if i == 12 { 2.0 } else { 0.0 }).collect();
    assert_eq!(gw.as_slice(), expected.as_slice());
    // A 2×2 image, a 7×7 kernel padded by 3: against the reference sum.
    type Kernel7 = Tensor<f64, (Const<1>, Const<1>, Const<7>, Const<7>), Heap>;
    let x = images::<1, 2, 2>(2, 31);
    let w: Kernel7 = Tensor::random_normal(0.0, 1.0, 32);
    let y: Images<1, 2, 2> = x.conv2d_padded(&w, Padding::<3>);
    for [b, i, j] in [[0usize, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]] {
        let mut expected = 0.0;
        for (p, q) in (0..7usize).flat_map(|p| (0..7usize).map(move |q| (p, q))) {
            let (r, c) = ((i + p).checked_sub(3), (j + q).checked_sub(3));
            if let (Some(r @ 0..2), Some(c @ 0..2)) = (r, c) {
                expected += w[[0, 0, p, q]] * x[[b, 0, r, c]];
            }
        }
        assert_close(y[[b, 0, i, j]], expected, 1e-14);
    }
    ok(
        "conv2d_padded beyond the image",
        check_grad(
            |(x, w): (Var<Images<1, 2, 2>>, Var<Kernel7>)| {
                let y: Var<Images<1, 2, 2>> = x.conv2d_padded(&w, Padding::<3>);
                y.tanh().sum()
            },
            &(x, w),
            CheckOptions::f64(),
        ),
    );
}

/// `output_size` against sizes counted by sliding the window: every length, kernel,
/// padding and stride up to 9, 5, 2 and 3 where the window fits.
#[test]
fn output_size_counts_the_window_positions() {
    for length in 1..=9 {
        for kernel in 1..=5 {
            for padding in 0..=2 {
                for stride in 1..=3 {
                    let padded = length + 2 * padding;
                    if kernel > padded {
                        continue;
                    }
                    let positions =
                        (0..padded).step_by(stride).filter(|&start| start + kernel <= padded).count();
                    assert_eq!(
                        output_size(length, kernel, padding, stride),
                        positions,
                        "{length} {kernel} {padding} {stride}"
                    );
                }
            }
        }
    }
    const POOLED: usize = output_size(output_size(28, 3, 1, 2), 2, 0, 2);
    assert_eq!(POOLED, 7);
}

#[test]
#[should_panic(expected = "output_size: the window is longer than the padded axis")]
fn output_size_refuses_a_window_that_does_not_fit() {
    let length = std::hint::black_box(2);
    let _ = output_size(length, 5, 1, 1);
}

#[test]
#[should_panic(expected = "output_size: a stride of 0")]
fn output_size_refuses_a_stride_of_0() {
    let _ = output_size(std::hint::black_box(8), 3, 0, 0);
}
