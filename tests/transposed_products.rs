//! `matmul_transposed` (A·Bᵀ) and `transposed_matmul` (Aᵀ·B) against a naive
//! double-precision reference and against the copying forms `a.matmul(&b.transpose())`
//! and `a.transpose().matmul(&b)`, for all four element types, at static inline, static
//! heap, dynamic and mixed shapes, on the plain loop and on the `gemm` crate's
//! multi-threaded kernel; their pullbacks against the copying forms' in both write
//! modes, directly and through the tape.

mod common;

use common::{TestRng, assert_all_close, assert_matmul_close, eps_of};
use fluxion::autodiff::{Var, grad};
use fluxion::backend::cpu::Write;
use fluxion::prelude::*;

/// Relative tolerance for a sum of `k` products (as in `tests/products.rs`): about
/// 1e-12 for f64 at k = 784.
fn sum_rtol<T: Scalar>(k: usize) -> f64 {
    (2 * k + 8) as f64 * eps_of::<T>()
}

/// The row-major transpose of a row-major `rows`×`cols` matrix.
fn transpose_of<T: Copy>(data: &[T], (rows, cols): (usize, usize)) -> Vec<T> {
    (0..rows * cols).map(|flat| data[(flat % rows) * cols + flat / rows]).collect()
}

fn dmatrix<T: Scalar>((rows, cols): (usize, usize), data: &[T]) -> DMatrix<T> {
    DMatrix::from_shape_slice((Dyn(rows), Dyn(cols)), data).unwrap()
}

/// Both products on dynamic (m, k, n): values, the `_into` forms, and the pullbacks.
fn dynamic_case<T: Scalar>((m, k, n): (usize, usize, usize), seed: u64) {
    let mut rng = TestRng::new(seed);
    let rtol = sum_rtol::<T>(k);

    // A·Bᵀ, A: m×k, B: n×k.
    let (a, b) = (rng.elements::<T>(m * k), rng.elements::<T>(n * k));
    let (am, bm) = (dmatrix((m, k), &a), dmatrix((n, k), &b));
    let c = am.matmul_transposed(&bm);
    assert_eq!(c.dims().as_slice(), &[m, n]);
    assert_matmul_close(c.as_slice(), &a, &transpose_of(&b, (n, k)), (m, k, n), rtol);
    assert_all_close(c.as_slice(), am.matmul(&bm.transpose()).as_slice(), rtol);
    let mut out = DMatrix::full_shaped((Dyn(m), Dyn(n)), T::one());
    am.matmul_transposed_into(&bm, &mut out);
    assert_eq!(out.as_slice(), c.as_slice());

    // Aᵀ·B, A: k×m, B: k×n.
    let (a, b) = (rng.elements::<T>(k * m), rng.elements::<T>(k * n));
    let (am, bm) = (dmatrix((k, m), &a), dmatrix((k, n), &b));
    let c = am.transposed_matmul(&bm);
    assert_eq!(c.dims().as_slice(), &[m, n]);
    assert_matmul_close(c.as_slice(), &transpose_of(&a, (k, m)), &b, (m, k, n), rtol);
    assert_all_close(c.as_slice(), am.transpose().matmul(&bm).as_slice(), rtol);
    let mut out = DMatrix::full_shaped((Dyn(m), Dyn(n)), T::one());
    am.transposed_matmul_into(&bm, &mut out);
    assert_eq!(out.as_slice(), c.as_slice());

    pullbacks::<T>((m, k, n), seed + 1);
}

