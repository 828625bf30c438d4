//! System identification: the natural frequency ω and damping ratio ζ of an
//! oscillator recovered from sampled positions, by Levenberg–Marquardt on a residual
//! differentiated in static mode through the matrix exponential.
//!
//! The oscillator ẍ + 2ζω·ẋ + ω²·x = 0 is ṡ = A·s for the state s = (x, ẋ) and
//! A = [[0, 1], [−ω², −2ζω]]; sampled every Δt it moves by the transition matrix
//! Φ = e^(A·Δt), sₖ₊₁ = Φ·sₖ, exactly (no integration error). The residuals
//! rₖ(θ) = x̂ₖ(θ) − xₖ compare the model's positions with the measured ones,
//! θ = (ln ω, ln ζ) keeping both positive. Levenberg–Marquardt steps solve
//! (JᵀJ + λ·diag JᵀJ)·δθ = −Jᵀr as the least-squares problem
//! [J; √(λ·diag JᵀJ)]·δθ ≈ [−r; 0] (QR, never forming JᵀJ's square of J's condition
//! number in the solve), the Jacobian J of the residuals taken in reverse mode one
//! row at a time (`f::jacrev`), checked against central differences first.
//! Everything is on inline tensors of at most 14×2: nothing on the heap.

use fluxion::prelude::*;

/// The number of samples.
const SAMPLES: usize = 12;
/// The time between samples.
const STEP: f64 = 0.5;

type Residuals = Vector<f64, SAMPLES>;

/// The residuals x̂ₖ(θ) − xₖ of the positions simulated from s₀ = (1, 0).
#[differentiable(wrt(theta))]
fn residuals(theta: &Vector<f64, 2>, measured: &Residuals) -> Residuals {
    let (omega, zeta) = (theta[[0]].exp(), theta[[1]].exp());
    // A as constant matrices scaled by its entries that depend on θ.
    let generator: Matrix<f64, 2, 2> = Matrix::from_array([[0.0, 1.0], [0.0, 0.0]])
        + Matrix::from_array([[0.0, 0.0], [-1.0, 0.0]]).scale(omega * omega)
        + Matrix::from_array([[0.0, 0.0], [0.0, -2.0]]).scale(zeta * omega);
    let transition = generator.scale(STEP).matrix_exp();
    // The positions: the first row of Φᵏ applied to s₀ = (1, 0), k = 1, …, 12.
    let mut state = Vector::from_array([1.0, 0.0]);
    let mut positions = Residuals::zeros();
    for k in 0..SAMPLES {
        state = transition.matmul(&state);
        // Position k of the result: eₖ scaled by the state's first entry.
        positions += Residuals::from_fn(|[i]| if i == k { 1.0 } else { 0.0 }).scale(state[[0]]);
    }
    positions - *measured
}

fn main() {
    // Measurements of an oscillator with ω = 2, ζ = 0.15, the noise fixed for a
    // reproducible run.
    let truth = Vector::from_array([2f64.ln(), 0.15f64.ln()]);
    let noise = [0.004, -0.006, 0.002, 0.005, -0.003, -0.001, 0.006, -0.004, 0.001, 0.003, -0.005, 0.002];
    let exact = residuals(&truth, &Residuals::zeros());
    let measured = Residuals::from_fn(|[k]| exact[[k]] + noise[k]);

    // The Jacobian against central differences at the start.
    let mut theta = Vector::from_array([1.5f64.ln(), 0.4f64.ln()]);
    let jacobian: Matrix<f64, SAMPLES, 2> = residuals::jacrev(&theta, &measured);
    let step = 1e-6;
    for j in 0..2 {
        let shifted = |h: f64| {
            let mut t = theta;
            t[[j]] += h;
            residuals(&t, &measured)
        };
        let difference = (shifted(step) - shifted(-step)).scale(0.5 / step);
        let column = Residuals::from_fn(|[k]| jacobian[[k, j]]);
        let error = (column - difference).as_slice().iter().fold(0.0f64, |m, e| m.max(e.abs()));
        println!("column {j} of the Jacobian: largest difference from central differences {error:.1e}");
        assert!(error < 1e-7, "the Jacobian agrees with differences");
    }

    // Levenberg–Marquardt: Gauss–Newton steps (JᵀJ + λ·diag JᵀJ)·δθ = −Jᵀr, solved as
    // the least-squares problem [J; √(λ·diag JᵀJ)]·δθ ≈ [−r; 0]; λ shrunk after a step
    // that lowers |r|² and grown (the step refused) after one that does not.
    let mut damping = 1e-2;
    let mut r = residuals(&theta, &measured);
    for iteration in 0..20 {
        let j: Matrix<f64, SAMPLES, 2> = residuals::jacrev(&theta, &measured);
        let column_lengths = j.transposed_matmul(&j).diagonal().map(|d| (damping * d).sqrt());
        let stacked: Matrix<f64, { SAMPLES + 2 }, 2> = j.concat(Axis::<0>, &column_lengths.diagonal_matrix());
        let target: Vector<f64, { SAMPLES + 2 }> =
            r.scale(-1.0).concat(Axis::<0>, &Vector::<f64, 2>::zeros());
        let candidate = theta + stacked.least_squares(&target);
        let candidate_residuals = residuals(&candidate, &measured);
        if candidate_residuals.dot(&candidate_residuals) < r.dot(&r) {
            (theta, r, damping) = (candidate, candidate_residuals, damping / 3.0);
        } else {
            damping *= 3.0;
        }
        if iteration % 4 == 0 {
            let (omega, zeta) = (theta[[0]].exp(), theta[[1]].exp());
            println!("iteration {iteration:2}: ω = {omega:.5}, ζ = {zeta:.5}, |r|² = {:.3e}", r.dot(&r));
        }
    }
    let (omega, zeta) = (theta[[0]].exp(), theta[[1]].exp());
    println!("recovered ω = {omega:.4} (2), ζ = {zeta:.4} (0.15)");
    assert!((omega - 2.0).abs() < 0.01 && (zeta - 0.15).abs() < 0.01, "the fit recovers the oscillator");
}
