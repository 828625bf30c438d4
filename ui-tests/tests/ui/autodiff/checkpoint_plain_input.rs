// `checkpoint` takes what a differentiated function receives (traced values), not a
// plain tensor.
use fluxion::autodiff::{checkpoint, grad};
use fluxion::prelude::*;

fn main() {
    let x: Vector<f64, 2> = Vector::from_array([1.0, 2.0]);
    let _ = grad(|w: Var<f64>| checkpoint(|h: Vector<f64, 2>| Var::constant(h.sum()) * w, &x), &1.0);
}
