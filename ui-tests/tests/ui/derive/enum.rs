use fluxion::prelude::*;

#[derive(Differentiable)]
enum Choice {
    Left(f64),
    Right(f64),
}

fn main() {}
