use fluxion::prelude::*;

fn main() {
    let steps: usize = 3;
    let _ = stop_gradient(steps); // a count has no derivative to stop
}
