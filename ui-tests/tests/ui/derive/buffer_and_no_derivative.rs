use fluxion::nn::params::Buffer;
use fluxion::prelude::*;

#[derive(Differentiable, Clone)]
struct Counter {
    weight: f64,
    #[buffer]
    #[no_derivative]
    calls: Buffer<f64>,
}

fn main() {}
