//! A new primitive with its own derivative rule: softplus(x) = ln(1 + eˣ), computed
//! stably as max(x, 0) + ln(1 + e^−|x|) (no overflow at x = 1000), with the rule
//! x̄ = ȳ · σ(x). The rule is registered with `record_unary`, the mechanism fluxion's
//! own primitives use, and the gradient checker verifies it.

use fluxion::autodiff::check::{CheckOptions, check_grad};
use fluxion::autodiff::{grad, record_unary};
use fluxion::prelude::*;

/// softplus elementwise on any tensor of f64, differentiable in reverse mode.
fn softplus<S: Shape, K: Storage<f64, S>>(x: &Var<Tensor<f64, S, K>>) -> Var<Tensor<f64, S, K>> {
    let input = x.shared_value();
    let value = input.map(|v| v.max(0.0) + (-v.abs()).exp().ln_1p());
    record_unary(x, value, move |y_bar: &Tensor<f64, S, K>| {
        y_bar.zip_map(&input, |g, v| g / (1.0 + (-v).exp()))
    })
}

fn main() {
    let x: Vector<f64, 4> = Vector::from_array([-1000.0, -1.5, 0.25, 1000.0]);
    let g = grad(|x: Var<Vector<f64, 4>>| softplus(&x).sum(), &x);
    println!("softplus'(x) = σ(x) = {g}");
    assert_eq!(g.to_array()[0], 0.0);
    assert_eq!(g.to_array()[3], 1.0);

    let moderate: Vector<f64, 4> = Vector::from_array([-3.0, -0.5, 0.75, 2.0]);
    let comparisons = check_grad(|x: Var<Vector<f64, 4>>| softplus(&x).sum(), &moderate, CheckOptions::f64())
        .expect("the rule agrees with finite differences");
    println!("gradient checker: {comparisons} comparisons passed");
}
