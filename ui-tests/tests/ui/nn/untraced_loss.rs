use fluxion::nn::layer::{Linear, Module};
use fluxion::nn::loss::{Reduction, mse};
use fluxion::prelude::*;

fn main() {
    let model = Linear::<f64, 2, 1>::new(1);
    let x: Tensor<f64, (Dyn, Const<2>), Heap> = Tensor::zeros_shaped((Dyn(3), Const));
    let t: Tensor<f64, (Dyn, Const<1>), Heap> = Tensor::zeros_shaped((Dyn(3), Const));
    // The plain `model`, not the traced `m`: its loss is a number, not a traced value.
    let _ = grad(|_m: <Linear<f64, 2, 1> as Trace>::Traced| mse(&model.forward(&x), &t, Reduction::Mean), &model);
}
