use fluxion::prelude::*;

// `Matrix` is inline unless it says `Heap`; `+` takes one storage kind.
fn main() {
    let a: Matrix<f64, 2, 3, Heap> = Matrix::zeros();
    let b: Matrix<f64, 2, 3> = Matrix::zeros();
    let _ = a + b;
}
