use fluxion::prelude::*;

// A QR factorisation needs at least as many rows as columns.
fn main() {
    let a: Matrix<f64, 2, 3> = Matrix::zeros();
    let (_q, _r) = a.qr();
}
