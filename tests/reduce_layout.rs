//! Reductions (sum, mean, max), normalisations (softmax, log_softmax, logsumexp) and
//! layout changes (transpose, permute, reshape, flatten, broadcast, concat, narrow).

mod common;

use common::{TestRng, assert_all_close, assert_close, assert_names_shapes};
use fluxion::autodiff::differentiable;
use fluxion::prelude::*;
use fluxion::shape::constraint::PermutesAxes;

const RTOL: f64 = 8.0 * f64::EPSILON;

/// A 2×3×4 tensor with element (i, j, k) = 100i + 10j + k, so every position is
/// recognisable in a failure message, plus its data.
fn labelled3() -> (Tensor3<f64, 2, 3, 4>, [[[f64; 4]; 3]; 2]) {
    let array = std::array::from_fn(|i| {
        std::array::from_fn(|j| std::array::from_fn(|k| (100 * i + 10 * j + k) as f64))
    });
    (Tensor3::from_array(array), array)
}

fn random_matrix(seed: u64) -> [[f64; 4]; 3] {
    let mut rng = TestRng::new(seed);
    std::array::from_fn(|_| std::array::from_fn(|_| 10.0 * rng.signed_unit()))
}

#[test]
fn total_sum_mean_max() {
    let m: Matrix<f64, 2, 3> = Matrix::from_array([[1., -2., 3.], [4., 5., -6.]]);
    assert_eq!(m.sum(), 5.0);
    assert_eq!(m.mean(), 5.0 / 6.0);
    assert_eq!(m.max(), 5.0);
    let (t, array) = labelled3();
    let flat = array.as_flattened().as_flattened();
    let total: f64 = flat.iter().sum();
    assert_eq!(t.sum(), total);
    assert_close(t.mean(), total / 24.0, RTOL);
    assert_eq!(t.max(), 123.0);
    let z: Vector<Complex64, 2> = Vector::from_array([Complex64::new(1., 2.), Complex64::new(3., -4.)]);
    assert_eq!(z.sum(), Complex64::new(4., -2.));
    assert_eq!(z.mean(), Complex64::new(2., -1.));
    let d = DVector::from_shape_vec((Dyn(4),), vec![-3.0f32, -1.0, -2.0, -7.0]).unwrap();
    assert_eq!(d.max(), -1.0);
    assert_eq!(d.sum(), -13.0);
}

#[test]
fn max_propagates_nan_and_is_negative_infinity_when_empty() {
    let v: Vector<f64, 3> = Vector::from_array([1.0, f64::NAN, 2.0]);
    assert!(v.max().is_nan());
    let m: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, f64::NAN], [3.0, 2.0]]);
    let rows = m.max_axis(Axis::<1>);
    assert!(rows[[0]].is_nan());
    assert_eq!(rows[[1]], 3.0);
    let empty = DVector::<f64>::zeros_shaped((Dyn(0),));
    assert_eq!(empty.max(), f64::NEG_INFINITY);
    assert_eq!(empty.sum(), 0.0);
}

#[test]
fn matrix_reductions_along_each_axis() {
    let data = random_matrix(1);
    let m: Matrix<f64, 3, 4> = Matrix::from_array(data);
    let col_sum: Vector<f64, 4> = m.sum_axis(Axis::<0>);
    let row_sum: Vector<f64, 3> = m.sum_axis(Axis::<1>);
    let col_mean: Vector<f64, 4> = m.mean_axis(Axis::<0>);
    let row_mean: Vector<f64, 3> = m.mean_axis(Axis::<1>);
    let col_max: Vector<f64, 4> = m.max_axis(Axis::<0>);
    let row_max: Vector<f64, 3> = m.max_axis(Axis::<1>);
    for j in 0..4 {
        let column: Vec<f64> = (0..3).map(|i| data[i][j]).collect();
        assert_close(col_sum[[j]], column.iter().sum(), RTOL);
        assert_close(col_mean[[j]], column.iter().sum::<f64>() / 3.0, RTOL);
        assert_eq!(col_max[[j]], column.iter().copied().fold(f64::MIN, f64::max));
    }
    for i in 0..3 {
        assert_close(row_sum[[i]], data[i].iter().sum(), RTOL);
        assert_close(row_mean[[i]], data[i].iter().sum::<f64>() / 4.0, RTOL);
        assert_eq!(row_max[[i]], data[i].iter().copied().fold(f64::MIN, f64::max));
    }

    // The same reductions on dynamic and mixed shapes keep the remaining axes' kinds.
    let d = DMatrix::from_shape_slice((Dyn(3), Dyn(4)), data.as_flattened()).unwrap();
    let d_rows: DVector<f64> = d.sum_axis(Axis::<1>);
    assert_eq!(d_rows.as_slice(), row_sum.as_slice());
    let mixed =
        Tensor::<f64, (Dyn, Const<4>), Heap>::from_shape_slice((Dyn(3), Const), data.as_flattened()).unwrap();
    let mixed_cols: Vector<f64, 4, Heap> = mixed.max_axis(Axis::<0>);
    assert_eq!(mixed_cols.as_slice(), col_max.as_slice());
    let mixed_rows: DVector<f64> = mixed.mean_axis(Axis::<1>);
    assert_eq!(mixed_rows.as_slice(), row_mean.as_slice());
}

#[test]
fn rank3_reductions_along_each_axis() {
    let (t, a) = labelled3();
    let s0: Matrix<f64, 3, 4> = t.sum_axis(Axis::<0>);
    let s1: Matrix<f64, 2, 4> = t.sum_axis(Axis::<1>);
    let s2: Matrix<f64, 2, 3> = t.sum_axis(Axis::<2>);
    let m1: Matrix<f64, 2, 4> = t.mean_axis(Axis::<1>);
    let x0: Matrix<f64, 3, 4> = t.max_axis(Axis::<0>);
    let x2: Matrix<f64, 2, 3> = t.max_axis(Axis::<2>);
    for j in 0..3 {
        for k in 0..4 {
            assert_eq!(s0[[j, k]], a[0][j][k] + a[1][j][k]);
            assert_eq!(x0[[j, k]], a[1][j][k]);
        }
    }
    for i in 0..2 {
        for k in 0..4 {
            let sum = a[i][0][k] + a[i][1][k] + a[i][2][k];
            assert_eq!(s1[[i, k]], sum);
            assert_close(m1[[i, k]], sum / 3.0, RTOL);
        }
        for j in 0..3 {
            assert_eq!(s2[[i, j]], a[i][j].iter().sum::<f64>());
            assert_eq!(x2[[i, j]], a[i][j][3]);
        }
    }
    let v: Vector<f64, 3> = Vector::from_array([1., 2., 4.]);
    let total: Tensor0<f64> = v.sum_axis(Axis::<0>);
    assert_eq!(total[[]], 7.0);
}

/// softmax, log_softmax and logsumexp of one line, by the shifted closed form.
fn reference_line(x: &[f64]) -> (Vec<f64>, Vec<f64>, f64) {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = x.iter().map(|&v| (v - m).exp()).sum();
    let lse = m + total.ln();
    let softmax = x.iter().map(|&v| (v - m).exp() / total).collect();
    let log_softmax = x.iter().map(|&v| (v - m) - total.ln()).collect();
    (softmax, log_softmax, lse)
}

/// Rows of moderate values, of values near 1000 and of values at −1000.
const SOFTMAX_DATA: [[f64; 4]; 3] =
    [[0.5, -2., 3., 0.], [1000., 1001., 1002., 999.], [-1000., -1000., -1000., -1000.]];

