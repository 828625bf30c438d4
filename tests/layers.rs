//! Layers: values against their formulas row by row, gradients of composed models
//! against finite differences and the adjoint identity, plain and traced forward
//! passes agreeing, and a small model trained with an optimiser.

mod common_grad;

use common_grad::{assert_close, assert_hvp_matches_differences, inner, ok, some_direction};
use fluxion::autodiff::check::{CheckOptions, check_grad};
use fluxion::nn::layer::{
    Gelu, GeluFunction, GeluTanh, GeluTanhFunction, Linear, Module, Relu, Sigmoid, Silu, Softmax, Softplus,
    Tanh,
};
use fluxion::nn::loss::{Reduction, cross_entropy};
use fluxion::nn::optim::{Adam, AdamConfig, Optimizer};
use fluxion::ops::elementwise::ScalarFunction;
use fluxion::prelude::*;

type Batch<const F: usize> = Tensor<f64, (Dyn, Const<F>), Heap>;

fn batch<const F: usize>(rows: usize, seed: u64) -> Batch<F> {
    Tensor::random_normal_shaped((Dyn(rows), Const), 0.0, 1.0, seed)
}

#[test]
fn linear_is_w_x_plus_b_on_every_row() {
    let layer: Linear<f64, 3, 2> = Linear::new(7);
    let x = batch::<3>(4, 1);
    let y = layer.forward(&x);
    assert_eq!(y.shape(), (Dyn(4), Const::<2>));
    for r in 0..4 {
        for o in 0..2 {
            let expected = layer.bias[[o]] + (0..3).map(|i| layer.weight[[o, i]] * x[[r, i]]).sum::<f64>();
            assert_close(y[[r, o]], expected, 1e-15);
        }
    }
    // PyTorch's initialisation bound, ±1/√I.
    assert!(layer.weight.iter().all(|w| w.abs() <= 1.0 / 3f64.sqrt()));
    // Layers seeded 7 and 8 share no random stream (a bias is no row of the next
    // layer's weights).
    let next: Linear<f64, 3, 2> = Linear::new(8);
    assert!((0..2).all(|row| (0..2).any(|c| next.weight[[row, c]] != layer.bias[[c]])));
    assert_ne!(next.weight, layer.weight);
}

#[test]
fn a_fixed_size_net_runs_on_inline_tensors_with_a_static_batch() {
    let model: (Linear<f32, 2, 4, Inline>, Tanh, Linear<f32, 4, 1, Inline>) =
        (Linear::new(1), Tanh, Linear::new(2));
    let x: Matrix<f32, 3, 2> = Matrix::from_array([[0.5, -1.0], [0.0, 0.25], [1.0, 1.0]]);
    let y: Matrix<f32, 3, 1> = model.forward(&x);
    let hidden = model.1.forward(&model.0.forward(&x));
    assert_eq!(y, model.2.forward(&hidden));
}

#[test]
fn activations_follow_their_formulas() {
    let x = batch::<5>(3, 2);
    let each = |y: &Batch<5>, f: &dyn Fn(f64) -> f64| {
        x.iter().zip(y.iter()).for_each(|(&x, &y)| assert_close(y, f(x), 1e-15));
    };
    each(&Relu.forward(&x), &|v| v.max(0.0));
    each(&Tanh.forward(&x), &|v| v.tanh());
    each(&Sigmoid.forward(&x), &|v| 1.0 / (1.0 + (-v).exp()));
    let gelu =
        |v: f64| 0.5 * v * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3))).tanh());
    each(&GeluTanh.forward(&x), &gelu);
    // PyTorch: gelu(1.0, approximate="tanh") = 0.8411919906082768.
    assert_close(GeluTanhFunction.value(1.0f64), 0.8411919906082768, 1e-15);
    // PyTorch: gelu(x) with erf, from Python's `math.erf`.
    for (v, y) in [(1.0, 0.8413447460685429), (-0.5, -0.15426876936299344), (3.0, 2.99595030590511)] {
        assert_close(GeluFunction.value(v), y, 1e-15);
    }
    each(&Gelu.forward(&x), &|v| GeluFunction.value(v));
    // The far negative tail, where 1 + erf(x/√2) cancels (exact values from mpmath):
    // Φ is computed as ½erfc(−x/√2), so the value and derivative keep their relative
    // accuracy.
    for (v, y, slope) in [
        (-10.0, -7.619_853_024_160_526e-23, -7.618_400_096_464_814e-22),
        (-8.375, -2.312_499_632_232_406_6e-16, -1.935_982_008_782_608_5e-15),
        (-5.0, -1.433_257_859_395_969_5e-6, -7.146_946_001_792_295e-6),
    ] {
        let (value, derivative) = (GeluFunction.value(v), GeluFunction.derivative(v, y));
        assert!((value - y).abs() <= 1e-13 * y.abs(), "GELU({v}) = {value}, not {y}");
        assert!((derivative - slope).abs() <= 1e-12 * slope.abs(), "GELU′({v}) = {derivative}, not {slope}");
    }
    each(&Softplus.forward(&x), &|v| (1.0 + v.exp()).ln());
    each(&Silu.forward(&x), &|v| v / (1.0 + (-v).exp()));
    // Static mode's forward pass of the same layers.
    assert_eq!(Softplus.apply_batch(&x), Softplus.forward(&x));
    assert_eq!(Silu.apply_batch(&x), Silu.forward(&x));
    assert_close(GeluFunction.value(1.0f32) as f64, 0.8413447460685429, 1e-7);
    for v in [-3.0, -0.5, 0.0, 0.7, 2.5] {
        let h = 1e-6;
        let numeric = (GeluTanhFunction.value(v + h) - GeluTanhFunction.value(v - h)) / (2.0 * h);
        assert_close(GeluTanhFunction.derivative(v, GeluTanhFunction.value(v)), numeric, 1e-9);
        let numeric = (GeluFunction.value(v + h) - GeluFunction.value(v - h)) / (2.0 * h);
        assert_close(GeluFunction.derivative(v, GeluFunction.value(v)), numeric, 1e-9);
        // The two forms agree to about 10⁻³.
        assert!((GeluFunction.value(v) - GeluTanhFunction.value(v)).abs() < 1e-3);
    }
    let p = Softmax.forward(&x);
    for r in 0..3 {
        let total: f64 = (0..5).map(|c| x[[r, c]].exp()).sum();
        (0..5).for_each(|c| assert_close(p[[r, c]], x[[r, c]].exp() / total, 1e-15));
    }
}

