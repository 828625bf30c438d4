use fluxion::prelude::*;

fn main() {
    let z: Vector<Complex64, 2> = Vector::zeros();
    let _ = z.softplus(); // the named functions take real data
}
