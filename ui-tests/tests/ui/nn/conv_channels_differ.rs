use fluxion::nn::layer::{Conv2d, Relu, Sequential};
use fluxion::prelude::*;

// The first convolution gives 8 channels; the second takes 4.
type Model = Sequential<(Conv2d<f32, 1, 8, 3, 3, 6, 6>, Relu, Conv2d<f32, 4, 2, 3, 3, 4, 4>)>;

fn main() {
    let model: Model = Sequential((Conv2d::new(1), Relu, Conv2d::new(2)));
    let images: Tensor<f32, (Dyn, Const<1>, Const<8>, Const<8>), Heap> = Tensor::zeros_shaped((Dyn(2), Const, Const, Const));
    let _ = grad(|m: <Model as Trace>::Traced| m.forward(&images).sum(), &model);
}
