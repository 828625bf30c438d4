//! A fused function of three tensors, shared by the host and GPU tests.

use fluxion::ops::elementwise::FusedFunction;
use fluxion::scalar::RealScalar;

/// x·σ(g) + r·r.
#[derive(Clone, Copy, Debug)]
pub struct GatedSquare;

impl FusedFunction<3> for GatedSquare {
    fn value<T: RealScalar>(&self, [x, g, r]: [T; 3]) -> T {
        x / (T::one() + (-g).exp()) + r * r
    }
}
