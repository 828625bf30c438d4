use fluxion::prelude::*;

#[derive(Differentiable)]
struct Model {
    weight: f64,
    label: String, // needs #[no_derivative]
}

fn main() {}
