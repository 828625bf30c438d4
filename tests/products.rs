//! Products (`dot`, `inner`, `dotu`, `hadamard`, `outer`, `kron`, `matmul`) against naive
//! reference computations in double precision, for all four element types, at small
//! static sizes (plain loop) and at sizes above 16³ multiply-adds (the `gemm` crate).

mod common;

use common::{TestRng, assert_all_close, assert_close, assert_matmul_close, eps_of, to_c64};
use fluxion::prelude::*;

/// Relative tolerance for a sum of `k` products: the forward-error bound γₖ ≈ k·ε
/// of the tested type, doubled for the reference's own rounding and complex products.
fn sum_rtol<T: Scalar>(k: usize) -> f64 {
    (2 * k + 8) as f64 * eps_of::<T>()
}

/// Σ op(aᵢ)·bᵢ in double precision, conjugating the left when `conjugate` is set.
fn naive_sum_of_products<T: Scalar>(a: &[T], b: &[T], conjugate: bool) -> Complex64 {
    a.iter().zip(b).map(|(&x, &y)| if conjugate { to_c64(x).conj() } else { to_c64(x) } * to_c64(y)).sum()
}

/// Asserts a scalar against a double-precision reference, relative to Σ|aᵢ||bᵢ|.
#[track_caller]
fn assert_sum_close<T: Scalar>(actual: T, expected: Complex64, a: &[T], b: &[T]) {
    let magnitude: f64 = a.iter().zip(b).map(|(&x, &y)| to_c64(x).norm() * to_c64(y).norm()).sum();
    let error = (to_c64(actual) - expected).norm();
    assert!(error <= sum_rtol::<T>(a.len()) * magnitude, "got {actual}, expected {expected}");
}

/// Static-shape matrix × matrix and matrix × vector, inline and heap.
fn static_matmul<T: Scalar, const M: usize, const K: usize, const N: usize>(seed: u64) {
    let mut rng = TestRng::new(seed);
    let (a, b, x) = (rng.elements::<T>(M * K), rng.elements::<T>(K * N), rng.elements::<T>(K));
    let rtol = sum_rtol::<T>(K);

    let am: Matrix<T, M, K> = Matrix::from_shape_slice(Default::default(), &a).unwrap();
    let bm: Matrix<T, K, N> = Matrix::from_shape_slice(Default::default(), &b).unwrap();
    let xv: Vector<T, K> = Vector::from_shape_slice(Default::default(), &x).unwrap();
    let c: Matrix<T, M, N> = am.matmul(&bm);
    assert_matmul_close(c.as_slice(), &a, &b, (M, K, N), rtol);
    let y: Vector<T, M> = am.matmul(&xv);
    assert_matmul_close(y.as_slice(), &a, &x, (M, K, 1), rtol);

    let ah: Matrix<T, M, K, Heap> = am.to_storage();
    let bh: Matrix<T, K, N, Heap> = bm.to_storage();
    let xh: Vector<T, K, Heap> = xv.to_storage();
    let ch: Matrix<T, M, N, Heap> = ah.matmul(&bh);
    assert_matmul_close(ch.as_slice(), &a, &b, (M, K, N), rtol);
    let yh: Vector<T, M, Heap> = ah.try_matmul(&xh).unwrap();
    assert_matmul_close(yh.as_slice(), &a, &x, (M, K, 1), rtol);
}

/// Dynamic-shape matrix × matrix, matrix × vector and a mixed static/dynamic product.
fn dynamic_matmul<T: Scalar>((m, k, n): (usize, usize, usize), seed: u64) {
    let mut rng = TestRng::new(seed);
    let (a, b, x) = (rng.elements::<T>(m * k), rng.elements::<T>(k * n), rng.elements::<T>(k));
    let rtol = sum_rtol::<T>(k);

    let am = DMatrix::from_shape_slice((Dyn(m), Dyn(k)), &a).unwrap();
    let bm = DMatrix::from_shape_slice((Dyn(k), Dyn(n)), &b).unwrap();
    let c: DMatrix<T> = am.matmul(&bm);
    assert_eq!(c.dims().as_slice(), &[m, n]);
    assert_matmul_close(c.as_slice(), &a, &b, (m, k, n), rtol);

    let xv = DVector::from_shape_slice((Dyn(k),), &x).unwrap();
    let y: DVector<T> = am.matmul(&xv);
    assert_eq!(y.dims().as_slice(), &[m]);
    assert_matmul_close(y.as_slice(), &a, &x, (m, k, 1), rtol);
}

