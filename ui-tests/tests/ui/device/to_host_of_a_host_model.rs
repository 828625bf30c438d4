use fluxion::nn::layer::{Linear, Relu, Sequential};
use fluxion::prelude::*;

// A model in host memory has no copy to bring back from the GPU.
fn main() {
    let model = Sequential((Linear::<f32, 4, 8>::new(1), Relu));
    let _back = model.to_host();
}
