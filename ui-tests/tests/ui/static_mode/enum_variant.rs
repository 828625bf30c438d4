use fluxion::prelude::*;

// An enum's variant of a differentiated value: enums have no tangent.
#[differentiable]
fn maybe(x: f64) -> f64 {
    let _maybe = Some(x * 2.0);
    x
}

fn main() {}
