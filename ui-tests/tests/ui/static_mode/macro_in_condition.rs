use fluxion::prelude::*;

// A macro in a condition cannot read a differentiated value: compute it first.
#[differentiable]
fn picked(x: f64) -> f64 {
    let y = x * 2.0;
    if matches!(y, v if v > 1.0) { y } else { x }
}

fn main() {}
