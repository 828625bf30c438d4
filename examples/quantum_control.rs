//! Quantum optimal control (GRAPE): the drive of a qubit shaped so that its evolution
//! is a NOT gate, by gradient descent on the gate's infidelity, differentiated in
//! static mode through complex matrix exponentials.
//!
//! The qubit's Hamiltonian is H(t) = (Δ/2)·σ_z + (u(t)/2)·σ_x: a detuning Δ that
//! the drive u must work against. The drive is constant over each of N steps of
//! length Δt, so the evolution is U = e^(−iHₙΔt)···e^(−iH₁Δt), each factor a
//! complex 2×2 matrix exponential. The gate fidelity |tr(Xᴴ·U)|²/4 ignores U's
//! global phase; the loss is its complement, 1 − F, in the N real controls uₖ, which
//! enter the complex computation by `to_complex`. Its gradient comes from one
//! reverse sweep through the exponentials (Ā = L(Aᴴ, Ȳ), the Fréchet derivative at
//! the adjoint), checked against central differences first. Everything lives on
//! inline tensors: nothing on the heap.

use fluxion::prelude::*;

/// The number of piecewise-constant drive steps.
const STEPS: usize = 16;
/// The length of a step.
const STEP: f64 = 0.25;
/// The detuning Δ.
const DETUNING: f64 = 1.0;

type C = Complex64;
type Gate = Matrix<C, 2, 2>;
type Controls = Vector<f64, STEPS>;

/// 1 − |tr(Xᴴ·U)|²/4 for the evolution U under the drive `controls`.
#[differentiable]
fn infidelity(controls: &Controls) -> f64 {
    let (zero, one) = (C::new(0.0, 0.0), C::new(1.0, 0.0));
    // −iΔt times the drift (Δ/2)·σ_z and times the drive's operator σ_x/2.
    let drift: Gate =
        Matrix::from_array([[one, zero], [zero, -one]]).scale(C::new(0.0, -0.5 * DETUNING * STEP));
    let drive: Gate = Matrix::from_array([[zero, one], [one, zero]]).scale(C::new(0.0, -0.5 * STEP));
    let mut evolution = Gate::identity();
    for k in 0..STEPS {
        let generator = drift + drive.scale(controls[[k]].to_complex());
        evolution = generator.matrix_exp().matmul(&evolution);
    }
    // X is its own adjoint: tr(Xᴴ·U) = U₁₀ + U₀₁.
    let not_gate: Gate = Matrix::from_array([[zero, one], [one, zero]]);
    let overlap = not_gate.matmul(&evolution).diagonal().sum();
    1.0 - overlap.norm_sqr() * 0.25
}

fn main() {
    // A weak constant drive to start from: far from a NOT gate.
    let mut controls = Controls::from_fn(|[k]| 0.3 + 0.05 * k as f64);
    let (start, gradient) = infidelity::value_and_grad(&controls);

    // The gradient against central differences of the loss.
    let step = 1e-6;
    for k in [0, STEPS / 2, STEPS - 1] {
        let nudge = Controls::from_fn(|[i]| if i == k { step } else { 0.0 });
        let difference = (infidelity(&(controls + nudge)) - infidelity(&(controls - nudge))) / (2.0 * step);
        assert!((gradient[[k]] - difference).abs() < 1e-8, "∂/∂u{k}: {} against {difference}", gradient[[k]]);
    }
    println!("gradient matches central differences; infidelity {start:.4} at the start");

    // Gradient descent with momentum.
    let (rate, momentum) = (0.5, 0.8);
    let mut velocity = Controls::zeros();
    let mut loss = start;
    for iteration in 1..=150 {
        let (value, gradient) = infidelity::value_and_grad(&controls);
        loss = value;
        velocity = velocity.scale(momentum) - gradient.scale(rate);
        controls += velocity;
        if iteration % 25 == 0 {
            println!("iteration {iteration:3}: infidelity {value:.2e}");
        }
    }
    println!("drive: {controls:.3}");
    assert!(loss < 1e-6 && loss < start, "the infidelity fell from {start} to {loss} only");
    println!("NOT gate reached: fidelity {:.8}", 1.0 - loss);
}
