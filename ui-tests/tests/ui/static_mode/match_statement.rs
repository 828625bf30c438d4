use fluxion::prelude::*;

// A `match` whose arms assign differentiated values: give it a value instead.
#[differentiable]
fn picked(x: f64, k: u32) -> f64 {
    let mut y = x;
    match k {
        0 => y = y * 2.0,
        _ => y = y * 3.0,
    }
    y
}

fn main() {}
