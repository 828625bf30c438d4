use fluxion::prelude::*;

// The right-hand side must have one row per equation.
fn main() {
    let a: Matrix<f64, 3, 3> = Matrix::identity();
    let b: Vector<f64, 4> = Vector::zeros();
    let _ = a.solve(&b);
}
