use fluxion::prelude::*;

fn main() {
    let a: Matrix<f64, 2, 3> = Matrix::zeros();
    let _ = a.matmul(&a); // inner dimensions 3 and 2
}
