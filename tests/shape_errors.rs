//! Run-time shape errors: for every operation that can meet a dynamic mismatch, the
//! `try_*` form returns a `ShapeError` naming both shapes (in order), and the plain
//! form panics with exactly the error's message.

mod common;

use common::{assert_names_shapes, panic_message};
use fluxion::prelude::*;

/// A batch of 3-vectors of run-time length.
type Rows3 = Tensor<f64, (Dyn, Const<3>), Heap>;

fn dmatrix(rows: usize, cols: usize) -> DMatrix<f64> {
    DMatrix::from_shape_fn((Dyn(rows), Dyn(cols)), |[i, j]| (i * cols + j) as f64)
}

fn dvector(len: usize) -> DVector<f64> {
    DVector::from_shape_fn((Dyn(len),), |[i]| i as f64)
}

fn rows3(rows: usize) -> Rows3 {
    Rows3::from_shape_fn((Dyn(rows), Const), |[i, j]| (i * 3 + j) as f64)
}

fn dtensor3(a: usize, b: usize, c: usize) -> Tensor<f64, (Dyn, Dyn, Dyn), Heap> {
    Tensor::zeros_shaped((Dyn(a), Dyn(b), Dyn(c)))
}

/// Asserts that `checked` is an error of `operation` naming `lhs` then `rhs`, and
/// that `plain` panics with the error's message.
#[track_caller]
fn assert_fails_alike<A, B>(
    operation: Option<&str>,
    checked: Result<A, ShapeError>,
    plain: impl FnOnce() -> B,
    lhs: &[usize],
    rhs: &[usize],
) {
    let Err(error) = checked else { panic!("expected a shape error naming {lhs:?} and {rhs:?}") };
    assert_names_shapes(&error, lhs, rhs);
    if let Some(operation) = operation {
        assert_eq!(error.operation(), operation);
        assert!(error.to_string().starts_with(operation), "{error}");
    }
    assert_eq!(panic_message(plain), error.to_string());
}

#[test]
fn matmul_matrix_by_matrix() {
    let (a, b) = (dmatrix(2, 3), dmatrix(4, 3));
    assert_fails_alike(Some("matmul"), a.try_matmul(&b), || a.matmul(&b), &[2, 3], &[4, 3]);
    assert_fails_alike(Some("matmul"), b.try_matmul(&a), || b.matmul(&a), &[4, 3], &[2, 3]);
    // A dynamic matrix times a batch of 3-vectors: inner dimensions 3 and 4.
    let r = rows3(4);
    assert_fails_alike(Some("matmul"), a.try_matmul(&r), || a.matmul(&r), &[2, 3], &[4, 3]);
    // Compatible shapes still work.
    assert_eq!(a.try_matmul(&rows3(3)).unwrap().dims().as_slice(), &[2, 3]);
}

#[test]
fn matmul_matrix_by_vector() {
    let (a, x) = (dmatrix(2, 3), dvector(4));
    assert_fails_alike(Some("matmul"), a.try_matmul(&x), || a.matmul(&x), &[2, 3], &[4]);
    let rows = Tensor::<f64, (Const<2>, Dyn), Heap>::zeros_shaped((Const, Dyn(5)));
    assert_fails_alike(Some("matmul"), rows.try_matmul(&x), || rows.matmul(&x), &[2, 5], &[4]);
}

#[test]
fn matmul_batched() {
    // Inner dimensions differ.
    let (a, b) = (dtensor3(2, 3, 4), dtensor3(2, 5, 6));
    assert_fails_alike(Some("matmul"), a.try_matmul(&b), || a.matmul(&b), &[2, 3, 4], &[2, 5, 6]);
    // Batch sizes differ.
    let c = dtensor3(3, 4, 5);
    assert_fails_alike(Some("matmul"), a.try_matmul(&c), || a.matmul(&c), &[2, 3, 4], &[3, 4, 5]);
    assert_eq!(a.try_matmul(&dtensor3(2, 4, 1)).unwrap().dims().as_slice(), &[2, 3, 1]);
}

