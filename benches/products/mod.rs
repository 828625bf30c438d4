//! Products other than matrix × matrix, beside handwritten loops: `dot` (f32), `inner`
//! (Complex64), `hadamard`, `outer`, matrix × vector (f32) and `kron` (f64).
//!
//! Groups `products/{dot,inner,hadamard,outer,matvec}`, ids
//! `{ours,handwritten}/{inline-N,heap-N}`, where N is the vector length: inline 3 and 16;
//! heap 1024 and 65536 for `dot`, `inner` and `hadamard`, 32 and 256 (so 1024 and 65536
//! matrix elements) for `outer` and `matvec`. Throughput counts elements of the largest
//! operand or result.
//!
//! `products/kron`, ids `{ours,handwritten}/{inline-4x4,heap-32x32}`: A ⊗ B of two
//! square f64 matrices of that side (16×16 and 1024×1024 results), beside a loop over
//! fixed-size arrays and one that extends a `Vec` with each row of B scaled.

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, black_box, criterion_group};
use fluxion::backend::cpu::set_num_threads;
use fluxion::prelude::*;

use crate::common::{HEAP_LENS, compare, config, heap_matrix, heap_vector, inline_tensor};

criterion_group! {
    name = benches;
    config = config();
    targets = dot, inner, hadamard, outer, matvec, kron
}

/// Vector lengths of `outer` and `matvec` on the heap: 32² = 1024 and 256² = 65536.
const HEAP_SIDES: [usize; 2] = [32, 256];

/// Benchmarks a product of two random vectors of element type `$t`: for each inline
/// length, `ours` on `Vector<$t, N>` beside `inline` on `[$t; N]`; for each heap length,
/// `ours` on `DVector<$t>` beside `heap` on `Vec<$t>`. Each closure-like body is pasted
/// once per size, so it is checked against that size's types; `elements` gives the
/// throughput from the length.
macro_rules! vector_pairs {
    (
        $group:expr, $t:ty, inline [$($len:literal),*], heap $heap_lens:expr,
        elements |$n:ident| $elements:expr,
        ours |$a:ident, $b:ident| $ours:expr,
        inline |$ia:ident, $ib:ident| $inline:expr,
        heap |$ha:ident, $hb:ident| $heap:expr $(,)?
    ) => {{
        $({
            let x: Vector<$t, $len> = inline_tensor(1);
            let y: Vector<$t, $len> = inline_tensor(2);
            let (px, py) = (x.to_array(), y.to_array());
            let $n: usize = $len;
            compare(
                $group,
                &format!("inline-{}", $len),
                $elements,
                || {
                    let ($a, $b) = (black_box(&x), black_box(&y));
                    $ours
                },
                || {
                    let ($ia, $ib) = (black_box(&px), black_box(&py));
                    $inline
                },
            );
        })*
        for len in $heap_lens {
            let (x, y) = (heap_vector::<$t>(len, 1), heap_vector::<$t>(len, 2));
            let (px, py) = (x.to_vec(), y.to_vec());
            let $n: usize = len;
            compare(
                $group,
                &format!("heap-{len}"),
                $elements,
                || {
                    let ($a, $b) = (black_box(&x), black_box(&y));
                    $ours
                },
                || {
                    let ($ha, $hb) = (black_box(&px), black_box(&py));
                    $heap
                },
            );
        }
    }};
}

/// `products/dot`: Σ aᵢbᵢ on f32.
fn dot(c: &mut Criterion) {
    let mut group = c.benchmark_group("products/dot");
    vector_pairs!(
        &mut group, f32, inline [3, 16], heap HEAP_LENS,
        elements |n| n,
        ours |a, b| a.dot(b),
        inline |a, b| dot_loop(a, b),
        heap |a, b| dot_loop(a, b),
    );
    group.finish();
}

/// `products/inner`: Σ conj(aᵢ)·bᵢ on Complex64.
fn inner(c: &mut Criterion) {
    let mut group = c.benchmark_group("products/inner");
    vector_pairs!(
        &mut group, Complex64, inline [3, 16], heap HEAP_LENS,
        elements |n| n,
        ours |a, b| a.inner(b),
        inline |a, b| inner_loop(a, b),
        heap |a, b| inner_loop(a, b),
    );
    group.finish();
}

/// `products/hadamard`: aᵢbᵢ elementwise on f32.
fn hadamard(c: &mut Criterion) {
    let mut group = c.benchmark_group("products/hadamard");
    vector_pairs!(
        &mut group, f32, inline [3, 16], heap HEAP_LENS,
        elements |n| n,
        ours |a, b| a.hadamard(b),
        inline |a, b| hadamard_array(a, b),
        heap |a, b| hadamard_vec(a, b),
    );
    group.finish();
}

/// `products/outer`: the matrix aᵢbⱼ on f32.
fn outer(c: &mut Criterion) {
    let mut group = c.benchmark_group("products/outer");
    vector_pairs!(
        &mut group, f32, inline [3, 16], heap HEAP_SIDES,
        elements |n| n * n,
        ours |a, b| a.outer(b),
        inline |a, b| outer_array(a, b),
        heap |a, b| outer_vec(a, b),
    );
    group.finish();
}

