use fluxion::prelude::*;

// A loop in an arm over a collection the arm declares: declare it before the `if`.
#[differentiable(wrt(x))]
fn weighted(x: f64, n: usize) -> f64 {
    if n > 2 {
        let weights = vec![0.5; n];
        let mut s = x;
        for w in weights.iter() {
            s = s * *w + x;
        }
        s
    } else {
        x
    }
}

fn main() {}
