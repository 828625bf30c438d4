use fluxion::autodiff::differentiable;
use fluxion::nn::layer::{Linear, Module};
use fluxion::prelude::*;

#[differentiable(wrt(layer))]
fn loss(layer: &Linear<f64, 3, 2>, x: &Tensor<f64, (Dyn, Const<3>), Heap>) -> f64 {
    layer.forward(x).sum() // static mode calls `apply_batch`
}

fn main() {}
