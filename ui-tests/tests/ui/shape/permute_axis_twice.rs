use fluxion::prelude::*;

fn main() {
    let x: Tensor3<f64, 2, 3, 4> = Tensor3::zeros();
    let _ = x.permute(Axes::<0, 2, 0>); // axis 0 twice, axis 1 never
}
