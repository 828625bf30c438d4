// A checkpointed function returns traced values (a `Var` or a tuple of them), not a
// plain number.
use fluxion::autodiff::{checkpoint, grad};
use fluxion::prelude::*;

fn main() {
    let _ = grad(|x: Var<f64>| Var::constant(checkpoint(|x: Var<f64>| *x.value() * 2.0, &x)), &1.0);
}
