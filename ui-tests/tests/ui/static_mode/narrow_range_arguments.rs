use fluxion::autodiff::differentiable;
use fluxion::prelude::*;

#[differentiable]
fn first_rows(x: &Tensor<f64, (Dyn, Const<3>), Heap>, k: usize) -> f64 {
    x.narrow_range(0..k).sum() // the axis is missing
}

fn main() {}