/// `products/matvec`: a square f32 matrix times a vector, single-threaded (the heap
/// 256×256 case is large enough for fluxion to hand it to the `gemm` crate).
fn matvec(c: &mut Criterion) {
    set_num_threads(1);
    let mut group = c.benchmark_group("products/matvec");
    matvec_inline::<3>(&mut group);
    matvec_inline::<16>(&mut group);
    for n in HEAP_SIDES {
        let (m, x) = (heap_matrix::<f32>(n, n, 1), heap_vector::<f32>(n, 2));
        let (pm, px) = (m.to_vec(), x.to_vec());
        compare(
            &mut group,
            &format!("heap-{n}"),
            n * n,
            || black_box(&m).matmul(black_box(&x)),
            || {
                let (pm, px) = (black_box(&pm), black_box(&px));
                pm.chunks_exact(n).map(|row| dot_loop(row, px)).collect::<Vec<_>>()
            },
        );
    }
    group.finish();
}

/// `matvec` on an inline `Matrix<f32, N, N>` and `Vector<f32, N>`, beside a loop over
/// the rows of `[[f32; N]; N]`.
fn matvec_inline<const N: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let m: Matrix<f32, N, N> = inline_tensor(1);
    let x: Vector<f32, N> = inline_tensor(2);
    let (pm, px) = (m.to_array(), x.to_array());
    compare(
        group,
        &format!("inline-{N}"),
        N * N,
        || black_box(&m).matmul(black_box(&x)),
        || {
            let (pm, px) = (black_box(&pm), black_box(&px));
            pm.map(|row| dot_loop(&row, px))
        },
    );
}

/// Σ aᵢbᵢ.
fn dot_loop(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Σ conj(aᵢ)·bᵢ.
fn inner_loop(a: &[Complex64], b: &[Complex64]) -> Complex64 {
    a.iter().zip(b).map(|(x, y)| x.conj() * y).sum()
}

/// aᵢbᵢ on arrays.
fn hadamard_array<const N: usize>(a: &[f32; N], b: &[f32; N]) -> [f32; N] {
    core::array::from_fn(|i| a[i] * b[i])
}

/// aᵢbᵢ on slices, into a `Vec`.
fn hadamard_vec(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x * y).collect()
}

/// The matrix aᵢbⱼ on arrays.
fn outer_array<const N: usize>(a: &[f32; N], b: &[f32; N]) -> [[f32; N]; N] {
    a.map(|x| b.map(|y| x * y))
}

/// The matrix aᵢbⱼ on slices, row-major into a `Vec`.
fn outer_vec(a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        out.extend(b.iter().map(|y| x * y));
    }
    out
}

/// `products/kron`: the Kronecker product of two square matrices.
fn kron(c: &mut Criterion) {
    let mut group = c.benchmark_group("products/kron");
    const SIDE: usize = 4;
    let (a, b): (Matrix<f64, SIDE, SIDE>, Matrix<f64, SIDE, SIDE>) = (inline_tensor(1), inline_tensor(2));
    let (pa, pb) = (a.to_array(), b.to_array());
    let by_hand = || {
        let (pa, pb) = (black_box(&pa), black_box(&pb));
        let mut out = [[0.0; SIDE * SIDE]; SIDE * SIDE];
        for (i, a_row) in pa.iter().enumerate() {
            for (k, b_row) in pb.iter().enumerate() {
                for (j, &a_ij) in a_row.iter().enumerate() {
                    for (l, &b_kl) in b_row.iter().enumerate() {
                        out[i * SIDE + k][j * SIDE + l] = a_ij * b_kl;
                    }
                }
            }
        }
        out
    };
    let ours = || -> Matrix<f64, { SIDE * SIDE }, { SIDE * SIDE }> { black_box(&a).kron(black_box(&b)) };
    assert_eq!(ours().to_array(), by_hand());
    compare(&mut group, "inline-4x4", SIDE.pow(4), ours, by_hand);
    let side = 32;
    let (a, b) = (heap_matrix::<f64>(side, side, 1), heap_matrix::<f64>(side, side, 2));
    let (pa, pb) = (a.to_vec(), b.to_vec());
    let by_hand = || {
        let (pa, pb) = (black_box(&pa), black_box(&pb));
        let mut out = Vec::with_capacity(side.pow(4));
        for a_row in pa.chunks_exact(side) {
            for b_row in pb.chunks_exact(side) {
                for &a_ij in a_row {
                    out.extend(b_row.iter().map(|&b_kl| a_ij * b_kl));
                }
            }
        }
        out
    };
    let ours = || -> DMatrix<f64> { black_box(&a).kron(black_box(&b)) };
    assert_eq!(ours().to_vec(), by_hand());
    compare(&mut group, "heap-32x32", side.pow(4), ours, by_hand);
    group.finish();
}
