use fluxion::prelude::*;

fn main() {
    let a: Vector<f64, 4> = Vector::zeros();
    let _ = a.cross(&a); // a cross product of vectors of 4 elements
}
