use fluxion::nn::prelude::*;
use fluxion::prelude::*;

type Rows = Tensor<f64, (Dyn, Const<4>), Heap>;

#[derive(Clone, Differentiable)]
struct Block {
    first: Linear<f64, 4, 8>,
    second: Linear<f64, 6, 4>, // takes 6 features, is given 8
}

#[module]
impl Block {
    fn forward(&self, x: &Rows) -> Rows {
        self.second.forward(&self.first.forward(x).tanh())
    }
}

fn main() {}
