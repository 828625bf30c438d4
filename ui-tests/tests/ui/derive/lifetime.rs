use fluxion::prelude::*;

#[derive(Differentiable)]
struct View<'a> {
    weights: &'a [f64],
}

fn main() {}
