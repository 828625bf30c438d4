//! Optimisers over tangents: each update equals the scalar formula applied to every
//! real coordinate (computed independently here), the state is typed like the model,
//! and a failed update changes nothing.

use fluxion::nn::optim::{
    Adam, AdamConfig, CosineDecay, LearningRateSchedule, Optimizer, Sgd, SgdConfig, StepDecay,
    clip_grad_norm, global_norm,
};
use fluxion::prelude::*;

#[derive(Differentiable, Clone, Debug)]
struct Model {
    weight: Matrix<f64, 2, 3>,
    bias: f64,
    phase: Complex64,
    #[no_derivative]
    name: &'static str,
}

fn model() -> Model {
    Model {
        weight: Matrix::from_array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.75]]),
        bias: 0.3,
        phase: Complex64::new(0.2, -0.4),
        name: "model",
    }
}

/// A gradient that changes with the step, so momentum and moments see varied input.
fn gradient(step: usize) -> ModelTangent {
    let s = step as f64;
    ModelTangent {
        weight: Matrix::from_fn(|[i, j]| (i as f64 - j as f64 + 0.5) * (1.0 + 0.3 * s).cos()),
        bias: -0.7 + 0.1 * s,
        phase: Complex64::new(0.4 * s - 0.2, 1.5),
    }
}

fn reals<V: RealLeaves>(value: &V) -> Vec<f64> {
    let mut out = Vec::new();
    value.for_each_real(&mut |x| out.push(x));
    out
}

fn parameters(model: &Model) -> Vec<f64> {
    reals(&model.weight).into_iter().chain(reals(&model.bias)).chain(reals(&model.phase)).collect()
}

fn assert_close(actual: &[f64], expected: &[f64], tolerance: f64) {
    assert_eq!(actual.len(), expected.len());
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= tolerance * (1.0 + e.abs()), "coordinate {i}: {a} against {e}");
    }
}

/// SGD with momentum on one coordinate, as PyTorch defines it.
fn sgd_reference(config: SgdConfig, steps: usize) -> Vec<f64> {
    let mut x = parameters(&model());
    let mut velocity = vec![0.0; x.len()];
    for step in 0..steps {
        let g = reals(&gradient(step));
        for i in 0..x.len() {
            let g = g[i] + config.weight_decay * x[i];
            velocity[i] = match (config.momentum, step) {
                (0.0, _) => g,
                (_, 0) => g,
                (mu, _) => mu * velocity[i] + (1.0 - config.dampening) * g,
            };
            let direction = if config.nesterov { g + config.momentum * velocity[i] } else { velocity[i] };
            x[i] -= config.learning_rate * direction;
        }
    }
    x
}

fn adam_reference(config: AdamConfig, steps: usize) -> Vec<f64> {
    let mut x = parameters(&model());
    let (mut m, mut v) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    for step in 0..steps {
        let t = (step + 1) as i32;
        let g = reals(&gradient(step));
        for i in 0..x.len() {
            let mut g = g[i];
            if config.decoupled_weight_decay {
                x[i] *= 1.0 - config.learning_rate * config.weight_decay;
            } else {
                g += config.weight_decay * x[i];
            }
            m[i] = config.beta1 * m[i] + (1.0 - config.beta1) * g;
            v[i] = config.beta2 * v[i] + (1.0 - config.beta2) * g * g;
            let m_hat = m[i] / (1.0 - config.beta1.powi(t));
            let v_hat = v[i] / (1.0 - config.beta2.powi(t));
            x[i] -= config.learning_rate * m_hat / (v_hat.sqrt() + config.epsilon);
        }
    }
    x
}

fn run(optimizer: &mut impl Optimizer<Model>, steps: usize) -> Model {
    let mut model = model();
    for step in 0..steps {
        optimizer.step(&mut model, &gradient(step));
    }
    model
}

#[test]
fn sgd_plain_momentum_and_nesterov_follow_the_formula() {
    let plain = SgdConfig { learning_rate: 0.1, weight_decay: 0.01, ..SgdConfig::default() };
    let momentum = SgdConfig { momentum: 0.9, dampening: 0.1, ..plain };
    let nesterov = SgdConfig { momentum: 0.8, nesterov: true, ..plain };
    for config in [plain, momentum, nesterov] {
        let trained = run(&mut Sgd::new(config), 4);
        assert_close(&parameters(&trained), &sgd_reference(config, 4), 1e-14);
        assert_eq!(trained.name, "model");
    }
}

