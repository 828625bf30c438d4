use fluxion::prelude::*;

fn main() {
    let m: Matrix<f64, 2, 3> = Matrix::zeros();
    let _ = m.narrow::<1, 2, 2>(); // columns 2 and 3 of a 3-column matrix
}
