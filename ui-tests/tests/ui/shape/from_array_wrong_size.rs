use fluxion::prelude::*;

fn main() {
    let _a: Matrix<f64, 2, 3> = Matrix::from_array([[1., 2.], [3., 4.]]); // 2×2 data
}
