use fluxion::prelude::*;

fn main() {
    let a: Tensor3<f64, 2, 4, 3> = Tensor3::zeros();
    let w: Matrix<f64, 4, 5> = Matrix::zeros();
    let _ = a.matmul(&w); // the batch's rows have 3 entries, the matrix 4 rows
}
