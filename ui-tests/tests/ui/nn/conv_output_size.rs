use fluxion::nn::layer::{Conv2d, Flatten, Linear, Relu, Sequential};
use fluxion::prelude::*;

fn main() {
    // A 3×3 kernel over 12×12 images gives 10×10, not 12×12.
    let model = Sequential((Conv2d::<f32, 1, 4, 3, 3, 12, 12>::new(1), Relu, Flatten::<576>, Linear::<f32, 576, 10>::new(2)));
    let images: Tensor<f32, (Dyn, Const<1>, Const<12>, Const<12>), Heap> =
        Tensor::zeros_shaped((Dyn(2), Const, Const, Const));
    model.forward(&images);
}
