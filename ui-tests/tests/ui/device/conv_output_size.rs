use fluxion::prelude::*;

// On the GPU as on the host: a 3×3 kernel over 12×12 images gives 10×10, not 12×12.
fn main() {
    let images: Tensor<f32, (Dyn, Const<1>, Const<12>, Const<12>), Cuda> =
        Tensor::device_zeros((Dyn(2), Const, Const, Const));
    let kernels: Tensor<f32, (Const<4>, Const<1>, Const<3>, Const<3>), Cuda> = Tensor::device_zeros(Default::default());
    let _features: Tensor<f32, (Dyn, Const<4>, Const<12>, Const<12>), Cuda> = images.conv2d(&kernels);
}