#[test]
fn softmax_family_along_rows_and_columns() {
    let data = SOFTMAX_DATA;
    let m: Matrix<f64, 3, 4> = Matrix::from_array(data);
    let sm = m.softmax(Axis::<1>);
    let lsm = m.log_softmax(Axis::<1>);
    let lse: Vector<f64, 3> = m.logsumexp(Axis::<1>);
    // No overflow to ∞ or NaN at ±1000.
    assert!(sm.iter().chain(lsm.iter()).chain(lse.iter()).all(|x| x.is_finite()));
    for (i, row) in data.iter().enumerate() {
        let (softmax, log_softmax, logsumexp) = reference_line(row);
        // The current implementation rounds logsumexp at the magnitude of the inputs
        // before subtracting it (see `softmax_keeps_full_precision_at_large_inputs`),
        // so the tolerance here scales with that magnitude.
        let rtol = RTOL * row.iter().fold(1.0, |acc: f64, x| acc.max(x.abs()));
        for j in 0..4 {
            assert_close(sm[[i, j]], softmax[j], rtol);
            assert_close(lsm[[i, j]], log_softmax[j], rtol);
        }
        assert_close(lse[[i]], logsumexp, RTOL);
        assert_close((0..4).map(|j| sm[[i, j]]).sum::<f64>(), 1.0, rtol);
    }
    // Moderate values are exact to a few ulps.
    let (softmax, log_softmax, _) = reference_line(&data[0]);
    assert_all_close(&sm.as_slice()[..4], &softmax, RTOL);
    assert_all_close(&lsm.as_slice()[..4], &log_softmax, RTOL);
    // Equal inputs of −1000 give ln 4 − 1000.
    assert_close(lse[[2]], 4f64.ln() - 1000.0, RTOL);

    // Along columns.
    let sm0 = m.softmax(Axis::<0>);
    let lse0: Vector<f64, 4> = m.logsumexp(Axis::<0>);
    for j in 0..4 {
        let column: Vec<f64> = (0..3).map(|i| data[i][j]).collect();
        let (softmax, _, logsumexp) = reference_line(&column);
        let rtol = RTOL * 1000.0;
        for i in 0..3 {
            assert_close(sm0[[i, j]], softmax[i], rtol);
        }
        assert_close(lse0[[j]], logsumexp, RTOL);
        assert_close((0..3).map(|i| sm0[[i, j]]).sum::<f64>(), 1.0, rtol);
    }
}

/// softmax and log_softmax compute `x − logsumexp(x)`, where logsumexp = m + ln Σ
/// has already been rounded at the magnitude of the maximum m: the result carries an
/// absolute error of about |m|·ε, so at inputs of 1000 an `f32` softmax is off by
/// ~250 ulps and its lines no longer sum to 1 in `f32`. The shifted closed form
/// `(x − m) − ln Σ exp(x − m)` has no such error.
#[test]
fn softmax_keeps_full_precision_at_large_inputs() {
    let v: Vector<f32, 3> = Vector::from_array([1000.0, 1000.0, -1000.0]);
    let sm = v.softmax(Axis::<0>);
    assert_all_close(sm.as_slice(), &[0.5f32, 0.5, 0.0], 4.0 * f64::from(f32::EPSILON));
    assert_close(sm.sum(), 1.0, 4.0 * f64::from(f32::EPSILON));
    let lsm = v.log_softmax(Axis::<0>);
    assert_close(lsm[[0]], -std::f32::consts::LN_2, 4.0 * f64::from(f32::EPSILON));

    let m: Matrix<f64, 3, 4> = Matrix::from_array(SOFTMAX_DATA);
    let (softmax, log_softmax, _) = reference_line(&SOFTMAX_DATA[1]);
    assert_all_close(&m.softmax(Axis::<1>).as_slice()[4..8], &softmax, RTOL);
    assert_all_close(&m.log_softmax(Axis::<1>).as_slice()[4..8], &log_softmax, RTOL);
}

#[test]
fn softmax_along_the_middle_axis_of_a_rank3_tensor() {
    let mut rng = TestRng::new(2);
    let data: Vec<f64> = (0..24).map(|_| 50.0 * rng.signed_unit()).collect();
    let t =
        Tensor::<f64, (Dyn, Dyn, Const<4>), Heap>::from_shape_slice((Dyn(2), Dyn(3), Const), &data).unwrap();
    let sm = t.softmax(Axis::<1>);
    let lse: Tensor<f64, (Dyn, Const<4>), Heap> = t.logsumexp(Axis::<1>);
    assert_eq!(lse.dims().as_slice(), &[2, 4]);
    for i in 0..2 {
        for k in 0..4 {
            let line: Vec<f64> = (0..3).map(|j| data[(i * 3 + j) * 4 + k]).collect();
            let (softmax, log_softmax, logsumexp) = reference_line(&line);
            // Inputs up to 50 in magnitude: see `softmax_keeps_full_precision_at_large_inputs`.
            let rtol = 50.0 * RTOL;
            for j in 0..3 {
                assert_close(sm[[i, j, k]], softmax[j], rtol);
                assert_close(t.log_softmax(Axis::<1>)[[i, j, k]], log_softmax[j], rtol);
            }
            assert_close(lse[[i, k]], logsumexp, RTOL);
        }
    }
}

#[test]
fn softmax_along_columns_gives_the_bits_of_softmax_along_rows_of_the_transpose() {
    // Columns read their maximum and total as runs beside the elements; rows take
    // another loop. Both shift, exponentiate, add in order and divide alike.
    let mut rng = TestRng::new(7);
    for (rows, cols) in [(1, 5), (3, 2), (5, 19), (40, 37)] {
        let data: Vec<f64> = (0..rows * cols).map(|_| 30.0 * rng.signed_unit()).collect();
        let m = Tensor::<f64, (Dyn, Dyn), Heap>::from_shape_slice((Dyn(rows), Dyn(cols)), &data).unwrap();
        let (along_columns, along_rows) =
            (m.softmax(Axis::<0>).transpose(), m.transpose().softmax(Axis::<1>));
        assert_eq!(along_columns.as_slice(), along_rows.as_slice(), "softmax of {rows}×{cols}");
        let (along_columns, along_rows) =
            (m.log_softmax(Axis::<0>).transpose(), m.transpose().log_softmax(Axis::<1>));
        assert_eq!(along_columns.as_slice(), along_rows.as_slice(), "log_softmax of {rows}×{cols}");
    }
}

#[test]
fn softmax_in_f32_does_not_overflow_at_large_inputs() {
    let v: Vector<f32, 3> = Vector::from_array([1000.0, 1000.0, -1000.0]);
    let sm = v.softmax(Axis::<0>);
    // Up to the |max|·ε error described in `softmax_keeps_full_precision_at_large_inputs`.
    let rtol = 1000.0 * 4.0 * f64::from(f32::EPSILON);
    assert_all_close(sm.as_slice(), &[0.5, 0.5, 0.0], rtol);
    assert_close(sm.sum(), 1.0, rtol);
    assert_close(v.logsumexp(Axis::<0>)[[]], 1000.0 + std::f32::consts::LN_2, 4.0 * f64::from(f32::EPSILON));
    // A line of −∞ has logsumexp −∞ rather than NaN.
    let minus_inf: Vector<f64, 2> = Vector::full(f64::NEG_INFINITY);
    assert_eq!(minus_inf.logsumexp(Axis::<0>)[[]], f64::NEG_INFINITY);
}

