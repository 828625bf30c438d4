//! Gradients of ordinary Rust code over a derived model struct: the gradient comes
//! back as the model's own `Tangent` type, and a few steps of gradient descent fit a
//! tiny linear model.

use fluxion::autodiff::value_and_grad;
use fluxion::prelude::*;

/// y = tanh(W x + b).
#[derive(Differentiable, Clone, Debug)]
struct Layer {
    w: Matrix<f64, 2, 3>,
    b: Vector<f64, 2>,
}

fn loss(layer: LayerTraced, x: &Vector<f64, 3>, target: &Vector<f64, 2>) -> Var<f64> {
    let y = (&layer.w.matmul(&Var::constant(*x)) + &layer.b).tanh();
    let error = &y - &Var::constant(*target);
    error.dot(&error)
}

fn main() {
    let mut layer = Layer { w: Matrix::random_normal(0.0, 0.5, 1), b: Vector::zeros() };
    let x: Vector<f64, 3> = Vector::from_array([0.5, -1.0, 2.0]);
    let target: Vector<f64, 2> = Vector::from_array([0.25, -0.5]);
    for step in 0..50 {
        let (value, gradient): (f64, LayerTangent) =
            value_and_grad(|l: LayerTraced| loss(l, &x, &target), &layer);
        if step % 10 == 0 {
            println!("step {step:2}: loss {value:.6}");
        }
        layer.move_by(&gradient.scaled(-0.05));
    }
    let (value, _) = value_and_grad(|l: LayerTraced| loss(l, &x, &target), &layer);
    println!("final loss {value:.2e}");
    assert!(value < 1e-6);
}
