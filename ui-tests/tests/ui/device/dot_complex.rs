use fluxion::prelude::*;

fn main() {
    let z: Vector<Complex64, 2, Cuda> = Vector::<Complex64, 2, Heap>::ones().to_device();
    let _ = z.dot(&z); // complex on the GPU too: use `inner` (or `dotu`)
}
