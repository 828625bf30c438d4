//! Workload W2 in fluxion (layers on the tape, SGD) takes the same training steps as
//! the hand-written baseline from the same parameters and data.

#[path = "../benches/w2/handwritten.rs"]
mod handwritten;
#[path = "../benches/w2/model.rs"]
mod model;

use handwritten::{W2Params, step, synthetic_batch};

#[test]
fn fluxion_steps_equal_the_handwritten_steps() {
    let mut params = W2Params::new(1);
    let (x, labels) = synthetic_batch(2);
    let mut trainer = model::Trainer::new(model::from_handwritten(&params.value));
    let inputs = model::batch(&x);
    for round in 0..5 {
        let expected = step(&mut params, &x, &labels, 0.01);
        let loss = trainer.step(&inputs, &labels);
        assert!((loss - expected).abs() <= 1e-5 * expected.abs(), "step {round}: {loss} against {expected}");
    }
    let ((first, _, second), value) = (&trainer.model.0, &params.value);
    let largest_difference = |ours: &[f32], theirs: &[f32]| {
        ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max)
    };
    assert!(largest_difference(first.weight.as_slice(), &value.w1) < 1e-6);
    assert!(largest_difference(first.bias.as_slice(), &value.b1) < 1e-6);
    assert!(largest_difference(second.weight.as_slice(), &value.w2) < 1e-6);
    assert!(largest_difference(second.bias.as_slice(), &value.b2) < 1e-6);
}

#[test]
fn static_mode_steps_equal_the_handwritten_steps() {
    let mut params = W2Params::new(3);
    let (x, labels) = synthetic_batch(4);
    let mut trainer = model::Trainer::new(model::from_handwritten(&params.value));
    let (inputs, one_hot) = (model::batch(&x), model::one_hot(&labels));
    for round in 0..3 {
        let expected = step(&mut params, &x, &labels, 0.01);
        let loss = trainer.static_step(inputs.value(), &one_hot);
        assert!((loss - expected).abs() <= 1e-5 * expected.abs(), "step {round}: {loss} against {expected}");
    }
    let largest_difference =
        trainer.model.0.0.weight.as_slice().iter().zip(&params.value.w1).map(|(a, b)| (a - b).abs());
    assert!(largest_difference.fold(0.0f32, f32::max) < 1e-6);
}
