use fluxion::prelude::*;

// A `loop` left by `break` over differentiated values: an error at the loop, naming `while`.
#[differentiable]
fn halve(x: f64) -> f64 {
    let mut y = x;
    loop {
        y = y * 0.5;
        if y < 1.0 {
            break;
        }
    }
    y
}

fn main() {}