/// Batched [B, M, K]×[B, K, N] on dynamic shapes, each batch entry against the naive
/// product of its slices.
fn dynamic_batched<T: Scalar>((batch, m, k, n): (usize, usize, usize, usize), seed: u64) {
    let mut rng = TestRng::new(seed);
    let (a, b) = (rng.elements::<T>(batch * m * k), rng.elements::<T>(batch * k * n));
    let at = Tensor::<T, (Dyn, Dyn, Dyn), Heap>::from_shape_slice((Dyn(batch), Dyn(m), Dyn(k)), &a).unwrap();
    let bt = Tensor::<T, (Dyn, Dyn, Dyn), Heap>::from_shape_slice((Dyn(batch), Dyn(k), Dyn(n)), &b).unwrap();
    let c = at.matmul(&bt);
    assert_eq!(c.dims().as_slice(), &[batch, m, n]);
    for p in 0..batch {
        assert_matmul_close(
            &c.as_slice()[p * m * n..(p + 1) * m * n],
            &a[p * m * k..(p + 1) * m * k],
            &b[p * k * n..(p + 1) * k * n],
            (m, k, n),
            sum_rtol::<T>(k),
        );
    }
}

/// A batch by one matrix, [B, M, K]×[K, N] on dynamic shapes: each batch entry
/// against the naive product of its slice by the one matrix; a dynamic inner
/// mismatch names both shapes.
fn dynamic_batch_by_matrix<T: Scalar>((batch, m, k, n): (usize, usize, usize, usize), seed: u64) {
    let mut rng = TestRng::new(seed);
    let (a, b) = (rng.elements::<T>(batch * m * k), rng.elements::<T>(k * n));
    let at = Tensor::<T, (Dyn, Dyn, Dyn), Heap>::from_shape_slice((Dyn(batch), Dyn(m), Dyn(k)), &a).unwrap();
    let bm = DMatrix::from_shape_slice((Dyn(k), Dyn(n)), &b).unwrap();
    let c = at.matmul(&bm);
    assert_eq!(c.dims().as_slice(), &[batch, m, n]);
    for p in 0..batch {
        let entry = &c.as_slice()[p * m * n..(p + 1) * m * n];
        assert_matmul_close(entry, &a[p * m * k..(p + 1) * m * k], &b, (m, k, n), sum_rtol::<T>(k));
    }
    let error = at.try_matmul(&DMatrix::<T>::zeros_shaped((Dyn(k + 1), Dyn(n)))).unwrap_err();
    let expected = format!("matmul: shapes [{batch}, {m}, {k}] and [{}, {n}] are incompatible", k + 1);
    assert!(error.to_string().starts_with(&expected), "{error}");
}

/// Static batched product, inline storage.
fn static_batched<T: Scalar, const B: usize, const M: usize, const K: usize, const N: usize>(seed: u64) {
    let mut rng = TestRng::new(seed);
    let (a, b) = (rng.elements::<T>(B * M * K), rng.elements::<T>(B * K * N));
    let at: Tensor3<T, B, M, K> = Tensor3::from_shape_slice(Default::default(), &a).unwrap();
    let bt: Tensor3<T, B, K, N> = Tensor3::from_shape_slice(Default::default(), &b).unwrap();
    let c: Tensor3<T, B, M, N> = at.matmul(&bt);
    for p in 0..B {
        assert_matmul_close(
            &c.as_slice()[p * M * N..(p + 1) * M * N],
            &a[p * M * K..(p + 1) * M * K],
            &b[p * K * N..(p + 1) * K * N],
            (M, K, N),
            sum_rtol::<T>(K),
        );
    }
}

