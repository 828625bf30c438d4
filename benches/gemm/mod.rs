//! Square matrix products C = A·B: fluxion's `matmul` beside the `gemm` crate called
//! directly on the same buffers, `matrixmultiply`, a naive triple loop and, for the
//! static sizes, a handwritten loop over nested arrays.
//!
//! One group per element type and thread count, `gemm/{f32,f64}/{1thread,2threads}`,
//! with ids `{ours,ours_into,gemm,matrixmultiply,naive,handwritten}/n` (`ours_into`
//! writes into a reused output, as the raw kernels do), plus `gemm/c64/1thread`
//! (ours and gemm only). Throughput counts floating-point operations: 2n³ for real
//! products, 8n³ for complex ones (a complex multiply-add is eight real operations).

use std::time::Duration;

use ::gemm::Parallelism;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, black_box, criterion_group};
use fluxion::backend::cpu::set_num_threads;
use fluxion::prelude::*;

use crate::common::{heap_matrix, inline_tensor};

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    targets = real_groups, complex_group
}

/// Sizes run on heap matrices (`DMatrix`); 4, 8 and 16 run on inline `Matrix<T, N, N>`.
const HEAP_SIZES: [usize; 5] = [64, 128, 256, 512, 1024];
/// Sizes of the complex group.
const COMPLEX_SIZES: [usize; 2] = [64, 256];
/// Thread counts of the real groups.
const THREADS: [usize; 2] = [1, 2];
/// The naive triple loop runs up to this size only (it is slow beyond).
const NAIVE_MAX: usize = 256;
/// From this size on, groups take 10 samples instead of Criterion's 100.
const FEW_SAMPLES_FROM: usize = 256;
/// Up to this size, every baseline is checked once against ours before timing.
const CHECK_MAX: usize = 128;

/// A real element type: its name in group names and its `matrixmultiply` kernel.
trait Real: RealScalar {
    /// The name in group names.
    const NAME: &'static str;

    /// `c` ← `a`·`b` for row-major n×n matrices, through `matrixmultiply`.
    fn matrixmultiply(n: usize, a: &[Self], b: &[Self], c: &mut [Self]);
}

/// Implements [`Real`] for `$t` with `matrixmultiply`'s kernel `$kernel`.
macro_rules! real {
    ($t:ty, $kernel:path) => {
        impl Real for $t {
            const NAME: &'static str = stringify!($t);

            fn matrixmultiply(n: usize, a: &[Self], b: &[Self], c: &mut [Self]) {
                assert!(a.len() == n * n && b.len() == n * n && c.len() == n * n, "n×n buffers expected");
                let stride = n as isize;
                // SAFETY: the three buffers hold n·n elements (asserted above) and are read
                // row-major (row stride n, column stride 1), so every offset the kernel
                // touches is in bounds. `c` is borrowed exclusively, so it aliases neither
                // `a` nor `b`, and its elements do not alias each other. β = 0, so the
                // previous contents of `c` are not read.
                unsafe {
                    $kernel(
                        n,
                        n,
                        n,
                        1.0,
                        a.as_ptr(),
                        stride,
                        1,
                        b.as_ptr(),
                        stride,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        stride,
                        1,
                    );
                }
            }
        }
    };
}

real!(f32, matrixmultiply::sgemm);
real!(f64, matrixmultiply::dgemm);

/// The real groups: every real element type at every thread count.
fn real_groups(c: &mut Criterion) {
    for threads in THREADS {
        real_group::<f32>(c, threads);
        real_group::<f64>(c, threads);
    }
}

