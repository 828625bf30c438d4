use fluxion::nn::layer::{Conv2d, Flatten, Linear, Relu, Sequential};
use fluxion::prelude::*;

// A 3×3 kernel over 12×12 images gives 10×10, not 12×12.
type Cnn = Sequential<(Conv2d<f32, 1, 4, 3, 3, 12, 12>, Relu, Flatten<576>, Linear<f32, 576, 10>)>;

fn main() {
    let model: Cnn = Sequential((Conv2d::new(1), Relu, Flatten, Linear::new(2)));
    let images: Tensor<f32, (Dyn, Const<1>, Const<12>, Const<12>), Heap> =
        Tensor::zeros_shaped((Dyn(2), Const, Const, Const));
    model.forward(&images);
}
