use fluxion::prelude::*;

// `log` (to a base) has no rule yet: static mode names it and says how to give it one.
#[differentiable]
fn logarithm(x: f64) -> f64 {
    x.log(3.0) * x
}

fn main() {
    let _ = logarithm::grad(1.5);
}