/// The pullbacks against those of the copying forms, which are `matmul`'s: for
/// Y = A·Bᵀ, (Ā, B̄ᵀ) is the pullback of A·C at C = Bᵀ; for Y = Aᵀ·B, (Āᵀ, B̄) is the
/// pullback of C·B at C = Aᵀ. Each cotangent is written over a buffer of ones
/// (`Overwrite`), then added to a buffer of twos (`Accumulate`).
fn pullbacks<T: Scalar>((m, k, n): (usize, usize, usize), seed: u64) {
    let mut rng = TestRng::new(seed);
    let rtol = sum_rtol::<T>(m.max(k).max(n));
    let y_bar = dmatrix((m, n), &rng.elements::<T>(m * n));
    let two = T::one() + T::one();
    let check = |expected: &DMatrix<T>, compute: &dyn Fn(&mut DMatrix<T>, Write)| {
        let mut overwritten = DMatrix::full_shaped(expected.shape(), T::one());
        compute(&mut overwritten, Write::Overwrite);
        assert_all_close(overwritten.as_slice(), expected.as_slice(), rtol);
        let mut accumulated = DMatrix::full_shaped(expected.shape(), two);
        compute(&mut accumulated, Write::Accumulate);
        let plus_two: Vec<T> = expected.iter().map(|&x| x + two).collect();
        assert_all_close(accumulated.as_slice(), &plus_two, rtol);
    };

    let (a, b) = (dmatrix((m, k), &rng.elements::<T>(m * k)), dmatrix((n, k), &rng.elements::<T>(n * k)));
    let b_t = b.transpose();
    let (mut a_bar, mut b_t_bar) = (a.clone(), b_t.clone());
    a.matmul_pullback(
        &b_t,
        &y_bar,
        Some((&mut a_bar, Write::Overwrite)),
        Some((&mut b_t_bar, Write::Overwrite)),
    );
    check(&a_bar, &|out, write| a.matmul_transposed_pullback(&b, &y_bar, Some((out, write)), None));
    check(&b_t_bar.transpose(), &|out, write| {
        a.matmul_transposed_pullback(&b, &y_bar, None, Some((out, write)))
    });

    let (a, b) = (dmatrix((k, m), &rng.elements::<T>(k * m)), dmatrix((k, n), &rng.elements::<T>(k * n)));
    let a_t = a.transpose();
    let (mut a_t_bar, mut b_bar) = (a_t.clone(), b.clone());
    a_t.matmul_pullback(
        &b,
        &y_bar,
        Some((&mut a_t_bar, Write::Overwrite)),
        Some((&mut b_bar, Write::Overwrite)),
    );
    check(&a_t_bar.transpose(), &|out, write| {
        a.transposed_matmul_pullback(&b, &y_bar, Some((out, write)), None)
    });
    check(&b_bar, &|out, write| a.transposed_matmul_pullback(&b, &y_bar, None, Some((out, write))));
}

/// Both products on static shapes, inline and heap, and with a dynamic batch (the rows
/// of a `Linear` layer's input) against static `[out, in]` weights.
fn static_case<T: Scalar, const M: usize, const K: usize, const N: usize>(seed: u64) {
    let mut rng = TestRng::new(seed);
    let rtol = sum_rtol::<T>(K);
    let (a, b) = (rng.elements::<T>(M * K), rng.elements::<T>(N * K));
    let am: Matrix<T, M, K> = Matrix::from_shape_slice(Default::default(), &a).unwrap();
    let bm: Matrix<T, N, K> = Matrix::from_shape_slice(Default::default(), &b).unwrap();
    let c: Matrix<T, M, N> = am.matmul_transposed(&bm);
    assert_matmul_close(c.as_slice(), &a, &transpose_of(&b, (N, K)), (M, K, N), rtol);
    assert_all_close(c.as_slice(), am.matmul(&bm.transpose()).as_slice(), rtol);
    let (ah, bh): (Matrix<T, M, K, Heap>, Matrix<T, N, K, Heap>) = (am.to_storage(), bm.to_storage());
    let ch: Matrix<T, M, N, Heap> = ah.try_matmul_transposed(&bh).unwrap();
    assert_eq!(ch.as_slice(), c.as_slice());
    let batch = Tensor::<T, (Dyn, Const<K>), Heap>::from_shape_slice((Dyn(M), Const), &a).unwrap();
    let cb: Tensor<T, (Dyn, Const<N>), Heap> = batch.matmul_transposed(&bh);
    assert_eq!(cb.as_slice(), c.as_slice());

    // Aᵀ·B with A: K×M (the transpose of `am`'s data read as K×M) and B: K×N.
    let (a, b) = (rng.elements::<T>(K * M), rng.elements::<T>(K * N));
    let am: Matrix<T, K, M> = Matrix::from_shape_slice(Default::default(), &a).unwrap();
    let bm: Matrix<T, K, N> = Matrix::from_shape_slice(Default::default(), &b).unwrap();
    let c: Matrix<T, M, N> = am.transposed_matmul(&bm);
    assert_matmul_close(c.as_slice(), &transpose_of(&a, (K, M)), &b, (M, K, N), rtol);
    assert_all_close(c.as_slice(), am.transpose().matmul(&bm).as_slice(), rtol);
    let (ah, bh): (Matrix<T, K, M, Heap>, Matrix<T, K, N, Heap>) = (am.to_storage(), bm.to_storage());
    let ch: Matrix<T, M, N, Heap> = ah.try_transposed_matmul(&bh).unwrap();
    assert_eq!(ch.as_slice(), c.as_slice());
}

