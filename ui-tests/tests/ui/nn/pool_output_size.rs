use fluxion::nn::layer::{Flatten, MaxPool2d, Sequential};
use fluxion::prelude::*;

// Windows of 2 over 10×10 images give 5×5, not 4×4.
type Head = Sequential<(MaxPool2d<2, 4, 4>, Flatten<16>)>;

fn main() {
    let head: Head = Sequential((MaxPool2d, Flatten));
    let images: Tensor<f32, (Dyn, Const<1>, Const<10>, Const<10>), Heap> =
        Tensor::zeros_shaped((Dyn(2), Const, Const, Const));
    head.forward(&images);
}
