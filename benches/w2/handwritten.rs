//! Workload W2 written by hand, as a performance engineer would: the baseline of the
//! fluxion model in `model.rs`.
//!
//! An MLP 784→256→10 with ReLU, weights stored `[out, in]` (as PyTorch stores them),
//! batch B = 128, f32, one SGD step (η = 0.01) on the mean softmax cross-entropy:
//!
//! - forward: H = relu(X·W₁ᵀ + b₁) (128×256), Z = H·W₂ᵀ + b₂ (128×10),
//!   L = (1/B) Σᵢ (logsumexp(Zᵢ) − Zᵢ,yᵢ), with logsumexp shifted by the row's maximum;
//! - backward: Z̄ = (softmax(Z) − onehot(y))/B, W̄₂ = Z̄ᵀ·H, b̄₂ = Σᵢ Z̄ᵢ,
//!   H̄ = (Z̄·W₂) ⊙ [H > 0], W̄₁ = H̄ᵀ·X, b̄₁ = Σᵢ H̄ᵢ;
//! - update: θ ← θ − η·θ̄, in place.
//!
//! The four matrix products go to fluxion's CPU matrix kernel (the `gemm` crate, split
//! into one block of the output per thread), each transposed operand read in place
//! through its strides; the bias, the ReLU, the loss and the row sums are fused
//! into one pass each; every buffer is allocated once, in [`W2Params::new`]. Both
//! sides of the benchmark thus run the same products under one thread setting
//! (`fluxion::backend::cpu::set_num_threads`): the ratio is the cost of the layers,
//! the tape and the optimiser.
//!
//! Shared by the benchmark (`benches/w2/mod.rs`) and the tests (`tests/w2_handwritten.rs`).

use fluxion::backend::cpu::{MatRef, matmul_into};

/// The batch size.
pub const BATCH: usize = 128;
/// The input size (28×28 pixels).
pub const INPUTS: usize = 784;
/// The hidden layer's size.
pub const HIDDEN: usize = 256;
/// The number of classes.
pub const CLASSES: usize = 10;

/// The four parameter tensors, row-major: `w1` is 256×784, `b1` 256, `w2` 10×256,
/// `b2` 10. Also the layout of their gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct W2Tensors {
    /// First layer weights, [out, in] = [256, 784].
    pub w1: Vec<f32>,
    /// First layer bias.
    pub b1: Vec<f32>,
    /// Second layer weights, [out, in] = [10, 256].
    pub w2: Vec<f32>,
    /// Second layer bias.
    pub b2: Vec<f32>,
}

impl W2Tensors {
    /// All four tensors filled with zeros.
    fn zeros() -> Self {
        W2Tensors {
            w1: vec![0.0; HIDDEN * INPUTS],
            b1: vec![0.0; HIDDEN],
            w2: vec![0.0; CLASSES * HIDDEN],
            b2: vec![0.0; CLASSES],
        }
    }
}

/// The parameters, the gradient of the last step (as PyTorch keeps `.grad`) and the
/// activation buffers of a step.
#[derive(Clone, Debug)]
pub struct W2Params {
    /// The parameters.
    pub value: W2Tensors,
    /// ∂L/∂θ of the last call to [`loss_and_gradient`] or [`step`].
    pub grad: W2Tensors,
    /// H = relu(X·W₁ᵀ + b₁).
    hidden: Vec<f32>,
    /// H̄.
    hidden_bar: Vec<f32>,
    /// Z, then Z̄.
    logits: Vec<f32>,
}

impl W2Params {
    /// Parameters drawn as PyTorch's `nn.Linear` draws them, uniform in
    /// [−1/√fan_in, 1/√fan_in), the same for the same `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = SplitMix64(seed);
        let mut uniform = |len: usize, fan_in: usize| -> Vec<f32> {
            let bound = 1.0 / (fan_in as f64).sqrt();
            (0..len).map(|_| ((2.0 * rng.unit() - 1.0) * bound) as f32).collect()
        };
        let value = W2Tensors {
            w1: uniform(HIDDEN * INPUTS, INPUTS),
            b1: uniform(HIDDEN, INPUTS),
            w2: uniform(CLASSES * HIDDEN, HIDDEN),
            b2: uniform(CLASSES, HIDDEN),
        };
        W2Params {
            value,
            grad: W2Tensors::zeros(),
            hidden: vec![0.0; BATCH * HIDDEN],
            hidden_bar: vec![0.0; BATCH * HIDDEN],
            logits: vec![0.0; BATCH * CLASSES],
        }
    }
}

/// A deterministic batch: 128 inputs of 784 values in [0, 1) and their labels. Sample
/// i has label i mod 10 and its pixels p with p mod 10 equal to the label are
/// brighter by ½: a pattern the network can learn.
pub fn synthetic_batch(seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut rng = SplitMix64(seed);
    let labels: Vec<usize> = (0..BATCH).map(|i| i % CLASSES).collect();
    let inputs = (0..BATCH * INPUTS)
        .map(|flat| {
            let bump = if (flat % INPUTS) % CLASSES == labels[flat / INPUTS] { 0.5 } else { 0.0 };
            (0.5 * rng.unit() + bump) as f32
        })
        .collect();
    (inputs, labels)
}