/// ln(e^∞ + e⁰) = ∞, but shifting by the maximum computes ∞ − ∞ = NaN inside the sum.
/// The module documents the −∞ case; +∞ is the same kind of special case (SciPy and
/// PyTorch return +∞).
#[test]
fn logsumexp_of_a_line_with_positive_infinity_is_infinity() {
    let v: Vector<f64, 2> = Vector::from_array([f64::INFINITY, 0.0]);
    assert_eq!(v.logsumexp(Axis::<0>)[[]], f64::INFINITY);
}

#[test]
fn transpose_swaps_indices() {
    let m: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    let t: Matrix<f64, 3, 2> = m.transpose();
    assert_eq!(t.to_array(), [[1., 4.], [2., 5.], [3., 6.]]);
    assert_eq!(t.transpose(), m);
    let d = DMatrix::from_shape_fn((Dyn(4), Dyn(7)), |[i, j]| (10 * i + j) as f64);
    let dt = d.transpose();
    assert_eq!(dt.dims().as_slice(), &[7, 4]);
    for i in 0..4 {
        for j in 0..7 {
            assert_eq!(dt[[j, i]], d[[i, j]]);
        }
    }
    let mixed =
        Tensor::<f64, (Dyn, Const<3>), Heap>::from_shape_fn((Dyn(5), Const), |[i, j]| (i * 3 + j) as f64);
    let mt: Tensor<f64, (Const<3>, Dyn), Heap> = mixed.transpose();
    assert_eq!(mt[[2, 4]], 14.0);
    // No conjugation.
    let z: Matrix<Complex64, 1, 2> = Matrix::from_array([[Complex64::new(1., 1.), Complex64::new(0., -2.)]]);
    assert_eq!(z.transpose().to_array(), [[Complex64::new(1., 1.)], [Complex64::new(0., -2.)]]);
}

/// The transpose copies whole 16×16 tiles, then the partial tiles at the edges:
/// every size around a tile boundary, and empty matrices, against the definition.
#[test]
fn transpose_is_exact_on_whole_and_partial_tiles() {
    for (rows, cols) in [(0, 5), (5, 0), (1, 1), (15, 16), (16, 16), (17, 33), (37, 70), (64, 3)] {
        let m = DMatrix::from_shape_fn((Dyn(rows), Dyn(cols)), |[i, j]| (1000 * i + j) as f64);
        let t = m.transpose();
        assert_eq!(t.dims().as_slice(), &[cols, rows]);
        for (i, j) in (0..rows).flat_map(|i| (0..cols).map(move |j| (i, j))) {
            assert_eq!(t[[j, i]], m[[i, j]], "{rows}×{cols} at ({i}, {j})");
        }
    }
}

#[test]
fn reshape_and_flatten_keep_row_major_order() {
    let (t, a) = labelled3();
    let flat: Vector<f64, 24> = t.flatten();
    assert_eq!(flat.as_slice(), a.as_flattened().as_flattened());
    let m: Matrix<f64, 6, 4> = t.reshape();
    // Element (i, j, k) of 2×3×4 is row 3i + j of the 6×4 matrix.
    assert_eq!(m[[3 + 2, 1]], a[1][2][1]);
    let t4: Tensor4<f64, 2, 2, 3, 2> = t.reshape();
    // Flat offset of (1, 0, 2, 1) in 2×2×3×2 is ((1·2 + 0)·3 + 2)·2 + 1 = 17 = (1, 1, 1) in 2×3×4.
    assert_eq!(t4[[1, 0, 2, 1]], a[1][1][1]);
    let back: Tensor3<f64, 2, 3, 4> = t4.reshape();
    assert_eq!(back, t);
    let heap: Matrix<f64, 2, 3, Heap> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    let column: Matrix<f64, 6, 1, Heap> = heap.reshape();
    assert_eq!(column.as_slice(), heap.as_slice());
    let scalar: Tensor0<f64> = Vector::<f64, 1>::from_array([9.0]).reshape();
    assert_eq!(scalar[[]], 9.0);
}

#[test]
fn try_reshape_checks_element_counts() {
    let d = DMatrix::from_shape_vec((Dyn(2), Dyn(3)), vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let r = d.try_reshape((Dyn(3), Dyn(2))).unwrap();
    assert_eq!(r.to_vec(), d.to_vec());
    assert_eq!(r[[2, 0]], 5.0);
    let v = d.try_reshape((Dyn(6),)).unwrap();
    assert_eq!(v.dims().as_slice(), &[6]);
    let s: Matrix<f64, 1, 6, Heap> = d.try_reshape(Default::default()).unwrap();
    assert_eq!(s[[0, 5]], 6.0);
    let error = d.try_reshape((Dyn(4), Dyn(2))).unwrap_err();
    assert_names_shapes(&error, &[2, 3], &[4, 2]);
    let error = d.try_reshape((Dyn(7),)).unwrap_err();
    assert_names_shapes(&error, &[2, 3], &[7]);
}

#[test]
fn broadcast_repeats_along_new_leading_axes() {
    let bias: Vector<f64, 2> = Vector::from_array([1., 2.]);
    let rows: Matrix<f64, 3, 2> = bias.broadcast();
    assert_eq!(rows.to_array(), [[1., 2.]; 3]);
    let cube: Tensor3<f64, 2, 3, 2> = bias.broadcast();
    assert_eq!(cube.to_array(), [[[1., 2.]; 3]; 2]);
    let m: Matrix<f64, 2, 2> = Matrix::from_array([[1., 2.], [3., 4.]]);
    let batch: Tensor3<f64, 3, 2, 2> = m.broadcast();
    for b in 0..3 {
        for i in 0..2 {
            for j in 0..2 {
                assert_eq!(batch[[b, i, j]], m[[i, j]]);
            }
        }
    }
    let s: Tensor0<f64> = Tensor0::from_array([5.0]);
    let filled: Vector<f64, 4> = s.broadcast();
    assert_eq!(filled.to_array(), [5.0; 4]);
}

#[test]
fn try_broadcast_to_checks_dynamic_trailing_dimensions() {
    let v = DVector::from_shape_vec((Dyn(3),), vec![1., 2., 3.]).unwrap();
    let b = v.try_broadcast_to((Dyn(2), Dyn(3))).unwrap();
    assert_eq!(b.to_vec(), vec![1., 2., 3., 1., 2., 3.]);
    let c = v.try_broadcast_to((Const::<2>, Dyn(1), Dyn(3))).unwrap();
    assert_eq!(c.dims().as_slice(), &[2, 1, 3]);
    assert_eq!(c.to_vec(), vec![1., 2., 3., 1., 2., 3.]);
    let error = v.try_broadcast_to((Dyn(2), Dyn(4))).unwrap_err();
    assert_names_shapes(&error, &[3], &[2, 4]);
    let m = DMatrix::<f64>::zeros_shaped((Dyn(2), Dyn(3)));
    let error = m.try_broadcast_to((Dyn(5), Dyn(3), Dyn(2))).unwrap_err();
    assert_names_shapes(&error, &[2, 3], &[5, 3, 2]);
}

#[test]
fn static_concat_along_both_axes() {
    let a: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2., 3.], [4., 5., 6.]]);
    let b: Matrix<f64, 1, 3> = Matrix::from_array([[7., 8., 9.]]);
    let c: Matrix<f64, 2, 2> = Matrix::from_array([[-1., -2.], [-3., -4.]]);
    let below: Matrix<f64, 3, 3> = a.concat(Axis::<0>, &b);
    assert_eq!(below.to_array(), [[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]]);
    let beside: Matrix<f64, 2, 5> = a.concat(Axis::<1>, &c);
    assert_eq!(beside.to_array(), [[1., 2., 3., -1., -2.], [4., 5., 6., -3., -4.]]);
    let v: Vector<f64, 2> = Vector::from_array([1., 2.]);
    let w: Vector<f64, 1> = Vector::from_array([3.]);
    let vw: Vector<f64, 3> = v.concat(Axis::<0>, &w);
    assert_eq!(vw.to_array(), [1., 2., 3.]);
    let (t, arr) = labelled3();
    let u: Tensor3<f64, 2, 1, 4> = Tensor3::full(-1.0);
    let tu: Tensor3<f64, 2, 4, 4> = t.concat(Axis::<1>, &u);
    for i in 0..2 {
        for k in 0..4 {
            for j in 0..3 {
                assert_eq!(tu[[i, j, k]], arr[i][j][k]);
            }
            assert_eq!(tu[[i, 3, k]], -1.0);
        }
    }
}