#[test]
fn matmul_transposed() {
    // [M, K]×[N, K]: column counts 3 and 4 differ.
    let (a, b) = (dmatrix(2, 3), dmatrix(5, 4));
    let op = Some("matmul_transposed");
    assert_fails_alike(op, a.try_matmul_transposed(&b), || a.matmul_transposed(&b), &[2, 3], &[5, 4]);
    // Two static rows of a run-time length.
    let r = Tensor::<f64, (Const<2>, Dyn), Heap>::zeros_shaped((Const, Dyn(3)));
    assert_fails_alike(op, r.try_matmul_transposed(&b), || r.matmul_transposed(&b), &[2, 3], &[5, 4]);
    assert_eq!(r.try_matmul_transposed(&dmatrix(5, 3)).unwrap().dims().as_slice(), &[2, 5]);
    // The shapes a matmul would accept are the wrong ones here.
    let c = dmatrix(3, 5);
    assert_fails_alike(op, a.try_matmul_transposed(&c), || a.matmul_transposed(&c), &[2, 3], &[3, 5]);
    // The output of the `_into` form must have the product's shape, [2, 5].
    let mut out = dmatrix(5, 2);
    let error = a.try_matmul_transposed_into(&dmatrix(5, 3), &mut out).unwrap_err();
    assert_eq!(error.operation(), "matmul_transposed_into");
    assert_names_shapes(&error, &[5, 2], &[2, 5]);
}

#[test]
fn transposed_matmul() {
    // [K, M]×[K, N]: row counts 2 and 3 differ.
    let (a, b) = (dmatrix(2, 4), dmatrix(3, 4));
    let op = Some("transposed_matmul");
    assert_fails_alike(op, a.try_transposed_matmul(&b), || a.transposed_matmul(&b), &[2, 4], &[3, 4]);
    let r = rows3(5);
    assert_fails_alike(op, r.try_transposed_matmul(&a), || r.transposed_matmul(&a), &[5, 3], &[2, 4]);
    assert_eq!(r.try_transposed_matmul(&dmatrix(5, 2)).unwrap().dims().as_slice(), &[3, 2]);
    // The output of the `_into` form must have the product's shape, [4, 3].
    let mut out = dmatrix(3, 4);
    let error = a.try_transposed_matmul_into(&dmatrix(2, 3), &mut out).unwrap_err();
    assert_eq!(error.operation(), "transposed_matmul_into");
    assert_names_shapes(&error, &[3, 4], &[4, 3]);
}

#[test]
fn add_and_sub_operators() {
    let (a, b) = (dmatrix(2, 3), dmatrix(4, 3));
    assert_fails_alike(None, a.try_add(&b), || &a + &b, &[2, 3], &[4, 3]);
    assert_fails_alike(None, a.try_add(&b), || a.clone() + b.clone(), &[2, 3], &[4, 3]);
    assert_fails_alike(None, a.try_add(&b), || a.clone() + &b, &[2, 3], &[4, 3]);
    assert_fails_alike(None, a.try_add(&b), || &a + b.clone(), &[2, 3], &[4, 3]);
    assert_fails_alike(None, a.try_sub(&b), || &a - &b, &[2, 3], &[4, 3]);
    assert_fails_alike(None, a.try_sub(&b), || a.clone() - b.clone(), &[2, 3], &[4, 3]);
    assert_fails_alike(None, b.try_sub(&a), || &b - &a, &[4, 3], &[2, 3]);
    let (r, s) = (rows3(2), rows3(4));
    assert_fails_alike(None, r.try_add(&s), || &r + &s, &[2, 3], &[4, 3]);
    assert_fails_alike(None, r.try_sub(&s), || &r - &s, &[2, 3], &[4, 3]);
    // Same element count, different shape: still an error.
    assert!(dmatrix(2, 3).try_add(&dmatrix(3, 2)).is_err());
}

