//! Elementwise maps and reductions beside handwritten loops over arrays and `Vec`s, on
//! f32: `exp`, `tanh`, `relu`, `add` (`&a + &b`), `scale` (`a * 2.0`), `sum`,
//! `softmax` along axis 1, and `transpose`.
//!
//! Groups `elementwise/{exp,tanh,relu,add,scale,sum,softmax,transpose}`, ids
//! `{ours,handwritten}/{inline-16,heap-1024,heap-65536}`; softmax uses square matrices,
//! `{inline-4x4,heap-32x32,heap-256x256}` (and along axis 0, `heap-256x256-columns`),
//! and transpose a 256×784 heap matrix (W₁ of
//! workload W2), `heap-256x784`. Throughput counts elements.
//!
//! `elementwise/tanh_f64`, ids `{ours,handwritten}/heap-65536`: tanh of `f64`.
//!
//! `elementwise/maximum`, ids
//! `{ours,handwritten}/{heap-65536,pullback-heap-65536,static-gradient-heap-65536}`:
//! the larger of two vectors by a fused function of one's own (as a library author
//! adds an operation), its pullback, and the gradient of ⟨max(a, b), g⟩ in static
//! mode (`#[differentiable]`), beside a loop, a branch-free loop and one branch-free
//! pass for the value and both gradients.
//!
//! `elementwise/cross_entropy_grad`, id `{ours,handwritten}/heap-32x32768`: the mean
//! cross-entropy of 32 rows of 32768 logits against class indices and its gradient
//! (`value_and_grad` on the tape), beside one fused pass per row (its maximum, the
//! shifted total, then softmax − one-hot, divided by the batch).

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, black_box, criterion_group};
use fluxion::ops::elementwise::FusedFunction;
use fluxion::prelude::*;

use crate::common::{HEAP_LENS, compare, config, heap_matrix, heap_vector, inline_tensor};

criterion_group! {
    name = benches;
    config = config();
    targets = exp, tanh, relu, add, maximum, scale, sum, softmax, transpose, cross_entropy_grad
}

/// Length of the inline vectors.
const SMALL: usize = 16;
/// Side of the inline softmax matrix (`SIDE`² = [`SMALL`] elements).
const SIDE: usize = 4;
/// Sides of the heap softmax matrices: 32² = 1024 and 256² = 65536 elements.
const HEAP_SIDES: [usize; 2] = [32, 256];
/// The factor of `scale`.
const FACTOR: f32 = 2.0;

/// An inline input vector.
type Small = Vector<f32, SMALL>;

/// `elementwise/exp`: eˣ.
fn exp(c: &mut Criterion) {
    unary(c, "exp", |t| t.exp(), |t| t.exp(), f32::exp);
}

/// `elementwise/tanh`: tanh x; and `elementwise/tanh_f64`, on `f64` (fluxion's own
/// tanh there, the C library's in the loop beside it).
fn tanh(c: &mut Criterion) {
    unary(c, "tanh", |t| t.tanh(), |t| t.tanh(), f32::tanh);
    let mut group = c.benchmark_group("elementwise/tanh_f64");
    heap_map(&mut group, HEAP_LENS[1], |t| t.tanh(), f64::tanh);
    group.finish();
}

/// `elementwise/relu`: max(x, 0).
fn relu(c: &mut Criterion) {
    unary(c, "relu", |t| t.relu(), |t| t.relu(), |x| if x > 0.0 { x } else { 0.0 });
}

/// The larger of two elements, as a library author writes a custom elementwise
/// operation (its derivative comes from duals).
#[derive(Clone, Copy, Debug)]
struct Larger;

impl FusedFunction<2> for Larger {
    const NAME: &'static str = "larger";
    fn value<T: RealScalar>(&self, [a, b]: [T; 2]) -> T {
        a.max(b)
    }
}