#[test]
fn dynamic_concat_along_both_axes() {
    let a = DMatrix::from_shape_vec((Dyn(2), Dyn(2)), vec![1., 2., 3., 4.]).unwrap();
    let b = DMatrix::from_shape_vec((Dyn(1), Dyn(2)), vec![5., 6.]).unwrap();
    let rows = a.concat(Axis::<0>, &b);
    assert_eq!(rows.dims().as_slice(), &[3, 2]);
    assert_eq!(rows.to_vec(), vec![1., 2., 3., 4., 5., 6.]);
    let c = DMatrix::from_shape_vec((Dyn(2), Dyn(3)), vec![7., 8., 9., 10., 11., 12.]).unwrap();
    let cols = a.try_concat(Axis::<1>, &c).unwrap();
    assert_eq!(cols.dims().as_slice(), &[2, 5]);
    assert_eq!(cols.to_vec(), vec![1., 2., 7., 8., 9., 3., 4., 10., 11., 12.]);
    // A dynamic length concatenated with a static one.
    let mixed = Tensor::<f64, (Dyn, Const<2>), Heap>::from_shape_vec((Dyn(1), Const), vec![0., -1.]).unwrap();
    let fixed: Matrix<f64, 2, 2, Heap> = Matrix::from_array([[1., 2.], [3., 4.]]);
    let joined: Tensor<f64, (Dyn, Const<2>), Heap> = mixed.concat(Axis::<0>, &fixed);
    assert_eq!(joined.to_vec(), vec![0., -1., 1., 2., 3., 4.]);
}

#[test]
fn dynamic_concat_rejects_a_mismatch_of_the_other_axis() {
    let a = DMatrix::<f64>::zeros_shaped((Dyn(2), Dyn(3)));
    let b = DMatrix::<f64>::zeros_shaped((Dyn(4), Dyn(2)));
    let error = a.try_concat(Axis::<0>, &b).unwrap_err();
    assert_names_shapes(&error, &[2, 3], &[4, 2]);
    let error = a.try_concat(Axis::<1>, &b).unwrap_err();
    assert_names_shapes(&error, &[2, 3], &[4, 2]);
    // Only the other axis matters: different lengths along the concatenated axis are fine.
    let c = DMatrix::<f64>::zeros_shaped((Dyn(2), Dyn(7)));
    assert_eq!(a.try_concat(Axis::<1>, &c).unwrap().dims().as_slice(), &[2, 10]);
}

#[test]
fn narrow_takes_a_static_window() {
    let (t, a) = labelled3();
    let middle: Tensor3<f64, 2, 2, 4> = t.narrow::<1, 1, 2>();
    let last: Tensor3<f64, 2, 3, 1> = t.narrow::<2, 3, 1>();
    let first: Tensor3<f64, 1, 3, 4> = t.narrow::<0, 0, 1>();
    for i in 0..2 {
        for j in 0..3 {
            for k in 0..4 {
                if (1..3).contains(&j) {
                    assert_eq!(middle[[i, j - 1, k]], a[i][j][k]);
                }
                if k == 3 {
                    assert_eq!(last[[i, j, 0]], a[i][j][k]);
                }
                if i == 0 {
                    assert_eq!(first[[i, j, k]], a[i][j][k]);
                }
            }
        }
    }
    let v: Vector<f64, 5> = Vector::from_array([0., 1., 2., 3., 4.]);
    let whole: Vector<f64, 5> = v.narrow::<0, 0, 5>();
    assert_eq!(whole, v);
    assert_eq!(v.narrow::<0, 2, 3>().to_array(), [2., 3., 4.]);
}

#[test]
fn try_narrow_checks_dynamic_axes() {
    let d = DMatrix::from_shape_fn((Dyn(4), Dyn(3)), |[i, j]| (10 * i + j) as f64);
    let rows: Tensor<f64, (Const<2>, Dyn), Heap> = d.try_narrow::<0, 2, 2>().unwrap();
    assert_eq!(rows.to_vec(), vec![20., 21., 22., 30., 31., 32.]);
    let cols: Tensor<f64, (Dyn, Const<1>), Heap> = d.narrow::<1, 1, 1>();
    assert_eq!(cols.to_vec(), vec![1., 11., 21., 31.]);
    let error = d.try_narrow::<0, 3, 2>().unwrap_err();
    assert!(error.to_string().contains("[4, 3]"), "{error}");
    assert!(d.try_narrow::<1, 0, 4>().is_err());
    assert!(d.try_narrow::<1, 0, 3>().is_ok());
}

/// Static sizes far past any table: a 50×64 batch flattened to 3200, joined with
/// 1500 more and cut back, on plain and on traced tensors.
#[test]
fn static_layout_changes_of_any_size() {
    let batch = Tensor::<f64, (Const<50>, Const<64>), Heap>::from_fn(|[i, j]| (64 * i + j) as f64);
    let flat: Vector<f64, 3200, Heap> = batch.flatten();
    assert!(flat.as_slice().iter().enumerate().all(|(index, &value)| value == index as f64));
    let back: Tensor<f64, (Const<64>, Const<50>), Heap> = flat.reshape();
    assert_eq!(back.as_slice(), batch.as_slice());
    let tail = Vector::<f64, 1500, Heap>::from_fn(|[k]| (3200 + k) as f64);
    let joined: Vector<f64, 4700, Heap> = flat.concat(Axis::<0>, &tail);
    assert!(joined.as_slice().iter().enumerate().all(|(index, &value)| value == index as f64));
    let window: Vector<f64, 2000, Heap> = joined.narrow::<0, 2700, 2000>();
    assert_eq!(window.as_slice()[0], 2700.0);
    assert_eq!(window.as_slice()[1999], 4699.0);

    // Traced: y = Σ wₖ·window(concat(flatten(x), t))ₖ, so ∂y/∂x is w placed back at
    // the positions of x that the window keeps (2700…3199), zero elsewhere.
    let weights = Vector::<f64, 2000, Heap>::from_fn(|[k]| 1.0 + k as f64);
    let (value, gradient) = fluxion::autodiff::value_and_grad(
        |x: Var<Tensor<f64, (Const<50>, Const<64>), Heap>>| {
            let joined: Var<Vector<f64, 4700, Heap>> =
                x.flatten::<3200>().concat(Axis::<0>, &Var::constant(tail.clone()));
            joined.narrow::<0, 2700, 2000>().dot(&weights)
        },
        &batch,
    );
    assert_eq!(value, window.dot(&weights));
    let expected: Vec<f64> =
        (0..3200).map(|index| if index >= 2700 { (index - 2699) as f64 } else { 0.0 }).collect();
    assert_eq!(gradient.as_slice(), expected.as_slice());
}