/// `hadamard`, `outer`, `dotu` and `inner` for any element type.
fn products_of_vectors<T: Scalar>(seed: u64) {
    let mut rng = TestRng::new(seed);
    let (a, b, c) = (rng.elements::<T>(6), rng.elements::<T>(6), rng.elements::<T>(4));

    let am: Matrix<T, 2, 3> = Matrix::from_shape_slice(Default::default(), &a).unwrap();
    let bm: Matrix<T, 2, 3> = Matrix::from_shape_slice(Default::default(), &b).unwrap();
    let h = am.hadamard(&bm);
    let expected: Vec<T> = a.iter().zip(&b).map(|(&x, &y)| x * y).collect();
    assert_eq!(h.as_slice(), &expected[..]);
    let hd = DMatrix::from_shape_slice((Dyn(3), Dyn(2)), &a)
        .unwrap()
        .try_hadamard(&DMatrix::from_shape_slice((Dyn(3), Dyn(2)), &b).unwrap())
        .unwrap();
    assert_eq!(hd.as_slice(), &expected[..]);

    // Σ over all elements of a matrix, unconjugated and conjugated.
    assert_sum_close(am.dotu(&bm), naive_sum_of_products(&a, &b, false), &a, &b);
    assert_sum_close(am.inner(&bm), naive_sum_of_products(&a, &b, true), &a, &b);

    // Outer product of a 6-vector and a 4-vector: (a ⊗ c)ᵢⱼ = aᵢcⱼ, never conjugated.
    let av: Vector<T, 6> = Vector::from_shape_slice(Default::default(), &a).unwrap();
    let cv: Vector<T, 4> = Vector::from_shape_slice(Default::default(), &c).unwrap();
    let o: Matrix<T, 6, 4> = av.outer(&cv);
    let od = DVector::from_shape_slice((Dyn(6),), &a)
        .unwrap()
        .outer(&DVector::from_shape_slice((Dyn(4),), &c).unwrap());
    assert_eq!(od.dims().as_slice(), &[6, 4]);
    for i in 0..6 {
        for j in 0..4 {
            assert_eq!(o[[i, j]], a[i] * c[j]);
            assert_eq!(od[[i, j]], a[i] * c[j]);
        }
    }
    // Outer with a 1-vector is a column; its transpose a row.
    let one: Vector<T, 1> = Vector::from_array([c[0]]);
    let column: Matrix<T, 6, 1> = av.outer(&one);
    let row: Matrix<T, 1, 6> = one.outer(&av);
    for i in 0..6 {
        assert_eq!(column[[i, 0]], a[i] * c[0]);
        assert_eq!(row[[0, i]], c[0] * a[i]);
    }
}

