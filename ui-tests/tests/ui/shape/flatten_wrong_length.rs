use fluxion::prelude::*;

fn main() {
    let batch: Matrix<f32, 50, 64, Heap> = Matrix::zeros();
    let _f: Vector<f32, 3201, Heap> = batch.flatten(); // 3200 elements are not 3201
}