/// `elementwise/maximum`: the larger of two elements by a custom fused function of
/// two inputs, and its pullback (`ȳ` to the larger, split on a tie), on 65536
/// elements.
fn maximum(c: &mut Criterion) {
    use fluxion::ops::elementwise::fused_pullback;
    let mut group = c.benchmark_group("elementwise/maximum");
    let len = HEAP_LENS[1];
    let (a, b, g) = (heap_vector::<f32>(len, 1), heap_vector::<f32>(len, 2), heap_vector::<f32>(len, 3));
    let (pa, pb, pg) = (a.to_vec(), b.to_vec(), g.to_vec());
    compare(
        &mut group,
        &format!("heap-{len}"),
        len,
        || Larger.apply([black_box(&a), black_box(&b)]),
        || black_box(&pa).iter().zip(black_box(&pb)).map(|(x, y)| x.max(*y)).collect::<Vec<_>>(),
    );
    let ours = || fused_pullback(Larger, [black_box(&a), black_box(&b)], &g);
    let handwritten = || {
        // The share of ȳ that goes to a: 1, ½ on a tie, 0 (no branch).
        let share = |(&x, &y): (&f32, &f32)| (f32::from(u8::from(x > y)) + f32::from(u8::from(x >= y))) * 0.5;
        let pairs = || black_box(&pa).iter().zip(&pb).map(share).zip(&pg);
        let a_bar: Vec<f32> = pairs().map(|(share, &g)| g * share).collect();
        let b_bar: Vec<f32> = pairs().map(|(share, &g)| g * (1.0 - share)).collect();
        (a_bar, b_bar)
    };
    let ([a_bar, b_bar], expected) = (ours(), handwritten());
    assert_eq!((a_bar.as_slice(), b_bar.as_slice()), (&expected.0[..], &expected.1[..]));
    compare(&mut group, &format!("pullback-heap-{len}"), len, ours, handwritten);
    let ours = || larger_total::value_and_grad(black_box(&a), black_box(&b), &g);
    let handwritten = || {
        let (mut a_bar, mut b_bar) = (vec![0.0; len], vec![0.0; len]);
        let mut total = 0.0;
        let elements = black_box(&pa).iter().zip(&pb).zip(&pg).zip(a_bar.iter_mut().zip(&mut b_bar));
        for (((&x, &y), &g), (x_bar, y_bar)) in elements {
            total += x.max(y) * g;
            let share = (f32::from(u8::from(x > y)) + f32::from(u8::from(x >= y))) * 0.5;
            (*x_bar, *y_bar) = (g * share, g * (1.0 - share));
        }
        (total, a_bar, b_bar)
    };
    let ((_, (a_bar, b_bar)), expected) = (ours(), handwritten());
    assert_eq!((a_bar.as_slice(), b_bar.as_slice()), (&expected.1[..], &expected.2[..]));
    compare(&mut group, &format!("static-gradient-heap-{len}"), len, ours, handwritten);
    group.finish();
}

/// ⟨max(a, b), g⟩ by the fused function, differentiated in static mode.
#[differentiable(wrt(a, b))]
fn larger_total(a: &DVector<f32>, b: &DVector<f32>, g: &DVector<f32>) -> f32 {
    Larger.apply([a, b]).dot(g)
}

/// `elementwise/scale`: `t * 2.0`.
fn scale(c: &mut Criterion) {
    unary(c, "scale", |t| t * FACTOR, |t| t * FACTOR, |x| x * FACTOR);
}

/// Benchmarks a map group `elementwise/{name}`: `inline` and `heap` (fluxion on the
/// inline and heap tensors) beside `f` mapped over an array and a `Vec`.
fn unary(
    c: &mut Criterion,
    name: &str,
    inline: impl Fn(&Small) -> Small,
    heap: impl Fn(&DVector<f32>) -> DVector<f32>,
    f: impl Fn(f32) -> f32 + Copy,
) {
    let mut group = c.benchmark_group(format!("elementwise/{name}"));
    let small: Small = inline_tensor(1);
    let plain = small.to_array();
    compare(
        &mut group,
        &format!("inline-{SMALL}"),
        SMALL,
        || inline(black_box(&small)),
        || black_box(plain).map(f),
    );
    for len in HEAP_LENS {
        heap_map(&mut group, len, &heap, f);
    }
    group.finish();
}