macro_rules! product_tests {
    ($($module:ident: $t:ty),*) => {$(
        mod $module {
            use super::*;

            #[test]
            fn small_static_matmul() {
                static_matmul::<$t, 2, 3, 4>(1);
                static_matmul::<$t, 4, 4, 4>(2);
                static_matmul::<$t, 5, 2, 1>(3);
                static_matmul::<$t, 1, 7, 3>(4);
                static_matmul::<$t, 3, 1, 5>(5);
                static_matmul::<$t, 1, 1, 1>(6);
                static_matmul::<$t, 16, 16, 16>(7);
            }

            #[test]
            fn large_static_heap_matmul_uses_gemm() {
                // 40·50·30 = 60 000 multiply-adds, far above the 16³ threshold.
                static_matmul::<$t, 40, 50, 30>(8);
                // Just above the threshold: 17·16·16.
                static_matmul::<$t, 17, 16, 16>(9);
            }

            #[test]
            fn small_dynamic_matmul() {
                dynamic_matmul::<$t>((3, 2, 5), 10);
                dynamic_matmul::<$t>((1, 1, 1), 11);
                dynamic_matmul::<$t>((6, 1, 2), 12);
            }

            #[test]
            fn large_dynamic_matmul_uses_gemm() {
                dynamic_matmul::<$t>((40, 50, 30), 13);
                dynamic_matmul::<$t>((30, 50, 40), 14);
                // 1-sized dimensions on the gemm path.
                dynamic_matmul::<$t>((1, 5000, 1), 15);
                dynamic_matmul::<$t>((1, 64, 100), 16);
                dynamic_matmul::<$t>((70, 1, 80), 17);
                dynamic_matmul::<$t>((100, 50, 1), 18);
                // Sizes around typical register-block edges.
                dynamic_matmul::<$t>((33, 65, 17), 19);
            }

            #[test]
            fn batched_matmul() {
                static_batched::<$t, 2, 3, 4, 5>(20);
                static_batched::<$t, 1, 2, 2, 2>(21);
                static_batched::<$t, 3, 1, 4, 1>(22);
                dynamic_batched::<$t>((4, 2, 3, 2), 23);
                // 20·15·25 = 7500 multiply-adds per batch entry: gemm for each.
                dynamic_batched::<$t>((3, 20, 15, 25), 24);
                dynamic_batched::<$t>((2, 1, 4096, 2), 25);
            }

            #[test]
            fn batch_by_one_matrix() {
                dynamic_batch_by_matrix::<$t>((3, 2, 4, 5), 27);
                // 4·20 rows × 15 × 25: one gemm product for the whole batch.
                dynamic_batch_by_matrix::<$t>((4, 20, 15, 25), 28);
                let mut rng = TestRng::new(29);
                let (a, b) = (rng.elements::<$t>(2 * 3 * 4), rng.elements::<$t>(4 * 2));
                let at: Tensor3<$t, 2, 3, 4> = Tensor3::from_shape_slice(Default::default(), &a).unwrap();
                let bm: Matrix<$t, 4, 2> = Matrix::from_shape_slice(Default::default(), &b).unwrap();
                let c: Tensor3<$t, 2, 3, 2> = at.matmul(&bm);
                assert_matmul_close(c.as_slice(), &a, &b, (6, 4, 2), sum_rtol::<$t>(4));
            }

            #[test]
            fn mixed_static_and_dynamic_matmul() {
                let mut rng = TestRng::new(26);
                let (a, b) = (rng.elements::<$t>(45 * 50), rng.elements::<$t>(50 * 30));
                let am = Tensor::<$t, (Dyn, Const<50>), Heap>::from_shape_slice((Dyn(45), Const), &a).unwrap();
                let bm: Matrix<$t, 50, 30, Heap> = Matrix::from_shape_slice(Default::default(), &b).unwrap();
                let c: Tensor<$t, (Dyn, Const<30>), Heap> = am.matmul(&bm);
                assert_eq!(c.dims().as_slice(), &[45, 30]);
                assert_matmul_close(c.as_slice(), &a, &b, (45, 50, 30), sum_rtol::<$t>(50));
            }

            #[test]
            fn hadamard_outer_dotu_inner() {
                products_of_vectors::<$t>(27);
            }

            #[test]
            fn inner_is_conjugate_symmetric_and_positive() {
                let mut rng = TestRng::new(28);
                let (a, b) = (rng.elements::<$t>(7), rng.elements::<$t>(7));
                let av = DVector::from_shape_slice((Dyn(7),), &a).unwrap();
                let bv = DVector::from_shape_slice((Dyn(7),), &b).unwrap();
                let rtol = sum_rtol::<$t>(7);
                assert_close(av.inner(&bv), bv.inner(&av).conj(), rtol);
                // ⟨a, a⟩ = Σ|aᵢ|² is real and positive.
                let norm = av.inner(&av);
                assert_eq!(norm.im(), 0.0);
                assert!(norm.re() > 0.0);
                let expected: f64 = a.iter().map(|&x| to_c64(x).norm_sqr()).sum();
                assert_close(to_c64(norm).re, expected, rtol);
                // Conjugate-linear in the left argument, linear in the right.
                let s: $t = common::from_c64(Complex64::new(0.5, -2.0));
                let (sa, sb) = (av.scale(s), bv.scale(s));
                assert_close(sa.inner(&bv), s.conj() * av.inner(&bv), rtol);
                assert_close(av.inner(&sb), s * av.inner(&bv), rtol);
                // inner(a, b) = dotu(conj(a), b) and dotu is symmetric.
                assert_close(av.inner(&bv), av.conj().dotu(&bv), rtol);
                assert_close(av.dotu(&bv), bv.dotu(&av), rtol);
            }
        }
    )*};
}

product_tests!(f32_products: f32, f64_products: f64, c32_products: Complex32, c64_products: Complex64);

