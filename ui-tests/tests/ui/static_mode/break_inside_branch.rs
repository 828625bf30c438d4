use fluxion::prelude::*;

// A `break` that is not the loop's own top-level `if … { break; }`: an error at it.
#[differentiable]
fn settle(x: f64) -> f64 {
    let mut y = x;
    for _ in 0..100 {
        y = if y > 1.0 { y * 0.5 } else { break };
    }
    y
}

fn main() {}
