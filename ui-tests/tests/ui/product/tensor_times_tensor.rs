use fluxion::prelude::*;

fn main() {
    let a: Matrix<f64, 2, 2> = Matrix::zeros();
    let _ = a.clone() * a.clone(); // which product?
}
