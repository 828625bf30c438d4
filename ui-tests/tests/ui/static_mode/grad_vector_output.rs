use fluxion::prelude::*;

#[differentiable]
fn double(v: &Vector<f64, 2>) -> Vector<f64, 2> {
    v.scale(2.0)
}

fn main() {
    // A gradient needs a real scalar output: use `jacfwd`, `jacrev` or `vjp` here.
    let _ = double::grad(&Vector::zeros());
}
