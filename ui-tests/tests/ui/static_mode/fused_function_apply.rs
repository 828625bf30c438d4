use fluxion::ops::elementwise::FusedFunction;
use fluxion::prelude::*;

#[derive(Clone, Copy, Debug)]
struct Gate;

impl FusedFunction<2> for Gate {
    fn value<T: RealScalar>(&self, [x, g]: [T; 2]) -> T {
        x / (T::one() + (-g).exp())
    }
}

// A fused function's `apply` has no static-mode rule yet: the error says what to do.
#[differentiable]
fn gated(x: &Vector<f64, 3>, g: &Vector<f64, 3>) -> f64 {
    Gate.apply([x, g]).sum()
}

fn main() {}
