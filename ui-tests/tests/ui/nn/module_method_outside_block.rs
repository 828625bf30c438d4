use fluxion::nn::prelude::*;
use fluxion::prelude::*;

type Rows = Tensor<f64, (Dyn, Const<4>), Heap>;

#[derive(Clone, Differentiable)]
struct Mix {
    map: Linear<f64, 4, 4>,
}

#[module]
impl Mix {
    fn forward(&self, x: &Rows) -> Rows {
        self.squash(&self.map.forward(x)) // `squash` is not in the block
    }
}

impl Mix {
    fn squash(&self, h: &Rows) -> Rows {
        h.tanh()
    }
}

fn main() {}
