use fluxion::nn::layer::{BatchNorm, Conv2d, Sequential};
use fluxion::prelude::*;

type Model = Sequential<(Conv2d<f32, 1, 8, 3, 3, 4, 4>, BatchNorm<f32, 4>)>; // 8 channels into 4

fn main() {
    let model: Model = Sequential((Conv2d::new(1), BatchNorm::new()));
    let images: Tensor<f32, (Dyn, Const<1>, Const<6>, Const<6>), Heap> = Tensor::zeros_shaped((Dyn(2), Const, Const, Const));
    let _ = grad(|m: <Model as Trace>::Traced| m.forward(&images).sum(), &model);
}
