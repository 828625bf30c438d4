use fluxion::nn::prelude::*;
use fluxion::prelude::*;

// A skip connection adds the block's input (4 features) to its output (8).
fn main() {
    let model = Sequential((Linear::<f32, 4, 4>::new(1), Residual(Linear::<f32, 4, 8>::new(2))));
    let batch: Tensor<f32, (Dyn, Const<4>), Heap> = Tensor::zeros_shaped((Dyn(2), Const));
    model.forward(&batch);
}
