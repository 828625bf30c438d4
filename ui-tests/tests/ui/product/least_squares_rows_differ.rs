use fluxion::prelude::*;

// The right-hand side must have one row per equation.
fn main() {
    let a: Matrix<f64, 4, 2> = Matrix::zeros();
    let b: Vector<f64, 3> = Vector::zeros();
    let _ = a.least_squares(&b);
}
