use fluxion::prelude::*;

// Hermitian eigendecompositions are for complex matrices; a real one has symmetric_eigen.
fn main() {
    let a: Matrix<f64, 2, 2> = Matrix::identity();
    let _ = a.hermitian_eigen();
}