/// Id `heap-{len}`: `heap` on a heap vector of `len` elements beside `f` mapped over a
/// `Vec`.
fn heap_map<T: Scalar>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    len: usize,
    heap: impl Fn(&DVector<T>) -> DVector<T>,
    f: impl Fn(T) -> T + Copy,
) {
    let tensor = heap_vector::<T>(len, 1);
    let plain = tensor.to_vec();
    compare(
        group,
        &format!("heap-{len}"),
        len,
        || heap(black_box(&tensor)),
        || black_box(&plain).iter().map(|&x| f(x)).collect::<Vec<_>>(),
    );
}

/// `elementwise/add`: `&a + &b`.
fn add(c: &mut Criterion) {
    let mut group = c.benchmark_group("elementwise/add");
    let (a, b): (Small, Small) = (inline_tensor(1), inline_tensor(2));
    let (pa, pb) = (a.to_array(), b.to_array());
    compare(
        &mut group,
        &format!("inline-{SMALL}"),
        SMALL,
        || black_box(&a) + black_box(&b),
        || {
            let (pa, pb) = (black_box(&pa), black_box(&pb));
            core::array::from_fn::<f32, SMALL, _>(|i| pa[i] + pb[i])
        },
    );
    for len in HEAP_LENS {
        let (a, b) = (heap_vector::<f32>(len, 1), heap_vector::<f32>(len, 2));
        let (pa, pb) = (a.to_vec(), b.to_vec());
        compare(
            &mut group,
            &format!("heap-{len}"),
            len,
            || black_box(&a) + black_box(&b),
            || black_box(&pa).iter().zip(black_box(&pb)).map(|(x, y)| x + y).collect::<Vec<_>>(),
        );
    }
    group.finish();
}

/// `elementwise/sum`: Σ xᵢ.
fn sum(c: &mut Criterion) {
    let mut group = c.benchmark_group("elementwise/sum");
    let small: Small = inline_tensor(1);
    let plain = small.to_array();
    compare(
        &mut group,
        &format!("inline-{SMALL}"),
        SMALL,
        || black_box(&small).sum(),
        || black_box(&plain).iter().sum::<f32>(),
    );
    for len in HEAP_LENS {
        let tensor = heap_vector::<f32>(len, 1);
        let plain = tensor.to_vec();
        compare(
            &mut group,
            &format!("heap-{len}"),
            len,
            || black_box(&tensor).sum(),
            || interleaved_sum(black_box(&plain)),
        );
    }
    group.finish();
}

/// A fast hand-written sum: 32 interleaved totals (independent chains of additions,
/// which vectorise and overlap: four AVX2 vectors), then the tail.
fn interleaved_sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 32];
    let chunks = values.chunks_exact(32);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `elementwise/softmax`: softmax along axis 1 (each row sums to 1).
fn softmax(c: &mut Criterion) {
    let mut group = c.benchmark_group("elementwise/softmax");
    softmax_inline(&mut group);
    for side in HEAP_SIDES {
        let tensor = heap_matrix::<f32>(side, side, 1);
        let plain = tensor.to_vec();
        compare(
            &mut group,
            &format!("heap-{side}x{side}"),
            side * side,
            || black_box(&tensor).softmax(Axis::<1>),
            || {
                let mut out = black_box(&plain).clone();
                out.chunks_exact_mut(side).for_each(softmax_row);
                out
            },
        );
    }
    // Along axis 0, asserted close first (the library's exp is not the C library's).
    let (side, tensor) = (HEAP_SIDES[1], heap_matrix::<f32>(HEAP_SIDES[1], HEAP_SIDES[1], 1));
    let columns = || black_box(&tensor).softmax(Axis::<0>);
    let handwritten = || softmax_columns(black_box(tensor.as_slice()), side);
    let close = columns().as_slice().iter().zip(handwritten()).all(|(a, b)| (a - b).abs() <= 1e-6 * b.abs());
    assert!(close, "softmax along axis 0 differs from the hand-written loop");
    compare(&mut group, &format!("heap-{side}x{side}-columns"), side * side, columns, handwritten);
    group.finish();
}