#[test]
fn adam_and_adamw_follow_the_formula() {
    let adam = AdamConfig { learning_rate: 0.05, weight_decay: 0.02, ..AdamConfig::default() };
    let adamw = AdamConfig { learning_rate: 0.05, ..AdamConfig::adamw() };
    for config in [adam, adamw] {
        let mut optimizer = Adam::new(config);
        let trained = run(&mut optimizer, 5);
        assert_close(&parameters(&trained), &adam_reference(config, 5), 1e-13);
        assert_eq!(optimizer.steps(), 5);
        let (m, _) = optimizer.moments().expect("moments after a step");
        assert_eq!(m.weight.shape(), trained.weight.shape());
    }
}

#[test]
fn an_f32_model_takes_the_same_settings() {
    let mut weights: Vector<f32, 3> = Vector::from_array([1.0, -2.0, 0.5]);
    let gradient: Vector<f32, 3> = Vector::from_array([0.5, 0.25, -1.0]);
    let mut adam = Adam::new(AdamConfig { learning_rate: 0.1, ..AdamConfig::default() });
    adam.step(&mut weights, &gradient);
    // The first Adam step moves each coordinate by about η against the gradient's sign.
    let moved: Vec<f32> = weights.as_slice().to_vec();
    assert_close(&moved.iter().map(|&x| x as f64).collect::<Vec<_>>(), &[0.9, -2.1, 0.6], 1e-6);
}

#[test]
fn a_failed_update_changes_neither_the_model_nor_the_state() {
    let layer = |n: usize, value: f64| DVector::<f64>::full_shaped((Dyn(n),), value);
    let mut model = vec![layer(3, 1.0), layer(2, -1.0)];
    let good = vec![layer(3, 0.5), layer(2, 0.5)];
    let bad = vec![layer(3, 0.5), layer(4, 0.5)];
    let short = vec![layer(3, 0.5)];

    let mut adam = Adam::new(AdamConfig::default());
    adam.step(&mut model, &good);
    let (before, moments_before) = (model.clone(), adam.moments().map(|(m, v)| (m.clone(), v.clone())));
    let error = adam.try_step(&mut model, &bad).unwrap_err();
    assert!(error.to_string().contains("[2]") && error.to_string().contains("[4]"), "{error}");
    assert!(adam.try_step(&mut model, &short).is_err());
    assert_eq!(model, before);
    assert_eq!(adam.moments().map(|(m, v)| (m.clone(), v.clone())), moments_before);
    assert_eq!(adam.steps(), 1);

    let mut fresh = Adam::new(AdamConfig::default());
    assert!(fresh.try_step(&mut model, &bad).is_err());
    assert!(fresh.moments().is_none() && fresh.steps() == 0, "no state is made by a failed first step");

    let mut sgd = Sgd::new(SgdConfig { momentum: 0.9, ..SgdConfig::default() });
    assert!(sgd.try_step(&mut model, &bad).is_err());
    assert!(sgd.velocity().is_none(), "no state is made by a failed first step");
    assert_eq!(model, before);
}

#[test]
#[should_panic(expected = "Nesterov momentum needs")]
fn nesterov_without_momentum_is_refused() {
    let _ = Sgd::<f64>::new(SgdConfig { nesterov: true, ..SgdConfig::default() });
}

#[test]
fn clipping_rescales_to_the_global_norm() {
    let mut g = gradient(2);
    let norm = global_norm(&g);
    let expected = reals(&g).iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - expected).abs() < 1e-14);
    assert_eq!(clip_grad_norm(&mut g, norm * 2.0), norm);
    assert!((global_norm(&g) - norm).abs() < 1e-14, "a gradient inside the ball is kept");
    assert_eq!(clip_grad_norm(&mut g, 1.0), norm);
    assert!((global_norm(&g) - 1.0).abs() < 1e-5);
    // A NaN coordinate makes every coordinate NaN (as PyTorch): no finite part of a
    // broken gradient is applied.
    let mut broken = gradient(2);
    broken.weight[[0, 0]] = f64::NAN;
    assert!(clip_grad_norm(&mut broken, 1.0).is_nan());
    assert!(reals(&broken).iter().all(|x| x.is_nan()));
    // The sum of squares is taken in f64: f32 coordinates near 1e20 do not overflow it.
    let huge: Vector<f32, 2> = Vector::from_array([3e19, 4e19]);
    assert!((global_norm(&huge) / 5e19 - 1.0).abs() < 1e-6);
}

