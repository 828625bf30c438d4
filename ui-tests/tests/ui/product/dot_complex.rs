use fluxion::prelude::*;

fn main() {
    let z: Vector<Complex64, 2> = Vector::from_array([Complex64::new(1., 2.), Complex64::new(0., -1.)]);
    let _ = z.dot(&z); // complex: use `inner` (or `dotu`)
}