#[test]
fn dot_is_the_real_sum_of_products() {
    let x: Vector<f64, 3> = Vector::from_array([1., 2., 3.]);
    let y: Vector<f64, 3> = Vector::from_array([4., -5., 6.]);
    assert_eq!(x.dot(&y), 4. - 10. + 18.);
    let m: Matrix<f32, 2, 2> = Matrix::from_array([[1., 2.], [3., 4.]]);
    assert_eq!(m.dot(&m), 1. + 4. + 9. + 16.);
    for seed in 0..4 {
        let mut rng = TestRng::new(100 + seed);
        let (a, b) = (rng.elements::<f64>(50), rng.elements::<f64>(50));
        let av = DVector::from_shape_slice((Dyn(50),), &a).unwrap();
        let bv = DVector::from_shape_slice((Dyn(50),), &b).unwrap();
        assert_sum_close(av.dot(&bv), naive_sum_of_products(&a, &b, false), &a, &b);
        assert_eq!(av.try_dot(&bv).unwrap(), av.dot(&bv));
        // On real data dot, inner and dotu are the same sum.
        assert_eq!(av.dot(&bv), av.inner(&bv));
        assert_eq!(av.dot(&bv), av.dotu(&bv));
        let (a32, b32): (Vec<f32>, Vec<f32>) = (rng.elements(50), rng.elements(50));
        let av32 = DVector::from_shape_slice((Dyn(50),), &a32).unwrap();
        let bv32 = DVector::from_shape_slice((Dyn(50),), &b32).unwrap();
        assert_sum_close(av32.dot(&bv32), naive_sum_of_products(&a32, &b32, false), &a32, &b32);
    }
}

#[test]
fn complex_inner_and_dotu_by_hand() {
    let c = Complex64::new;
    let a: Vector<Complex64, 2> = Vector::from_array([c(1., 2.), c(3., -1.)]);
    let b: Vector<Complex64, 2> = Vector::from_array([c(0., 1.), c(2., 2.)]);
    // ⟨a, b⟩ = (1−2i)(i) + (3+i)(2+2i) = (2+i) + (4+8i) = 6+9i.
    assert_eq!(a.inner(&b), c(6., 9.));
    assert_eq!(b.inner(&a), c(6., -9.));
    // dotu(a, b) = (1+2i)(i) + (3−i)(2+2i) = (−2+i) + (8+4i) = 6+5i.
    assert_eq!(a.dotu(&b), c(6., 5.));
    assert_eq!(b.dotu(&a), c(6., 5.));
    let m: Matrix<Complex64, 1, 2> = Matrix::from_array([[c(1., 2.), c(3., -1.)]]);
    // ⟨m, m⟩ = |1+2i|² + |3−i|² = 5 + 10.
    assert_eq!(m.inner(&m), c(15., 0.));
}

#[test]
fn matmul_by_hand_including_complex() {
    let a: Matrix<f64, 2, 2> = Matrix::from_array([[1., 2.], [3., 4.]]);
    let b: Matrix<f64, 2, 2> = Matrix::from_array([[0., 1.], [1., 0.]]);
    // Right-multiplying by the swap matrix swaps columns; left-multiplying swaps rows.
    assert_eq!(a.matmul(&b).to_array(), [[2., 1.], [4., 3.]]);
    assert_eq!(b.matmul(&a).to_array(), [[3., 4.], [1., 2.]]);
    let c = Complex64::new;
    let z: Matrix<Complex64, 1, 2> = Matrix::from_array([[c(0., 1.), c(1., 1.)]]);
    let w: Matrix<Complex64, 2, 1> = Matrix::from_array([[c(0., 1.)], [c(1., -1.)]]);
    // i·i + (1+i)(1−i) = −1 + 2 = 1: matmul does not conjugate.
    assert_eq!(z.matmul(&w).to_array(), [[c(1., 0.)]]);
}

#[test]
fn matmul_with_an_empty_inner_dimension_is_zero() {
    let a = DMatrix::<f64>::zeros_shaped((Dyn(2), Dyn(0)));
    let b = DMatrix::<f64>::zeros_shaped((Dyn(0), Dyn(3)));
    let c = a.matmul(&b);
    assert_eq!(c.dims().as_slice(), &[2, 3]);
    assert!(c.iter().all(|&x| x == 0.0));
    let v = DVector::<f64>::zeros_shaped((Dyn(0),));
    assert_eq!(a.matmul(&v).to_vec(), vec![0.0, 0.0]);
}

