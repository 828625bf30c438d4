use fluxion::ops::elementwise::FusedFunction;
use fluxion::prelude::*;

#[derive(Clone, Copy, Debug)]
struct Gate;

impl FusedFunction<2> for Gate {
    fn value<T: RealScalar>(&self, [x, g]: [T; 2]) -> T {
        x / (T::one() + (-g).exp())
    }
}

fn main() {
    let z: Vector<Complex64, 2> = Vector::ones();
    let _ = Gate.apply([&z, &z]); // fused functions take real data
}
