use fluxion::prelude::*;

// A Hessian of an associated function written for `f64` only.
struct Arm;
impl Arm {
    #[differentiable(associated)]
    fn reach(q: Vector<f64, 2>) -> f64 {
        q.dot(&q)
    }
}

fn main() {
    let _ = Arm::reach_hessian(Vector::from_array([1.0, 2.0]));
}
