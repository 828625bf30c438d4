use fluxion::prelude::*;

fn main() {
    let m: Matrix<f64, 2, 3> = Matrix::zeros();
    let _ = m.permute(Axes::<1, 0, 2>); // three axes named for a matrix
}
