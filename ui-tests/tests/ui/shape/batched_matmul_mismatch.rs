use fluxion::prelude::*;

fn main() {
    let a: Tensor3<f64, 2, 4, 3> = Tensor3::zeros();
    let b: Tensor3<f64, 5, 3, 4> = Tensor3::zeros();
    let _ = a.matmul(&b); // batch sizes 2 and 5
}
