//! Host tensors whose storage kind is inferred from a later use: `Vector::from_array`
//! leaves `K` open until a function's signature fixes it. With the `cuda` feature the
//! GPU tensors' methods of the same names are trait methods (in the prelude), which
//! the compiler tries only after the host's inherent methods, and each arithmetic
//! operator has one impl for every storage kind (`KindArithmetic`), so these calls
//! stay unambiguous: the suite runs with `--all-features`, and this file compiling
//! there is the check that the feature is additive. The values are checked too.

// Every operand form (borrowed, owned, cloned) is part of what is checked.
#![allow(clippy::op_ref, clippy::clone_on_copy)]

use fluxion::prelude::*;

fn inline_vector(v: &Vector<f64, 3>) -> [f64; 3] {
    let mut out = [0.0; 3];
    out.copy_from_slice(v.as_slice());
    out
}

fn heap_matrix(m: &Matrix<f64, 2, 3, Heap>) -> Vec<f64> {
    m.as_slice().to_vec()
}

#[test]
fn elementwise_methods_before_the_storage_kind_is_known() {
    let v = Vector::from_array([1.0, 2.0, 3.0]);
    let doubled = v.scale(2.0).exp().ln();
    let tripled = doubled.try_add(&v).unwrap();
    let squares = tripled.hadamard(&v).sqrt().powi(2);
    let relu = squares.try_sub(&v.scale(4.0)).unwrap().relu();
    let [a, b, c] = inline_vector(&relu);
    for (got, want) in [(a, 0.0), (b, 4.0), (c, 15.0)] {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    assert_eq!(v.sum(), 6.0);
    assert_eq!(v.dot(&v), 14.0);
}

#[test]
fn operators_before_the_storage_kind_is_known() {
    let v = Vector::from_array([1.0, 2.0, 3.0]);
    let sum = &v + &v;
    let difference = v - &sum;
    let scaled = -(&difference * 4.0) / 2.0;
    let mut total = scaled.clone() + scaled + 2.0 * Vector::from_array([1.0, 1.0, 1.0]);
    total += &v;
    total -= v;
    assert_eq!(inline_vector(&total), [6.0, 10.0, 14.0]);
    let m = Tensor::from_array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let negated = -&m - m.clone() * 0.5;
    assert_eq!(heap_matrix(&negated), vec![-1.5, -3.0, -4.5, -6.0, -7.5, -9.0]);
}

#[test]
fn layout_and_reductions_before_the_storage_kind_is_known() {
    let m = Tensor::from_array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let transposed_twice = m.transpose().transpose();
    let row_sums = transposed_twice.sum_axis(Axis::<1>);
    assert_eq!(row_sums.as_slice(), &[6.0, 15.0]);
    let softmax = transposed_twice.softmax(Axis::<1>);
    let total: f64 = softmax.as_slice().iter().sum();
    assert!((total - 2.0).abs() < 1e-12);
    assert_eq!(heap_matrix(&transposed_twice), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

#[test]
fn traced_methods_before_the_storage_kind_is_known() {
    let x = Var::constant(Vector::from_array([0.5, 1.0, 2.0]));
    let y = x.exp().hadamard(&x).scale(2.0).sum();
    let expected: f64 = [0.5f64, 1.0, 2.0].iter().map(|&t| 2.0 * t * t.exp()).sum();
    assert!((y.value() - expected).abs() < 1e-12);
    assert_eq!(inline_vector(x.value()), [0.5, 1.0, 2.0]);
    // The operators on traced tensors, with plain tensors and scalars beside them.
    let c = Vector::from_array([1.0, 1.0, 1.0]);
    let z = -(&(&x + &x) * 3.0 - &x) / 5.0 + &c;
    let w = 2.0 / &z - c * 0.5 + 2.0 * &z;
    assert_eq!(inline_vector(z.value()), [0.5, 0.0, -1.0]);
    assert_eq!(inline_vector(w.value()), [4.5, f64::INFINITY, -4.5]);
}
