//! A new primitive with its own derivative rule: softplus(x) = ln(1 + eˣ), computed
//! stably as max(x, 0) + ln(1 + e^−|x|) (no overflow at x = 1000), with
//! softplus′(x) = σ(x).
//!
//! The rule is given twice over, once per kind of reverse mode:
//! - on the tape, registered with `record_unary`, the mechanism fluxion's own
//!   primitives use, and verified by the gradient checker;
//! - in static mode, `#[differentiable(vjp = …, jvp = …)]` on the plain function
//!   names its pullback and pushforward; `#[differentiable]` code then calls it like
//!   any other function, in reverse and forward mode.

use fluxion::autodiff::check::{CheckOptions, check_grad};
use fluxion::autodiff::{differentiable, grad, record_unary};
use fluxion::prelude::*;

/// σ(x) = 1/(1 + e⁻ˣ), the derivative of softplus.
fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// softplus elementwise on any tensor of f64, differentiable in reverse mode.
fn softplus<S: Shape, K: Storage<f64, S>>(x: &Var<Tensor<f64, S, K>>) -> Var<Tensor<f64, S, K>> {
    let input = x.shared_value();
    let value = input.map(|v| v.max(0.0) + (-v.abs()).exp().ln_1p());
    record_unary(x, value, move |y_bar: &Tensor<f64, S, K>| y_bar.zip_map(&input, |g, v| g * sigmoid(v)))
}

/// softplus of one number, with its derivative given by hand for static mode.
#[differentiable(vjp = softplus_scalar_vjp, jvp = softplus_scalar_jvp)]
fn softplus_scalar(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// x̄ = σ(x)·ȳ.
fn softplus_scalar_vjp(x: f64, y_bar: f64) -> f64 {
    sigmoid(x) * y_bar
}

/// ẏ = σ(x)·ẋ.
fn softplus_scalar_jvp(x: f64, x_dot: &f64) -> f64 {
    sigmoid(x) * x_dot
}

/// A smooth loss that uses the new primitive among built-in ones.
#[differentiable]
fn smooth_hinge(w: f64, b: f64) -> f64 {
    let margin = 1.0 - (2.0 * w + b);
    softplus_scalar(margin) + 0.1 * w * w
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

    // Static mode: the hand-given rule inside a differentiated function, both modes.
    let (w, b) = (0.3, -0.2);
    let (loss, (dw, db)) = smooth_hinge::value_and_grad(w, b);
    let h = 1e-6;
    let fd_w = (smooth_hinge(w + h, b) - smooth_hinge(w - h, b)) / (2.0 * h);
    let fd_b = (smooth_hinge(w, b + h) - smooth_hinge(w, b - h)) / (2.0 * h);
    println!(
        "static mode: loss {loss:.6}, gradient ({dw:.6}, {db:.6}), finite differences ({fd_w:.6}, {fd_b:.6})"
    );
    assert!((dw - fd_w).abs() < 1e-8 && (db - fd_b).abs() < 1e-8);
    let (_, along_w) = smooth_hinge::jvp(w, b, &1.0, &0.0);
    assert!((along_w - dw).abs() < 1e-15, "forward and reverse mode agree");
}
