use fluxion::prelude::*;

// Traced tensors of different shapes do not add either.
fn sum(a: &Var<Matrix<f64, 2, 3>>, b: &Var<Matrix<f64, 3, 2>>) -> Var<Matrix<f64, 2, 3>> {
    a + b
}

fn main() {}