/// The softmax of each column of a `side`-wide row-major matrix, a row at a time
/// (each pass over a row vectorises across the columns).
fn softmax_columns(x: &[f32], side: usize) -> Vec<f32> {
    let mut largest = vec![f32::NEG_INFINITY; side];
    for row in x.chunks_exact(side) {
        largest.iter_mut().zip(row).for_each(|(m, &x)| *m = m.max(x));
    }
    let (mut out, mut totals) = (x.to_vec(), vec![0.0f32; side]);
    for row in out.chunks_exact_mut(side) {
        for ((x, &m), total) in row.iter_mut().zip(&largest).zip(&mut totals) {
            *x = (*x - m).exp();
            *total += *x;
        }
    }
    for row in out.chunks_exact_mut(side) {
        row.iter_mut().zip(&totals).for_each(|(x, &total)| *x /= total);
    }
    out
}

/// `elementwise/cross_entropy_grad`: a large vocabulary's loss and gradient (see the
/// module docs).
fn cross_entropy_grad(c: &mut Criterion) {
    use fluxion::nn::loss::{Reduction, cross_entropy};
    let (rows, classes) = (32, 32768);
    let mut group = c.benchmark_group("elementwise/cross_entropy_grad");
    let logits = heap_matrix::<f32>(rows, classes, 1);
    let plain = logits.to_vec();
    let targets: Vec<usize> = (0..rows).map(|row| row * 1021 % classes).collect();
    compare(
        &mut group,
        &format!("heap-{rows}x{classes}"),
        rows * classes,
        || {
            value_and_grad(
                |z: Var<DMatrix<f32>>| cross_entropy(&z, black_box(&targets), Reduction::Mean),
                black_box(&logits),
            )
        },
        || {
            let mut gradient = black_box(&plain).clone();
            let mut loss = 0.0;
            for (row, &target) in gradient.chunks_exact_mut(classes).zip(&targets) {
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &z| m.max(z));
                let total: f32 = row.iter().map(|&z| (z - max).exp()).sum();
                loss += max + total.ln() - row[target];
                let scale = 1.0 / (total * rows as f32);
                row.iter_mut().for_each(|z| *z = (*z - max).exp() * scale);
                row[target] -= 1.0 / rows as f32;
            }
            (loss / rows as f32, gradient)
        },
    );
    group.finish();
}

/// `elementwise/transpose`: a 256×784 matrix transposed, beside a cache-blocked loop
/// over a `Vec` (32×32 blocks).
fn transpose(c: &mut Criterion) {
    const BLOCK: usize = 32;
    let (rows, cols) = (256, 784);
    let mut group = c.benchmark_group("elementwise/transpose");
    let tensor = heap_matrix::<f32>(rows, cols, 1);
    let plain = tensor.to_vec();
    compare(
        &mut group,
        &format!("heap-{rows}x{cols}"),
        rows * cols,
        || black_box(&tensor).transpose(),
        || {
            let data = black_box(&plain);
            let mut out = vec![0.0f32; rows * cols];
            for i0 in (0..rows).step_by(BLOCK) {
                for j0 in (0..cols).step_by(BLOCK) {
                    for i in i0..(i0 + BLOCK).min(rows) {
                        for j in j0..(j0 + BLOCK).min(cols) {
                            out[j * rows + i] = data[i * cols + j];
                        }
                    }
                }
            }
            out
        },
    );
    group.finish();
}

/// Softmax on an inline `Matrix<f32, SIDE, SIDE>` beside a loop over the rows of an
/// array.
fn softmax_inline(group: &mut BenchmarkGroup<'_, WallTime>) {
    let tensor: Matrix<f32, SIDE, SIDE> = inline_tensor(1);
    let plain = tensor.to_array();
    compare(
        group,
        &format!("inline-{SIDE}x{SIDE}"),
        SIDE * SIDE,
        || black_box(&tensor).softmax(Axis::<1>),
        || {
            let mut out = *black_box(&plain);
            out.iter_mut().for_each(|row| softmax_row(row));
            out
        },
    );
}

/// Replaces `row` by its softmax, shifting by the maximum for stability.
fn softmax_row(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0.0;
    for x in row.iter_mut() {
        *x = (*x - max).exp();
        total += *x;
    }
    for x in row.iter_mut() {
        *x /= total;
    }
}
