use fluxion::prelude::*;

// `Inline` keeps the elements in a fixed-size array, so it cannot hold a run-time length.
fn total(_batch: &Tensor<f64, (Dyn,), Inline>) -> f64 {
    0.0
}

fn main() {}
