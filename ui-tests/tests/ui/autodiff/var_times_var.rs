use fluxion::prelude::*;

// `*` only scales, also on traced tensors: say which product you mean.
fn product(a: &Var<Vector<f32, 3>>, b: &Var<Vector<f32, 3>>) -> Var<Vector<f32, 3>> {
    a * b
}

fn main() {}