macro_rules! transposed_product_tests {
    ($($module:ident: $t:ty),*) => {$(
        mod $module {
            use super::*;

            #[test]
            fn small_static() {
                static_case::<$t, 2, 3, 4>(1);
                static_case::<$t, 1, 6, 32>(2);
                static_case::<$t, 5, 1, 2>(3);
                static_case::<$t, 1, 1, 1>(4);
                static_case::<$t, 16, 16, 16>(5);
            }

            #[test]
            fn large_static_uses_gemm() {
                static_case::<$t, 17, 16, 16>(6);
                static_case::<$t, 40, 50, 30>(7);
            }

            #[test]
            fn small_dynamic() {
                dynamic_case::<$t>((3, 2, 5), 10);
                dynamic_case::<$t>((1, 1, 1), 11);
                dynamic_case::<$t>((6, 1, 2), 12);
                dynamic_case::<$t>((2, 7, 9), 13);
            }

            #[test]
            fn large_dynamic_uses_gemm() {
                dynamic_case::<$t>((40, 50, 30), 14);
                dynamic_case::<$t>((33, 65, 17), 15);
                dynamic_case::<$t>((1, 5000, 1), 16);
                dynamic_case::<$t>((70, 1, 80), 17);
                dynamic_case::<$t>((128, 256, 10), 18);
            }
        }
    )*};
}

transposed_product_tests!(f32_products: f32, f64_products: f64, c32_products: Complex32, c64_products: Complex64);

/// An MLP layer's sizes (batch 128, 784 inputs, 256 outputs): far above gemm's
/// threading threshold, so the multi-threaded kernel runs, with the thread setting at
/// its default (every thread) and at one thread.
fn mlp_sized<T: Scalar>(seed: u64) {
    let (m, k, n) = (128, 784, 256);
    let mut rng = TestRng::new(seed);
    let rtol = sum_rtol::<T>(k);
    let (x, w) = (rng.elements::<T>(m * k), rng.elements::<T>(n * k));
    let (xm, wm) = (dmatrix((m, k), &x), dmatrix((n, k), &w));
    let copied = xm.matmul(&wm.transpose());
    let y = xm.matmul_transposed(&wm);
    assert_all_close(y.as_slice(), copied.as_slice(), rtol);
    assert_matmul_close(y.as_slice(), &x, &transpose_of(&w, (n, k)), (m, k, n), rtol);
    fluxion::backend::cpu::set_num_threads(1);
    let single = xm.matmul_transposed(&wm);
    fluxion::backend::cpu::set_num_threads(0);
    assert_all_close(single.as_slice(), y.as_slice(), rtol);
    // The weight gradient's form: Xᵀ·Ȳ with X: 128×784 and Ȳ: 128×256.
    let y_bar = dmatrix((m, n), &rng.elements::<T>(m * n));
    let w_bar = y_bar.transposed_matmul(&xm);
    assert_eq!(w_bar.dims().as_slice(), &[n, k]);
    assert_all_close(w_bar.as_slice(), y_bar.transpose().matmul(&xm).as_slice(), sum_rtol::<T>(m));
    pullbacks::<T>((m, k, n), seed + 1);
}

#[test]
fn f32_mlp_sized_products_match_the_copying_forms() {
    mlp_sized::<f32>(40);
}

#[test]
fn f64_mlp_sized_products_match_the_copying_forms() {
    mlp_sized::<f64>(41);
}

#[test]
fn by_hand_including_complex_without_conjugation() {
    let a: Matrix<f64, 2, 2> = Matrix::from_array([[1., 2.], [3., 4.]]);
    let swap: Matrix<f64, 2, 2> = Matrix::from_array([[0., 1.], [1., 0.]]);
    let upper: Matrix<f64, 2, 2> = Matrix::from_array([[1., 1.], [0., 1.]]);
    // A·Sᵀ = A·S swaps columns; Sᵀ·A = S·A swaps rows.
    assert_eq!(a.matmul_transposed(&swap).to_array(), [[2., 1.], [4., 3.]]);
    assert_eq!(swap.transposed_matmul(&a).to_array(), [[3., 4.], [1., 2.]]);
    // A·Uᵀ: row i of A dotted with rows (1, 1) and (0, 1) of U.
    assert_eq!(a.matmul_transposed(&upper).to_array(), [[3., 2.], [7., 4.]]);
    // Uᵀ·A = [[1, 0], [1, 1]]·A.
    assert_eq!(upper.transposed_matmul(&a).to_array(), [[1., 2.], [4., 6.]]);
    let c = Complex64::new;
    let z: Matrix<Complex64, 1, 2> = Matrix::from_array([[c(0., 1.), c(1., 1.)]]);
    let w: Matrix<Complex64, 1, 2> = Matrix::from_array([[c(0., 1.), c(1., -1.)]]);
    // i·i + (1+i)(1−i) = −1 + 2 = 1: the transpose is not conjugated.
    assert_eq!(z.matmul_transposed(&w).to_array(), [[c(1., 0.)]]);
    assert_eq!(z.transpose().transposed_matmul(&w.transpose()).to_array(), [[c(1., 0.)]]);
}