#[test]
fn schedules_give_the_documented_rates() {
    let step = StepDecay { initial: 0.1, factor: 0.5, every: 10 };
    assert_eq!([step.rate(0), step.rate(9), step.rate(10), step.rate(25)], [0.1, 0.1, 0.05, 0.025]);
    let cosine = CosineDecay { initial: 1.0, minimum: 0.1, steps: 100 };
    assert_eq!(cosine.rate(0), 1.0);
    assert!((cosine.rate(50) - 0.55).abs() < 1e-12);
    assert!((cosine.rate(100) - 0.1).abs() < 1e-12);
    assert!((cosine.rate(1000) - 0.1).abs() < 1e-12);
    let instant = CosineDecay { initial: 1.0, minimum: 0.1, steps: 0 };
    assert_eq!((instant.rate(0), instant.rate(5)), (0.1, 0.1), "a decay of no steps is over");
    let mut sgd = Sgd::<f64>::new(SgdConfig::default());
    sgd.set_learning_rate(cosine.rate(50));
    assert_eq!(sgd.learning_rate(), cosine.rate(50));
}

#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Layers {
    first: DVector<f64>,
    second: DVector<f64>,
}

#[test]
fn compound_moves_and_additions_apply_to_every_leaf_or_none() {
    let vector = |n: usize| DVector::<f64>::full_shaped((Dyn(n),), 1.0);
    let mut layers = Layers { first: vector(2), second: vector(3) };
    let before = layers.clone();
    let offset = LayersTangent { first: vector(2), second: vector(4) };
    assert!(layers.try_move_by(&offset).is_err());
    assert_eq!(layers, before, "the first field was not moved");
    let mut tuple = (vector(2), vector(3));
    assert!(tuple.try_move_by(&(vector(2), vector(1))).is_err());
    assert_eq!(tuple, (vector(2), vector(3)));
    let mut tangent = LayersTangent { first: vector(2), second: vector(3) };
    assert!(tangent.try_add_assign(&offset).is_err());
    assert_eq!(tangent.first, vector(2));
    let mut list = vec![vector(1), vector(2)];
    assert!(list.try_add_assign(&vec![vector(1), vector(2), vector(3)]).is_err());
    assert!(list.try_move_by(&vec![vector(1), vector(5)]).is_err());
    assert_eq!(list, vec![vector(1), vector(2)]);
}

#[test]
fn map_leaves_with_pairs_every_real_coordinate_with_the_tangent() {
    let mut mapped = model();
    let step = gradient(1);
    mapped.map_leaves_with(&step, &mut |x, t| x - 0.1 * t);
    let mut moved = model();
    moved.move_by(&step.scaled(-0.1));
    assert_close(&parameters(&mapped), &parameters(&moved), 1e-15);
    // A mismatch is found before anything changes.
    let vector = |n: usize| DVector::<f64>::full_shaped((Dyn(n),), 1.0);
    let mut list = vec![vector(2), vector(3)];
    let bad = vec![vector(2), vector(4)];
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        list.map_leaves_with(&bad, &mut |x, t| x + t);
    }));
    assert!(outcome.is_err());
    assert_eq!(list, vec![vector(2), vector(3)]);
}

/// Tracing a heap model shares its buffers with the tape instead of copying them, and
/// the tape lets go of them when the gradient is done: the update then writes in place
/// (the buffers keep their addresses, no copy on write).
#[test]
fn a_training_step_on_a_heap_model_updates_its_buffers_in_place() {
    use fluxion::nn::layer::{Linear, Module};
    let mut layer: Linear<f64, 3, 2> = Linear::new(3);
    let x: Tensor<f64, (Dyn, Const<3>), Heap> = Tensor::full_shaped((Dyn(4), Const), 0.5);
    let addresses =
        |layer: &Linear<f64, 3, 2>| (layer.weight.as_slice().as_ptr(), layer.bias.as_slice().as_ptr());
    let mut gradient = layer.zero_tangent();
    let mut sgd = Sgd::new(SgdConfig::default());
    for _ in 0..3 {
        let weight = layer.weight.clone();
        value_and_grad_into(
            |l: <Linear<f64, 3, 2> as Trace>::Traced| l.forward(&Var::constant(x.clone())).sum(),
            &layer,
            &mut gradient,
        );
        sgd.step(&mut layer, &gradient);
        // The clone taken before the step kept the old values: copy on write.
        assert_ne!(weight, layer.weight);
        drop(weight);
    }
    let mut sgd = Sgd::new(SgdConfig::default());
    value_and_grad_into(
        |l: <Linear<f64, 3, 2> as Trace>::Traced| l.forward(&Var::constant(x.clone())).sum(),
        &layer,
        &mut gradient,
    );
    let shared_before_step = addresses(&layer);
    sgd.step(&mut layer, &gradient);
    assert_eq!(addresses(&layer), shared_before_step, "the update copied the parameters");
}

