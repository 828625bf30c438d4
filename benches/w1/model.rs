//! Workload W1: an MLP 6→32→32→3 (tanh after both hidden layers, linear output), f64,
//! one sample, loss ½‖y − t‖², gradient with respect to all 1379 parameters.
//!
//! Shared by the benchmark (`benches/w1/mod.rs`) and the tests (`tests/w1_mlp.rs`): the
//! fluxion model (a derived struct of inline tensors; the tape and static mode) and a hand-written
//! backpropagation over fixed-size arrays.

use fluxion::autodiff::{differentiable, value_and_grad, value_and_grad_into};
use fluxion::prelude::*;

/// The MLP's parameters.
#[derive(Differentiable, Clone, Debug)]
pub struct Mlp {
    /// First layer weights.
    pub w1: Matrix<f64, 32, 6>,
    /// First layer bias.
    pub b1: Vector<f64, 32>,
    /// Second layer weights.
    pub w2: Matrix<f64, 32, 32>,
    /// Second layer bias.
    pub b2: Vector<f64, 32>,
    /// Output layer weights.
    pub w3: Matrix<f64, 3, 32>,
    /// Output layer bias.
    pub b3: Vector<f64, 3>,
}

impl Mlp {
    /// Deterministic parameters, scaled like Xavier initialisation.
    pub fn new(seed: u64) -> Self {
        Mlp {
            w1: Matrix::random_normal(0.0, (1.0f64 / 6.0).sqrt(), seed),
            b1: Vector::random_normal(0.0, 0.1, seed + 1),
            w2: Matrix::random_normal(0.0, (1.0f64 / 32.0).sqrt(), seed + 2),
            b2: Vector::random_normal(0.0, 0.1, seed + 3),
            w3: Matrix::random_normal(0.0, (1.0f64 / 32.0).sqrt(), seed + 4),
            b3: Vector::random_normal(0.0, 0.1, seed + 5),
        }
    }
}

/// The input and target of the one sample.
pub fn sample() -> (Vector<f64, 6>, Vector<f64, 3>) {
    (Vector::from_array([0.5, -0.3, 0.8, 0.1, -0.7, 0.2]), Vector::from_array([0.3, -0.2, 0.6]))
}

/// ½‖y − t‖² of the traced model.
pub fn loss(model: MlpTraced, x: &Vector<f64, 6>, t: &Vector<f64, 3>) -> Var<f64> {
    let h1 = (&model.w1.matmul(&Var::constant(*x)) + &model.b1).tanh();
    let h2 = (&model.w2.matmul(&h1) + &model.b2).tanh();
    let y = &model.w3.matmul(&h2) + &model.b3;
    let residual = &y - &Var::constant(*t);
    &residual.dot(&residual) * 0.5
}

/// ½‖y − t‖², written once as ordinary Rust over the model; `#[differentiable]`
/// generates its gradient at compile time (static mode: `static_loss::value_and_grad`).
#[differentiable(wrt(model))]
pub fn static_loss(model: &Mlp, x: &Vector<f64, 6>, t: &Vector<f64, 3>) -> f64 {
    let h1 = (model.w1.matmul(x) + model.b1).tanh();
    let h2 = (model.w2.matmul(&h1) + model.b2).tanh();
    let y = model.w3.matmul(&h2) + model.b3;
    let residual = y - t;
    residual.dot(&residual) * 0.5
}

/// Loss and gradient by fluxion's reverse mode.
pub fn fluxion_gradient(model: &Mlp, x: &Vector<f64, 6>, t: &Vector<f64, 3>) -> (f64, MlpTangent) {
    value_and_grad(|m: MlpTraced| loss(m, x, t), model)
}

/// Loss by fluxion's reverse mode, with the gradient written into `gradient` (its
/// memory reused, as the hand-written version reuses its arrays).
pub fn fluxion_gradient_into(
    model: &Mlp,
    x: &Vector<f64, 6>,
    t: &Vector<f64, 3>,
    gradient: &mut MlpTangent,
) -> f64 {
    value_and_grad_into(|m: MlpTraced| loss(m, x, t), model, gradient)
}

