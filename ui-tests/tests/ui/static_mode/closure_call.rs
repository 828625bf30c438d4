use fluxion::prelude::*;

// A closure called on a differentiated value: static mode differentiates functions.
#[differentiable]
fn smoothed(x: f64) -> f64 {
    let square = |y: f64| y * y;
    square(x) + x
}

fn main() {
    let _ = smoothed::grad(1.5);
}
