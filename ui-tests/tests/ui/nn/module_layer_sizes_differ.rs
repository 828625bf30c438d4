use fluxion::nn::prelude::*;
use fluxion::prelude::*;

#[derive(Clone, Debug, Differentiable)]
struct Block {
    up: Linear<f64, 3, 5>,
    down: Linear<f64, 4, 3>, // takes 4 features, given 5
}

#[module]
impl Block {
    fn forward(&self, x: &Tensor<f64, (Dyn, Const<3>), Heap>) -> Tensor<f64, (Dyn, Const<3>), Heap> {
        self.down.forward(&self.up.forward(x).relu())
    }
}

fn main() {}
