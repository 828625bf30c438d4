use fluxion::nn::layer::{GroupNorm, Module};
use fluxion::prelude::*;

fn main() {
    // 6 channels cannot form 4 groups of equal size.
    let norm: GroupNorm<f32, 6, 4> = GroupNorm::default();
    let images: Tensor<f32, (Dyn, Const<6>, Const<5>, Const<5>), Heap> =
        Tensor::zeros_shaped((Dyn(2), Const, Const, Const));
    norm.forward(&images);
}
