use fluxion::nn::prelude::{Heads, Mask, Tokens};
use fluxion::prelude::*;

fn main() {
    // The memory holds 8 values per token, the queries 6.
    let queries: Tensor<f64, (Dyn, Const<6>), Heap> = Tensor::zeros_shaped((Dyn(4), Const));
    let memory: Tensor<f64, (Dyn, Const<8>), Heap> = Tensor::zeros_shaped((Dyn(10), Const));
    let _ = queries.cross_attention(&memory, &memory, Heads::<2>, Tokens::<2>, Tokens::<5>, Mask::Full, None);
}
