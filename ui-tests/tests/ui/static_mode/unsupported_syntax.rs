use fluxion::prelude::*;

// A `while` loop over differentiated values is not differentiated: an error at the loop.
#[differentiable]
fn halve(x: f64) -> f64 {
    let mut y = x;
    while y > 1.0 {
        y = y * 0.5;
    }
    y
}

fn main() {}
