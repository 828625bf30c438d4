//! A library author's elementwise operation on the GPU with no GPU code: the function
//! and its derivative are written once, generically over the real scalar, as a
//! `ScalarFunction`. The host runs it on `f64`; a `Cuda` tensor evaluates the same
//! definition on a symbolic scalar and compiles the recorded formula into a kernel
//! (printed below), and reverse mode uses the derivative the same way.
//!
//! Run with `cargo run --release --features cuda --example cuda_custom_op`; without a
//! GPU it prints the generated kernel and says why it stops there.

use fluxion::autodiff::{grad, value_and_grad};
use fluxion::backend::cuda::{CType, Device};
use fluxion::ops::cuda::function_kernel_source;
use fluxion::ops::elementwise::ScalarFunction;
use fluxion::prelude::*;

/// The Swish activation x·σ(x), with swish′(x) = σ(x)·(1 + x·(1 − σ(x))).
#[derive(Clone, Copy, Debug)]
struct Swish;

impl ScalarFunction for Swish {
    fn value<T: RealScalar>(&self, x: T) -> T {
        x / (T::one() + (-x).exp())
    }
    fn derivative<T: RealScalar>(&self, x: T, _y: T) -> T {
        let sigma = T::one() / (T::one() + (-x).exp());
        sigma * (T::one() + x * (T::one() - sigma))
    }
}

fn main() {
    let x: Vector<f64, 4, Heap> = Vector::from_array([-2.0, -0.5, 0.5, 2.0]);
    let host = x.map_function(Swish);
    println!("swish on the host: {host}");

    // The kernel the GPU compiles, from the definition above (named by a hash of the
    // recorded formula).
    let (name, source) = function_kernel_source(Swish, CType::F32).expect("Swish records");
    println!("generated kernel `{name}`:\n{source}");

    let device = match Device::get() {
        Ok(device) => device,
        Err(error) => {
            println!("stopping before the GPU part: {error}");
            return;
        }
    };
    println!("running on {}", device.name().expect("the device has a name"));
    let on_gpu = x.to_device().map_function(Swish).to_host::<Heap>();
    println!("swish on the GPU:  {on_gpu}");
    assert!(on_gpu.iter().zip(host.iter()).all(|(a, b)| (a - b).abs() < 1e-12));

    // Reverse mode through it on the GPU: d/dx Σ swish(x) = swish′(x).
    let (total, gradient) =
        value_and_grad(|x: Var<Vector<f64, 4, Cuda>>| x.map_function(Swish).sum(), &x.to_device());
    let expected = grad(|x: Var<Vector<f64, 4, Heap>>| x.map_function(Swish).sum(), &x);
    let gradient = gradient.to_host::<Heap>();
    println!("Σ swish = {total}; gradient on the GPU: {gradient}");
    assert!(gradient.iter().zip(expected.iter()).all(|(a, b)| (a - b).abs() < 1e-12));
}
