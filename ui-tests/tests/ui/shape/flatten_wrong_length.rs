use fluxion::prelude::*;

fn main() {
    let a: Matrix<f64, 2, 3> = Matrix::zeros();
    let _f: Vector<f64, 5> = a.flatten(); // 6 elements are not 5
}
