//! Gaussian-process regression: the kernel's hyperparameters fitted by gradient
//! descent on the negative log marginal likelihood, differentiated in static mode
//! through a Cholesky factorisation.
//!
//! With K = σ²·exp(−(xᵢ − xⱼ)²/2ℓ²) + s²·I over the training inputs and
//! L = chol(K), z = L⁻¹y,
//!
//! −log p(y) = ½|z|² + Σᵢ ln lᵢᵢ + (n/2)·ln 2π,
//!
//! one factorisation and one triangular solve on 8×8 inline matrices (no heap).
//! The parameters are θ = (ln ℓ, ln σ²), so every step keeps them positive. The
//! gradient is checked against central differences before the descent, and the
//! fitted model predicts the mean k*ᵀK⁻¹y at a point it was not trained on.

use core::f64::consts::PI;

use fluxion::prelude::*;

/// The number of training points.
const N: usize = 8;
/// The observation noise's variance s², fixed.
const NOISE: f64 = 1e-2;

type Gram = Matrix<f64, N, N>;
type Points = Vector<f64, N>;

/// The squared distances (xᵢ − xⱼ)², a constant of the fit.
fn squared_distances(x: &Points) -> Gram {
    Matrix::from_fn(|[i, j]| (x[[i]] - x[[j]]).powi(2))
}

/// The covariance K(θ) of the training outputs.
#[differentiable(wrt(theta))]
fn covariance(theta: &Vector<f64, 2>, distances: &Gram) -> Gram {
    let (length_scale_squared, signal) = ((theta[[0]] * 2.0).exp(), theta[[1]].exp());
    distances.scale(-0.5 / length_scale_squared).exp().scale(signal) + Gram::identity() * NOISE
}

/// −log p(y | θ), through L = chol(K).
#[differentiable(wrt(theta))]
fn negative_log_likelihood(theta: &Vector<f64, 2>, distances: &Gram, y: &Points) -> f64 {
    let l = covariance(theta, distances).cholesky();
    let z = l.solve_lower_triangular(y);
    z.dot(&z) * 0.5 + l.diagonal().ln().sum() + 0.5 * N as f64 * (2.0 * PI).ln()
}

fn main() {
    // Noisy samples of sin(x) on [0, 7], the noise fixed for a reproducible run.
    let x: Points = Vector::from_fn(|[i]| i as f64);
    let wiggle = [0.05, -0.08, 0.02, 0.09, -0.04, -0.06, 0.07, -0.01];
    let y: Points = Vector::from_fn(|[i]| x[[i]].sin() + wiggle[i]);
    let distances = squared_distances(&x);

    // The gradient against central differences at the start.
    let mut theta: Vector<f64, 2> = Vector::from_array([0.0, 0.0]);
    let (start, gradient) = negative_log_likelihood::value_and_grad(&theta, &distances, &y);
    let step = 1e-6;
    for k in 0..2 {
        let shifted = |h: f64| {
            let mut t = theta;
            t[[k]] += h;
            negative_log_likelihood(&t, &distances, &y)
        };
        let difference = (shifted(step) - shifted(-step)) / (2.0 * step);
        println!("∂/∂θ{k}: static mode {:+.9}, central differences {difference:+.9}", gradient[[k]]);
        assert!((gradient[[k]] - difference).abs() < 1e-6 * difference.abs().max(1.0));
    }

    // Gradient descent on θ.
    let rate = 0.05;
    for iteration in 0..200 {
        let (value, gradient) = negative_log_likelihood::value_and_grad(&theta, &distances, &y);
        if iteration % 40 == 0 {
            println!("iteration {iteration:3}: −log p(y) = {value:.6}");
        }
        theta -= gradient * rate;
    }
    let nll = negative_log_likelihood(&theta, &distances, &y);
    let (length_scale, signal) = (theta[[0]].exp(), theta[[1]].exp());
    println!("fitted: length scale {length_scale:.4}, signal variance {signal:.4}, −log p(y) = {nll:.6}");
    assert!(nll < start - 1.0, "the fit improved the likelihood: {start} → {nll}");

    // The posterior mean at x* = 3.5: k*ᵀK⁻¹y by two triangular solves with L.
    let l = covariance(&theta, &distances).cholesky();
    let weights = l.transpose().solve_upper_triangular(&l.solve_lower_triangular(&y));
    let query = 3.5;
    let k_star: Points =
        Vector::from_fn(|[i]| signal * (-(x[[i]] - query).powi(2) / (2.0 * length_scale.powi(2))).exp());
    let mean = k_star.dot(&weights);
    println!("posterior mean at x = {query}: {mean:.4} (sin {query} = {:.4})", query.sin());
    assert!((mean - query.sin()).abs() < 0.1, "the model predicts between its points");
}
