use fluxion::nn::layer::{Linear, Relu, Sequential};
use fluxion::prelude::*;

type Model = Sequential<(Linear<f32, 4, 8>, Relu, Linear<f32, 6, 3>)>; // 8 features into 6

fn main() {
    let model: Model = Sequential((Linear::new(1), Relu, Linear::new(2)));
    let batch: Tensor<f32, (Dyn, Const<4>), Heap> = Tensor::zeros_shaped((Dyn(5), Const));
    let _ = grad(|m: <Model as Trace>::Traced| m.forward(&batch).sum(), &model);
}
