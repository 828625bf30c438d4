use fluxion::prelude::*;

fn main() {
    let a: Matrix<f64, 2, 3> = Matrix::zeros();
    let x: Vector<f64, 2> = Vector::zeros();
    let _ = a.matmul(&x); // 3 columns, 2 entries
}
