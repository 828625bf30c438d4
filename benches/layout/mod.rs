//! Layout changes of f32 heap matrices beside the copies a person would write
//! (`extend_from_slice` a row or a block at a time), each asserted equal first:
//!
//! - `layout/narrow_range`: rows 256..512 of a 1024×784 matrix (a mini-batch);
//! - `layout/concat`: two 256×256 matrices side by side (along axis 1);
//! - `layout/gather_rows`: 256 rows of a 1024×256 table at scattered indices (an
//!   embedding lookup);
//! - `layout/broadcast_axis`: a vector of 256 repeated into the rows of 256×256.
//!
//! Ids `{ours,handwritten}/<shape>`. Throughput counts the elements written.

use criterion::{Criterion, black_box, criterion_group};
use fluxion::prelude::*;

use crate::common::{compare, config, heap_matrix};

criterion_group! {
    name = benches;
    config = config();
    targets = narrow_range, concat, gather_rows, broadcast_axis
}

/// `layout/narrow_range`: a block of rows.
fn narrow_range(c: &mut Criterion) {
    let (rows, columns, range) = (1024, 784, 256..512);
    let x = heap_matrix::<f32>(rows, columns, 1);
    let plain = x.as_slice();
    let handwritten = || plain[range.start * columns..range.end * columns].to_vec();
    assert_eq!(x.narrow_range(Axis::<0>, range.clone()).as_slice(), handwritten());
    let mut group = c.benchmark_group("layout/narrow_range");
    let ours = || black_box(&x).narrow_range(Axis::<0>, range.clone());
    compare(&mut group, "heap-1024x784", range.len() * columns, ours, handwritten);
    group.finish();
}

/// `layout/concat`: two matrices joined along their rows.
fn concat(c: &mut Criterion) {
    let side = 256;
    let (a, b) = (heap_matrix::<f32>(side, side, 1), heap_matrix::<f32>(side, side, 2));
    let handwritten = || {
        let mut out = Vec::with_capacity(2 * side * side);
        for (a, b) in black_box(a.as_slice()).chunks_exact(side).zip(b.as_slice().chunks_exact(side)) {
            out.extend_from_slice(a);
            out.extend_from_slice(b);
        }
        out
    };
    let ours = || black_box(&a).concat::<1, Dyn, Dyn>(Axis::<1>, &b);
    assert_eq!(ours().as_slice(), handwritten());
    let mut group = c.benchmark_group("layout/concat");
    compare(&mut group, "heap-256x256", 2 * side * side, ours, handwritten);
    group.finish();
}

/// `layout/gather_rows`: rows of a table at scattered indices.
fn gather_rows(c: &mut Criterion) {
    let (rows, columns) = (1024, 256);
    let table = heap_matrix::<f32>(rows, columns, 1);
    let indices: Vec<usize> = (0..256).map(|i| i * 397 % rows).collect();
    let handwritten = || {
        let mut out = Vec::with_capacity(indices.len() * columns);
        for &row in black_box(&indices) {
            out.extend_from_slice(&table.as_slice()[row * columns..][..columns]);
        }
        out
    };
    let ours = || black_box(&table).gather_rows(&indices);
    assert_eq!(ours().as_slice(), handwritten());
    let mut group = c.benchmark_group("layout/gather_rows");
    compare(&mut group, "heap-256-of-1024x256", indices.len() * columns, ours, handwritten);
    group.finish();
}

/// `layout/broadcast_axis`: a vector repeated into every row.
fn broadcast_axis(c: &mut Criterion) {
    const SIDE: usize = 256;
    let row: Tensor<f32, (Const<SIDE>,), Heap> = Tensor::random_uniform(-1.0, 1.0, 1);
    let handwritten = || {
        let mut out = Vec::with_capacity(SIDE * SIDE);
        for _ in 0..SIDE {
            out.extend_from_slice(black_box(row.as_slice()));
        }
        out
    };
    let ours =
        || -> Tensor<f32, (Const<SIDE>, Const<SIDE>), Heap> { black_box(&row).broadcast_axis(Axis::<0>) };
    assert_eq!(ours().as_slice(), handwritten());
    let mut group = c.benchmark_group("layout/broadcast_axis");
    compare(&mut group, "heap-256x256", SIDE * SIDE, ours, handwritten);
    group.finish();
}
