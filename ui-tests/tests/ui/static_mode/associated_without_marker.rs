use fluxion::prelude::*;

// An associated function without `self` needs `#[differentiable(associated)]`: an
// attribute cannot see that it sits in an `impl`, and makes a free function's struct.
struct Arm;

impl Arm {
    #[differentiable]
    fn reach(q: f64) -> f64 {
        q.sin()
    }
}

fn main() {}
