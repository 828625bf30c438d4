use fluxion::nn::layer::{Linear, Relu, Sequential};
use fluxion::prelude::*;

// A model already on the GPU has no second copy to make.
fn main() {
    let model = Sequential((Linear::<f32, 4, 8>::new(1), Relu)).to_device();
    let _again = model.to_device();
}
