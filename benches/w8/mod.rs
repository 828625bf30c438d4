//! Workload W8: the gradient of a small CNN's loss with respect to its parameters —
//! a batch of 16 single-channel 12×12 images (f32) through a 3×3 convolution to 4
//! channels, ReLU, 2×2 max pooling, a linear read-out to 10 classes and the mean
//! cross-entropy. Group `w8/cnn_gradient`: static mode (`static/{inline,heap}`:
//! `#[differentiable]`), the tape (`tape/{inline,heap}`) and backpropagation written
//! by hand over fixed-size arrays (`handwritten`: convolution, ReLU and pooling fused,
//! each pooled value's gradient sent straight to the kernel through its window's
//! maximum).

use criterion::{Criterion, black_box, criterion_group};
use fluxion::autodiff::{Differentiable, Trace, differentiable, value_and_grad};
use fluxion::nn::layer::{Conv2d, Flatten, Linear, MaxPool2d, Module, Relu, StaticModule};
use fluxion::nn::loss::{Reduction, cross_entropy};
use fluxion::nn::per_example::mean_cross_entropy;
use fluxion::prelude::*;

use crate::common::config;

criterion_group! {
    name = benches;
    config = config();
    targets = cnn_gradient
}

const BATCH: usize = 16;
const SIDE: usize = 12;
const CHANNELS: usize = 4;
const KERNEL: usize = 3;
/// The side of the convolution's output.
const CONVOLVED: usize = SIDE - KERNEL + 1;
/// The side of the pooled images.
const POOLED: usize = CONVOLVED / 2;
const FEATURES: usize = CHANNELS * POOLED * POOLED;
const CLASSES: usize = 10;

/// The model and its loss for one storage kind.
macro_rules! cnn_for_storage {
    ($module:ident, $kind:ty) => {
        mod $module {
            use super::*;

            pub type Cnn = (
                Conv2d<f32, 1, CHANNELS, KERNEL, KERNEL, CONVOLVED, CONVOLVED, $kind>,
                Relu,
                MaxPool2d<2, POOLED, POOLED>,
                Flatten<FEATURES>,
                Linear<f32, FEATURES, CLASSES, $kind>,
            );
            pub type Images = Tensor<f32, (Const<BATCH>, Const<1>, Const<SIDE>, Const<SIDE>), $kind>;

            #[differentiable(wrt(model))]
            pub fn loss(model: &Cnn, images: &Images, classes: &[usize]) -> f32 {
                mean_cross_entropy(&model.apply_batch(images), classes)
            }

            pub fn model() -> Cnn {
                let mut convolution = Conv2d::new(1);
                convolution.bias = Tensor::random_uniform(-0.1, 0.1, 2);
                (convolution, Relu, MaxPool2d, Flatten, Linear::new(3))
            }

            pub fn tape_gradient(
                model: &Cnn,
                images: &Images,
                classes: &[usize],
            ) -> (f32, <Cnn as Differentiable>::Tangent) {
                value_and_grad(
                    |m: <Cnn as Trace>::Traced| cross_entropy(&m.forward(images), classes, Reduction::Mean),
                    model,
                )
            }
        }
    };
}
cnn_for_storage!(inline, Inline);
cnn_for_storage!(heap, Heap);

/// The parameters as fixed-size arrays.
#[derive(Clone)]
struct ArrayCnn {
    kernels: [[[f32; KERNEL]; KERNEL]; CHANNELS],
    kernel_bias: [f32; CHANNELS],
    weight: [[f32; FEATURES]; CLASSES],
    bias: [f32; CLASSES],
}

impl ArrayCnn {
    fn zeros() -> Self {
        ArrayCnn {
            kernels: [[[0.0; KERNEL]; KERNEL]; CHANNELS],
            kernel_bias: [0.0; CHANNELS],
            weight: [[0.0; FEATURES]; CLASSES],
            bias: [0.0; CLASSES],
        }
    }
}

impl From<&inline::Cnn> for ArrayCnn {
    fn from((convolution, .., linear): &inline::Cnn) -> Self {
        let kernels = convolution.weight.as_slice();
        ArrayCnn {
            kernels: core::array::from_fn(|o| {
                core::array::from_fn(|p| core::array::from_fn(|q| kernels[(o * KERNEL + p) * KERNEL + q]))
            }),
            kernel_bias: core::array::from_fn(|o| convolution.bias.as_slice()[o]),
            weight: core::array::from_fn(|k| {
                core::array::from_fn(|f| linear.weight.as_slice()[k * FEATURES + f])
            }),
            bias: core::array::from_fn(|k| linear.bias.as_slice()[k]),
        }
    }
}

type ArrayImages = [[[f32; SIDE]; SIDE]; BATCH];

