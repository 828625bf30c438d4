use fluxion::prelude::*;

fn main() {
    let x: Vector<f64, 3> = Vector::zeros();
    let y: Vector<f64, 2> = Vector::zeros();
    let _ = x.dot(&y);
}
