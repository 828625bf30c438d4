use fluxion::autodiff::differentiable;

#[differentiable]
fn limited(x: f64, high: f64) -> f64 {
    x.clamp(-1.0, high) // the bounds must be constants
}

fn main() {}
