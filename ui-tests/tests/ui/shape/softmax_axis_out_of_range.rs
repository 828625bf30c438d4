use fluxion::prelude::*;

fn main() {
    let x: Vector<f64, 3> = Vector::zeros();
    let _ = x.softmax(Axis::<1>); // a vector has only axis 0
}
