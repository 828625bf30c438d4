use fluxion::prelude::*;

// `associated` on a free function: its companions go beside it, where `Self` is not.
#[differentiable(associated)]
fn reach(q: f64) -> f64 {
    q.sin()
}

fn main() {}
