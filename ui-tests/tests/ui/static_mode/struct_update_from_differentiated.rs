use fluxion::prelude::*;

#[derive(Differentiable, Clone)]
struct State {
    x: f64,
    v: f64,
}

// The fields a struct literal does not name come from a plain value, not a differentiated one.
#[differentiable]
fn nudge(s: &State) -> State {
    State { x: s.x + 1.0, ..s.clone() }
}

fn main() {}