/// `gemm/{T}/{threads}`: every size, ours beside the baselines.
fn real_group<T: Real>(c: &mut Criterion, threads: usize) {
    set_num_threads(threads);
    let mut group = c.benchmark_group(format!("gemm/{}/{}", T::NAME, thread_label(threads)));
    static_size::<T, 4>(&mut group, threads);
    static_size::<T, 8>(&mut group, threads);
    static_size::<T, 16>(&mut group, threads);
    for n in HEAP_SIZES {
        let (a, b) = (heap_matrix::<T>(n, n, 1), heap_matrix::<T>(n, n, 2));
        real_size(&mut group, n, threads, (a.as_slice(), b.as_slice()), || {
            black_box(&a).matmul(black_box(&b))
        });
        let mut out = a.matmul(&b);
        group.bench_function(BenchmarkId::new("ours_into", n), |bencher| {
            bencher.iter(|| black_box(&a).matmul_into(black_box(&b), &mut out))
        });
    }
    group.finish();
}

/// Size `N` on inline `Matrix<T, N, N>`, with the handwritten array loop beside the
/// others in the single-threaded group.
fn static_size<T: Real, const N: usize>(group: &mut BenchmarkGroup<'_, WallTime>, threads: usize) {
    let a: Matrix<T, N, N> = inline_tensor(1);
    let b: Matrix<T, N, N> = inline_tensor(2);
    real_size(group, N, threads, (a.as_slice(), b.as_slice()), || black_box(&a).matmul(black_box(&b)));
    if threads == 1 {
        let product = a.matmul(&b);
        let (a, b) = (a.to_array(), b.to_array());
        assert_close("handwritten", N, product.as_slice(), handwritten(&a, &b).as_flattened());
        group.bench_function(BenchmarkId::new("handwritten", N), |bencher| {
            bencher.iter(|| handwritten(black_box(&a), black_box(&b)))
        });
    }
}

/// Size `n` of a real group: `ours` (fluxion's product of the matrices whose elements
/// are `a` and `b`) and raw `gemm`, plus `matrixmultiply` and `naive` (single-threaded
/// baselines) in the single-threaded group.
fn real_size<T: Real, S: Shape, K: Storage<T, S>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    n: usize,
    threads: usize,
    (a, b): (&[T], &[T]),
    mut ours: impl FnMut() -> Tensor<T, S, K>,
) {
    configure(group, n, 2);
    if threads == 1 && n <= CHECK_MAX {
        let product = ours();
        let mut c = vec![T::zero(); n * n];
        T::matrixmultiply(n, a, b, &mut c);
        assert_close("matrixmultiply", n, product.as_slice(), &c);
        naive(n, a, b, &mut c);
        assert_close("naive", n, product.as_slice(), &c);
    }
    ours_and_gemm(group, n, threads, (a, b), ours);
    if threads == 1 {
        let mut c = vec![T::zero(); n * n];
        group.bench_function(BenchmarkId::new("matrixmultiply", n), |bencher| {
            bencher.iter(|| T::matrixmultiply(n, black_box(a), black_box(b), &mut c))
        });
        if n <= NAIVE_MAX {
            group.bench_function(BenchmarkId::new("naive", n), |bencher| {
                bencher.iter(|| naive(n, black_box(a), black_box(b), &mut c))
            });
        }
    }
}

/// `gemm/c64/1thread`: Complex64 products, ours beside raw `gemm`.
fn complex_group(c: &mut Criterion) {
    set_num_threads(1);
    let mut group = c.benchmark_group(format!("gemm/c64/{}", thread_label(1)));
    for n in COMPLEX_SIZES {
        let (a, b) = (heap_matrix::<Complex64>(n, n, 1), heap_matrix::<Complex64>(n, n, 2));
        configure(&mut group, n, 8);
        ours_and_gemm(&mut group, n, 1, (a.as_slice(), b.as_slice()), || black_box(&a).matmul(black_box(&b)));
    }
    group.finish();
}

/// Sets the throughput of size `n` (`flops` floating-point operations per multiply-add)
/// and fewer samples for the slow sizes.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>, n: usize, flops: u64) {
    let n64 = n as u64;
    group.throughput(Throughput::Elements(flops * n64 * n64 * n64));
    group.sample_size(if n >= FEW_SAMPLES_FROM { 10 } else { 100 });
}