#[test]
fn compound_assignment_panics_naming_both_shapes() {
    let (a, b) = (dmatrix(2, 3), dmatrix(4, 3));
    for message in [
        panic_message(|| {
            let mut c = a.clone();
            c += &b;
        }),
        panic_message(|| {
            let mut c = a.clone();
            c -= &b;
        }),
    ] {
        assert!(message.contains("[2, 3]") && message.contains("[4, 3]"), "{message}");
    }
}

#[test]
fn hadamard() {
    let (r, s) = (rows3(2), rows3(4));
    assert_fails_alike(None, r.try_hadamard(&s), || r.hadamard(&s), &[2, 3], &[4, 3]);
    let (a, b) = (dmatrix(2, 3), dmatrix(4, 3));
    assert_fails_alike(None, a.try_hadamard(&b), || a.hadamard(&b), &[2, 3], &[4, 3]);
}

#[test]
fn dot_inner_dotu() {
    let (x, y) = (dvector(2), dvector(4));
    assert_fails_alike(Some("dot"), x.try_dot(&y), || x.dot(&y), &[2], &[4]);
    assert_fails_alike(Some("inner"), x.try_inner(&y), || x.inner(&y), &[2], &[4]);
    assert_fails_alike(Some("dotu"), x.try_dotu(&y), || x.dotu(&y), &[2], &[4]);
    let (a, b) = (dmatrix(2, 3), dmatrix(4, 3));
    assert_fails_alike(Some("dot"), a.try_dot(&b), || a.dot(&b), &[2, 3], &[4, 3]);
    let z = Tensor::<Complex64, (Dyn, Const<3>), Heap>::zeros_shaped((Dyn(2), Const));
    let w = Tensor::<Complex64, (Dyn, Const<3>), Heap>::zeros_shaped((Dyn(4), Const));
    assert_fails_alike(Some("inner"), z.try_inner(&w), || z.inner(&w), &[2, 3], &[4, 3]);
    assert_fails_alike(Some("dotu"), z.try_dotu(&w), || z.dotu(&w), &[2, 3], &[4, 3]);
}

#[test]
fn zip_map() {
    let (r, s) = (rows3(2), rows3(4));
    assert_fails_alike(
        Some("zip_map"),
        r.try_zip_map(&s, |p, q| p * q),
        || r.zip_map(&s, |p, q| p * q),
        &[2, 3],
        &[4, 3],
    );
    let (x, y) = (dvector(5), dvector(1));
    assert_fails_alike(Some("zip_map"), x.try_zip_map(&y, |p, _| p), || x.zip_map(&y, |p, _| p), &[5], &[1]);
}

#[test]
fn concat() {
    let (a, b) = (dmatrix(2, 3), dmatrix(4, 2));
    assert_fails_alike(
        Some("concat"),
        a.try_concat(Axis::<0>, &b),
        || a.concat(Axis::<0>, &b),
        &[2, 3],
        &[4, 2],
    );
    assert_fails_alike(
        Some("concat"),
        a.try_concat(Axis::<1>, &b),
        || a.concat(Axis::<1>, &b),
        &[2, 3],
        &[4, 2],
    );
    // A batch of 3-vectors concatenated along axis 1 with rows of another length.
    let r = rows3(2);
    let s = Tensor::<f64, (Dyn, Const<2>), Heap>::zeros_shaped((Dyn(5), Const));
    let joined: Result<Tensor<f64, (Dyn, Const<5>), Heap>, _> = r.try_concat(Axis::<1>, &s);
    let Err(error) = joined else { panic!("rows 2 and 5 cannot be joined side by side") };
    assert_names_shapes(&error, &[2, 3], &[5, 2]);
    let message = panic_message(|| -> Tensor<f64, (Dyn, Const<5>), Heap> { r.concat(Axis::<1>, &s) });
    assert_eq!(message, error.to_string());
}