type Mlp = (Linear<f64, 3, 4>, GeluTanh, Linear<f64, 4, 4>, Sigmoid, Linear<f64, 4, 3>, Softmax);

#[test]
fn a_composed_model_has_gradients_that_match_finite_differences() {
    let model: Mlp = (Linear::new(1), GeluTanh, Linear::new(2), Sigmoid, Linear::new(3), Softmax);
    let x = batch::<3>(5, 3);
    let target: Batch<3> = batch::<3>(5, 4);
    let loss = |m: <Mlp as Trace>::Traced| {
        let y = m.forward(&Var::constant(x.clone()));
        let error = &y - &target;
        error.hadamard(&error).sum()
    };
    ok("mlp", check_grad(loss, &model, CheckOptions::f64()));
    let relu_tanh = (Linear::<f64, 3, 4>::new(5), Relu, Linear::<f64, 4, 2>::new(6), Tanh);
    ok(
        "relu-tanh",
        check_grad(
            |m: <(Linear<f64, 3, 4>, Relu, Linear<f64, 4, 2>, Tanh) as Trace>::Traced| {
                m.forward(&Var::constant(x.clone())).sum()
            },
            &relu_tanh,
            CheckOptions::f64(),
        ),
    );
}

/// A `Sequential` is a layer too: sequences nest, plain and traced, with the same
/// output as the flat chain and a checked gradient.
#[test]
fn sequences_nest() {
    use fluxion::nn::layer::Sequential;
    type Block = Sequential<(Linear<f64, 3, 4>, Tanh)>;
    type Nested = Sequential<(Block, Sequential<(Linear<f64, 4, 2>, Sigmoid)>)>;
    let nested: Nested =
        Sequential((Sequential((Linear::new(1), Tanh)), Sequential((Linear::new(2), Sigmoid))));
    let flat = (Linear::<f64, 3, 4>::new(1), Tanh, Linear::<f64, 4, 2>::new(2), Sigmoid);
    let x = batch::<3>(5, 7);
    assert_eq!(nested.forward(&x), flat.forward(&x));
    ok(
        "nested",
        check_grad(
            |m: <Nested as Trace>::Traced| m.forward(&Var::constant(x.clone())).sum(),
            &nested,
            CheckOptions::f64(),
        ),
    );
}

#[test]
fn the_plain_and_traced_forward_passes_agree() {
    let model: Mlp = (Linear::new(1), GeluTanh, Linear::new(2), Sigmoid, Linear::new(3), Softmax);
    let x = batch::<3>(6, 5);
    let plain = model.forward(&x);
    let traced = model.as_constant().forward(&Var::constant(x.clone()));
    assert_eq!(&plain, traced.value());
}

#[test]
fn a_small_classifier_learns_with_adam() {
    // Two Gaussian blobs per class along the first feature.
    let x = Batch::<2>::from_shape_fn((Dyn(64), Const), |[r, c]| {
        let class = (r % 2) as f64;
        let jitter = ((r * 7 + c * 3) % 11) as f64 / 11.0 - 0.5;
        if c == 0 { 2.0 * class - 1.0 + 0.3 * jitter } else { jitter }
    });
    let labels: Vec<usize> = (0..64).map(|r| r % 2).collect();
    type Net = (Linear<f64, 2, 8>, Relu, Linear<f64, 8, 2>);
    let mut model: Net = (Linear::new(11), Relu, Linear::new(12));
    let mut adam = Adam::new(AdamConfig { learning_rate: 0.05, ..AdamConfig::default() });
    let loss_of = |m: <Net as Trace>::Traced| {
        cross_entropy(&m.forward(&Var::constant(x.clone())), &labels, Reduction::Mean)
    };
    let (first, _) = value_and_grad(loss_of, &model);
    for _ in 0..60 {
        let (_, gradient) = value_and_grad(loss_of, &model);
        adam.step(&mut model, &gradient);
    }
    let (last, _) = value_and_grad(loss_of, &model);
    assert!(last < 0.1 * first, "loss {first} -> {last}");
    assert_eq!(fluxion::nn::loss::accuracy(&model.forward(&x), &labels), 1.0);
}

