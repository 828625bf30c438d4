use fluxion::prelude::*;

// A `break` after a statement that changes the loop's state: an error at that statement.
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
