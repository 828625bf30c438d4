use fluxion::prelude::*;

// A product needs both operands on the same device: move one first.
fn product(a: &Matrix<f32, 2, 3, Heap>, b: &Matrix<f32, 3, 4, Cuda>) -> Matrix<f32, 2, 4, Heap> {
    a.matmul(b)
}

fn main() {}
