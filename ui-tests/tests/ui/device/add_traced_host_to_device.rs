use fluxion::prelude::*;

// Traced tensors mix as plain ones do: both on the host or both on the GPU.
fn sum(a: &Var<Vector<f32, 3, Heap>>, b: &Var<Vector<f32, 3, Cuda>>) -> Var<Vector<f32, 3, Heap>> {
    a + b
}

fn main() {}
