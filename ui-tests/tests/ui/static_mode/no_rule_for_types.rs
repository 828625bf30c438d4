use fluxion::prelude::*;

// An operator of one's own type has no derivative rule: the error names the operation.
#[derive(Differentiable, Clone)]
struct Gain { k: f64 }

impl std::ops::Mul<f64> for Gain { type Output = f64; fn mul(self, x: f64) -> f64 { self.k * x } }

#[differentiable]
fn scaled(g: Gain, s: f64) -> f64 {
    g * s
}

fn main() {}
