//! GPU benchmarks (feature `cuda`), one Criterion binary; each measurement waits for
//! the GPU inside `iter_custom`:
//!
//! - `w4/{train_step,train_step_tape,train_step_layers,handwritten}`: the W2
//!   classifier (784 → 256 → 10, ReLU, softmax cross-entropy, SGD) at batch 4096 in
//!   f32, one whole training step: with fluxion's device rules called in order,
//!   through the tape (`value_and_grad` on a derived model), through the library's
//!   layers, loss and optimiser (`Sequential` of `Linear`s, `cross_entropy_one_hot`,
//!   `Sgd`), and hand-written (cuBLAS + fused CUDA C kernels);
//! - `gpu_gemm/sgemm_4096`: a 4096³ f32 product through `matmul_into` (cuBLAS), with
//!   full f32, and with TF32 or BF16 tensor cores asked for; throughput in
//!   floating-point operations;
//! - `gpu_gemm/{cgemm_4096,zgemm_4096}`: 4096³ Complex32 and Complex64 products
//!   (cuBLAS `cgemm`/`zgemm` through the same `matmul_into`), 8n³ operations each;
//! - `gpu_elementwise/add_16m`: `a + b` on 16 M f32 elements; throughput in bytes
//!   moved (two reads, one write).
//!
//! Without a GPU it prints why and measures nothing. PyTorch and JAX run the same W4
//! step in `benches/gpu/w4_baselines.py` on the same card.

#[path = "../../tests/common/cuda_mlp.rs"]
mod cuda_mlp;
mod handwritten;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_main};
use fluxion::backend::cuda::{Cuda, Device, MatmulPrecision};
use fluxion::nn::layer::{Linear, Relu, Sequential};
use fluxion::nn::loss::{Reduction, cross_entropy_one_hot};
use fluxion::nn::optim::{Optimizer, Sgd, SgdConfig};
use fluxion::prelude::*;

/// The W4 model from the library's layers (weights stored [out, in]).
type Layers = Sequential<(Linear<f32, 784, 256, Cuda>, Relu, Linear<f32, 256, 10, Cuda>)>;

/// The GPU, or `None` after printing why there is none.
fn device() -> Option<&'static Device> {
    Device::get().map_err(|error| eprintln!("skipping the GPU benchmarks: {error}")).ok()
}

/// Times `iterations` runs of `step`, waiting for the GPU before and after.
fn timed(device: &Device, iterations: u64, mut step: impl FnMut()) -> Duration {
    device.synchronize().unwrap();
    let start = Instant::now();
    for _ in 0..iterations {
        step();
    }
    device.synchronize().unwrap();
    start.elapsed()
}

/// One W4 step through the library's layers, loss and optimiser.
fn layers_step(
    layers: &mut Layers,
    sgd: &mut Sgd<Layers>,
    inputs: &Var<Tensor<f32, (Const<4096>, Const<784>), Cuda>>,
    labels: &Tensor<f32, (Const<4096>, Const<10>), Cuda>,
) {
    let (_, gradient) = value_and_grad(
        |m: <Layers as Trace>::Traced| cross_entropy_one_hot(&m.forward(inputs), labels, Reduction::Mean),
        &*layers,
    );
    sgd.step(layers, &gradient);
}

fn w4(c: &mut Criterion) {
    let Some(device) = device() else { return };
    eprintln!("device: {}", device.name().unwrap());
    let host_batch = cuda_mlp::Batch::<f32, 4096, 784, 10>::random(1);
    let host_model = cuda_mlp::Mlp::<f32, 784, 256, 10>::init(2);
    let (batch, mut model) = (host_batch.to_device(), host_model.to_device());
    let mut tape_model = cuda_mlp::TapeMlp::new(&model);
    let (inputs, labels) = (Var::constant(batch.inputs.clone()), Var::constant(batch.labels.clone()));
    let parameters = [
        host_model.w1.as_slice(),
        host_model.b1.as_slice(),
        host_model.w2.as_slice(),
        host_model.b2.as_slice(),
    ];
    let mut baseline =
        handwritten::HandWritten::new((4096, 784, 256, 10), host_batch.inputs.as_slice(), parameters);

    let mut layers: Layers = Sequential((
        Linear { weight: host_model.w1.transpose().to_device(), bias: host_model.b1.to_device() },
        Relu,
        Linear { weight: host_model.w2.transpose().to_device(), bias: host_model.b2.to_device() },
    ));
    let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.1, ..SgdConfig::default() });

    // The four steps compute the same update: compare W₁ after one step of each.
    model.sgd_step_queued(&batch, 0.1);
    tape_model.sgd_step(&inputs, &labels, 0.1);
    layers_step(&mut layers, &mut sgd, &inputs, &batch.labels);
    baseline.step(0.1);
    let layers_w1: Tensor<f32, (Const<256>, Const<784>), Heap> = layers.0.0.weight.to_host();
    let (ours, tape, theirs) = (model.w1.to_vec(), tape_model.w1.to_vec(), baseline.w1());
    let from_layers = layers_w1.transpose().to_vec();
    let largest_gap = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    eprintln!(
        "W1 after one step: |fluxion − hand-written| ≤ {:e}, |tape − hand-written| ≤ {:e}, |layers − hand-written| ≤ {:e}",
        largest_gap(&ours, &theirs),
        largest_gap(&tape, &theirs),
        largest_gap(&from_layers, &theirs)
    );
    assert!(
        [&ours, &tape, &from_layers].iter().all(|w1| largest_gap(w1, &theirs) < 1e-5),
        "the W4 steps disagree"
    );
    let mut group = c.benchmark_group("w4");
    group.bench_function("train_step", |b| {
        b.iter_custom(|iterations| {
            timed(device, iterations, || {
                model.sgd_step_queued(&batch, 0.1);
            })
        })
    });
    group.bench_function("train_step_tape", |b| {
        b.iter_custom(|iterations| {
            timed(device, iterations, || {
                tape_model.sgd_step(&inputs, &labels, 0.1);
            })
        })
    });
    group.bench_function("train_step_layers", |b| {
        b.iter_custom(|iterations| {
            timed(device, iterations, || layers_step(&mut layers, &mut sgd, &inputs, &batch.labels))
        })
    });
    group.bench_function("handwritten", |b| {
        b.iter_custom(|iterations| {
            baseline.synchronize();
            let start = Instant::now();
            for _ in 0..iterations {
                baseline.step(0.1);
            }
            baseline.synchronize();
            start.elapsed()
        })
    });
    group.finish();
}

