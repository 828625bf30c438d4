use fluxion::prelude::*;

// A GPU tensor's elements are not in host memory: copy them back first.
fn total(x: &Vector<f32, 3, Cuda>) -> f32 {
    x.iter().sum()
}

fn main() {}
