use fluxion::prelude::*;

fn main() {
    let z: Vector<Complex64, 3> = Vector::zeros();
    let w: Vector<Complex64, 2> = Vector::zeros();
    let _ = z.inner(&w);
}
