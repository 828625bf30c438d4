use fluxion::autodiff::grad;
use fluxion::prelude::*;

fn main() {
    let x: Vector<f64, 3> = Vector::zeros();
    // `grad` needs a real scalar output: a vector output needs `vjp` (or a reduction).
    let _ = grad(|x: Var<Vector<f64, 3>>| x.tanh(), &x);
}