/// Held by the tests that change the global thread setting, so that they do not
/// race (the tests of one file run on parallel threads).
static THREAD_SETTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn gemm_results_do_not_depend_on_the_thread_setting() {
    let _setting = THREAD_SETTING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut rng = TestRng::new(29);
    // Above the size from which products are split across threads.
    let (m, k, n) = (256, 160, 256);
    let (a, b) = (rng.elements::<f64>(m * k), rng.elements::<f64>(k * n));
    let am = DMatrix::from_shape_slice((Dyn(m), Dyn(k)), &a).unwrap();
    let bm = DMatrix::from_shape_slice((Dyn(k), Dyn(n)), &b).unwrap();
    fluxion::backend::cpu::set_num_threads(1);
    assert_eq!(fluxion::backend::cpu::num_threads(), 1);
    let single = am.matmul(&bm);
    fluxion::backend::cpu::set_num_threads(0);
    let multi = am.matmul(&bm);
    assert_matmul_close(single.as_slice(), &a, &b, (m, k, n), sum_rtol::<f64>(k));
    assert_all_close(multi.as_slice(), single.as_slice(), sum_rtol::<f64>(k));
}

/// Dimensions whose products overflow are rejected before any kernel runs.
#[test]
#[should_panic(expected = "matmul_into: output length")]
fn overflowing_kernel_dimensions_panic() {
    use fluxion::backend::cpu::{MatRef, matmul_into};
    let (a, b, mut out) = ([0.0f64; 16], [0.0f64; 256], [0.0f64; 16]);
    let a = MatRef { data: &a, row_stride: 0, col_stride: 1 };
    matmul_into(((1 << 60) + 1, 16, 16), a, MatRef::row_major(&b, 16), (false, false), &mut out);
}

/// Large products are split into one block of output rows (m ≥ n) or columns (n > m)
/// per thread: with uneven blocks, transposed and conjugated operands and an
/// accumulating write, every element still equals the naive sum.
#[test]
fn products_split_across_threads_equal_the_naive_sums() {
    use fluxion::backend::cpu::{MatRef, Write, matmul_write, set_num_threads};
    let _setting = THREAD_SETTING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Rows split (200 ≥ 193) and columns split (202 > 140), each above 2²³ multiply-adds.
    for (case, (m, k, n)) in [(200, 220, 193), (140, 300, 202)].into_iter().enumerate() {
        let mut rng = TestRng::new(50 + case as u64);
        // `a` stored transposed (k×m row-major), `b` row-major k×n.
        let (a, b) = (rng.elements::<Complex64>(k * m), rng.elements::<Complex64>(k * n));
        let start = rng.elements::<Complex64>(m * n);
        let mut out = start.clone();
        set_num_threads(3);
        matmul_write(
            Write::Accumulate,
            (m, k, n),
            MatRef::transposed(&a, m),
            MatRef::row_major(&b, n),
            (true, false),
            &mut out,
        );
        set_num_threads(0);
        for i in 0..m {
            for j in 0..n {
                let product: Complex64 = (0..k).map(|p| a[p * m + i].conj() * b[p * n + j]).sum();
                let expected = start[i * n + j] + product;
                assert!(
                    (out[i * n + j] - expected).norm() <= 1e-12 * k as f64,
                    "({m}, {k}, {n}) at ({i}, {j})"
                );
            }
        }
    }
}

/// Products split across threads, called from several threads at once and with the
/// product thread spinning between them or asleep, all finish (a deadlock fails the
/// time limit instead of hanging) and equal the definition exactly (small integers:
/// every order of summation gives the same sums).
#[test]
fn split_products_from_several_threads_at_once_finish_and_agree() {
    use std::sync::mpsc;
    use std::time::Duration;
    let n = 256; // 256³ multiply-adds: split wherever two processors are free
    let a = DMatrix::from_shape_fn((Dyn(n), Dyn(n)), |[i, j]| ((i * 7 + j * 3) % 11) as f64 - 5.0);
    let b = DMatrix::from_shape_fn((Dyn(n), Dyn(n)), |[i, j]| ((i * 5 + j * 2) % 13) as f64 - 6.0);
    let expected: Vec<f64> =
        (0..n * n).map(|flat| (0..n).map(|k| a[[flat / n, k]] * b[[k, flat % n]]).sum()).collect();
    let (done, finished) = mpsc::channel();
    for caller in 0..4 {
        let (a, b, done) = (a.clone(), b.clone(), done.clone());
        std::thread::spawn(move || {
            for round in 0..6 {
                if round == 3 && caller == 0 {
                    // Let the spinning thread give up, so the next products wake it.
                    std::thread::sleep(fluxion::backend::cpu::spin_time() * 3);
                }
                done.send(a.matmul(&b).as_slice().to_vec()).unwrap();
            }
        });
    }
    for _ in 0..24 {
        let product =
            finished.recv_timeout(Duration::from_secs(120)).expect("a split product did not finish");
        assert_eq!(product, expected);
    }
}

