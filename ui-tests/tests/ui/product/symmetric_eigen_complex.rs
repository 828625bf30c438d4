use fluxion::prelude::*;

// A complex matrix's eigendecomposition is the Hermitian one.
fn main() {
    let h: Matrix<Complex64, 2, 2> = Matrix::identity();
    let (_values, _vectors) = h.symmetric_eigen();
}
