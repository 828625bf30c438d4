use fluxion::prelude::*;

#[derive(Differentiable, Clone)]
struct Counter {
    weight: f64,
    #[buffer]
    calls: u64, // a buffer lives in a `Buffer`, shared with the model's twins
}

fn main() {
    let counter = Counter { weight: 1.0, calls: 0 };
    let _ = grad(|c: CounterTraced| c.weight * 2.0, &counter);
}