#[test]
fn initialisers_draw_from_their_distributions() {
    use fluxion::nn::init::Init;
    let std_dev = |w: &[f64]| (w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64).sqrt();
    let kaiming: Linear<f64, 256, 128> = Linear::init(Init::KaimingNormal, 3);
    assert!((std_dev(kaiming.weight.as_slice()) / (2.0 / 256.0f64).sqrt() - 1.0).abs() < 0.02);
    assert!(kaiming.bias.iter().all(|&b| b == 0.0));
    let xavier: Linear<f64, 256, 128> = Linear::init(Init::XavierUniform, 3);
    let bound = (6.0 / 384.0f64).sqrt();
    let largest = xavier.weight.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    assert!(largest <= bound && largest > 0.99 * bound);
    // U(−a, a) has standard deviation a/√3.
    assert!((std_dev(xavier.weight.as_slice()) / (bound / 3f64.sqrt()) - 1.0).abs() < 0.02);
    let normal: Linear<f64, 256, 128> = Linear::init(Init::XavierNormal, 3);
    assert!((std_dev(normal.weight.as_slice()) / (2.0 / 384.0f64).sqrt() - 1.0).abs() < 0.02);
    let uniform: Linear<f64, 256, 128> = Linear::init(Init::KaimingUniform, 3);
    assert!(uniform.weight.iter().all(|w| w.abs() <= (6.0 / 256.0f64).sqrt()));
    assert_eq!(Linear::<f64, 256, 128>::init(Init::KaimingNormal, 3), kaiming, "seeded");
    assert_ne!(Linear::<f64, 256, 128>::init(Init::KaimingNormal, 4), kaiming);
}

#[test]
fn convolutions_and_embeddings_take_the_initialisers_with_their_fans() {
    use fluxion::nn::init::Init;
    use fluxion::nn::layer::{Conv2d, Embedding};
    let std_dev = |w: &[f64]| (w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64).sqrt();
    // Fan-in C·KH·KW = 8·3·3 = 72, fan-out O·KH·KW = 16·3·3 = 144.
    let conv: Conv2d<f64, 8, 16, 3, 3, 6, 6> = Conv2d::init(Init::KaimingNormal, 5);
    assert!((std_dev(conv.weight.as_slice()) / (2.0 / 72.0f64).sqrt() - 1.0).abs() < 0.05);
    assert!(conv.bias.iter().all(|&b| b == 0.0));
    let xavier: Conv2d<f64, 8, 16, 3, 3, 6, 6> = Conv2d::init(Init::XavierUniform, 5);
    let bound = (6.0 / 216.0f64).sqrt();
    let largest = xavier.weight.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    assert!(largest <= bound && largest > 0.99 * bound);
    // Fan-in D = 64, fan-out V = 200.
    let table: Embedding<f64, 200, 64> = Embedding::init(Init::XavierNormal, 6);
    assert!((std_dev(table.weight.as_slice()) / (2.0 / 264.0f64).sqrt() - 1.0).abs() < 0.03);
    assert_eq!(Embedding::<f64, 200, 64>::init(Init::XavierNormal, 6).weight, table.weight, "seeded");
}

#[test]
fn row_operations_have_gradients_that_match_finite_differences() {
    let x = batch::<4>(3, 21);
    let row: Vector<f64, 4, Heap> = Tensor::random_normal(0.0, 1.0, 22);
    let weights = batch::<4>(3, 23);
    ok(
        "add_rows and mul_rows",
        check_grad(
            |(x, g): (Var<Batch<4>>, Var<Vector<f64, 4, Heap>>)| {
                x.mul_rows(&g).add_rows(&g).hadamard(&weights).sum()
            },
            &(x.clone(), row.clone()),
            CheckOptions::f64(),
        ),
    );
    ok(
        "normalize_rows",
        check_grad(
            |x: Var<Batch<4>>| x.normalize_rows(1e-5).hadamard(&weights).sum(),
            &x,
            CheckOptions::f64(),
        ),
    );
    let table: Matrix<f64, 5, 4, Heap> = Tensor::random_normal(0.0, 1.0, 24);
    let picked = [4, 0, 4, 2];
    ok(
        "gather_rows",
        check_grad(
            |t: Var<Matrix<f64, 5, 4, Heap>>| t.gather_rows(&picked).tanh().sum(),
            &table,
            CheckOptions::f64(),
        ),
    );
}

