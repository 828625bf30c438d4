use fluxion::prelude::*;

fn main() {
    let x: Vector<f64, 3> = Vector::zeros();
    let _ = x.matmul(&x); // not an outer product: use `outer` (or `dot`)
}