#[test]
fn narrow() {
    let a = dmatrix(4, 3);
    assert_fails_alike(Some("narrow"), a.try_narrow::<0, 3, 2>(), || a.narrow::<0, 3, 2>(), &[4, 3], &[3, 2]);
    assert_fails_alike(Some("narrow"), a.try_narrow::<1, 0, 4>(), || a.narrow::<1, 0, 4>(), &[4, 3], &[0, 4]);
    let r = rows3(1);
    assert_fails_alike(Some("narrow"), r.try_narrow::<0, 1, 1>(), || r.narrow::<0, 1, 1>(), &[1, 3], &[1, 1]);
    // The message says which axis and what the second pair is.
    let square: DMatrix<f64> = DMatrix::zeros_shaped((Dyn(4), Dyn(4)));
    let message = square.try_narrow::<1, 3, 2>().unwrap_err().to_string();
    assert!(message.contains("the slice [start, len] (the second) must fit inside axis 1"), "{message}");
}

#[test]
fn reshape() {
    let a = dmatrix(2, 3);
    let Err(error) = a.try_reshape((Dyn(4), Dyn(3))) else { panic!("6 elements are not 12") };
    assert_names_shapes(&error, &[2, 3], &[4, 3]);
    assert_eq!(error.operation(), "reshape");
    let r = rows3(2);
    let Err(error) = r.try_reshape((Dyn(5),)) else { panic!("6 elements are not 5") };
    assert_names_shapes(&error, &[2, 3], &[5]);
}

#[test]
fn broadcast() {
    let x = dvector(3);
    let Err(error) = x.try_broadcast_to((Dyn(2), Dyn(4))) else { panic!("3 is not 4") };
    assert_names_shapes(&error, &[3], &[2, 4]);
    assert_eq!(error.operation(), "broadcast");
    let r = rows3(2);
    let Err(error) = r.try_broadcast_to((Const::<5>, Dyn(4), Const::<3>)) else { panic!("2 is not 4") };
    assert_names_shapes(&error, &[2, 3], &[5, 4, 3]);
}

#[test]
fn from_shape_vec_and_slice() {
    let Err(error) = DMatrix::from_shape_vec((Dyn(2), Dyn(3)), vec![0.0; 12]) else { panic!("12 is not 6") };
    assert_names_shapes(&error, &[2, 3], &[12]);
    let Err(error) = Rows3::from_shape_vec((Dyn(4), Const), vec![0.0; 9]) else { panic!("9 is not 12") };
    assert_names_shapes(&error, &[4, 3], &[9]);
    let Err(error) = DVector::from_shape_slice((Dyn(2),), &[1.0]) else { panic!("1 is not 2") };
    assert_names_shapes(&error, &[2], &[1]);
}

#[test]
fn shape_errors_are_std_errors_and_comparable() {
    let (a, b) = (dmatrix(2, 3), dmatrix(4, 3));
    let error = a.try_matmul(&b).unwrap_err();
    let boxed: Box<dyn std::error::Error> = Box::new(error);
    assert_eq!(boxed.to_string(), error.to_string());
    assert_eq!(a.try_matmul(&b).unwrap_err(), error);
    assert_ne!(b.try_matmul(&a).unwrap_err(), error);
}

#[test]
fn a_target_with_more_elements_than_a_usize_counts_is_an_error() {
    let empty: DVector<f64> = DVector::zeros_shaped((Dyn(0),));
    let error = empty.try_reshape((Dyn(1 << 32), Dyn(1 << 32))).unwrap_err();
    assert!(error.to_string().contains("more elements than a usize counts"), "{error}");
    let pair: DVector<f64> = DVector::from_shape_vec((Dyn(2),), vec![1.0, 2.0]).unwrap();
    let error = pair.try_broadcast_to((Dyn(usize::MAX), Dyn(2))).unwrap_err();
    assert!(error.to_string().contains("more elements than a usize counts"), "{error}");
    let error = pair.try_broadcast_axis_to(Axis::<0>, (Dyn(usize::MAX), Dyn(2))).unwrap_err();
    assert!(error.to_string().contains("more elements than a usize counts"), "{error}");
}
