use fluxion::autodiff::{Differentiable, differentiable};

// The tangent keeps `.0`, `.2` and `.3`, renumbered `.0`, `.1` and `.2`.
#[derive(Differentiable, Clone)]
struct Triple(f64, #[no_derivative] u8, f64, f64);

#[differentiable]
fn product(t: &Triple) -> f64 {
    t.0 * t.2
}

fn main() {
    let _ = product::grad(&Triple(1.0, 7, 2.0, 3.0));
}
