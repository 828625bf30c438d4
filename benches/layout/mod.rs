//! Layout changes of f32 heap matrices beside the copies a person would write
//! (`extend_from_slice` a row or a block at a time), each asserted equal first:
//!
//! - `layout/narrow_range`: rows 256..512 of a 1024×784 matrix (a mini-batch);
//! - `layout/concat`: two 256×256 matrices side by side (along axis 1);
//! - `layout/gather_rows`: 256 rows of a 1024×256 table at scattered indices (an
//!   embedding lookup);
//! - `layout/broadcast_axis`: a vector of 256 repeated into the rows of 256×256;
//! - `layout/permute`: a 32×64×8×64 batch of attention heads to 32×8×64×64 (axes
//!   0, 2, 1, 3: runs of 64 copied), the last two axes of 64×128×128 swapped (a batch
//!   of transposes), and 64×128×128 as axes 2, 0, 1 (128×64×128: each 128×128
//!   matrix transposed into rows 64·128 apart), the last two beside 16×16 blocks
//!   written out.
//!
//! Ids `{ours,handwritten}/<shape>`. Throughput counts the elements written.

use criterion::{Criterion, black_box, criterion_group};
use fluxion::prelude::*;

use crate::common::{compare, config, heap_matrix};

criterion_group! {
    name = benches;
    config = config();
    targets = narrow_range, concat, gather_rows, broadcast_axis, permute
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

/// Sizes of the batch of attention heads: batch, tokens, heads, width.
const HEADS: [usize; 4] = [32, 64, 8, 64];
/// Sizes of the rank-3 tensor whose axes are swapped or rotated.
const CUBE: [usize; 3] = [64, 128, 128];
/// Side of the blocks of the written-out transposes.
const BLOCK: usize = 16;

/// `layout/permute`: three orders of a tensor's axes.
fn permute(c: &mut Criterion) {
    let mut group = c.benchmark_group("layout/permute");
    let [b, t, h, d] = HEADS;
    let heads = Tensor::<f32, (Dyn, Dyn, Dyn, Dyn), Heap>::random_uniform_shaped(
        (Dyn(b), Dyn(t), Dyn(h), Dyn(d)),
        -1.0,
        1.0,
        1,
    );
    let handwritten = || {
        let x = black_box(heads.as_slice());
        let mut out = Vec::with_capacity(b * t * h * d);
        for batch in 0..b {
            for head in 0..h {
                for token in 0..t {
                    out.extend_from_slice(&x[((batch * t + token) * h + head) * d..][..d]);
                }
            }
        }
        out
    };
    let ours = || black_box(&heads).permute(Axes::<0, 2, 1, 3>);
    assert_eq!(ours().as_slice(), handwritten());
    compare(&mut group, "heap-32x64x8x64-heads", b * t * h * d, ours, handwritten);

    let [n, rows, cols] = CUBE;
    let cube = Tensor::<f32, (Dyn, Dyn, Dyn), Heap>::random_uniform_shaped(
        (Dyn(n), Dyn(rows), Dyn(cols)),
        -1.0,
        1.0,
        2,
    );
    let handwritten = || {
        let x = black_box(cube.as_slice());
        let mut out = vec![0.0f32; n * rows * cols];
        for (block, out_block) in x.chunks_exact(rows * cols).zip(out.chunks_exact_mut(rows * cols)) {
            for i0 in (0..rows).step_by(BLOCK) {
                for j0 in (0..cols).step_by(BLOCK) {
                    for i in i0..(i0 + BLOCK).min(rows) {
                        for j in j0..(j0 + BLOCK).min(cols) {
                            out_block[j * rows + i] = block[i * cols + j];
                        }
                    }
                }
            }
        }
        out
    };
    let ours = || black_box(&cube).permute(Axes::<0, 2, 1>);
    assert_eq!(ours().as_slice(), handwritten());
    compare(&mut group, "heap-64x128x128-swap", n * rows * cols, ours, handwritten);

    let handwritten = || {
        let x = black_box(cube.as_slice());
        let mut out = vec![0.0f32; n * rows * cols];
        for (batch, block) in x.chunks_exact(rows * cols).enumerate() {
            for i0 in (0..rows).step_by(BLOCK) {
                for j0 in (0..cols).step_by(BLOCK) {
                    for i in i0..(i0 + BLOCK).min(rows) {
                        for j in j0..(j0 + BLOCK).min(cols) {
                            out[(j * n + batch) * rows + i] = block[i * cols + j];
                        }
                    }
                }
            }
        }
        out
    };
    let ours = || black_box(&cube).permute(Axes::<2, 0, 1>);
    assert_eq!(ours().as_slice(), handwritten());
    compare(&mut group, "heap-64x128x128-rotate", n * rows * cols, ours, handwritten);
    group.finish();
}
