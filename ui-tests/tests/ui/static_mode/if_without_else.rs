use fluxion::prelude::*;

// Both arms of an `if` must give the value when it reads differentiated values.
#[differentiable]
fn clipped(x: f64) -> f64 {
    let mut y = x;
    if x > 1.0 {
        y = x * 0.5;
    }
    y
}

fn main() {}
