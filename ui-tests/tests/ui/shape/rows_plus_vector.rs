use fluxion::prelude::*;

// A bias vector added to every row of a batch is `add_rows`, not `+`.
fn main() {
    let rows: Tensor<f32, (Dyn, Const<3>), Heap> = Tensor::zeros_shaped((Dyn(4), Const));
    let bias: Vector<f32, 3, Heap> = Vector::zeros();
    let _ = rows + bias;
}
