use fluxion::prelude::*;

// `copysign` has no rule yet: static mode names it and says how to give it one.
#[differentiable]
fn signed(x: f64) -> f64 {
    x.copysign(-1.0) * x
}

fn main() {
    let _ = signed::grad(1.5);
}