/// A line that is all −∞ (masked out entirely) has no gradient, not NaN: its logsumexp
/// is −∞ whatever x does, and the other lines' gradients are softmax.
#[test]
fn logsumexp_of_a_masked_line_adds_no_nan_to_the_gradient() {
    let x: Matrix<f64, 2, 2> = Matrix::from_array([[f64::NEG_INFINITY, f64::NEG_INFINITY], [0.0, 1.0]]);
    let gradient = grad(|x: Var<Matrix<f64, 2, 2>>| x.logsumexp(Axis::<1>).at([1]), &x);
    let total = 1.0 + 1f64.exp();
    assert_eq!(gradient[[0, 0]], 0.0);
    assert_eq!(gradient[[0, 1]], 0.0);
    assert_close(gradient[[1, 1]], 1f64.exp() / total, 1e-15);
    // Summed over both lines (−∞ + finite): still no NaN.
    let gradient = grad(|x: Var<Matrix<f64, 2, 2>>| x.logsumexp(Axis::<1>).sum(), &x);
    assert!(gradient.iter().all(|g| !g.is_nan()), "{gradient:?}");
}

/// Sums of many f32 values round as pairwise sums do: a running total of a million
/// 0.1s drifts by about 1 %, these stay within a few ulps of the f64 sum.
#[test]
fn long_f32_sums_keep_their_accuracy() {
    const N: usize = 1_000_000;
    let exact = f64::from(0.1f32) * N as f64;
    let close = |total: f32| ((f64::from(total) - exact) / exact).abs() < 1e-6;
    let line = Tensor::<f32, (Dyn,), Heap>::full_shaped((Dyn(N),), 0.1);
    assert!(close(line.sum()), "sum: {}", line.sum());
    assert!((f64::from(line.mean()) - f64::from(0.1f32)).abs() < 1e-7, "mean: {}", line.mean());
    let rows = Tensor::<f32, (Const<2>, Dyn), Heap>::full_shaped((Const, Dyn(N)), 0.1);
    assert!(rows.sum_axis(Axis::<1>).iter().all(|&t| close(t)), "{:?}", rows.sum_axis(Axis::<1>));
    let columns = Tensor::<f32, (Dyn, Const<3>), Heap>::full_shaped((Dyn(N), Const), 0.1);
    assert!(columns.sum_axis(Axis::<0>).iter().all(|&t| close(t)), "{:?}", columns.sum_axis(Axis::<0>));
    // Past 2²⁴, where a running total of ones stops growing.
    let ones = Tensor::<f32, (Dyn,), Heap>::full_shaped((Dyn((1 << 24) + 8),), 1.0);
    assert_eq!(ones.sum(), ((1 << 24) + 8) as f32);
}

/// Pairwise summation splits at every length alike: sums of integers (exact in f64)
/// along every axis, at lengths around its lanes (32) and blocks (2048 values, or
/// 128 lines of an axis that is not the last).
#[test]
fn sums_are_exact_where_the_arithmetic_is() {
    for len in [0, 1, 10, 11, 31, 32, 33, 127, 128, 129, 682, 683, 1366, 2047, 2048, 2049, 9000] {
        let x = Tensor::<f64, (Dyn, Const<3>), Heap>::from_shape_fn((Dyn(len), Const), |[i, j]| {
            (i * 3 + j) as f64
        });
        let total = (0..3 * len).map(|v| v as f64).sum::<f64>();
        assert_eq!(x.sum(), total, "len {len}");
        let columns = x.sum_axis(Axis::<0>);
        for j in 0..3 {
            assert_eq!(
                columns[[j]],
                (0..len).map(|i| (i * 3 + j) as f64).sum::<f64>(),
                "len {len}, column {j}"
            );
        }
        let rows = x.transpose().sum_axis(Axis::<1>);
        assert_eq!(rows.to_vec(), columns.to_vec(), "len {len}");
    }
    // A long axis before an empty one: nothing to sum.
    let empty = Tensor::<f64, (Dyn, Dyn, Dyn), Heap>::zeros_shaped((Dyn(2), Dyn(200), Dyn(0)));
    assert_eq!(empty.sum_axis(Axis::<1>).shape(), (Dyn(2), Dyn(0)));
}

/// y[o, j, i] = x[o, i] along a new axis at every position, for static and dynamic
/// shapes; summing the new axis gives len·x back; a target that does not fit names
/// both shapes.
#[test]
fn broadcast_axis_repeats_each_line_along_the_new_axis() {
    let (t, a) = labelled3();
    let along0: Tensor3<f64, 5, 2, 3> =
        Matrix::<f64, 2, 3>::from_array([[1., 2., 3.], [4., 5., 6.]]).broadcast_axis(Axis::<0>);
    let source1: Matrix<f64, 2, 4> = t.sum_axis(Axis::<1>);
    let along1: Tensor3<f64, 2, 3, 4> = source1.broadcast_axis(Axis::<1>);
    let source2: Matrix<f64, 2, 3> = t.sum_axis(Axis::<2>);
    let along2: Tensor3<f64, 2, 3, 4> = source2.broadcast_axis(Axis::<2>);
    for (i, j, k) in (0..2).flat_map(|i| (0..3).flat_map(move |j| (0..4).map(move |k| (i, j, k)))) {
        assert_eq!(along1[[i, j, k]], (0..3).map(|jj| a[i][jj][k]).sum::<f64>(), "axis 1 at {i},{j},{k}");
        assert_eq!(along2[[i, j, k]], a[i][j].iter().sum::<f64>(), "axis 2 at {i},{j},{k}");
    }
    for l in 0..5 {
        assert_eq!(along0.to_array()[l], [[1., 2., 3.], [4., 5., 6.]]);
    }
    assert_eq!(along1.sum_axis(Axis::<1>), source1.map(|v| 3.0 * v));
    // A keepdim reduction: each row centred on its mean.
    let centred: Tensor3<f64, 2, 3, 4> = t - t.mean_axis(Axis::<2>).broadcast_axis(Axis::<2>);
    assert!(centred.sum_axis(Axis::<2>).iter().all(|v| v.abs() < 1e-12));
    // Dynamic shapes: checked when it runs.
    let rows =
        Tensor::<f64, (Dyn, Const<3>), Heap>::from_shape_fn((Dyn(2), Const), |[i, j]| (i * 3 + j) as f64);
    let wide = rows.try_broadcast_axis_to(Axis::<1>, (Dyn(2), Dyn(4), Const::<3>)).unwrap();
    assert_eq!(wide.shape(), (Dyn(2), Dyn(4), Const::<3>));
    assert_eq!(wide.as_slice()[12..15], [3., 4., 5.]);
    let error = rows.try_broadcast_axis_to(Axis::<1>, (Dyn(3), Dyn(4), Const::<3>)).unwrap_err();
    assert_names_shapes(&error, &[2, 3], &[3, 4, 3]);
    assert!(error.to_string().starts_with("broadcast_axis:"), "{error}");
}

