//! Helpers shared by the product and elementwise benchmarks.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use fluxion::prelude::*;

/// Element counts of the heap (`DVector`) inputs.
pub const HEAP_LENS: [usize; 2] = [1024, 65536];

/// Criterion settings for the fast, small-input groups.
pub fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(1))
}

/// Benchmarks one input size in `group`: fluxion (`ours`) beside the `handwritten`
/// baseline, both with the parameter `param` and a throughput of `elements`.
pub fn compare<R, Q>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    param: &str,
    elements: usize,
    mut ours: impl FnMut() -> R,
    mut handwritten: impl FnMut() -> Q,
) {
    group.throughput(Throughput::Elements(elements as u64));
    group.bench_function(BenchmarkId::new("ours", param), |bencher| bencher.iter(&mut ours));
    group.bench_function(BenchmarkId::new("handwritten", param), |bencher| bencher.iter(&mut handwritten));
}

/// The lower bound of random inputs (real and imaginary parts alike).
pub const LOW: f64 = -1.0;
/// The upper bound (excluded) of random inputs.
pub const HIGH: f64 = 1.0;

/// A heap vector of `len` elements drawn uniformly from [`LOW`], [`HIGH`], the same
/// for the same `seed`.
pub fn heap_vector<T: Scalar>(len: usize, seed: u64) -> DVector<T> {
    Tensor::random_uniform_shaped((Dyn(len),), bound::<T>(LOW), bound::<T>(HIGH), seed)
}

/// A heap `rows`×`cols` matrix of random elements, as [`heap_vector`].
pub fn heap_matrix<T: Scalar>(rows: usize, cols: usize, seed: u64) -> DMatrix<T> {
    Tensor::random_uniform_shaped((Dyn(rows), Dyn(cols)), bound::<T>(LOW), bound::<T>(HIGH), seed)
}

/// A static inline tensor of random elements, as [`heap_vector`].
pub fn inline_tensor<T: Scalar, S: StaticShape>(seed: u64) -> Tensor<T, S, Inline> {
    Tensor::random_uniform(bound::<T>(LOW), bound::<T>(HIGH), seed)
}

/// A bound of the random inputs as `T`'s real type.
fn bound<T: Scalar>(value: f64) -> T::Real {
    <T::Real as RealScalar>::from_f64(value)
}
