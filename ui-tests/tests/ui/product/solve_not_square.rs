use fluxion::prelude::*;

// A linear system needs a square matrix: 2 equations cannot fix 3 unknowns.
fn main() {
    let a: Matrix<f64, 2, 3> = Matrix::zeros();
    let b: Vector<f64, 2> = Vector::zeros();
    let _ = a.solve(&b);
}