#[test]
fn layer_norm_embedding_and_dropout_follow_their_definitions() {
    use fluxion::nn::layer::{Dropout, Embedding, LayerNorm, Sequential};
    let x = batch::<4>(3, 31);
    let norm: LayerNorm<f64, 4> = LayerNorm {
        weight: Tensor::random_normal(1.0, 0.1, 32),
        bias: Tensor::random_normal(0.0, 0.1, 33),
        ..LayerNorm::default()
    };
    let y = norm.forward(&x);
    for r in 0..3 {
        let mean = (0..4).map(|c| x[[r, c]]).sum::<f64>() / 4.0;
        let variance = (0..4).map(|c| (x[[r, c]] - mean).powi(2)).sum::<f64>() / 4.0;
        for c in 0..4 {
            let expected = norm.weight[[c]] * (x[[r, c]] - mean) / (variance + 1e-5).sqrt() + norm.bias[[c]];
            assert_close(y[[r, c]], expected, 1e-14);
        }
    }
    ok(
        "layer norm",
        check_grad(
            |n: <LayerNorm<f64, 4> as Trace>::Traced| n.forward(&Var::constant(x.clone())).tanh().sum(),
            &norm,
            CheckOptions::f64(),
        ),
    );

    let embedding: Embedding<f64, 6, 3> = Embedding::new(34);
    let rows = embedding.forward(&[5, 1, 5][..]);
    assert_eq!(rows.shape(), (Dyn(3), Const::<3>));
    (0..3).for_each(|c| assert_eq!(rows[[0, c]], embedding.weight[[5, c]]));
    let gradient =
        grad(|e: <Embedding<f64, 6, 3> as Trace>::Traced| e.forward(&[5, 1, 5][..]).sum(), &embedding);
    // Row 5 was read twice, row 1 once, the others never.
    assert_eq!((gradient.weight[[5, 0]], gradient.weight[[1, 2]], gradient.weight[[0, 0]]), (2.0, 1.0, 0.0));
    // An embedding opens a sequence: its input, a slice of indices, is unsized.
    type Tagger = Sequential<(Embedding<f64, 6, 3>, Linear<f64, 3, 2>)>;
    let tagger: Tagger = Sequential((embedding.clone(), Linear::new(36)));
    let logits = tagger.forward(&[5, 1, 5][..]);
    assert_eq!(logits, tagger.0.1.forward(&embedding.forward(&[5, 1, 5][..])));
    let gradient = grad(|m: <Tagger as Trace>::Traced| m.forward(&[5, 1, 5][..]).sum(), &tagger);
    assert_eq!(gradient.0.weight[[0, 0]], 0.0, "row 0 is never read");

    let dropout = Dropout::new(0.25, 35);
    let ones: Batch<4> = Tensor::full_shaped((Dyn(2000), Const), 1.0);
    let (first, second) = (dropout.forward(&ones), dropout.forward(&ones));
    assert_ne!(first, second, "a fresh mask per call");
    let kept = first.iter().filter(|&&v| v != 0.0).count() as f64 / 8000.0;
    assert!((kept - 0.75).abs() < 0.02, "kept {kept}");
    assert!(first.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-12));
    let (_, traced_gradient) =
        value_and_grad(|x: Var<Batch<4>>| Dropout::new(0.25, 35).forward(&x).sum(), &ones);
    assert_eq!(traced_gradient, first, "the gradient is the mask");
    assert_eq!(dropout.clone().eval().forward(&ones), ones);
    // p = 1 drops everything (PyTorch's convention): zeros and a zero gradient.
    let (dropped, dropped_gradient) =
        value_and_grad(|x: Var<Batch<4>>| Dropout::new(1.0, 3).forward(&x).sum(), &ones);
    assert_eq!((dropped, dropped_gradient), (0.0, ones.map(|_| 0.0)));
    assert!(std::panic::catch_unwind(|| Dropout::new(1.5, 3)).is_err());
    // A whole model in evaluation for one call, traced or not, nested or not; the
    // layer's own setting is untouched and comes back after the call.
    use fluxion::nn::layer::evaluation;
    assert_eq!(evaluation(|| dropout.forward(&ones)), ones);
    let (inner, after_inner) = evaluation(|| (evaluation(|| dropout.forward(&ones)), dropout.forward(&ones)));
    assert!(inner == ones && after_inner == ones, "a nested call keeps the outer evaluation");
    let (_, evaluated_gradient) =
        evaluation(|| value_and_grad(|x: Var<Batch<4>>| dropout.forward(&x).sum(), &ones));
    assert_eq!(evaluated_gradient, ones);
    assert!(dropout.is_training());
    assert_ne!(dropout.forward(&ones), ones, "masks again after the call");
    // The public mask is the stream's next one: the mask a fresh layer of the same
    // seed multiplies by (for static mode, which takes it as a constant).
    let mask: Batch<4> = Dropout::new(0.25, 35).mask(ones.shape());
    assert_eq!(mask, first);
    assert_eq!(evaluation(|| dropout.mask::<f64, _, Heap>(ones.shape())), ones, "ones in evaluation");
    let panicked = std::panic::catch_unwind(|| evaluation(|| panic!("inside")));
    assert!(panicked.is_err());
    assert_ne!(dropout.forward(&ones), ones, "masks again after a panic inside");
}

#[test]
fn a_linear_layer_without_bias_is_w_x() {
    use fluxion::nn::layer::NoBias;
    use fluxion::nn::params::Parameters;
    let layer: Linear<f64, 3, 2, Heap, NoBias> = Linear::new(7);
    let with_bias: Linear<f64, 3, 2> = Linear::new(7);
    assert_eq!(layer.weight, with_bias.weight);
    let x = batch::<3>(4, 1);
    assert_eq!(layer.forward(&x), x.matmul(&layer.weight.transpose()));
    ok(
        "no bias",
        check_grad(
            |l: <Linear<f64, 3, 2, Heap, NoBias> as Trace>::Traced| {
                l.forward(&Var::constant(x.clone())).tanh().sum()
            },
            &layer,
            CheckOptions::f64(),
        ),
    );
    let mut names = Vec::new();
    layer.visit_parameters(&mut String::new(), &mut |name, _| names.push(name.to_owned()));
    assert_eq!(names, ["weight"]);
}

/// A loss through the layer's static-mode forward pass (`Linear::apply`).
#[fluxion::autodiff::differentiable(wrt(layer))]
fn static_loss(layer: &Linear<f64, 3, 2, Inline>, x: &Vector<f64, 3>) -> f64 {
    layer.apply(x).tanh().sum()
}

#[test]
fn static_mode_differentiates_through_a_layer_as_the_tape_does() {
    let layer: Linear<f64, 3, 2, Inline> = Linear::new(3);
    let x: Vector<f64, 3> = Vector::from_array([0.5, -1.0, 2.0]);
    let (value, gradient) = static_loss::value_and_grad(&layer, &x);
    let row: Matrix<f64, 1, 3> = Matrix::from_array([[0.5, -1.0, 2.0]]);
    let (tape_value, tape_gradient) = value_and_grad(
        |l: <Linear<f64, 3, 2, Inline> as Trace>::Traced| l.forward(&Var::constant(row)).tanh().sum(),
        &layer,
    );
    assert_close(value, tape_value, 1e-15);
    gradient.weight.iter().zip(tape_gradient.weight.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-15));
    gradient.bias.iter().zip(tape_gradient.bias.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-15));
}

/// The same loss on heap storage.
#[fluxion::autodiff::differentiable(wrt(layer))]
fn static_heap_loss(layer: &Linear<f64, 3, 2>, x: &Tensor<f64, (Const<3>,), Heap>) -> f64 {
    layer.apply(x).tanh().sum()
}

