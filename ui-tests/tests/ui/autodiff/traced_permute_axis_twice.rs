use fluxion::prelude::*;

fn main() {
    let x: Tensor3<f64, 2, 3, 4> = Tensor3::zeros();
    let _ = grad(|x: Var<Tensor3<f64, 2, 3, 4>>| x.permute(Axes::<2, 2, 0>).sum(), &x);
}