/// The mean loss and its gradient `g` by hand-derived backpropagation: per image,
/// convolution, ReLU and pooling in one pass keeping each pooled value's source, the
/// read-out and softmax, then the read-out's gradient and each pooled value's
/// gradient added to the kernel through the window at its source.
fn handwritten_gradient(p: &ArrayCnn, x: &ArrayImages, classes: &[usize], g: &mut ArrayCnn) -> f32 {
    *g = ArrayCnn::zeros();
    let scale = 1.0 / BATCH as f32;
    let mut loss = 0.0;
    for (image, &class) in x.iter().zip(classes) {
        let mut features = [0.0f32; FEATURES];
        let mut sources = [(0usize, 0usize); FEATURES];
        for o in 0..CHANNELS {
            let mut convolved = [[p.kernel_bias[o]; CONVOLVED]; CONVOLVED];
            for (i, row) in convolved.iter_mut().enumerate() {
                for (kernel_row, image_row) in p.kernels[o].iter().zip(&image[i..]) {
                    for (q, &w) in kernel_row.iter().enumerate() {
                        row.iter_mut().zip(&image_row[q..]).for_each(|(y, &x)| *y += w * x);
                    }
                }
            }
            for i in 0..POOLED {
                for j in 0..POOLED {
                    let mut source = (2 * i, 2 * j);
                    for (r, s) in [(2 * i, 2 * j + 1), (2 * i + 1, 2 * j), (2 * i + 1, 2 * j + 1)] {
                        if convolved[r][s] > convolved[source.0][source.1] {
                            source = (r, s);
                        }
                    }
                    let f = (o * POOLED + i) * POOLED + j;
                    features[f] = convolved[source.0][source.1].max(0.0);
                    sources[f] = source;
                }
            }
        }
        let logits: [f32; CLASSES] = core::array::from_fn(|k| {
            p.bias[k] + p.weight[k].iter().zip(&features).map(|(w, h)| w * h).sum::<f32>()
        });
        let largest = logits.iter().fold(f32::NEG_INFINITY, |m, &z| m.max(z));
        let exponentials = logits.map(|z| (z - largest).exp());
        let total: f32 = exponentials.iter().sum();
        loss += total.ln() + largest - logits[class];
        let mut features_bar = [0.0f32; FEATURES];
        for (k, exponential) in exponentials.iter().enumerate() {
            let z_bar = (exponential / total - if k == class { 1.0 } else { 0.0 }) * scale;
            g.bias[k] += z_bar;
            for ((w_bar, &h), (&w, h_bar)) in
                g.weight[k].iter_mut().zip(&features).zip(p.weight[k].iter().zip(&mut features_bar))
            {
                *w_bar += z_bar * h;
                *h_bar += z_bar * w;
            }
        }
        for (f, (&h_bar, &(r, s))) in features_bar.iter().zip(&sources).enumerate() {
            if features[f] > 0.0 {
                let o = f / (POOLED * POOLED);
                g.kernel_bias[o] += h_bar;
                for (kernel_row, image_row) in g.kernels[o].iter_mut().zip(&image[r..]) {
                    kernel_row.iter_mut().zip(&image_row[s..]).for_each(|(w_bar, &x)| *w_bar += h_bar * x);
                }
            }
        }
    }
    loss * scale
}

/// Asserts that the handwritten gradient is the library's.
fn check_handwritten(ours: &(f32, <inline::Cnn as Differentiable>::Tangent), handwritten: (f32, &ArrayCnn)) {
    let close = |a: f32, b: f32| assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
    close(ours.0, handwritten.0);
    let (convolution, .., linear) = &ours.1;
    let g = handwritten.1;
    convolution.weight.iter().zip(g.kernels.iter().flatten().flatten()).for_each(|(a, b)| close(*a, *b));
    convolution.bias.iter().zip(&g.kernel_bias).for_each(|(a, b)| close(*a, *b));
    linear.weight.iter().zip(g.weight.iter().flatten()).for_each(|(a, b)| close(*a, *b));
    linear.bias.iter().zip(&g.bias).for_each(|(a, b)| close(*a, *b));
}

fn cnn_gradient(c: &mut Criterion) {
    let classes: Vec<usize> = (0..BATCH).map(|b| (3 * b + 1) % CLASSES).collect();
    let (model, images) = (inline::model(), Tensor::random_uniform(-1.0, 1.0, 4));
    let (heap_model, heap_images) = (heap::model(), Tensor::random_uniform(-1.0, 1.0, 4));
    let arrays = ArrayCnn::from(&model);
    let array_images: ArrayImages = core::array::from_fn(|b| {
        core::array::from_fn(|i| core::array::from_fn(|j| images.as_slice()[(b * SIDE + i) * SIDE + j]))
    });
    let mut gradient = ArrayCnn::zeros();
    let value = handwritten_gradient(&arrays, &array_images, &classes, &mut gradient);
    check_handwritten(&inline::loss::value_and_grad(&model, &images, &classes), (value, &gradient));
    let mut group = c.benchmark_group("w8/cnn_gradient");
    group.bench_function("static/inline", |b| {
        b.iter(|| inline::loss::value_and_grad(black_box(&model), &images, &classes))
    });
    group.bench_function("tape/inline", |b| {
        b.iter(|| inline::tape_gradient(black_box(&model), &images, &classes))
    });
    group.bench_function("static/heap", |b| {
        b.iter(|| heap::loss::value_and_grad(black_box(&heap_model), &heap_images, &classes))
    });
    group.bench_function("tape/heap", |b| {
        b.iter(|| heap::tape_gradient(black_box(&heap_model), &heap_images, &classes))
    });
    group.bench_function("handwritten", |b| {
        b.iter(|| handwritten_gradient(black_box(&arrays), &array_images, &classes, &mut gradient))
    });
    group.finish();
}