#[test]
fn static_mode_takes_a_heap_layer_too() {
    let inline: Linear<f64, 3, 2, Inline> = Linear::new(3);
    let heap: Linear<f64, 3, 2> = Linear::new(3);
    let x: Vector<f64, 3> = Vector::from_array([0.5, -1.0, 2.0]);
    let x_heap: Tensor<f64, (Const<3>,), Heap> = Tensor::from_array([0.5, -1.0, 2.0]);
    let (value, gradient) = static_loss::value_and_grad(&inline, &x);
    let (heap_value, heap_gradient) = static_heap_loss::value_and_grad(&heap, &x_heap);
    assert_close(value, heap_value, 1e-15);
    assert_eq!(gradient.weight.as_slice(), heap_gradient.weight.as_slice());
}

/// A batch through a layer in static mode, with a where clause on the generic batch.
#[fluxion::autodiff::differentiable(wrt(layer))]
fn static_batch_loss(layer: &Linear<f64, 3, 2>, x: &Batch<3>, target: &Batch<2>) -> f64 {
    fluxion::nn::per_example::squared_error(&layer.apply_batch(x).tanh(), target)
}

#[test]
fn static_mode_runs_a_batch_through_a_layer_as_the_tape_does() {
    let layer: Linear<f64, 3, 2> = Linear::new(5);
    let (x, target) = (batch::<3>(4, 6), batch::<2>(4, 7));
    let (value, gradient) = static_batch_loss::value_and_grad(&layer, &x, &target);
    let (tape_value, tape_gradient) = value_and_grad(
        |l: <Linear<f64, 3, 2> as Trace>::Traced| {
            let residual = &l.forward(&Var::constant(x.clone())).tanh() - &target;
            residual.dot(&residual) * 0.5
        },
        &layer,
    );
    assert_close(value, tape_value, 1e-14);
    gradient.weight.iter().zip(tape_gradient.weight.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
    gradient.bias.iter().zip(tape_gradient.bias.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
}

/// A layer without a bias and GELU (a library's `ScalarFunction`) in static mode.
#[fluxion::autodiff::differentiable(wrt(first, second))]
fn static_gelu_loss(
    first: &Linear<f64, 3, 4, Heap, fluxion::nn::layer::NoBias>,
    second: &Linear<f64, 4, 2>,
    x: &Batch<3>,
) -> f64 {
    second.apply_batch(&first.apply_batch(x).map_function(GeluTanhFunction)).sum()
}

#[test]
fn static_mode_runs_gelu_and_an_unbiased_layer_as_the_tape_does() {
    use fluxion::nn::layer::NoBias;
    let (first, second): (Linear<f64, 3, 4, Heap, NoBias>, Linear<f64, 4, 2>) =
        (Linear::new(8), Linear::new(9));
    let x = batch::<3>(5, 10);
    let (value, (first_bar, second_bar)) = static_gelu_loss::value_and_grad(&first, &second, &x);
    let (tape_value, (tape_first, tape_second)) = value_and_grad(
        |(f, s): <(Linear<f64, 3, 4, Heap, NoBias>, Linear<f64, 4, 2>) as Trace>::Traced| {
            s.forward(&GeluTanh.forward(&f.forward(&Var::constant(x.clone())))).sum()
        },
        &(first.clone(), second.clone()),
    );
    assert_close(value, tape_value, 1e-14);
    let pairs = [
        (first_bar.weight.as_slice(), tape_first.weight.as_slice()),
        (second_bar.weight.as_slice(), tape_second.weight.as_slice()),
        (second_bar.bias.as_slice(), tape_second.bias.as_slice()),
    ];
    for (ours, tape) in pairs {
        ours.iter().zip(tape).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
    }
}

#[test]
#[should_panic(expected = "Linear::new: a layer needs at least one input")]
fn a_linear_layer_without_inputs_is_refused() {
    let _: Linear<f64, 0, 2> = Linear::new(1);
}

#[test]
fn forward_mode_runs_through_layers() {
    use fluxion::autodiff::{Dual, Lift, jvp};
    use fluxion::nn::layer::{Conv2d, Flatten, LayerNorm, MaxPool2d, NoBias, Sequential};
    // The directional derivative from forward mode is ⟨∇f, v⟩ with the gradient from
    // reverse mode.
    type Net = Sequential<(Linear<f64, 3, 4>, Tanh, Linear<f64, 4, 2, Heap, NoBias>, Relu)>;
    let model: Net = Sequential((Linear::new(1), Tanh, Linear::new(2), Relu));
    let x = batch::<3>(5, 3);
    let x_dual = x.map(Dual::constant);
    let direction = some_direction(model.zero_tangent());
    let (value, derivative) = jvp(|m: <Net as Lift>::Lifted| m.forward(&x_dual).sum(), &model, &direction);
    let (tape_value, gradient) =
        value_and_grad(|m: <Net as Trace>::Traced| m.forward(&Var::constant(x.clone())).sum(), &model);
    assert_close(value, tape_value, 1e-14);
    assert_close(derivative, inner(&gradient, &direction), 1e-13);

    type Images = Tensor<f64, (Dyn, Const<1>, Const<6>, Const<6>), Heap>;
    type Cnn = Sequential<(
        Conv2d<f64, 1, 2, 3, 3, 4, 4>,
        Tanh,
        MaxPool2d<2, 2, 2>,
        Flatten<8>,
        LayerNorm<f64, 8>,
        Linear<f64, 8, 3>,
    )>;
    let cnn: Cnn =
        Sequential((Conv2d::new(3), Tanh, MaxPool2d, Flatten, LayerNorm::default(), Linear::new(4)));
    let images: Images = Tensor::random_normal_shaped((Dyn(2), Const, Const, Const), 0.0, 1.0, 5);
    let images_dual = images.map(Dual::constant);
    let direction = some_direction(cnn.zero_tangent());
    let (value, derivative) =
        jvp(|m: <Cnn as Lift>::Lifted| m.forward(&images_dual).tanh().sum(), &cnn, &direction);
    let (tape_value, gradient) = value_and_grad(
        |m: <Cnn as Trace>::Traced| m.forward(&Var::constant(images.clone())).tanh().sum(),
        &cnn,
    );
    assert_close(value, tape_value, 1e-14);
    assert_close(derivative, inner(&gradient, &direction), 1e-12);
}

/// Layer normalisation of a batch in static mode.
#[fluxion::autodiff::differentiable(wrt(norm))]
fn static_norm_loss(norm: &fluxion::nn::layer::LayerNorm<f64, 4>, x: &Batch<4>) -> f64 {
    norm.apply_batch(x).tanh().sum()
}

#[test]
fn static_mode_runs_layer_norm_as_the_tape_does() {
    use fluxion::nn::layer::LayerNorm;
    let norm: LayerNorm<f64, 4> = LayerNorm {
        weight: Tensor::random_normal(1.0, 0.1, 41),
        bias: Tensor::random_normal(0.0, 0.1, 42),
        ..LayerNorm::default()
    };
    let x = batch::<4>(3, 43);
    let (value, gradient) = static_norm_loss::value_and_grad(&norm, &x);
    let (tape_value, tape_gradient) = value_and_grad(
        |n: <LayerNorm<f64, 4> as Trace>::Traced| n.forward(&Var::constant(x.clone())).tanh().sum(),
        &norm,
    );
    assert_close(value, tape_value, 1e-14);
    assert_close(
        inner(&gradient, &some_direction(gradient.zero_like())),
        inner(&tape_gradient, &some_direction(gradient.zero_like())),
        1e-13,
    );
    gradient.weight.iter().zip(tape_gradient.weight.iter()).for_each(|(a, b)| assert_close(*a, *b, 1e-13));
}

/// A network with a layer without parameters (an empty tangent field) and a layer
/// with a constant field (LayerNorm's ε).
type Mixed = (Linear<f64, 3, 4>, Relu, fluxion::nn::layer::LayerNorm<f64, 4>, Linear<f64, 4, 2>);

#[fluxion::autodiff::differentiable(wrt(model))]
fn static_mixed_loss(model: &Mixed, x: &Batch<3>) -> f64 {
    let hidden = model.2.apply_batch(&model.0.apply_batch(x).relu());
    model.3.apply_batch(&hidden).tanh().sum()
}

/// A loss that never reads the last layer.
#[fluxion::autodiff::differentiable(wrt(model))]
fn static_partial_loss(model: &Mixed, x: &Batch<3>) -> f64 {
    model.2.apply_batch(&model.0.apply_batch(x).relu()).tanh().sum()
}

/// A field the sweep never writes comes back zero from a kept gradient full of
/// garbage (the check that skips zeroing sees that the writes do not cover it).
#[test]
fn static_value_and_grad_into_zeroes_a_field_the_sweep_never_writes() {
    let model: Mixed = (Linear::new(54), Relu, fluxion::nn::layer::LayerNorm::default(), Linear::new(55));
    let x = batch::<3>(5, 56);
    let (_, gradient) = static_partial_loss::value_and_grad(&model, &x);
    let mut kept = garbage_like(&gradient);
    static_partial_loss::value_and_grad_into(&model, &x, &mut kept);
    assert!(
        kept.3.weight.iter().chain(kept.3.bias.iter()).all(|&c| c == 0.0),
        "the unread layer's gradient is zero"
    );
    assert_eq!(reals(&kept), reals(&gradient));
}

/// A tangent of `like`'s shape with every coordinate 7.
fn garbage_like<V: VectorSpace>(like: &V) -> V {
    let mut garbage = like.zero_like();
    garbage.map_reals(&mut |_| 7.0);
    garbage
}

/// The real coordinates of `value`, in order.
fn reals(value: &impl RealLeaves) -> Vec<f64> {
    let mut reals = Vec::new();
    value.for_each_real(&mut |c| reals.push(c));
    reals
}

/// `value_and_grad_into` writes every coordinate of a kept gradient, whatever it held,
/// also when the model has empty fields (written by nobody, zeroed by nobody: the
/// generated code checks at compile time that its writes cover the rest).
#[test]
fn static_value_and_grad_into_overwrites_a_gradient_with_empty_and_constant_fields() {
    let model: Mixed = (Linear::new(51), Relu, fluxion::nn::layer::LayerNorm::default(), Linear::new(52));
    let x = batch::<3>(5, 53);
    let (value, gradient) = static_mixed_loss::value_and_grad(&model, &x);
    let mut kept = garbage_like(&gradient);
    let kept_value = static_mixed_loss::value_and_grad_into(&model, &x, &mut kept);
    assert_eq!(kept_value, value);
    assert_eq!(reals(&kept), reals(&gradient));
}

/// A traced model takes a plain batch as a constant of the tape: the same value and
/// gradient as with the batch wrapped in `Var::constant` by hand, through a dense
/// stack and through a convolutional one.
#[test]
fn traced_models_take_plain_batches() {
    use fluxion::nn::layer::{Conv2d, Flatten, LayerNorm, MaxPool2d, Sequential};
    type Mlp = Sequential<(Linear<f64, 3, 4>, LayerNorm<f64, 4>, Tanh, Linear<f64, 4, 2>)>;
    let model: Mlp = Sequential((Linear::new(1), LayerNorm::default(), Tanh, Linear::new(2)));
    let x = batch::<3>(5, 3);
    let plain = value_and_grad(|m: <Mlp as Trace>::Traced| m.forward(&x).sum(), &model);
    let wrapped =
        value_and_grad(|m: <Mlp as Trace>::Traced| m.forward(&Var::constant(x.clone())).sum(), &model);
    assert_eq!(plain.0, wrapped.0);
    assert_eq!(plain.1.0.weight, wrapped.1.0.weight);
    assert_eq!(plain.1.3.bias, wrapped.1.3.bias);

    type Cnn = Sequential<(Conv2d<f64, 1, 2, 3, 3, 4, 4>, MaxPool2d<2, 2, 2>, Flatten<8>, Linear<f64, 8, 1>)>;
    let cnn: Cnn = Sequential((Conv2d::new(4), MaxPool2d, Flatten, Linear::new(5)));
    let images: Tensor<f64, (Dyn, Const<1>, Const<6>, Const<6>), Heap> =
        Tensor::from_shape_fn((Dyn(2), Const, Const, Const), |[b, _, i, j]| {
            ((b * 36 + i * 6 + j) as f64 * 0.37).sin()
        });
    let plain = value_and_grad(|m: <Cnn as Trace>::Traced| m.forward(&images).sum(), &cnn);
    let wrapped =
        value_and_grad(|m: <Cnn as Trace>::Traced| m.forward(&Var::constant(images.clone())).sum(), &cnn);
    assert_eq!(plain.0, wrapped.0);
    assert_eq!(plain.1.0.weight, wrapped.1.0.weight);
}

/// GELU with erf on the tape (pullback against finite differences and the adjoint
/// identity) and on duals (erf's own tangent rule, second derivatives included).
#[test]
fn gelu_with_erf_differentiates_in_every_mode() {
    use fluxion::autodiff::Dual;
    use fluxion::autodiff::check::{CheckOptions, check_vjp};
    let x = batch::<5>(3, 2);
    ok("gelu", check_vjp(|x: Var<Batch<5>>| x.map_function(GeluFunction), &x, CheckOptions::f64()));
    ok("Gelu layer", check_vjp(|x: Var<Batch<5>>| Gelu.forward(&x), &x, CheckOptions::f64()));
    for v in [-2.0, -0.3, 0.0, 1.1] {
        let dual = GeluFunction.value(Dual::<f64, 1>::variable(v));
        assert_close(dual.tangent()[0], GeluFunction.derivative(v, GeluFunction.value(v)), 1e-15);
        // erf′(x) = (2/√π)e^(−x²), against a central difference of erf.
        let h = 1e-6;
        let slope = Dual::<f64, 1>::variable(v).erf().tangent()[0];
        assert_close(slope, (RealScalar::erf(v + h) - RealScalar::erf(v - h)) / (2.0 * h), 1e-9);
        // The second derivative, from duals of duals: φ(x)(2 − x²).
        let nested =
            GeluFunction.value(Dual::<Dual<f64, 1>, 1>::new(Dual::variable(v), [Dual::constant(1.0)]));
        let density = (-v * v / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        assert_close(nested.tangent()[0].tangent()[0], density * (2.0 - v * v), 1e-14);
    }
}

/// A fork of a dropout layer has a stream of its own at the same point: it draws
/// what the original would draw next, whatever the original draws meanwhile; a clone
/// (what a gradient traces) shares the stream, so each step draws anew.
#[test]
fn a_forked_dropout_draws_what_the_original_would() {
    use fluxion::nn::layer::Dropout;
    let ones: Tensor<f64, (Const<2>, Const<64>), Heap> = Tensor::full(1.0);
    let original = Dropout::new(0.5, 7);
    let _ = original.forward(&ones);
    let fork = original.fork();
    let (from_original, from_fork) = (original.forward(&ones), fork.forward(&ones));
    assert_eq!(from_original, from_fork);
    assert_ne!(original.forward(&ones), from_original, "a fresh mask per call");
    // A clone shares the stream: it draws the original's next mask.
    let (clone, ahead) = (original.clone(), original.fork());
    assert_eq!(clone.forward(&ones), ahead.forward(&ones));
    // Two gradients in a row: two different masks, and the layer's stream moves on.
    let gradient =
        || grad(|x: Var<Tensor<f64, (Const<2>, Const<64>), Heap>>| original.forward(&x).sum(), &ones);
    let (first, second) = (gradient(), gradient());
    assert_ne!(first, second);
    // The original has drawn six masks, the fork two: four more and they meet.
    let behind = fork.fork();
    for _ in 0..4 {
        let _ = behind.forward(&ones);
    }
    assert_eq!(behind.forward(&ones), original.forward(&ones), "both at their seventh mask");
}

/// Two residual blocks, one inside the other, around a chain, then a head.
type ResidualNet = fluxion::nn::layer::Sequential<(
    Linear<f64, 3, 4>,
    fluxion::nn::layer::Residual<(Tanh, Linear<f64, 4, 4>)>,
    fluxion::nn::layer::Residual<(
        Linear<f64, 4, 4>,
        fluxion::nn::layer::Residual<(Gelu, Linear<f64, 4, 4>)>,
    )>,
    Linear<f64, 4, 2>,
)>;

fn residual_net() -> ResidualNet {
    use fluxion::nn::layer::{Residual, Sequential};
    let inner = Residual((Gelu, Linear::new(4)));
    Sequential((
        Linear::new(1),
        Residual((Tanh, Linear::new(2))),
        Residual((Linear::new(3), inner)),
        Linear::new(5),
    ))
}

#[test]
fn a_residual_block_adds_its_input_to_its_layers_output() {
    use fluxion::nn::layer::Residual;
    let net = residual_net();
    let x = batch::<3>(5, 6);
    let h = net.0.0.forward(&x);
    let (skip, block) = (&net.0.1, &net.0.1.0);
    assert_eq!(skip.forward(&h), &h + &block.1.forward(&block.0.forward(&h)));
    // The parameters are the inner layers', named as if the wrappers were not there.
    let mut names = Vec::new();
    fluxion::nn::params::Parameters::visit_parameters(&net, &mut String::new(), &mut |name, _| {
        names.push(name.to_string());
    });
    let expected = ["0.weight", "0.bias", "1.1.weight", "1.1.bias", "2.0.weight", "2.0.bias"];
    assert_eq!(names[..6], expected);
    assert_eq!(names[6..], ["2.1.1.weight", "2.1.1.bias", "3.weight", "3.bias"]);
    // A block of one layer: the sum is the layer's output plus its input.
    let relu_skip = Residual(Relu);
    assert_eq!(relu_skip.forward(&x), &x + &x.relu());
}

#[test]
fn gradients_through_residual_blocks_pass_the_checkers_and_agree_with_forward_mode() {
    use fluxion::autodiff::check::check_vjp;
    use fluxion::autodiff::{Dual, Lift, jvp};
    type Traced = (<ResidualNet as Trace>::Traced, Var<Batch<3>>);
    let (net, x) = (residual_net(), batch::<3>(4, 7));
    // The model and its input: the input's cotangent has the skips' identities in it.
    let both = (net.clone(), x.clone());
    ok("residual net", check_grad(|(m, x): Traced| m.forward(&x).tanh().sum(), &both, CheckOptions::f64()));
    ok("residual net", check_vjp(|(m, x): Traced| m.forward(&x), &both, CheckOptions::f64()));
    let (_, gradient) = value_and_grad(
        |m: <ResidualNet as Trace>::Traced| m.forward(&Var::constant(x.clone())).tanh().sum(),
        &net,
    );
    // A gradient compares with another (the tangents of layers and tuples are
    // `PartialEq`): the pass is deterministic.
    let again =
        grad(|m: <ResidualNet as Trace>::Traced| m.forward(&Var::constant(x.clone())).tanh().sum(), &net);
    assert_eq!(gradient, again);
    let x_dual = x.map(Dual::constant);
    let direction = some_direction(net.zero_tangent());
    let (_, derivative) =
        jvp(|m: <ResidualNet as Lift>::Lifted| m.forward(&x_dual).tanh().sum(), &net, &direction);
    assert_close(derivative, inner(&gradient, &direction), 1e-13);
}

/// A residual block first in a model, so a plain batch meets the traced (and the
/// lifted traced) block itself.
type ResidualFirst = fluxion::nn::layer::Sequential<(
    fluxion::nn::layer::Residual<(Linear<f64, 3, 3>, Tanh)>,
    Linear<f64, 3, 2>,
)>;

#[test]
fn a_residual_block_takes_a_plain_batch_on_the_tape_and_in_forward_over_reverse() {
    use fluxion::autodiff::{Lift, hvp};
    use fluxion::nn::layer::{Residual, Sequential};
    let net: ResidualFirst = Sequential((Residual((Linear::new(1), Tanh)), Linear::new(2)));
    let x = batch::<3>(3, 9);
    let loss = |m: <ResidualFirst as Trace>::Traced| m.forward(&x).tanh().sum();
    let (value, gradient) = value_and_grad(loss, &net);
    assert_eq!(value, net.forward(&x).tanh().sum());
    ok("residual first", check_grad(loss, &net, CheckOptions::f64()));
    // H·v against central differences of the gradient.
    let v = some_direction(net.zero_tangent());
    let product =
        hvp(|m: <<ResidualFirst as Lift>::Lifted as Trace>::Traced| m.forward(&x).tanh().sum(), &net, &v);
    let w = some_direction(gradient.clone());
    assert_hvp_matches_differences(&net, &v, &w, &product, |moved| grad(loss, moved));
}

#[test]
fn global_average_pooling_is_each_channels_mean_and_passes_the_checkers() {
    use fluxion::autodiff::check::check_vjp;
    use fluxion::autodiff::{Dual, Lift, jvp};
    use fluxion::nn::layer::{Conv2d, GlobalAvgPool2d, Sequential};
    type Images = Tensor<f64, (Dyn, Const<2>, Const<3>, Const<4>), Heap>;
    let x: Images = Tensor::random_normal_shaped((Dyn(2), Const, Const, Const), 0.0, 1.0, 3);
    let y = GlobalAvgPool2d.forward(&x);
    assert_eq!(y.shape(), (Dyn(2), Const::<2>));
    for (b, c) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let mean = (0..12).map(|i| x[[b, c, i / 4, i % 4]]).sum::<f64>() / 12.0;
        assert_close(y[[b, c]], mean, 1e-15);
    }
    type Net = fluxion::nn::layer::Sequential<(
        Conv2d<f64, 2, 3, 2, 2, 2, 3>,
        Tanh,
        GlobalAvgPool2d,
        Linear<f64, 3, 2>,
    )>;
    type Traced = (<Net as Trace>::Traced, Var<Images>);
    let net: Net = Sequential((Conv2d::new(1), Tanh, GlobalAvgPool2d, Linear::new(2)));
    let both = (net.clone(), x.clone());
    ok("global pool", check_grad(|(m, x): Traced| m.forward(&x).tanh().sum(), &both, CheckOptions::f64()));
    ok("global pool", check_vjp(|(m, x): Traced| m.forward(&x), &both, CheckOptions::f64()));
    let gradient = grad(|m: <Net as Trace>::Traced| m.forward(&x).tanh().sum(), &net);
    let direction = some_direction(net.zero_tangent());
    let x_dual = x.map(Dual::constant);
    let (_, derivative) = jvp(|m: <Net as Lift>::Lifted| m.forward(&x_dual).tanh().sum(), &net, &direction);
    assert_close(derivative, inner(&gradient, &direction), 1e-13);
}