#[test]
fn narrow_range_takes_run_time_offsets_along_any_axis() {
    let (_, reference) = labelled3();
    // Along the last axis, static to dynamic (a heap tensor: inline storage holds
    // static shapes only).
    let x: Tensor<f64, (Const<2>, Const<3>, Const<4>), Heap> =
        Tensor::from_shape_fn((Const, Const, Const), |[i, j, k]| reference[i][j][k]);
    let middle = x.narrow_range(Axis::<2>, 1..3);
    assert_eq!(middle.shape(), (Const::<2>, Const::<3>, Dyn(2)));
    for (i, j, k) in (0..2).flat_map(|i| (0..3).flat_map(move |j| (0..2).map(move |k| (i, j, k)))) {
        assert_eq!(middle[[i, j, k]], reference[i][j][k + 1]);
    }
    // A mini-batch of images along axis 0, and an empty range.
    let images: Tensor<f64, (Dyn, Const<2>, Const<2>, Const<3>), Heap> =
        Tensor::from_shape_fn((Dyn(5), Const, Const, Const), |[b, c, h, w]| {
            (b * 100 + c * 10 + h * 3 + w) as f64
        });
    let batch = images.narrow_range(Axis::<0>, 2..4);
    assert_eq!(batch.as_slice(), &images.as_slice()[2 * 12..4 * 12]);
    assert_eq!(images.narrow_range(Axis::<0>, 3..3).shape(), (Dyn(0), Const, Const, Const));
    // A range past the end, or reversed, is an error naming the shape.
    let error = images.try_narrow_range(Axis::<0>, 4..6).unwrap_err();
    assert_names_shapes(&error, &[5, 2, 2, 3], &[4, 2]);
    let (start, end) = (2, 1);
    assert!(images.try_narrow_range(Axis::<1>, start..end).is_err());
}

/// ⟨w, x[:, s..s + 2, :]⟩ + |x[:, s..s + 2, :]|², the slice's offset a plain value.
#[differentiable(wrt(x))]
fn window_energy(
    x: &Tensor<f64, (Const<2>, Const<3>, Const<4>), Heap>,
    weights: &Tensor<f64, (Const<2>, Dyn, Const<4>), Heap>,
    start: usize,
) -> f64 {
    let window = x.narrow_range(Axis::<1>, start..start + 2);
    window.dot(weights) + window.dot(&window)
}

#[test]
fn narrow_range_on_the_tape_and_in_static_mode() {
    use fluxion::autodiff::check::{CheckOptions, check_grad, check_pullback, check_pushforward};
    use fluxion::ops::layout::narrow_range_pullback;
    let x: Tensor<f64, (Const<2>, Const<3>, Const<4>), Heap> =
        Tensor::from_shape_fn((Const, Const, Const), |[i, j, k]| (i * 12 + j * 4 + k) as f64 / 7.0 - 1.0);
    let weights =
        Tensor::<f64, (Const<2>, Dyn, Const<4>), Heap>::from_shape_fn((Const, Dyn(2), Const), |[i, j, k]| {
            (i + 2 * j + 3 * k) as f64 - 2.5
        });
    // ⟨w, x[:, 1:3, :]⟩ + |x[:, 1:3, :]|²: its gradient against finite differences and
    // the adjoint identity.
    let loss = |x: Var<Tensor<f64, (Const<2>, Const<3>, Const<4>), Heap>>| {
        let window = x.narrow_range(Axis::<1>, 1..3);
        window.dot(&Var::constant(weights.clone())) + window.dot(&window)
    };
    check_grad(loss, &x, CheckOptions::f64()).unwrap();
    // The pullback places ȳ inside the range and zeros elsewhere.
    let placed = narrow_range_pullback::<1, _, _, _>(&x, 1..3, &weights);
    for (i, j, k) in (0..2).flat_map(|i| (0..3).flat_map(move |j| (0..4).map(move |k| (i, j, k)))) {
        let expected = if j == 0 { 0.0 } else { weights[[i, j - 1, k]] };
        assert_eq!(placed[[i, j, k]], expected);
    }
    // Static mode: the same loss, its gradient the tape's, its pullback and tangent
    // against finite differences.
    let (value, gradient) = window_energy::value_and_grad(&x, &weights, 1);
    let (tape_value, tape_gradient) = value_and_grad(loss, &x);
    assert!((value - tape_value).abs() < 1e-13);
    assert_all_close(gradient.as_slice(), tape_gradient.as_slice(), 1e-14);
    let plain = |x: &Tensor<f64, (Const<2>, Const<3>, Const<4>), Heap>| window_energy(x, &weights, 1);
    check_pullback(plain, window_energy::vjp(&x, &weights, 1).1, &x, CheckOptions::f64()).unwrap();
    let (_, pushforward) = window_energy::linearize(&x, &weights, 1);
    check_pushforward(plain, pushforward, &x, CheckOptions::f64()).unwrap();
    // A range that does not fit: an error on the tape; a panic naming both shapes
    // from the pullback given a cotangent of another shape.
    let error = Var::constant(x.clone()).try_narrow_range(Axis::<1>, 2..4).unwrap_err();
    assert_names_shapes(&error, &[2, 3, 4], &[2, 2]);
    let wrong = Tensor::<f64, (Const<2>, Dyn, Const<4>), Heap>::zeros_shaped((Const, Dyn(3), Const));
    let message = common::panic_message(|| narrow_range_pullback::<1, _, _, _>(&x, 1..3, &wrong));
    assert!(
        message.contains("narrow_range_pullback")
            && message.contains("[2, 2, 4]")
            && message.contains("[2, 3, 4]"),
        "{message}"
    );
}

#[test]
fn index_select_picks_entries_in_order_along_any_axis() {
    let images: Tensor<f64, (Dyn, Const<2>, Const<2>, Const<3>), Heap> =
        Tensor::from_shape_fn((Dyn(5), Const, Const, Const), |[b, c, h, w]| {
            (b * 100 + c * 10 + h * 3 + w) as f64
        });
    let batch = images.index_select(Axis::<0>, &[3, 0, 3]);
    assert_eq!(batch.shape(), (Dyn(3), Const, Const, Const));
    for (k, &b) in [3, 0, 3].iter().enumerate() {
        assert_eq!(&batch.as_slice()[k * 12..(k + 1) * 12], &images.as_slice()[b * 12..(b + 1) * 12]);
    }
    // Along an inner axis: the columns of each row picked.
    let columns = images.index_select(Axis::<3>, &[2, 0]);
    assert_eq!(columns.shape(), (Dyn(5), Const, Const, Dyn(2)));
    assert_eq!((columns[[4, 1, 1, 0]], columns[[4, 1, 1, 1]]), (images[[4, 1, 1, 2]], images[[4, 1, 1, 0]]));
    assert_eq!(images.index_select(Axis::<0>, &[]).shape(), (Dyn(0), Const, Const, Const));
    let error = images.try_index_select(Axis::<1>, &[1, 2]).unwrap_err();
    assert_names_shapes(&error, &[5, 2, 2, 3], &[2, 1]);
}

/// A dynamic rank-3 tensor with element (i, j, k) = 100i + 10j + k + `offset`.
fn labelled_dyn(dims: [usize; 3], offset: f64) -> Tensor<f64, (Dyn, Dyn, Dyn), Heap> {
    Tensor::from_shape_fn((Dyn(dims[0]), Dyn(dims[1]), Dyn(dims[2])), |[i, j, k]| {
        (100 * i + 10 * j + k) as f64 + offset
    })
}

