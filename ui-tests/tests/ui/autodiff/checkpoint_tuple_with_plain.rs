// A tuple passed to `checkpoint` holds a plain tensor beside a traced value.
use fluxion::autodiff::{checkpoint, grad};
use fluxion::prelude::*;

fn main() {
    let x: Vector<f64, 2> = Vector::from_array([1.0, 2.0]);
    let _ = grad(|w: Var<f64>| checkpoint(|(a, h): (Var<f64>, Vector<f64, 2>)| Var::constant(h.sum()) * a, &(w, x)), &1.0);
}
