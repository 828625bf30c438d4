use fluxion::prelude::*;

fn main() {
    let (a, b): (Matrix<f64, 2, 2>, Matrix<f64, 3, 3>) = (Matrix::zeros(), Matrix::zeros());
    let _: Matrix<f64, 6, 5> = a.kron(&b); // 6 rows and 6 columns, not 5
}
