use fluxion::autodiff::grad;
use fluxion::prelude::*;

fn main() {
    let z = Complex64::new(1.0, 2.0);
    // a complex output has no gradient: take `.norm_sqr()` or `.re()` first, or use `vjp`.
    let _ = grad(|z: Var<Complex64>| z.exp(), &z);
}
