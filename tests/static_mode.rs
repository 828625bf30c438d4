//! `#[differentiable]`: gradients and tangents of ordinary functions, checked against
//! the tape, the dual numbers and finite differences.

use fluxion::autodiff::{differentiable, value_and_grad};
use fluxion::prelude::*;

#[differentiable]
fn scalar(x: f64, y: f64) -> f64 {
    let a = x * y + x.sin();
    let b = a / (y * y + 1.0);
    let c = b.exp() - 2.0 * x;
    c * c.tanh() + (-y).powi(3)
}

fn scalar_traced(x: Var<f64>, y: Var<f64>) -> Var<f64> {
    let a = &(&x * &y) + &x.sin();
    let b = &a / &(&(&y * &y) + 1.0);
    let c = &b.exp() - &(&x * 2.0);
    &(&c * &c.tanh()) + &(-&y).powi(3)
}

#[test]
fn scalar_gradient_matches_the_tape() {
    let (x, y) = (0.7, -1.3);
    let (value, (gx, gy)) = scalar::value_and_grad(x, y);
    assert_eq!(value, scalar(x, y));
    let (tape_value, (tx, ty)) = value_and_grad(|(x, y): (Var<f64>, Var<f64>)| scalar_traced(x, y), &(x, y));
    assert!((value - tape_value).abs() < 1e-14);
    assert!((gx - tx).abs() < 1e-13, "{gx} {tx}");
    assert!((gy - ty).abs() < 1e-13, "{gy} {ty}");
    let (_, dx) = scalar::jvp(x, y, &1.0, &0.0);
    let (_, dy) = scalar::jvp(x, y, &0.0, &1.0);
    assert!((dx - gx).abs() < 1e-13 && (dy - gy).abs() < 1e-13);
}

#[derive(Differentiable, Clone, Debug)]
struct Pair {
    a: f64,
    b: Vector<f64, 2>,
}

#[test]
fn derived_tangents_count_their_fields() {
    assert_eq!(<PairTangent as VectorSpace>::FIELDS, 2);
    assert_eq!(<(f64, f64, f64) as VectorSpace>::FIELDS, 3);
}
