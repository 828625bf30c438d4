use fluxion::nn::prelude::*;
use fluxion::prelude::*;

type Model = Sequential<(Linear<f64, 4, 8>, Relu, Linear<f64, 6, 3>)>; // 8 features into 6
type Batch = Tensor<f64, (Dyn, Const<4>), Heap>;

#[differentiable(wrt(model))]
fn loss(model: &Model, x: &Batch) -> f64 {
    model.apply_batch(x).sum()
}

fn main() {}