/// Settings that would turn a model NaN or move it uphill are refused: infinite
/// rates and NaN dampening at construction, a bad rate from a schedule, a negative
/// clipping bound, schedule settings below 0; a step decay far along stays finite.
#[test]
fn invalid_rates_and_bounds_are_refused_before_any_update() {
    let infinite = SgdConfig { learning_rate: f64::INFINITY, ..SgdConfig::default() };
    assert_eq!(infinite.check().unwrap_err().name, "learning_rate");
    let dampening = SgdConfig { dampening: f64::NAN, ..SgdConfig::default() };
    assert_eq!(dampening.check().unwrap_err().name, "dampening");
    assert_eq!(
        AdamConfig { epsilon: f64::INFINITY, ..AdamConfig::default() }.check().unwrap_err().name,
        "epsilon"
    );
    let mut sgd = Sgd::<f64>::new(SgdConfig::default());
    for rate in [-1.0, f64::NAN, f64::INFINITY] {
        let message = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sgd.set_learning_rate(rate)));
        assert!(message.is_err(), "rate {rate}");
    }
    assert_eq!(sgd.learning_rate(), SgdConfig::default().learning_rate);
    let mut gradient: Vector<f64, 2> = Vector::from_array([3.0, 4.0]);
    assert!(
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| clip_grad_norm(&mut gradient, -1.0)))
            .is_err()
    );
    assert_eq!(gradient.to_array(), [3.0, 4.0]);
    let decay = StepDecay { initial: 0.1, factor: 0.5, every: 1 };
    assert_eq!(decay.rate(1 << 31), 0.0);
    assert_eq!(decay.rate((1 << 32) + 1), 0.0);
    let negative = StepDecay { factor: -0.5, ..decay };
    assert!(std::panic::catch_unwind(|| negative.rate(1)).is_err());
    let below_zero = CosineDecay { initial: 0.1, minimum: -0.5, steps: 10 };
    assert!(std::panic::catch_unwind(|| below_zero.rate(3)).is_err());
}

#[test]
fn weight_decay_can_leave_vectors_and_scalars_alone() {
    // Every coordinate is updated on its own, so the expected run is the decayed
    // reference on the weight (rank 2) and the undecayed one on the bias and phase
    // (scalars).
    let expected = |decayed: Vec<f64>, plain: Vec<f64>| -> Vec<f64> {
        decayed[..6].iter().chain(&plain[6..]).copied().collect()
    };
    let sgd = SgdConfig { learning_rate: 0.1, momentum: 0.9, weight_decay: 0.3, ..SgdConfig::default() };
    let model = run(&mut Sgd::new(SgdConfig { decay_vectors: false, ..sgd }), 4);
    let reference = expected(sgd_reference(sgd, 4), sgd_reference(SgdConfig { weight_decay: 0.0, ..sgd }, 4));
    assert_close(&parameters(&model), &reference, 1e-14);
    for adam in [
        AdamConfig { learning_rate: 0.05, weight_decay: 0.2, ..AdamConfig::default() },
        AdamConfig { learning_rate: 0.05, weight_decay: 0.2, ..AdamConfig::adamw() },
    ] {
        let model = run(&mut Adam::new(AdamConfig { decay_vectors: false, ..adam }), 4);
        let reference =
            expected(adam_reference(adam, 4), adam_reference(AdamConfig { weight_decay: 0.0, ..adam }, 4));
        assert_close(&parameters(&model), &reference, 1e-13);
    }
    // Through a layer: the weight decays, the bias does not.
    use fluxion::nn::layer::Linear;
    let mut layer = Linear::<f64, 3, 2>::new(1);
    let before = layer.clone();
    let mut adamw = Adam::new(AdamConfig { learning_rate: 0.1, decay_vectors: false, ..AdamConfig::adamw() });
    adamw.step(&mut layer, &before.zero_tangent());
    assert_eq!(layer.bias, before.bias);
    assert_eq!(layer.weight, before.weight.scale(1.0 - 0.1 * 0.01));
}
