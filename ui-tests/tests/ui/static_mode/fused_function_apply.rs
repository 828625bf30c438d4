use fluxion::ops::elementwise::FusedFunction;
use fluxion::prelude::*;

#[derive(Clone, Copy, Debug)]
struct Gate;

impl FusedFunction<2> for Gate {
    fn value<T: RealScalar>(&self, [x, g]: [T; 2]) -> T {
        x / (T::one() + (-g).exp())
    }
}

// A fused function takes tensors, in static mode as elsewhere: not scalars.
#[differentiable]
fn gated(x: f64, g: f64) -> f64 {
    Gate.apply([&x, &g])
}

fn main() {}
