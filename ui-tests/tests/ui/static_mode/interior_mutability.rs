use fluxion::prelude::*;
use std::cell::Cell;

// State changed through a shared reference: the reverse sweep reruns the loop and would read it changed.
#[differentiable(wrt(x))]
fn scaled(x: f64, n: usize) -> f64 {
    let k = Cell::new(1.0);
    let mut y = x;
    for _ in 0..n {
        y = y * k.get();
        k.set(2.0);
    }
    y
}

fn main() {}
