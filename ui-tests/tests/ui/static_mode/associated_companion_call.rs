use fluxion::prelude::*;

struct Arm;
impl Arm {
    #[differentiable(associated)]
    fn reach(q: f64) -> f64 {
        q.sin()
    }
    // Only `Self::reach_grad` is differentiated inside a body, not `reach_vjp`.
    #[differentiable(associated)]
    fn twice(q: f64) -> f64 {
        Self::reach_vjp(q).0 * 2.0
    }
}
fn main() {}
