//! Workload W1 (see `model.rs`): the gradient of a 6→32→32→3 MLP's loss with respect
//! to its 1379 parameters, by fluxion's reverse mode (`ours`) beside hand-written
//! backpropagation over fixed-size arrays (`handwritten`), and by static mode
//! (`static_into`: `#[differentiable]`), with the plain loss (`primal`) for the
//! gradient-to-primal ratio. Group `w1/mlp_gradient`.

pub mod model;

use criterion::{Criterion, black_box, criterion_group};

use self::model::{
    ArrayMlp, Mlp, fluxion_gradient, fluxion_gradient_into, handwritten_gradient, sample, static_loss,
};
use crate::common::config;

criterion_group! {
    name = benches;
    config = config();
    targets = mlp_gradient
}

fn mlp_gradient(c: &mut Criterion) {
    let model = Mlp::new(1);
    let (x, t) = sample();
    let arrays = ArrayMlp::from(&model);
    let (x_array, t_array) = (x.to_array(), t.to_array());
    let mut gradient = ArrayMlp::default();
    let mut group = c.benchmark_group("w1/mlp_gradient");
    group.bench_function("ours", |b| b.iter(|| fluxion_gradient(black_box(&model), &x, &t)));
    let mut tangent = fluxion_gradient(&model, &x, &t).1;
    group.bench_function("ours_into", |b| {
        b.iter(|| fluxion_gradient_into(black_box(&model), &x, &t, &mut tangent))
    });
    group.bench_function("static_into", |b| {
        b.iter(|| static_loss::value_and_grad_into(black_box(&model), &x, &t, &mut tangent))
    });
    group.bench_function("primal", |b| b.iter(|| static_loss(black_box(&model), &x, &t)));
    group.bench_function("handwritten", |b| {
        b.iter(|| handwritten_gradient(black_box(&arrays), &x_array, &t_array, &mut gradient))
    });
    group.finish();
}
