#![deny(dead_code)]
// A derivative given by hand is used by the companions, also when the program calls
// only some of them: neither function is dead code.
use fluxion::autodiff::differentiable;

fn clipped_vjp(x: f64, y_bar: f64) -> f64 {
    if x.abs() < 1.0 { y_bar } else { 0.0 }
}

fn clipped_jvp(x: f64, x_dot: &f64) -> f64 {
    if x.abs() < 1.0 { *x_dot } else { 0.0 }
}

#[differentiable(vjp = clipped_vjp, jvp = clipped_jvp)]
fn clipped(x: f64) -> f64 {
    x.clamp(-1.0, 1.0)
}

fn main() {
    assert_eq!(clipped::grad(0.5), 1.0);
}