#[test]
fn empty_dimensions() {
    let a = DMatrix::<f64>::ones_shaped((Dyn(2), Dyn(0)));
    let b = DMatrix::<f64>::ones_shaped((Dyn(3), Dyn(0)));
    let c = a.matmul_transposed(&b);
    assert_eq!(c.dims().as_slice(), &[2, 3]);
    assert!(c.iter().all(|&x| x == 0.0));
    let c = a.transpose().transposed_matmul(&b.transpose());
    assert_eq!(c.dims().as_slice(), &[2, 3]);
    assert!(c.iter().all(|&x| x == 0.0));
    let empty_rows = DMatrix::<f64>::ones_shaped((Dyn(0), Dyn(4)));
    assert_eq!(
        empty_rows.matmul_transposed(&DMatrix::ones_shaped((Dyn(3), Dyn(4)))).dims().as_slice(),
        &[0, 3]
    );
}

/// On the tape: the gradients of both products equal those of the copying forms at an
/// MLP layer's sizes, with a plain (constant) operand too.
#[test]
fn tape_gradients_match_the_copying_forms_at_mlp_sizes() {
    type Batch = Tensor<f32, (Dyn, Const<784>), Heap>;
    type Weights = Matrix<f32, 256, 784, Heap>;
    let mut rng = TestRng::new(50);
    let x = Batch::from_shape_slice((Dyn(128), Const), &rng.elements::<f32>(128 * 784)).unwrap();
    let w = Weights::from_shape_slice(Default::default(), &rng.elements::<f32>(256 * 784)).unwrap();
    let probe: Matrix<f32, 128, 256, Heap> = Matrix::random_uniform(-1.0, 1.0, 51);
    let probe = Tensor::<f32, (Dyn, Const<256>), Heap>::from_shape_slice((Dyn(128), Const), probe.as_slice())
        .unwrap();
    let loss = |y: Var<Tensor<f32, (Dyn, Const<256>), Heap>>| y.hadamard(&Var::constant(probe.clone())).sum();
    let rtol = sum_rtol::<f32>(784);

    let (gx, gw) =
        grad(|(x, w): (Var<Batch>, Var<Weights>)| loss(x.matmul_transposed(&w)), &(x.clone(), w.clone()));
    let (cx, cw) =
        grad(|(x, w): (Var<Batch>, Var<Weights>)| loss(x.matmul(&w.transpose())), &(x.clone(), w.clone()));
    assert_all_close(gx.as_slice(), cx.as_slice(), rtol);
    assert_all_close(gw.as_slice(), cw.as_slice(), sum_rtol::<f32>(128));
    // A plain tensor on the right takes part as a constant.
    let gx_only = grad(|x: Var<Batch>| loss(x.matmul_transposed(&w)), &x);
    assert_eq!(gx_only.as_slice(), gx.as_slice());

    // Xᵀ·P (784×256) for X: 128×784 and P: 128×256, the form of a weight gradient.
    let (gx, gp) = grad(
        |(x, p): (Var<Batch>, Var<Tensor<f32, (Dyn, Const<256>), Heap>>)| x.transposed_matmul(&p).sum(),
        &(x.clone(), probe.clone()),
    );
    let (cx, cp) = grad(
        |(x, p): (Var<Batch>, Var<Tensor<f32, (Dyn, Const<256>), Heap>>)| x.transpose().matmul(&p).sum(),
        &(x, probe),
    );
    assert_all_close(gx.as_slice(), cx.as_slice(), sum_rtol::<f32>(256));
    assert_all_close(gp.as_slice(), cp.as_slice(), rtol);
}
