use fluxion::prelude::*;

// A determinant belongs to a square matrix.
fn main() {
    let a: Matrix<f64, 2, 3> = Matrix::zeros();
    let _ = a.determinant();
}