#[test]
fn kron_places_the_blocks_and_mixes_products() {
    // Against the definition, complex, with a dynamic axis on each side.
    let mut rng = TestRng::new(3);
    let a = Tensor::<Complex64, (Dyn, Const<3>), Heap>::from_shape_fn((Dyn(2), Const), |_| rng.element());
    let b = Tensor::<Complex64, (Const<4>, Dyn), Heap>::from_shape_fn((Const, Dyn(5)), |_| rng.element());
    let k: Tensor<Complex64, (Dyn, Dyn), Heap> = a.kron(&b);
    assert_eq!(k.shape(), (Dyn(8), Dyn(15)));
    for (i, j, p, q) in (0..2)
        .flat_map(|i| (0..3).flat_map(move |j| (0..4).flat_map(move |p| (0..5).map(move |q| (i, j, p, q)))))
    {
        assert_eq!(k[[i * 4 + p, j * 5 + q]], a[[i, j]] * b[[p, q]], "{i} {j} {p} {q}");
    }
    // Static sizes from the `let`; the mixed product (A ⊗ B)(C ⊗ D) = AC ⊗ BD.
    let (a, b): (Matrix<f64, 2, 3>, Matrix<f64, 2, 2>) =
        (Matrix::from_fn(|_| rng.element()), Matrix::from_fn(|_| rng.element()));
    let (c, d): (Matrix<f64, 3, 2>, Matrix<f64, 2, 1>) =
        (Matrix::from_fn(|_| rng.element()), Matrix::from_fn(|_| rng.element()));
    let left: Matrix<f64, 4, 6> = a.kron(&b);
    let right: Matrix<f64, 6, 2> = c.kron(&d);
    let mixed: Matrix<f64, 4, 2> = a.matmul(&c).kron(&b.matmul(&d));
    assert_all_close(left.matmul(&right).as_slice(), mixed.as_slice(), 1e-14);
    // I ⊗ B is block diagonal; an empty factor gives an empty product.
    let block: Matrix<f64, 4, 4> = Matrix::<f64, 2, 2>::identity().kron(&b);
    assert_eq!((block[[2, 3]], block[[0, 3]], block[[3, 2]]), (b[[0, 1]], 0.0, b[[1, 0]]));
    let empty = Tensor::<f64, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(0), Dyn(3)));
    let product: Tensor<f64, (Dyn, Dyn), Heap> =
        empty.kron(&b.to_storage::<Heap>().try_reshape((Dyn(2), Dyn(2))).unwrap());
    assert_eq!(product.shape(), (Dyn(0), Dyn(6)));
}

/// ‖A ⊗ B‖² weighted by W, for static mode.
#[fluxion::autodiff::differentiable(wrt(a, b))]
fn kron_energy(a: &Matrix<f64, 2, 3>, b: &Matrix<f64, 2, 2>, w: &Matrix<f64, 4, 6>) -> f64 {
    let k: Matrix<f64, 4, 6> = a.kron(b);
    k.dot(w) + k.sin().dot(&k)
}

