use fluxion::prelude::*;

fn main() {
    let means: Matrix<f64, 2, 4> = Matrix::zeros();
    let _t: Tensor3<f64, 2, 3, 5> = means.broadcast_axis(Axis::<1>); // 2×5 is not 2×4
}
