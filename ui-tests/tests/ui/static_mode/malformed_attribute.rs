use fluxion::prelude::*;

// `wrt` must name parameters of the function.
#[differentiable(wrt(y))]
fn square(x: f64) -> f64 {
    x * x
}

// A derivative given by hand needs both directions.
#[differentiable(vjp = cube_vjp)]
fn cube(x: f64) -> f64 {
    x * x * x
}

fn main() {}