#[test]
fn kron_derivatives_on_the_tape_in_static_mode_and_on_duals() {
    use fluxion::autodiff::check::{CheckOptions, check_grad, check_pullback, check_pushforward};
    use fluxion::product::kron::kron_pullback;
    let mut rng = TestRng::new(8);
    let a: Matrix<f64, 2, 3> = Matrix::from_fn(|_| rng.element());
    let b: Matrix<f64, 2, 2> = Matrix::from_fn(|_| rng.element());
    let w: Matrix<f64, 4, 6> = Matrix::from_fn(|_| rng.element());
    let loss = |(a, b): (Var<Matrix<f64, 2, 3>>, Var<Matrix<f64, 2, 2>>)| {
        let k: Var<Matrix<f64, 4, 6>> = a.kron(&b);
        k.dot(&Var::constant(w)) + k.sin().dot(&k)
    };
    check_grad(loss, &(a, b), CheckOptions::f64()).unwrap();
    // A plain constant on the right: ∂/∂A Σ(A ⊗ B) = (Σ B)·𝟙.
    let with_constant = |a: Var<Matrix<f64, 2, 3>>| -> Var<f64> {
        let k: Var<Matrix<f64, 4, 6>> = a.kron(&b);
        k.sum()
    };
    assert_all_close(grad(with_constant, &a).as_slice(), &[b.sum(); 6], 1e-15);
    // A cotangent of another shape is refused, naming both shapes.
    let wrong = Tensor::<f64, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(4), Dyn(5)));
    let (a_dyn, b_dyn) = (a.to_storage::<Heap>(), b.to_storage::<Heap>());
    let message =
        common::panic_message(|| kron_pullback::<f64, _, _, _, _, Dyn, Dyn, Heap>(&a_dyn, &b_dyn, &wrong));
    assert!(
        message.contains("kron_pullback") && message.contains("[4, 5]") && message.contains("[4, 6]"),
        "{message}"
    );
    // Static mode against the tape and finite differences.
    let (value, (a_bar, b_bar)) = kron_energy::value_and_grad(&a, &b, &w);
    let (tape_value, (tape_a, tape_b)) = value_and_grad(loss, &(a, b));
    assert!((value - tape_value).abs() < 1e-13);
    assert_all_close(a_bar.as_slice(), tape_a.as_slice(), 1e-14);
    assert_all_close(b_bar.as_slice(), tape_b.as_slice(), 1e-14);
    let plain = |(a, b): &(Matrix<f64, 2, 3>, Matrix<f64, 2, 2>)| kron_energy(a, b, &w);
    let (_, pullback) = kron_energy::vjp(&a, &b, &w);
    check_pullback(plain, |y_bar| pullback(y_bar), &(a, b), CheckOptions::f64()).unwrap();
    let (_, pushforward) = kron_energy::linearize(&a, &b, &w);
    let tangent = |(a_dot, b_dot): &(Matrix<f64, 2, 3>, Matrix<f64, 2, 2>)| pushforward(a_dot, b_dot);
    check_pushforward(plain, tangent, &(a, b), CheckOptions::f64()).unwrap();
    // The adjoint identity for complex factors: ⟨Ȧ ⊗ B + A ⊗ Ḃ, W⟩ = ⟨Ȧ, Ā⟩ + ⟨Ḃ, B̄⟩
    // (real parts, the inner product of the complex plane as ℝ²).
    let c = |rng: &mut TestRng| Complex64::new(rng.signed_unit(), rng.signed_unit());
    let a: Matrix<Complex64, 2, 3> = Matrix::from_fn(|_| c(&mut rng));
    let b: Matrix<Complex64, 3, 2> = Matrix::from_fn(|_| c(&mut rng));
    let (a_dot, b_dot): (Matrix<Complex64, 2, 3>, Matrix<Complex64, 3, 2>) =
        (Matrix::from_fn(|_| c(&mut rng)), Matrix::from_fn(|_| c(&mut rng)));
    let w: Matrix<Complex64, 6, 6> = Matrix::from_fn(|_| c(&mut rng));
    let tangent: Matrix<Complex64, 6, 6> = a_dot.kron(&b) + a.kron(&b_dot);
    let (a_bar, b_bar) = kron_pullback(&a, &b, &w);
    let lhs = tangent.inner(&w).re;
    let rhs = a_dot.inner(&a_bar).re + b_dot.inner(&b_bar).re;
    assert!((lhs - rhs).abs() < 1e-13 * lhs.abs().max(1.0), "{lhs} against {rhs}");
    // Duals: the product rule, (A ⊗ B)˙ = Ȧ ⊗ B + A ⊗ Ḃ.
    let (a, b): (Matrix<f64, 2, 3>, Matrix<f64, 3, 2>) = (a.re(), b.im());
    let (a_dot, b_dot): (Matrix<f64, 2, 3>, Matrix<f64, 3, 2>) = (a_dot.im(), b_dot.re());
    let tangent: Matrix<f64, 6, 6> = a_dot.kron(&b) + a.kron(&b_dot);
    let (_, tangent_on_duals) = jvp(
        |(a, b): (Matrix<Dual<f64>, 2, 3>, Matrix<Dual<f64>, 3, 2>)| -> Matrix<Dual<f64>, 6, 6> {
            a.kron(&b)
        },
        &(a, b),
        &(a_dot, b_dot),
    );
    assert_eq!(tangent_on_duals.as_slice(), tangent.as_slice());
}
