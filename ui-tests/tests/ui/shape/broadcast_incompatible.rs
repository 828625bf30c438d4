use fluxion::prelude::*;

fn main() {
    let bias: Vector<f64, 2> = Vector::zeros();
    let _m: Matrix<f64, 2, 3> = bias.broadcast(); // trailing 3 is not 2
}
