use fluxion::nn::prelude::{Padding, Stride, Window};
use fluxion::prelude::*;

fn main() {
    let images: Tensor<f32, (Dyn, Const<1>, Const<8>, Const<8>), Heap> =
        Tensor::zeros_shaped((Dyn(2), Const, Const, Const));
    // Padding of 2 on a window of 3: a window could read padding only.
    let _: Tensor<f32, (Dyn, Const<1>, Const<10>, Const<10>), Heap> =
        images.max_pool2d_strided(Window::<3>, Stride::<1>, Padding::<2>);
}
