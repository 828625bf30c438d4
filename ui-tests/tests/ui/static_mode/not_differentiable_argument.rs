use fluxion::prelude::*;

// A differentiated argument must be of a differentiable type.
#[differentiable(wrt(x, _label))]
fn labelled(x: f64, _label: &str) -> f64 {
    x * 2.0
}

fn main() {}
