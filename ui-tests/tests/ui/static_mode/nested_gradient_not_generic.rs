use fluxion::prelude::*;

// `grad` of a function written over `f64` inside another differentiable body: its
// derivative (the Hessian) needs the function generic over its scalar.
#[differentiable]
fn energy(q: f64, p: f64) -> f64 {
    0.5 * p * p - q.cos()
}

#[differentiable]
fn step(q: f64, p: f64) -> f64 {
    let (force, _) = energy::grad(q, p);
    q + p - 0.1 * force
}

fn main() {}
