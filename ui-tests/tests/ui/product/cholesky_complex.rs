use fluxion::prelude::*;

// The Cholesky factor is for real symmetric matrices.
fn main() {
    let a: Matrix<Complex64, 2, 2> = Matrix::identity();
    let _ = a.cholesky();
}
