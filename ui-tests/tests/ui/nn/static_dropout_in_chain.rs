use fluxion::nn::prelude::*;
use fluxion::prelude::*;

type Model = Sequential<(Linear<f64, 4, 8>, Dropout, Linear<f64, 8, 3>)>; // no static form
type Batch = Tensor<f64, (Dyn, Const<4>), Heap>;

#[differentiable(wrt(model))]
fn loss(model: &Model, x: &Batch) -> f64 {
    model.apply_batch(x).sum()
}

fn main() {}
