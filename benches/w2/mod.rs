//! Workload W2 (see `handwritten.rs`): one training step (forward, backward, SGD
//! update) of an MLP 784→256→10 with ReLU on a batch of 128, f32, mean softmax
//! cross-entropy. Group `w2/train_step`: `ours` (fluxion's layers on the tape,
//! `value_and_grad_into` and `Sgd`, see `model.rs`), `static` (the same loss as an
//! ordinary function, its gradient from `#[differentiable]`), beside `handwritten` (the `gemm`
//! crate with strided transposes, fused bias, ReLU and loss passes, buffers allocated
//! once), from the same parameters and data.

pub mod handwritten;
pub mod model;

use criterion::{BenchmarkId, Criterion, black_box, criterion_group};
use fluxion::backend::cpu::set_num_threads;

use self::handwritten::{W2Params, step, synthetic_batch};
use crate::common::config;

criterion_group! {
    name = benches;
    config = config();
    targets = train_step
}

fn train_step(c: &mut Criterion) {
    let mut params = W2Params::new(1);
    let (x, labels) = synthetic_batch(2);
    let mut trainer = model::Trainer::new(model::from_handwritten(&params.value));
    let (inputs, one_hot) = (model::batch(&x), model::one_hot(&labels));
    let mut group = c.benchmark_group("w2/train_step");
    for (threads, label) in [(1, "1thread"), (2, "2threads")] {
        set_num_threads(threads);
        group.bench_function(BenchmarkId::new("ours", label), |b| {
            b.iter(|| trainer.step(black_box(&inputs), &labels))
        });
        group.bench_function(BenchmarkId::new("static", label), |b| {
            b.iter(|| trainer.static_step(black_box(inputs.value()), &one_hot))
        });
        group.bench_function(BenchmarkId::new("handwritten", label), |b| {
            b.iter(|| step(&mut params, black_box(&x), &labels, 0.01))
        });
    }
    set_num_threads(0);
    group.finish();
}
