use fluxion::prelude::*;

fn main() {
    let x: Tensor3<f64, 2, 3, 4> = Tensor3::zeros();
    let _ = x.permute(Axes::<0, 3, 1>); // a rank-3 tensor has axes 0, 1 and 2
}
