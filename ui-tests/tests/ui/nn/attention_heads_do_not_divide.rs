use fluxion::nn::layer::{Module, MultiHeadAttention};
use fluxion::nn::prelude::Mask;
use fluxion::prelude::*;

fn main() {
    // 30 values per token cannot form 4 heads of equal width.
    let attention: MultiHeadAttention<f32, 30, 4, 8> = MultiHeadAttention::new(Mask::Causal, 1);
    let tokens: Tensor<f32, (Dyn, Const<30>), Heap> = Tensor::zeros_shaped((Dyn(16), Const));
    attention.forward(&tokens);
}