/// Parameters as plain arrays, for the hand-written baseline.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArrayMlp {
    /// First layer weights, row-major.
    pub w1: [[f64; 6]; 32],
    /// First layer bias.
    pub b1: [f64; 32],
    /// Second layer weights.
    pub w2: [[f64; 32]; 32],
    /// Second layer bias.
    pub b2: [f64; 32],
    /// Output layer weights.
    pub w3: [[f64; 32]; 3],
    /// Output layer bias.
    pub b3: [f64; 3],
}

impl From<&Mlp> for ArrayMlp {
    fn from(m: &Mlp) -> Self {
        ArrayMlp {
            w1: m.w1.to_array(),
            b1: m.b1.to_array(),
            w2: m.w2.to_array(),
            b2: m.b2.to_array(),
            w3: m.w3.to_array(),
            b3: m.b3.to_array(),
        }
    }
}

/// Σ wᵢxᵢ in four interleaved partial sums, which the compiler keeps in vector
/// registers (one running sum would serialise every addition).
#[inline(always)]
fn dot<const I: usize>(w: &[f64; I], x: &[f64; I]) -> f64 {
    let (w_chunks, w_rest) = w.as_chunks::<4>();
    let (x_chunks, x_rest) = x.as_chunks::<4>();
    let mut partial = [0.0; 4];
    for (w, x) in w_chunks.iter().zip(x_chunks) {
        for lane in 0..4 {
            partial[lane] += w[lane] * x[lane];
        }
    }
    let tail: f64 = w_rest.iter().zip(x_rest).map(|(w, x)| w * x).sum();
    (partial[0] + partial[1]) + (partial[2] + partial[3]) + tail
}

/// z = W·x + b, then tanh when `activate`.
#[inline(always)]
fn dense<const I: usize, const O: usize>(
    w: &[[f64; I]; O],
    b: &[f64; O],
    x: &[f64; I],
    activate: bool,
) -> [f64; O] {
    core::array::from_fn(|o| {
        let z = b[o] + dot(&w[o], x);
        if activate { z.tanh() } else { z }
    })
}

/// Backward through one dense layer: writes W̄ = δ ⊗ x and b̄ = δ, returns Wᵀ·δ, in
/// one pass over W.
#[inline(always)]
fn dense_backward<const I: usize, const O: usize>(
    w: &[[f64; I]; O],
    x: &[f64; I],
    delta: &[f64; O],
    w_bar: &mut [[f64; I]; O],
    b_bar: &mut [f64; O],
) -> [f64; I] {
    let mut x_bar = [0.0; I];
    for o in 0..O {
        b_bar[o] = delta[o];
        for i in 0..I {
            w_bar[o][i] = delta[o] * x[i];
            x_bar[i] += w[o][i] * delta[o];
        }
    }
    x_bar
}

/// Loss and gradient by hand-derived backpropagation over fixed-size arrays.
pub fn handwritten_gradient(p: &ArrayMlp, x: &[f64; 6], t: &[f64; 3], g: &mut ArrayMlp) -> f64 {
    let h1 = dense(&p.w1, &p.b1, x, true);
    let h2 = dense(&p.w2, &p.b2, &h1, true);
    let y = dense(&p.w3, &p.b3, &h2, false);
    let residual: [f64; 3] = core::array::from_fn(|i| y[i] - t[i]);
    let loss = 0.5 * residual.iter().map(|r| r * r).sum::<f64>();
    let h2_bar = dense_backward(&p.w3, &h2, &residual, &mut g.w3, &mut g.b3);
    let z2_bar: [f64; 32] = core::array::from_fn(|i| h2_bar[i] * (1.0 - h2[i] * h2[i]));
    let h1_bar = dense_backward(&p.w2, &h1, &z2_bar, &mut g.w2, &mut g.b2);
    let z1_bar: [f64; 32] = core::array::from_fn(|i| h1_bar[i] * (1.0 - h1[i] * h1[i]));
    dense_backward(&p.w1, x, &z1_bar, &mut g.w1, &mut g.b1);
    loss
}
