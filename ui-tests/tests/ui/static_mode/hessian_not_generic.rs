use fluxion::prelude::*;

// A Hessian of a function written for `f64` only: the error says what second order needs.
#[differentiable]
fn energy(x: Vector<f64, 2>) -> f64 {
    x.dot(&x)
}

fn main() {
    let _ = energy::hessian(Vector::from_array([1.0, 2.0]));
}
