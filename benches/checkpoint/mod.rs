//! Gradient checkpointing's cost in time: the gradient of a residual tower (8 blocks
//! h + tanh(Linear(h)), width 128, a batch of 64, f64) with each block a
//! `checkpoint` (`checkpointed`), beside the plain tape (`tape`) and the forward pass
//! alone on plain tensors (`primal`): the checkpointed gradient should cost about
//! the tape's plus one forward pass. (Its memory is what `examples/checkpointing.rs`
//! measures.)

use criterion::{Criterion, black_box, criterion_group};
use fluxion::autodiff::{Var, checkpoint, value_and_grad};
use fluxion::nn::layer::{Linear, LinearTraced, Module};
use fluxion::prelude::*;

use crate::common::config;

criterion_group! {
    name = benches;
    config = config();
    targets = residual_tower
}

const WIDTH: usize = 128;
type Batch = Tensor<f64, (Dyn, Const<WIDTH>), Heap>;
type Layer = Linear<f64, WIDTH, WIDTH>;

fn block((layer, h): (LinearTraced<f64, WIDTH, WIDTH>, Var<Batch>)) -> Var<Batch> {
    &h + &layer.forward(&h).tanh()
}

/// Σ of the tower's output, each block checkpointed or not.
fn tower_sum(layers: &[LinearTraced<f64, WIDTH, WIDTH>], x: &Batch, checkpointed: bool) -> Var<f64> {
    let mut h = Var::constant(x.clone());
    for layer in layers {
        h = match checkpointed {
            true => checkpoint(block, &(layer.clone(), h)),
            false => block((layer.clone(), h)),
        };
    }
    h.sum()
}

fn residual_tower(c: &mut Criterion) {
    let layers: Vec<Layer> = (0..8).map(Linear::new).collect();
    let x: Batch = Tensor::random_uniform_shaped((Dyn(64), Const), -1.0, 1.0, 1);
    let mut group = c.benchmark_group("checkpoint/residual_tower");
    for (name, checkpointed) in [("tape", false), ("checkpointed", true)] {
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                value_and_grad(|layers: Vec<_>| tower_sum(&layers, black_box(&x), checkpointed), &layers)
            })
        });
    }
    group.bench_function("primal", |bencher| {
        bencher.iter(|| {
            let mut h = black_box(&x).clone();
            for layer in &layers {
                h = &h + &layer.forward(&h).tanh();
            }
            h.sum()
        })
    });
    group.finish();
}
