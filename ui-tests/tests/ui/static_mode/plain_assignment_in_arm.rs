use fluxion::prelude::*;

// A differentiated variable given a plain value inside an arm: refused, not lost.
#[differentiable]
fn reset(x: f64) -> f64 {
    let mut y = x * 2.0;
    let z = if x > 0.0 { y = 1.0; y * 3.0 } else { y };
    z + y
}

fn main() {}
