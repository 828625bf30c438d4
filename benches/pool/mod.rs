//! Pooling of a batch of 32 images of 16 channels of 32×32 (f32) beside handwritten
//! loops over the slices with the sizes as constants.
//!
//! Groups `pool/{max_2x2,max_2x2_pullback,max_stem,avg_2x2}`, ids
//! `{ours,handwritten}/32x16x32x32`: 2×2 max pooling (stride 2) and its pullback
//! (each cotangent to its window's first maximum), a ResNet stem's pooling (window 3,
//! stride 2, padding 1: 32×32 → 16×16) and 2×2 average pooling. Throughput counts
//! input elements.

use criterion::{Criterion, black_box, criterion_group};
use fluxion::nn::prelude::{Padding, Stride, Window};
use fluxion::ops::pool::max_pool2d_pullback;
use fluxion::prelude::*;

use crate::common::{compare, config};

criterion_group! {
    name = benches;
    config = config();
    targets = max_2x2, max_2x2_pullback, max_stem, avg_2x2
}

const BATCH: usize = 32;
const CHANNELS: usize = 16;
const SIDE: usize = 32;
/// The side of the pooled images (16 for every pooling here).
const POOLED: usize = 16;
/// The planes of a batch: images × channels.
const PLANES: usize = BATCH * CHANNELS;
const PARAM: &str = "32x16x32x32";

type Images = Tensor<f32, (Const<BATCH>, Const<CHANNELS>, Const<SIDE>, Const<SIDE>), Heap>;
type Pooled = Tensor<f32, (Const<BATCH>, Const<CHANNELS>, Const<POOLED>, Const<POOLED>), Heap>;

fn images() -> Images {
    Tensor::random_uniform(-1.0, 1.0, 1)
}

/// Whether `candidate` takes the lead from `leader` in a search for the first largest
/// element: larger, or the first NaN (the library's rule).
#[inline(always)]
fn overtakes(candidate: f32, leader: f32) -> bool {
    candidate > leader || (candidate.is_nan() && !leader.is_nan())
}

/// The first largest of `a` and `b`.
#[inline(always)]
fn first_max(a: f32, b: f32) -> f32 {
    if overtakes(b, a) { b } else { a }
}

/// `pool/max_2x2`.
fn max_2x2(c: &mut Criterion) {
    let x = images();
    let mut y = vec![0.0f32; PLANES * POOLED * POOLED];
    let mut group = c.benchmark_group("pool/max_2x2");
    compare(
        &mut group,
        PARAM,
        x.len(),
        || -> Pooled { black_box(&x).max_pool2d::<2, POOLED, POOLED>() },
        || {
            for (plane, out) in
                black_box(&x).as_slice().chunks_exact(SIDE * SIDE).zip(y.chunks_exact_mut(POOLED * POOLED))
            {
                for (i, out) in out.chunks_exact_mut(POOLED).enumerate() {
                    let (top, bottom) =
                        (&plane[2 * i * SIDE..][..SIDE], &plane[(2 * i + 1) * SIDE..][..SIDE]);
                    for (j, value) in out.iter_mut().enumerate() {
                        let upper = first_max(top[2 * j], top[2 * j + 1]);
                        *value = first_max(upper, first_max(bottom[2 * j], bottom[2 * j + 1]));
                    }
                }
            }
            black_box(&y);
        },
    );
    group.finish();
}

/// `pool/max_2x2_pullback`: x̄ from x and ȳ.
fn max_2x2_pullback(c: &mut Criterion) {
    let x = images();
    let y_bar: Pooled = Tensor::random_uniform(-1.0, 1.0, 2);
    let mut x_bar = vec![0.0f32; x.len()];
    let mut group = c.benchmark_group("pool/max_2x2_pullback");
    compare(
        &mut group,
        PARAM,
        x.len(),
        || -> Images { max_pool2d_pullback(black_box(&x), &y_bar, (Window::<2>, Stride::<2>, Padding::<0>)) },
        || {
            x_bar.fill(0.0);
            let planes = x.as_slice().chunks_exact(SIDE * SIDE).zip(x_bar.chunks_exact_mut(SIDE * SIDE));
            for ((plane, plane_bar), g) in planes.zip(y_bar.as_slice().chunks_exact(POOLED * POOLED)) {
                for (i, j) in (0..POOLED).flat_map(|i| (0..POOLED).map(move |j| (i, j))) {
                    let at = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(p, q)| (2 * i + p) * SIDE + 2 * j + q);
                    let best = at
                        .into_iter()
                        .fold(at[0], |best, k| if overtakes(plane[k], plane[best]) { k } else { best });
                    plane_bar[best] += g[i * POOLED + j];
                }
            }
            black_box(&x_bar);
        },
    );
    group.finish();
}

/// `pool/max_stem`: window 3, stride 2, padding 1.
fn max_stem(c: &mut Criterion) {
    let x = images();
    let mut y = vec![0.0f32; PLANES * POOLED * POOLED];
    let mut group = c.benchmark_group("pool/max_stem");
    compare(
        &mut group,
        PARAM,
        x.len(),
        || -> Pooled { black_box(&x).max_pool2d_strided(Window::<3>, Stride::<2>, Padding::<1>) },
        || {
            for (plane, out) in
                black_box(&x).as_slice().chunks_exact(SIDE * SIDE).zip(y.chunks_exact_mut(POOLED * POOLED))
            {
                for (i, out) in out.chunks_exact_mut(POOLED).enumerate() {
                    let rows = (2 * i).saturating_sub(1)..(2 * i + 2).min(SIDE);
                    for (j, value) in out.iter_mut().enumerate() {
                        let columns = (2 * j).saturating_sub(1)..(2 * j + 2).min(SIDE);
                        let mut best = plane[rows.start * SIDE + columns.start];
                        for h in rows.clone() {
                            for &v in &plane[h * SIDE + columns.start..h * SIDE + columns.end] {
                                best = first_max(best, v);
                            }
                        }
                        *value = best;
                    }
                }
            }
            black_box(&y);
        },
    );
    group.finish();
}

/// `pool/avg_2x2`.
fn avg_2x2(c: &mut Criterion) {
    let x = images();
    let mut y = vec![0.0f32; PLANES * POOLED * POOLED];
    let mut group = c.benchmark_group("pool/avg_2x2");
    compare(
        &mut group,
        PARAM,
        x.len(),
        || -> Pooled { black_box(&x).avg_pool2d::<2, POOLED, POOLED>() },
        || {
            for (plane, out) in
                black_box(&x).as_slice().chunks_exact(SIDE * SIDE).zip(y.chunks_exact_mut(POOLED * POOLED))
            {
                for (i, out) in out.chunks_exact_mut(POOLED).enumerate() {
                    let (top, bottom) =
                        (&plane[2 * i * SIDE..][..SIDE], &plane[(2 * i + 1) * SIDE..][..SIDE]);
                    for (j, value) in out.iter_mut().enumerate() {
                        *value = (top[2 * j] + top[2 * j + 1] + bottom[2 * j] + bottom[2 * j + 1]) / 4.0;
                    }
                }
            }
            black_box(&y);
        },
    );
    group.finish();
}
