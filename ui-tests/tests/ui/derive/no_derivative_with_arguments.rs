use fluxion::prelude::*;

#[derive(Differentiable)]
struct Model {
    weight: f64,
    #[no_derivative(always)]
    label: u32,
}

fn main() {}
