use fluxion::prelude::*;

// `floor` has no derivative: static mode names it and says how to give it one.
#[differentiable]
fn stepped(x: f64) -> f64 {
    x.floor() * x
}

fn main() {
    let _ = stepped::grad(1.5);
}
