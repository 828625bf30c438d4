use fluxion::prelude::*;

fn main() {
    let z: Vector<Complex64, 2> = Vector::zeros();
    let _ = z.relu(); // complex numbers have no order
}