fn gemm(c: &mut Criterion) {
    let Some(device) = device() else { return };
    const N: usize = 4096;
    let a: Tensor<f32, (Dyn, Dyn), Heap> = Tensor::random_uniform_shaped((Dyn(N), Dyn(N)), -1.0, 1.0, 3);
    let (a, b) = (a.to_device(), a.transpose().to_device());
    let mut out = Tensor::<f32, (Dyn, Dyn), Cuda>::device_zeros((Dyn(N), Dyn(N)));
    let mut group = c.benchmark_group("gpu_gemm");
    group.throughput(Throughput::Elements(2 * (N as u64).pow(3)));
    for (name, precision) in [
        ("sgemm_4096", MatmulPrecision::Full),
        ("sgemm_4096_tf32", MatmulPrecision::Tf32),
        ("sgemm_4096_bf16", MatmulPrecision::Bf16),
    ] {
        device.set_matmul_precision(precision).unwrap();
        group.bench_function(name, |bencher| {
            bencher.iter_custom(|iterations| timed(device, iterations, || a.matmul_into(&b, &mut out)))
        });
    }
    device.set_matmul_precision(MatmulPrecision::Full).unwrap();
    group.finish();
}

/// A 4096³ complex product through `matmul_into`: `cgemm` (Complex32) and `zgemm`
/// (Complex64), 8n³ real floating-point operations each.
fn complex_gemm(c: &mut Criterion) {
    let Some(device) = device() else { return };
    const N: usize = 4096;
    let mut group = c.benchmark_group("gpu_gemm");
    group.throughput(Throughput::Elements(8 * (N as u64).pow(3)));
    let a: Tensor<Complex32, (Dyn, Dyn), Heap> =
        Tensor::random_uniform_shaped((Dyn(N), Dyn(N)), -1.0, 1.0, 5);
    let a = a.to_device();
    let mut out = Tensor::<Complex32, (Dyn, Dyn), Cuda>::device_zeros((Dyn(N), Dyn(N)));
    group.bench_function("cgemm_4096", |bencher| {
        bencher.iter_custom(|iterations| timed(device, iterations, || a.matmul_into(&a, &mut out)))
    });
    let a: Tensor<Complex64, (Dyn, Dyn), Heap> =
        Tensor::random_uniform_shaped((Dyn(N), Dyn(N)), -1.0, 1.0, 6);
    let a = a.to_device();
    let mut out = Tensor::<Complex64, (Dyn, Dyn), Cuda>::device_zeros((Dyn(N), Dyn(N)));
    group.bench_function("zgemm_4096", |bencher| {
        bencher.iter_custom(|iterations| timed(device, iterations, || a.matmul_into(&a, &mut out)))
    });
    group.finish();
}

fn elementwise(c: &mut Criterion) {
    let Some(device) = device() else { return };
    const N: usize = 16 << 20;
    let a: Tensor<f32, (Dyn,), Heap> = Tensor::random_uniform_shaped((Dyn(N),), -1.0, 1.0, 4);
    let (a, b) = (a.to_device(), a.to_device());
    let mut group = c.benchmark_group("gpu_elementwise");
    group.throughput(Throughput::Bytes(3 * 4 * N as u64));
    group.bench_function("add_16m", |bencher| {
        bencher.iter_custom(|iterations| {
            timed(device, iterations, || {
                criterion::black_box(&a + &b);
            })
        })
    });
    group.finish();
}

/// The Criterion group, in a module of its own (its generated function has no docs).
mod group {
    use std::time::Duration;

    criterion::criterion_group! {
        name = benches;
        // GPU time is scarce: short warm-ups and measurements, ample for µs-scale kernels.
        config = criterion::Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(20);
        targets = super::gemm, super::complex_gemm, super::elementwise, super::w4
    }
}

criterion_main!(group::benches);