#[test]
fn layout_changes_along_the_middle_axis_copy_every_element_including_empty_parts() {
    use fluxion::ops::layout::{broadcast_pullback, concat_pullback};
    for (len_a, len_b) in [(2, 3), (0, 3), (2, 0), (0, 0)] {
        let (a, b) = (labelled_dyn([2, len_a, 3], 0.0), labelled_dyn([2, len_b, 3], 0.5));
        let joined = a.concat::<1, Dyn, Dyn>(Axis::<1>, &b);
        assert_eq!(joined.dims().as_slice(), &[2, len_a + len_b, 3]);
        for [i, j, k] in
            (0..2).flat_map(|i| (0..len_a + len_b).flat_map(move |j| (0..3).map(move |k| [i, j, k])))
        {
            let expected = if j < len_a { a[[i, j, k]] } else { b[[i, j - len_a, k]] };
            assert_eq!(joined[[i, j, k]], expected, "concat ({len_a}, {len_b}) at {i}, {j}, {k}");
        }
        let (a_bar, b_bar) = concat_pullback::<1, _, _, Dyn, Dyn, _>(&a, &b, &joined);
        assert_eq!((a_bar.as_slice(), b_bar.as_slice()), (a.as_slice(), b.as_slice()));
    }
    let x = labelled_dyn([2, 4, 3], 0.0);
    for range in [1..3, 2..2, 0..4] {
        let window = x.narrow_range(Axis::<1>, range.clone());
        let expected: Tensor<f64, _, Heap> =
            Tensor::from_shape_fn((Dyn(2), Dyn(range.len()), Dyn(3)), |[i, j, k]| x[[i, range.start + j, k]]);
        assert_eq!(window.as_slice(), expected.as_slice(), "narrow_range {range:?}");
    }
    for indices in [&[3, 0, 3][..], &[]] {
        let selected = x.index_select(Axis::<1>, indices);
        let expected: Tensor<f64, _, Heap> =
            Tensor::from_shape_fn((Dyn(2), Dyn(indices.len()), Dyn(3)), |[i, j, k]| x[[i, indices[j], k]]);
        assert_eq!(selected.as_slice(), expected.as_slice(), "index_select {indices:?}");
    }
    let rows = labelled_dyn([1, 4, 3], 0.0).try_reshape((Dyn(4), Dyn(3))).unwrap();
    let gathered = rows.gather_rows(&[2, 2, 0]);
    assert_eq!(
        gathered.as_slice(),
        [&rows.as_slice()[6..9], &rows.as_slice()[6..9], &rows.as_slice()[..3]].concat()
    );
    // Broadcasting a line into every row of a matrix, and the sum that undoes it.
    let line: Vector<f64, 3> = Vector::from_array([1.0, 2.0, 3.0]);
    let repeated: Matrix<f64, 4, 3> = line.broadcast_axis(Axis::<0>);
    assert_eq!(repeated.to_array(), [[1.0, 2.0, 3.0]; 4]);
    let columns: Matrix<f64, 3, 4> = line.broadcast_axis(Axis::<1>);
    assert_eq!(columns.to_array(), [[1.0; 4], [2.0; 4], [3.0; 4]]);
    let tiles: Matrix<f64, 4, 3> = Matrix::from_fn(|[r, c]| (10 * r + c) as f64);
    assert_eq!(broadcast_pullback(&line, &tiles).to_array(), [60.0, 64.0, 68.0]);
    // Large enough (over 16 KiB) to be written into buffers kept for reuse.
    let (a, b) = (labelled_dyn([3, 40, 50], 0.0), labelled_dyn([3, 10, 50], 0.5));
    for _ in 0..2 {
        let joined = a.concat::<1, Dyn, Dyn>(Axis::<1>, &b);
        let expected: Tensor<f64, _, Heap> =
            Tensor::from_shape_fn((Dyn(3), Dyn(50), Dyn(50)), |[i, j, k]| {
                if j < 40 { a[[i, j, k]] } else { b[[i, j - 40, k]] }
            });
        assert_eq!(joined.as_slice(), expected.as_slice());
        let window = a.narrow_range(Axis::<1>, 5..35);
        let expected: Tensor<f64, _, Heap> =
            Tensor::from_shape_fn((Dyn(3), Dyn(30), Dyn(50)), |[i, j, k]| a[[i, 5 + j, k]]);
        assert_eq!(window.as_slice(), expected.as_slice());
    }
}

#[test]
fn euclidean_norms_at_every_scale() {
    assert_eq!(vector([3.0, 4.0]).norm(), 5.0);
    let m: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, -2.0], [2.0, 4.0]]);
    assert_eq!(m.norm(), 5.0);
    let z: Vector<Complex64, 2> = Vector::from_array([Complex64::new(3.0, 4.0), Complex64::new(0.0, 0.0)]);
    assert_eq!(z.norm(), 5.0);
    assert_eq!(DVector::<f64>::zeros_shaped((Dyn(0),)).norm(), 0.0);
    assert_eq!(Vector::<f64, 3>::zeros().norm(), 0.0);
    // Squares that overflow or underflow, in f64 and f32; a subnormal element.
    for scale in [1e300, 1e-200] {
        assert_close(vector([scale, scale]).norm(), scale * 2f64.sqrt(), RTOL);
    }
    assert_eq!(vector([5e-324, 0.0]).norm(), 5e-324);
    assert_close(vector([3e-170, 4e-170]).norm(), 5e-170, RTOL);
    let single: Vector<f32, 2> = Vector::from_array([3e30, 4e30]);
    assert!((single.norm() / 5e30 - 1.0).abs() < 1e-6);
    let single: Vector<f32, 2> = Vector::from_array([3e-30, 4e-30]);
    assert!((single.norm() / 5e-30 - 1.0).abs() < 1e-6);
    let huge_complex: Vector<Complex64, 1> = Vector::from_array([Complex64::new(3e200, 4e200)]);
    assert_close(huge_complex.norm(), 5e200, RTOL);
    // An infinite element gives ∞, a NaN gives NaN (before or beside an infinity).
    assert_eq!(vector([1.0, f64::NEG_INFINITY]).norm(), f64::INFINITY);
    assert!(vector([1.0, f64::NAN]).norm().is_nan());
    assert!(vector([f64::INFINITY, f64::NAN]).norm().is_nan());
    assert!(vector([f64::NAN, f64::INFINITY]).norm().is_nan());
}

/// An inline vector of `f64`.
fn vector<const N: usize>(elements: [f64; N]) -> Vector<f64, N> {
    Vector::from_array(elements)
}

#[test]
fn rows_and_columns_as_vectors() {
    let m: Matrix<f64, 2, 3> = Matrix::from_array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    assert_eq!(m.row(0).to_array(), [1.0, 2.0, 3.0]);
    assert_eq!(m.column(1).to_array(), [2.0, 5.0]);
    let dynamic = DMatrix::from_shape_vec((Dyn(2), Dyn(3)), m.as_slice().to_vec()).unwrap();
    assert_eq!(
        (dynamic.row(1).as_slice(), dynamic.column(2).as_slice()),
        (&[4.0, 5.0, 6.0][..], &[3.0, 6.0][..])
    );
    assert_names_shapes(&m.try_row(2).unwrap_err(), &[2, 3], &[2]);
    assert_names_shapes(&m.try_column(3).unwrap_err(), &[2, 3], &[3]);
    let message = std::panic::catch_unwind(|| m.column(3)).unwrap_err();
    assert_eq!(
        message.downcast_ref::<String>().unwrap(),
        "column: shapes [2, 3] and [3] are incompatible (the index (the second) must be below the column count)"
    );
    // A matrix without columns has empty rows.
    let empty = DMatrix::<f64>::zeros_shaped((Dyn(2), Dyn(0)));
    assert!(empty.row(1).is_empty() && empty.try_column(0).is_err());
}

