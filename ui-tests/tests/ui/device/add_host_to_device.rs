use fluxion::prelude::*;

// Elementwise sums need both operands on the same device too.
fn sum(a: &Matrix<f32, 2, 3, Heap>, b: &Matrix<f32, 2, 3, Cuda>) -> Matrix<f32, 2, 3, Heap> {
    a + b
}

fn main() {}
