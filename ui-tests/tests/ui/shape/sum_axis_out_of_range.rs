use fluxion::prelude::*;

fn main() {
    let m: Matrix<f64, 2, 3> = Matrix::zeros();
    let _ = m.sum_axis(Axis::<2>); // a matrix has axes 0 and 1
}
