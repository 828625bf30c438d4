//! A public derived struct may hold private field types and layers whose lifted
//! forms are not their own tangents: the second-order items generated beside it
//! must not leak the one or reject the other.
use fluxion::autodiff::Differentiable;
use fluxion::nn::layer::{Linear, Relu};
use fluxion::prelude::*;

#[derive(Differentiable, Clone)]
struct Inner {
    w: f64,
}

#[derive(Differentiable, Clone)]
pub struct Outer {
    inner: Inner,
    pub v: Vector<f64, 2>,
}

#[derive(Differentiable, Clone)]
pub struct WithLayers {
    layer: Linear<f64, 2, 3>,
    activation: Relu,
}

fn main() {
    let outer = Outer { inner: Inner { w: 1.0 }, v: Vector::zeros() };
    let _ = (outer.inner.w, outer.v, WithLayers { layer: Linear::new(1), activation: Relu }.layer);
}
