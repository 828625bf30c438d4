use fluxion::prelude::*;

// A `loop` whose `break` is not a top-level `if … { break; }`: an error naming `while`.
#[differentiable]
fn halve(x: f64) -> f64 {
    let mut y = x;
    loop {
        y = if y < 1.0 { y } else { y * 0.5 };
        y = y - 0.1;
    }
}

fn main() {}
