//! Conversions to and from nalgebra's `SMatrix` and `SVector`. nalgebra stores
//! column-major and fluxion row-major: a conversion must keep every element at the
//! same (row, column) position, not the same memory offset.
#![cfg(feature = "nalgebra")]

use fluxion::prelude::*;
use nalgebra::{SMatrix, SVector};

#[test]
fn smatrix_to_matrix_keeps_positions() {
    // `SMatrix::new` takes its arguments row by row.
    let s = SMatrix::<f64, 2, 3>::new(1., 2., 3., 4., 5., 6.);
    // nalgebra's memory is column-major, fluxion's row-major.
    assert_eq!(s.as_slice(), &[1., 4., 2., 5., 3., 6.]);
    let m: Matrix<f64, 2, 3> = s.into();
    assert_eq!(m.to_array(), [[1., 2., 3.], [4., 5., 6.]]);
    assert_eq!(m.as_slice(), &[1., 2., 3., 4., 5., 6.]);
    for i in 0..2 {
        for j in 0..3 {
            assert_eq!(m[[i, j]], s[(i, j)]);
        }
    }
    let heap: Matrix<f64, 2, 3, Heap> = Matrix::from(s);
    assert_eq!(heap.as_slice(), m.as_slice());
}

#[test]
fn matrix_to_smatrix_keeps_positions() {
    let m: Matrix<f64, 2, 3> = Matrix::from_fn(|[i, j]| (10 * i + j) as f64);
    let s: SMatrix<f64, 2, 3> = m.into();
    for i in 0..2 {
        for j in 0..3 {
            assert_eq!(s[(i, j)], (10 * i + j) as f64);
        }
    }
    assert_eq!(s, SMatrix::<f64, 2, 3>::new(0., 1., 2., 10., 11., 12.));
    let from_heap: SMatrix<f64, 2, 3> = m.to_storage::<Heap>().into();
    assert_eq!(from_heap, s);
}

#[test]
fn matrix_round_trips_both_ways() {
    let s = SMatrix::<f64, 2, 3>::from_fn(|i, j| (i as f64) * 0.5 - (j as f64) * 3.0);
    let m: Matrix<f64, 2, 3> = s.into();
    assert_eq!(SMatrix::<f64, 2, 3>::from(m), s);
    let m2: Matrix<f64, 2, 3> = SMatrix::<f64, 2, 3>::from(m).into();
    assert_eq!(m2, m);
    // The transpose agrees with nalgebra's.
    let t: Matrix<f64, 3, 2> = m.transpose();
    assert_eq!(SMatrix::<f64, 3, 2>::from(t), s.transpose());
}

#[test]
fn products_agree_with_nalgebra() {
    let a = SMatrix::<f64, 2, 3>::new(1., -2., 0.5, 3., 4., -1.);
    let b = SMatrix::<f64, 3, 4>::from_fn(|i, j| (i * 4 + j) as f64 - 5.0);
    let x = SVector::<f64, 3>::new(2., -1., 4.);
    let (fa, fb, fx): (Matrix<f64, 2, 3>, Matrix<f64, 3, 4>, Vector<f64, 3>) = (a.into(), b.into(), x.into());
    // Small integers and halves: every product is exact in both libraries.
    assert_eq!(SMatrix::<f64, 2, 4>::from(fa.matmul(&fb)), a * b);
    assert_eq!(SVector::<f64, 2>::from(fa.matmul(&fx)), a * x);
    assert_eq!(fx.dot(&fx), x.dot(&x));
}

#[test]
fn svector_round_trips() {
    let v = SVector::<f64, 3>::new(1., -2., 3.5);
    let t: Vector<f64, 3> = v.into();
    assert_eq!(t.to_array(), [1., -2., 3.5]);
    assert_eq!(SVector::<f64, 3>::from(t), v);
    let heap: Vector<f64, 3, Heap> = v.into();
    assert_eq!(heap.to_vec(), vec![1., -2., 3.5]);
    assert_eq!(SVector::<f64, 3>::from(heap), v);
}

#[test]
fn complex_and_single_precision_convert_too() {
    let c = Complex64::new;
    let s = SMatrix::<Complex64, 2, 2>::new(c(1., 1.), c(2., -1.), c(0., 3.), c(-4., 0.));
    let m: Matrix<Complex64, 2, 2> = s.into();
    assert_eq!(m.to_array(), [[c(1., 1.), c(2., -1.)], [c(0., 3.), c(-4., 0.)]]);
    assert_eq!(SMatrix::<Complex64, 2, 2>::from(m), s);
    let v = SVector::<f32, 2>::new(0.25, -8.0);
    let fv: Vector<f32, 2> = v.into();
    assert_eq!(fv.to_array(), [0.25, -8.0]);
    assert_eq!(SVector::<f32, 2>::from(fv), v);
}
