use fluxion::autodiff::CudaDual;
use fluxion::prelude::*;

// Forward mode: a plain tensor beside a dual one is `CudaDual::constant(t)`.
fn product(m: &Matrix<f32, 2, 3, Cuda>, x: &CudaDual<f32, (Const<3>,)>) {
    let _ = m.matmul(x);
}

fn main() {}
