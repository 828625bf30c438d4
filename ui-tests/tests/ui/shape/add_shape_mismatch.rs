use fluxion::prelude::*;

fn main() {
    let a: Matrix<f64, 2, 3> = Matrix::zeros();
    let at: Matrix<f64, 3, 2> = a.transpose();
    let _ = &a + &at;
}