/// Checks `x.permute(axes)` element by element against y[i] = x[j] with
/// j_{order[k]} = i_k, and that the pullback puts every element back.
fn assert_permuted<T, S, P, K>(x: &Tensor<T, S, K>, axes: P)
where
    T: Scalar,
    S: Shape,
    P: PermutesAxes<S>,
    K: Storage<T, S> + Storage<T, P::Output>,
{
    use fluxion::ops::layout::permute_pullback;
    let y = x.permute(axes);
    let (x_dims, y_dims, order) = (x.dims(), y.dims(), P::ORDER);
    for (k, &axis) in order.iter().enumerate() {
        assert_eq!(y_dims.as_slice()[k], x_dims.as_slice()[axis], "{order:?}: axis {k}");
    }
    let strides = |dims: &[usize]| -> Vec<usize> {
        (0..dims.len()).map(|axis| dims[axis + 1..].iter().product()).collect()
    };
    let x_strides = strides(x_dims.as_slice());
    for (flat, &element) in y.as_slice().iter().enumerate() {
        let mut rest = flat;
        let mut offset = 0;
        for (k, &axis) in order.iter().enumerate().rev() {
            offset += rest % y_dims.as_slice()[k] * x_strides[axis];
            rest /= y_dims.as_slice()[k];
        }
        assert!(element == x.as_slice()[offset], "{order:?}: element {flat}");
    }
    assert!(permute_pullback(axes, &y).as_slice() == x.as_slice(), "{order:?}: the pullback");
}

#[test]
fn permute_moves_each_axis_to_its_place() {
    // Rank 4, every order, with a dynamic axis (it moves with its type) and two axes
    // past the transpose's 16×16 tiles; each element is its offset.
    let x = Tensor::<f64, (Dyn, Const<3>, Const<17>, Const<18>), Heap>::from_shape_fn(
        (Dyn(2), Const, Const, Const),
        |[a, b, c, d]| (((a * 3 + b) * 17 + c) * 18 + d) as f64,
    );
    macro_rules! every_order {
        ($($a:literal $b:literal $c:literal $d:literal),+) => {
            $(assert_permuted(&x, Axes::<$a, $b, $c, $d>);)+
        };
    }
    every_order!(
        0 1 2 3, 0 1 3 2, 0 2 1 3, 0 2 3 1, 0 3 1 2, 0 3 2 1, 1 0 2 3, 1 0 3 2, 1 2 0 3, 1 2 3 0, 1 3 0 2,
        1 3 2 0, 2 0 1 3, 2 0 3 1, 2 1 0 3, 2 1 3 0, 2 3 0 1, 2 3 1 0, 3 0 1 2, 3 0 2 1, 3 1 0 2, 3 1 2 0,
        3 2 0 1, 3 2 1 0
    );
    let y: Tensor<f64, (Const<18>, Dyn, Const<17>, Const<3>), Heap> = x.permute(Axes::<3, 0, 2, 1>);
    assert_eq!((y.shape(), y[[4, 1, 2, 0]]), ((Const, Dyn(2), Const, Const), 958.0));
    // Rank 3, every order, sizes past the transpose's 16×16 tiles (the batch of
    // transposes when the last two axes swap), in complex numbers.
    let mut rng = TestRng::new(11);
    let z =
        Tensor::<Complex64, (Const<2>, Dyn, Const<37>), Heap>::from_shape_fn((Const, Dyn(19), Const), |_| {
            Complex64::new(rng.signed_unit(), rng.signed_unit())
        });
    macro_rules! every_order_of_three {
        ($($a:literal $b:literal $c:literal),+) => {
            $(assert_permuted(&z, Axes::<$a, $b, $c>);)+
        };
    }
    every_order_of_three!(0 1 2, 0 2 1, 1 0 2, 1 2 0, 2 0 1, 2 1 0);
    // Rank 2: `Axes::<1, 0>` is the transpose; inline storage keeps static shapes.
    let (m, _) = labelled3();
    let m: Matrix<f64, 6, 4> = m.reshape();
    assert_eq!(m.permute(Axes::<1, 0>).to_array(), m.transpose().to_array());
    assert_eq!(m.permute(Axes::<0, 1>).to_array(), m.to_array());
    assert_permuted(&m, Axes::<1, 0>);
    // Empty axes stay empty, wherever they move.
    let empty = Tensor::<f32, (Const<3>, Dyn, Const<2>), Heap>::zeros_shaped((Const, Dyn(0), Const));
    let moved = empty.permute(Axes::<1, 2, 0>);
    assert_eq!((moved.shape(), moved.len()), ((Dyn(0), Const, Const), 0));
}

/// sin(xᵀ⁽²⁰¹⁾) weighted, for static mode: the permuted tensor feeds an elementwise
/// function and a product.
#[differentiable(wrt(x))]
fn permuted_energy(
    x: &Tensor<f64, (Const<2>, Const<3>, Const<4>), Heap>,
    weights: &Tensor<f64, (Const<4>, Const<2>, Const<3>), Heap>,
) -> f64 {
    let y = x.permute(Axes::<2, 0, 1>);
    y.sin().dot(weights) + y.dot(&y)
}

#[test]
fn permute_on_the_tape_in_static_mode_and_on_duals() {
    use fluxion::autodiff::check::{CheckOptions, check_grad, check_pullback, check_pushforward};
    use fluxion::ops::layout::permute_pullback;
    type X = Tensor<f64, (Const<2>, Const<3>, Const<4>), Heap>;
    type W = Tensor<f64, (Const<4>, Const<2>, Const<3>), Heap>;
    let mut rng = TestRng::new(5);
    let x = X::from_shape_fn((Const, Const, Const), |_| rng.signed_unit());
    let weights = W::from_shape_fn((Const, Const, Const), |_| rng.signed_unit());
    let loss = |x: Var<X>| {
        let y = x.permute(Axes::<2, 0, 1>);
        y.sin().dot(&Var::constant(weights.clone())) + y.dot(&y)
    };
    check_grad(loss, &x, CheckOptions::f64()).unwrap();
    // The adjoint identity ⟨P v, w⟩ = ⟨v, Pᵀ w⟩, exactly (a permutation adds nothing).
    let v = X::from_shape_fn((Const, Const, Const), |_| rng.signed_unit());
    let (lhs, rhs) =
        (v.permute(Axes::<2, 0, 1>).dot(&weights), v.dot(&permute_pullback(Axes::<2, 0, 1>, &weights)));
    assert!((lhs - rhs).abs() <= 1e-15 * lhs.abs().max(1.0), "{lhs} against {rhs}");
    // Static mode: the tape's value and gradient; its pullback and tangent against
    // finite differences.
    let (value, gradient) = permuted_energy::value_and_grad(&x, &weights);
    let (tape_value, tape_gradient) = value_and_grad(loss, &x);
    assert!((value - tape_value).abs() < 1e-13);
    assert_all_close(gradient.as_slice(), tape_gradient.as_slice(), 1e-14);
    let plain = |x: &X| permuted_energy(x, &weights);
    check_pullback(plain, permuted_energy::vjp(&x, &weights).1, &x, CheckOptions::f64()).unwrap();
    let (_, pushforward) = permuted_energy::linearize(&x, &weights);
    check_pushforward(plain, pushforward, &x, CheckOptions::f64()).unwrap();
    // Duals: the tangent is the direction, permuted.
    let (_, tangent) =
        jvp(|x: Tensor<Dual<f64>, (Const<2>, Const<3>, Const<4>), Heap>| x.permute(Axes::<1, 2, 0>), &x, &v);
    assert_eq!(tangent.as_slice(), v.permute(Axes::<1, 2, 0>).as_slice());
}
