use fluxion::nn::prelude::*;
use fluxion::prelude::*;

type Rows = Tensor<f64, (Dyn, Const<4>), Heap>;

#[derive(Clone, Differentiable)]
struct Gated {
    gate: Linear<f64, 4, 4>,
}

#[module(tape_only)] // the plain and traced forms only: `no_static`
impl Gated {
    fn forward(&self, x: &Rows) -> Rows {
        x.hadamard(&self.gate.forward(x).sigmoid())
    }
}

fn main() {}
