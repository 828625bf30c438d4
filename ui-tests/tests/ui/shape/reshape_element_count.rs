use fluxion::prelude::*;

fn main() {
    let a: Matrix<f64, 2, 3> = Matrix::zeros();
    let _r: Matrix<f64, 4, 2> = a.reshape(); // 6 elements are not 8
}