/// `ours` and the `gemm` crate on the same n×n operands `a` and `b`.
fn ours_and_gemm<T: Scalar, S: Shape, K: Storage<T, S>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    n: usize,
    threads: usize,
    (a, b): (&[T], &[T]),
    mut ours: impl FnMut() -> Tensor<T, S, K>,
) {
    let parallelism = if threads == 1 { Parallelism::None } else { Parallelism::Rayon(threads) };
    let mut c = vec![T::zero(); n * n];
    if n <= CHECK_MAX {
        raw_gemm(n, a, b, &mut c, parallelism);
        assert_close("gemm", n, ours().as_slice(), &c);
    }
    group.bench_function(BenchmarkId::new("ours", n), |bencher| bencher.iter(&mut ours));
    group.bench_function(BenchmarkId::new("gemm", n), |bencher| {
        bencher.iter(|| raw_gemm(n, black_box(a), black_box(b), &mut c, parallelism))
    });
}

/// Asserts that a `baseline`'s product with inner dimension `n` equals ours up to
/// rounding.
fn assert_close<T: Scalar>(baseline: &str, n: usize, ours: &[T], theirs: &[T]) {
    let tolerance = 8.0 * n as f64 * <T::Real as RealScalar>::epsilon().to_f64();
    let worst = ours.iter().zip(theirs).map(|(&x, &y)| (x - y).abs().to_f64()).fold(0.0, f64::max);
    assert!(
        ours.len() == theirs.len() && worst <= tolerance,
        "{baseline} differs from ours by {worst} (tolerance {tolerance}) at n = {n}"
    );
}

/// The group-name part for a thread count: `1thread`, `2threads`.
fn thread_label(threads: usize) -> String {
    if threads == 1 { "1thread".to_owned() } else { format!("{threads}threads") }
}

/// `c` ← `a`·`b` for row-major n×n matrices, through the `gemm` crate.
fn raw_gemm<T: Scalar>(n: usize, a: &[T], b: &[T], c: &mut [T], parallelism: Parallelism) {
    assert!(a.len() == n * n && b.len() == n * n && c.len() == n * n, "n×n buffers expected");
    let stride = n as isize;
    // SAFETY: `T` is f32, f64, Complex32 or Complex64 (the only `Scalar`s), all of which
    // `gemm` supports. The three buffers hold n·n elements (asserted above) and are read
    // row-major (column stride 1, row stride n), so every offset is in bounds. `c` is
    // borrowed exclusively, so it aliases neither `a` nor `b`. With `read_dst = false`
    // the previous contents of `c` are not read.
    unsafe {
        ::gemm::gemm(
            n,
            n,
            n,
            c.as_mut_ptr(),
            1,
            stride,
            false,
            a.as_ptr(),
            1,
            stride,
            b.as_ptr(),
            1,
            stride,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The textbook i-j-p triple loop on row-major n×n matrices: cᵢⱼ = Σₚ aᵢₚ·bₚⱼ.
fn naive<T: Scalar>(n: usize, a: &[T], b: &[T], c: &mut [T]) {
    for i in 0..n {
        for j in 0..n {
            let mut sum = T::zero();
            for p in 0..n {
                sum += a[i * n + p] * b[p * n + j];
            }
            c[i * n + j] = sum;
        }
    }
}

/// C = A·B on nested arrays in i-p-j order, as one would write it by hand: for a
/// constant `N` the compiler unrolls and vectorises it.
fn handwritten<T: Scalar, const N: usize>(a: &[[T; N]; N], b: &[[T; N]; N]) -> [[T; N]; N] {
    let mut c = [[T::zero(); N]; N];
    for (c_row, a_row) in c.iter_mut().zip(a) {
        for (&a_ip, b_row) in a_row.iter().zip(b) {
            for (c_ij, &b_pj) in c_row.iter_mut().zip(b_row) {
                *c_ij += a_ip * b_pj;
            }
        }
    }
    c
}
