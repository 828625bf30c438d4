//! Algebraic properties at random values, on a few static shapes (instantiated by a
//! macro) and on random dynamic shapes with dimensions 1 to 7.

mod common;

use common::{assert_all_close, close};
use fluxion::prelude::*;
use proptest::collection::vec;
use proptest::prelude::*;

const EPS: f64 = f64::EPSILON;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(64)
}

/// Random real entries in [−10, 10].
fn reals(len: usize) -> impl Strategy<Value = Vec<f64>> {
    vec(-10.0..10.0f64, len)
}

/// Random complex entries with both parts in [−10, 10].
fn complexes(len: usize) -> impl Strategy<Value = Vec<Complex64>> {
    vec((-10.0..10.0f64, -10.0..10.0f64).prop_map(|(re, im)| Complex64::new(re, im)), len)
}

/// |A|·|B| for row-major m×k and k×n data: the scale against which the rounding error
/// of the entries of A·B is measured.
fn abs_product(a: &[f64], b: &[f64], (m, k, n): (usize, usize, usize)) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a[i * k + p].abs() * b[p * n + j].abs()).sum();
        }
    }
    out
}

/// Asserts |actualᵢ − expectedᵢ| ≤ rtol·scaleᵢ for every i.
fn check_within(actual: &[f64], expected: &[f64], scale: &[f64], rtol: f64) -> Result<(), TestCaseError> {
    prop_assert_eq!(actual.len(), expected.len());
    for ((&x, &y), &s) in actual.iter().zip(expected).zip(scale) {
        prop_assert!((x - y).abs() <= rtol * s.max(f64::MIN_POSITIVE), "{} vs {} (scale {})", x, y, s);
    }
    Ok(())
}

/// The algebraic properties of matmul and transpose on row-major m×k, k×n, k×n and
/// n×p data, checked on dynamic matrices.
fn matmul_properties(
    (m, k, n, p): (usize, usize, usize, usize),
    a: &[f64],
    b: &[f64],
    c: &[f64],
    d: &[f64],
) -> Result<(), TestCaseError> {
    let am = DMatrix::from_shape_slice((Dyn(m), Dyn(k)), a).unwrap();
    let bm = DMatrix::from_shape_slice((Dyn(k), Dyn(n)), b).unwrap();
    let cm = DMatrix::from_shape_slice((Dyn(k), Dyn(n)), c).unwrap();
    let dm = DMatrix::from_shape_slice((Dyn(n), Dyn(p)), d).unwrap();
    let rtol = (4 * (k + n) + 8) as f64 * EPS;

    // (AB)ᵀ = BᵀAᵀ.
    let ab = am.matmul(&bm);
    let scale_ab = abs_product(a, b, (m, k, n));
    let lhs = ab.transpose();
    let rhs = bm.transpose().matmul(&am.transpose());
    let scale_t = DMatrix::from_shape_vec((Dyn(m), Dyn(n)), scale_ab.clone()).unwrap().transpose();
    check_within(lhs.as_slice(), rhs.as_slice(), scale_t.as_slice(), rtol)?;

    // A(B + C) = AB + AC.
    let lhs = am.matmul(&(&bm + &cm));
    let rhs = &ab + &am.matmul(&cm);
    let scale: Vec<f64> = scale_ab.iter().zip(abs_product(a, c, (m, k, n))).map(|(x, y)| x + y).collect();
    check_within(lhs.as_slice(), rhs.as_slice(), &scale, rtol)?;

    // (AB)D = A(BD), measured against |A||B||D|.
    let lhs = ab.matmul(&dm);
    let rhs = am.matmul(&bm.matmul(&dm));
    let scale = abs_product(&scale_ab, &d.iter().map(|x| x.abs()).collect::<Vec<_>>(), (m, n, p));
    check_within(lhs.as_slice(), rhs.as_slice(), &scale, rtol)?;

    // A·x = A·[x as a k×1 column], with x the first column of B.
    let x: Vec<f64> = (0..k).map(|i| b[i * n]).collect();
    let xv = DVector::from_shape_slice((Dyn(k),), &x).unwrap();
    let column = xv.try_reshape((Dyn(k), Dyn(1))).unwrap();
    let y = am.matmul(&xv);
    let y_column = am.matmul(&column);
    prop_assert_eq!(y_column.dims().as_slice().to_vec(), vec![m, 1]);
    check_within(y.as_slice(), y_column.as_slice(), &abs_product(a, &x, (m, k, 1)), rtol)?;

    // Transpose is an involution that swaps indices.
    let t = am.transpose();
    prop_assert_eq!(&t.transpose(), &am);
    for i in 0..m {
        for j in 0..k {
            prop_assert_eq!(t[[j, i]], am[[i, j]]);
        }
    }
    Ok(())
}

