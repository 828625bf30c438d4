use fluxion::nn::layer::{Linear, Relu, Sequential};
use fluxion::prelude::*;

fn main() {
    let model = Sequential((Linear::<f32, 4, 8>::new(1), Relu, Linear::<f32, 6, 3>::new(2)));
    let batch: Tensor<f32, (Dyn, Const<4>), Heap> = Tensor::zeros_shaped((Dyn(5), Const));
    model.forward(&batch);
}