/// One SGD step on the batch `x` (128×784, row-major) with `labels`: forward,
/// backward, θ ← θ − η·θ̄. Returns the loss before the update.
pub fn step(params: &mut W2Params, x: &[f32], labels: &[usize], learning_rate: f32) -> f32 {
    let loss = loss_and_gradient(params, x, labels);
    let W2Params { value, grad, .. } = params;
    for (theta, gradient) in [
        (&mut value.w1, &grad.w1),
        (&mut value.b1, &grad.b1),
        (&mut value.w2, &grad.w2),
        (&mut value.b2, &grad.b2),
    ] {
        for (t, &g) in theta.iter_mut().zip(gradient) {
            *t -= learning_rate * g;
        }
    }
    loss
}

/// The mean cross-entropy of the batch; its gradient is left in `params.grad`.
///
/// # Panics
/// When `x` is not 128×784 or `labels` not 128 labels below 10.
pub fn loss_and_gradient(params: &mut W2Params, x: &[f32], labels: &[usize]) -> f32 {
    assert!(x.len() == BATCH * INPUTS && labels.len() == BATCH, "a batch is 128×784 inputs and 128 labels");
    assert!(labels.iter().all(|&label| label < CLASSES), "labels are below {CLASSES}");
    let W2Params { value, grad, hidden, hidden_bar, logits } = params;

    // H = relu(X·W₁ᵀ + b₁): W₁ᵀ read in place (row stride 1, column stride 784).
    let x_view = MatRef::row_major(x, INPUTS);
    product((BATCH, INPUTS, HIDDEN), x_view, MatRef::transposed(&value.w1, INPUTS), hidden);
    for row in hidden.chunks_exact_mut(HIDDEN) {
        for (h, &b) in row.iter_mut().zip(&value.b1) {
            *h = (*h + b).max(0.0);
        }
    }

    // Z = H·W₂ᵀ + b₂, then per row: the loss term and Z̄ = (softmax(Z) − onehot)/B.
    product(
        (BATCH, HIDDEN, CLASSES),
        MatRef::row_major(hidden, HIDDEN),
        MatRef::transposed(&value.w2, HIDDEN),
        logits,
    );
    let scale = 1.0 / BATCH as f32;
    let mut loss = 0.0f32;
    for (z, &label) in logits.chunks_exact_mut(CLASSES).zip(labels) {
        let mut max = f32::NEG_INFINITY;
        for (z, &b) in z.iter_mut().zip(&value.b2) {
            *z += b;
            max = max.max(*z);
        }
        let total: f32 = z.iter().map(|&z| (z - max).exp()).sum();
        let logsumexp = max + total.ln();
        loss += logsumexp - z[label];
        for z in z.iter_mut() {
            *z = (*z - logsumexp).exp() * scale;
        }
        z[label] -= scale;
    }
    let z_bar = &*logits;

    // W̄₂ = Z̄ᵀ·H (Z̄ᵀ read in place) and b̄₂ = Σᵢ Z̄ᵢ.
    product(
        (CLASSES, BATCH, HIDDEN),
        MatRef::transposed(z_bar, CLASSES),
        MatRef::row_major(hidden, HIDDEN),
        &mut grad.w2,
    );
    grad.b2.fill(0.0);
    for row in z_bar.chunks_exact(CLASSES) {
        for (b_bar, &z_bar) in grad.b2.iter_mut().zip(row) {
            *b_bar += z_bar;
        }
    }

    // H̄ = (Z̄·W₂) ⊙ [H > 0] and b̄₁ = Σᵢ H̄ᵢ, the mask fused into the row sums.
    product(
        (BATCH, CLASSES, HIDDEN),
        MatRef::row_major(z_bar, CLASSES),
        MatRef::row_major(&value.w2, HIDDEN),
        hidden_bar,
    );
    grad.b1.fill(0.0);
    for (h_bar, h) in hidden_bar.chunks_exact_mut(HIDDEN).zip(hidden.chunks_exact(HIDDEN)) {
        for ((h_bar, &h), b_bar) in h_bar.iter_mut().zip(h).zip(&mut grad.b1) {
            if h <= 0.0 {
                *h_bar = 0.0;
            }
            *b_bar += *h_bar;
        }
    }

    // W̄₁ = H̄ᵀ·X (H̄ᵀ read in place).
    product((HIDDEN, BATCH, INPUTS), MatRef::transposed(hidden_bar, HIDDEN), x_view, &mut grad.w1);
    loss * scale
}

/// `out` (row-major m×n) ← a·b for an m×k view `a` and a k×n view `b`: fluxion's CPU
/// matrix kernel (the `gemm` crate, split into one block per thread), with none of
/// its tensors or tracing around it.
fn product(dims: (usize, usize, usize), a: MatRef<'_, f32>, b: MatRef<'_, f32>, out: &mut [f32]) {
    matmul_into(dims, a, b, (false, false), out);
}

/// SplitMix64: a small deterministic generator, so that the baseline's data depends on
/// no library's random streams.
struct SplitMix64(u64);

impl SplitMix64 {
    /// A value uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}