/// Dimensions 1 to 7 for a chain m×k, k×n, n×p, with data for A, B, C and D.
#[allow(clippy::type_complexity)]
fn matmul_case()
-> impl Strategy<Value = ((usize, usize, usize, usize), Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>)> {
    (1usize..8, 1usize..8, 1usize..8, 1usize..8).prop_flat_map(|(m, k, n, p)| {
        (Just((m, k, n, p)), reals(m * k), reals(k * n), reals(k * n), reals(n * p))
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matmul_properties_on_dynamic_shapes((dims, a, b, c, d) in matmul_case()) {
        matmul_properties(dims, &a, &b, &c, &d)?;
    }

    #[test]
    fn inner_is_conjugate_symmetric_on_dynamic_lengths(
        (u, v) in (1usize..8).prop_flat_map(|n| (complexes(n), complexes(n)))
    ) {
        let n = u.len();
        let uv = DVector::from_shape_slice((Dyn(n),), &u).unwrap();
        let vv = DVector::from_shape_slice((Dyn(n),), &v).unwrap();
        let scale: f64 = u.iter().zip(&v).map(|(x, y)| x.norm() * y.norm()).sum();
        let difference = (uv.inner(&vv) - vv.inner(&uv).conj()).norm();
        prop_assert!(difference <= 4.0 * n as f64 * EPS * scale);
        // ⟨u, u⟩ is real and equals Σ|uᵢ|².
        let norm = uv.inner(&uv);
        prop_assert_eq!(norm.im, 0.0);
        prop_assert!(close(norm.re, u.iter().map(|x| x.norm_sqr()).sum::<f64>(), 4.0 * n as f64 * EPS));
    }

    #[test]
    fn dot_equals_inner_on_real_data(
        (u, v) in (1usize..8).prop_flat_map(|n| (reals(n), reals(n)))
    ) {
        let n = u.len();
        let uv = DVector::from_shape_slice((Dyn(n),), &u).unwrap();
        let vv = DVector::from_shape_slice((Dyn(n),), &v).unwrap();
        prop_assert_eq!(uv.dot(&vv), uv.inner(&vv));
        prop_assert_eq!(uv.dot(&vv), vv.dot(&uv));
        let naive: f64 = u.iter().zip(&v).map(|(x, y)| x * y).sum();
        let scale: f64 = u.iter().zip(&v).map(|(x, y)| (x * y).abs()).sum();
        prop_assert!((uv.dot(&vv) - naive).abs() <= 2.0 * n as f64 * EPS * scale);
    }

    #[test]
    fn reshape_round_trips_on_dynamic_shapes(
        (m, n, data) in (1usize..8, 1usize..8).prop_flat_map(|(m, n)| (Just(m), Just(n), reals(m * n)))
    ) {
        let a = DMatrix::from_shape_slice((Dyn(m), Dyn(n)), &data).unwrap();
        let r = a.try_reshape((Dyn(n), Dyn(m))).unwrap();
        prop_assert_eq!(r.as_slice(), &data[..]);
        prop_assert_eq!(&r.try_reshape((Dyn(m), Dyn(n))).unwrap(), &a);
        let flat = a.try_reshape((Dyn(m * n),)).unwrap();
        prop_assert_eq!(flat.as_slice(), &data[..]);
        prop_assert!(a.try_reshape((Dyn(m * n + 1),)).is_err());
    }

    #[test]
    fn softmax_rows_sum_to_one_on_dynamic_shapes(
        (m, n, data) in (1usize..8, 1usize..8)
            .prop_flat_map(|(m, n)| (Just(m), Just(n), vec(-50.0..50.0f64, m * n)))
    ) {
        let a = DMatrix::from_shape_slice((Dyn(m), Dyn(n)), &data).unwrap();
        let s = a.softmax(Axis::<1>);
        let sums: DVector<f64> = s.sum_axis(Axis::<1>);
        // Tolerance ∝ the largest magnitude (see reduce_layout.rs on softmax precision).
        let rtol = 8.0 * n as f64 * EPS * 50.0;
        assert_all_close(sums.as_slice(), &vec![1.0; m], rtol);
        prop_assert!(s.iter().all(|&x| (0.0..=1.0).contains(&x)));
        // The largest entry of each row has the largest probability.
        for i in 0..m {
            let row = &data[i * n..(i + 1) * n];
            let argmax = (0..n).max_by(|&p, &q| row[p].total_cmp(&row[q])).unwrap();
            prop_assert!((0..n).all(|j| s[[i, j]] <= s[[i, argmax]]));
        }
    }
}

/// The same properties on fixed static shapes `M×K`, `K×N`, `N×P`, inline storage.
macro_rules! static_shape_properties {
    ($($name:ident: $m:literal, $k:literal, $n:literal, $p:literal;)*) => {$(
        mod $name {
            use super::*;

            const M: usize = $m;
            const K: usize = $k;
            const N: usize = $n;
            const P: usize = $p;

            proptest! {
                #![proptest_config(config())]

                #[test]
                fn matmul_properties_static(
                    a in reals(M * K), b in reals(K * N), c in reals(K * N), d in reals(N * P)
                ) {
                    let am: Matrix<f64, M, K> = Matrix::from_shape_slice(Default::default(), &a).unwrap();
                    let bm: Matrix<f64, K, N> = Matrix::from_shape_slice(Default::default(), &b).unwrap();
                    let cm: Matrix<f64, K, N> = Matrix::from_shape_slice(Default::default(), &c).unwrap();
                    let dm: Matrix<f64, N, P> = Matrix::from_shape_slice(Default::default(), &d).unwrap();
                    let rtol = (4 * (K + N) + 8) as f64 * EPS;
                    let scale_ab = abs_product(&a, &b, (M, K, N));

                    let ab: Matrix<f64, M, N> = am.matmul(&bm);
                    let abt: Matrix<f64, N, M> = ab.transpose();
                    let btat: Matrix<f64, N, M> = bm.transpose().matmul(&am.transpose());
                    let scale_t: Matrix<f64, N, M> =
                        Matrix::<f64, M, N>::from_shape_slice(Default::default(), &scale_ab).unwrap().transpose();
                    check_within(abt.as_slice(), btat.as_slice(), scale_t.as_slice(), rtol)?;

                    let distributed: Matrix<f64, M, N> = am.matmul(&(bm + cm));
                    let expanded = ab + am.matmul(&cm);
                    let scale: Vec<f64> =
                        scale_ab.iter().zip(abs_product(&a, &c, (M, K, N))).map(|(x, y)| x + y).collect();
                    check_within(distributed.as_slice(), expanded.as_slice(), &scale, rtol)?;

                    let left: Matrix<f64, M, P> = ab.matmul(&dm);
                    let right: Matrix<f64, M, P> = am.matmul(&bm.matmul(&dm));
                    let d_abs: Vec<f64> = d.iter().map(|x| x.abs()).collect();
                    check_within(left.as_slice(), right.as_slice(), &abs_product(&scale_ab, &d_abs, (M, N, P)), rtol)?;

                    // A·x against A times x reshaped into a K×1 column.
                    let x: Vector<f64, K> = Vector::from_shape_slice(Default::default(), &b[..K]).unwrap();
                    let column: Matrix<f64, K, 1> = x.reshape();
                    let y: Vector<f64, M> = am.matmul(&x);
                    let y_column: Matrix<f64, M, 1> = am.matmul(&column);
                    check_within(y.as_slice(), y_column.as_slice(), &abs_product(&a, &b[..K], (M, K, 1)), rtol)?;

                    prop_assert_eq!(am.transpose().transpose(), am);
                }

                #[test]
                fn reshape_round_trips_static(a in reals(M * K)) {
                    let am: Matrix<f64, M, K> = Matrix::from_shape_slice(Default::default(), &a).unwrap();
                    let swapped: Matrix<f64, K, M> = am.reshape();
                    let flat: Vector<f64, { M * K }> = am.flatten();
                    prop_assert_eq!(swapped.as_slice(), &a[..]);
                    prop_assert_eq!(flat.as_slice(), &a[..]);
                    let back: Matrix<f64, M, K> = swapped.reshape();
                    prop_assert_eq!(back, am);
                    let from_flat: Matrix<f64, M, K> = flat.reshape();
                    prop_assert_eq!(from_flat, am);
                }

                #[test]
                fn inner_is_conjugate_symmetric_static(u in complexes(K), v in complexes(K)) {
                    let uv: Vector<Complex64, K> = Vector::from_shape_slice(Default::default(), &u).unwrap();
                    let vv: Vector<Complex64, K> = Vector::from_shape_slice(Default::default(), &v).unwrap();
                    let scale: f64 = u.iter().zip(&v).map(|(x, y)| x.norm() * y.norm()).sum();
                    prop_assert!((uv.inner(&vv) - vv.inner(&uv).conj()).norm() <= 4.0 * K as f64 * EPS * scale);
                    let real: Vector<f64, K> = uv.re();
                    let other: Vector<f64, K> = vv.re();
                    prop_assert_eq!(real.dot(&other), real.inner(&other));
                }

                #[test]
                fn softmax_rows_sum_to_one_static(a in vec(-50.0..50.0f64, M * K)) {
                    let am: Matrix<f64, M, K> = Matrix::from_shape_slice(Default::default(), &a).unwrap();
                    let sums: Vector<f64, M> = am.softmax(Axis::<1>).sum_axis(Axis::<1>);
                    assert_all_close(sums.as_slice(), &[1.0; M], 8.0 * K as f64 * EPS * 50.0);
                    let columns: Vector<f64, K> = am.softmax(Axis::<0>).sum_axis(Axis::<0>);
                    assert_all_close(columns.as_slice(), &[1.0; K], 8.0 * M as f64 * EPS * 50.0);
                }
            }
        }
    )*};
}

static_shape_properties! {
    shape_2_3_4_5: 2, 3, 4, 5;
    shape_1_5_2_1: 1, 5, 2, 1;
    shape_4_4_4_4: 4, 4, 4, 4;
    shape_3_1_6_2: 3, 1, 6, 2;
}
