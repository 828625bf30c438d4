use fluxion::prelude::*;

fn main() {
    let a: Vector<f64, 2> = Vector::zeros();
    let b: Vector<f64, 3> = Vector::zeros();
    let _c: Vector<f64, 6> = a.concat(Axis::<0>, &b); // 2 + 3 is not 6
}
