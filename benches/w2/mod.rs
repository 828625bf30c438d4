//! Workload W2 (see `handwritten.rs`): one training step (forward, backward, SGD
//! update) of an MLP 784→256→10 with ReLU on a batch of 128, f32, mean softmax
//! cross-entropy. Group `w2/train_step`: `handwritten` (the `gemm` crate with strided
//! transposes, fused bias, ReLU and loss passes, buffers allocated once).

pub mod handwritten;

use criterion::{Criterion, black_box, criterion_group};

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
    let mut group = c.benchmark_group("w2/train_step");
    group.bench_function("handwritten", |b| b.iter(|| step(&mut params, black_box(&x), &labels, 0.01)));
    group.finish();
}
