use fluxion::prelude::*;

// A complex number times a real one has no rule yet: the error names the operation.
#[differentiable]
fn scaled(z: Complex64, s: f64) -> Complex64 {
    z * s
}

fn main() {}
