//! Workload W2's hand-written baseline (the benchmark's MLP 784→256→10): its loss
//! equals an independent float64 evaluation, its gradient agrees with central finite
//! differences of that evaluation, a step moves the parameters by −η·θ̄, and the loss
//! decreases over 20 steps on the synthetic batch.

#[path = "../benches/w2/handwritten.rs"]
mod handwritten;

use handwritten::{
    BATCH, CLASSES, HIDDEN, INPUTS, W2Params, W2Tensors, loss_and_gradient, step, synthetic_batch,
};

/// The parameters in float64.
struct Reference {
    w1: Vec<f64>,
    b1: Vec<f64>,
    w2: Vec<f64>,
    b2: Vec<f64>,
}

impl From<&W2Tensors> for Reference {
    fn from(tensors: &W2Tensors) -> Self {
        let widen = |values: &[f32]| values.iter().map(|&v| f64::from(v)).collect();
        Reference {
            w1: widen(&tensors.w1),
            b1: widen(&tensors.b1),
            w2: widen(&tensors.w2),
            b2: widen(&tensors.b2),
        }
    }
}

/// Which parameter tensor a coordinate belongs to.
#[derive(Clone, Copy, Debug)]
enum Tensor {
    W1,
    B1,
    W2,
    B2,
}

impl Reference {
    fn tensor_mut(&mut self, tensor: Tensor) -> &mut Vec<f64> {
        match tensor {
            Tensor::W1 => &mut self.w1,
            Tensor::B1 => &mut self.b1,
            Tensor::W2 => &mut self.w2,
            Tensor::B2 => &mut self.b2,
        }
    }

    /// The mean cross-entropy, written directly from the definition in float64:
    /// L = (1/B) Σᵢ (ln Σⱼ exp zᵢⱼ − zᵢ,yᵢ) with z = W₂·relu(W₁·xᵢ + b₁) + b₂.
    fn loss(&self, x: &[f32], labels: &[usize]) -> f64 {
        let mut total = 0.0;
        for (xi, &label) in x.chunks_exact(INPUTS).zip(labels) {
            let hidden: Vec<f64> = (0..HIDDEN)
                .map(|j| {
                    let row = &self.w1[j * INPUTS..][..INPUTS];
                    let pre: f64 =
                        row.iter().zip(xi).map(|(&w, &x)| w * f64::from(x)).sum::<f64>() + self.b1[j];
                    pre.max(0.0)
                })
                .collect();
            let logits: Vec<f64> = (0..CLASSES)
                .map(|c| {
                    let row = &self.w2[c * HIDDEN..][..HIDDEN];
                    row.iter().zip(&hidden).map(|(w, h)| w * h).sum::<f64>() + self.b2[c]
                })
                .collect();
            let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let logsumexp = max + logits.iter().map(|z| (z - max).exp()).sum::<f64>().ln();
            total += logsumexp - logits[label];
        }
        total / BATCH as f64
    }
}

fn gradient_at(gradient: &W2Tensors, tensor: Tensor, index: usize) -> f32 {
    match tensor {
        Tensor::W1 => gradient.w1[index],
        Tensor::B1 => gradient.b1[index],
        Tensor::W2 => gradient.w2[index],
        Tensor::B2 => gradient.b2[index],
    }
}

#[test]
fn loss_and_gradient_agree_with_a_float64_evaluation() {
    let mut params = W2Params::new(3);
    let (x, labels) = synthetic_batch(4);
    let loss = loss_and_gradient(&mut params, &x, &labels);
    let mut reference = Reference::from(&params.value);
    let expected = reference.loss(&x, &labels);
    assert!((f64::from(loss) - expected).abs() <= 1e-5 * expected, "loss {loss}, float64 {expected}");

    // Coordinates of every tensor: weights of several hidden units and pixels (pixels
    // 3 and 13 carry the class-3 pattern), biases, output weights of several classes.
    let coordinates = [
        (Tensor::W1, 0),
        (Tensor::W1, 3),
        (Tensor::W1, 17 * INPUTS + 13),
        (Tensor::W1, 200 * INPUTS + 783),
        (Tensor::B1, 5),
        (Tensor::B1, 131),
        (Tensor::W2, 7),
        (Tensor::W2, 3 * HIDDEN + 100),
        (Tensor::W2, 9 * HIDDEN + 255),
        (Tensor::B2, 0),
        (Tensor::B2, 3),
        (Tensor::B2, 9),
    ];
    let step = 1e-5;
    let mut largest = 0.0f64;
    for (tensor, index) in coordinates {
        let original = reference.tensor_mut(tensor)[index];
        reference.tensor_mut(tensor)[index] = original + step;
        let forward = reference.loss(&x, &labels);
        reference.tensor_mut(tensor)[index] = original - step;
        let backward = reference.loss(&x, &labels);
        reference.tensor_mut(tensor)[index] = original;
        let numeric = (forward - backward) / (2.0 * step);
        let analytic = f64::from(gradient_at(&params.grad, tensor, index));
        assert!(
            (analytic - numeric).abs() <= 1e-2 * numeric.abs() + 1e-6,
            "{tensor:?}[{index}]: hand-written {analytic:e}, finite differences {numeric:e}"
        );
        largest = largest.max(numeric.abs());
    }
    assert!(
        largest > 1e-3,
        "the checked derivatives are all near 0 (largest {largest:e}): the check proves little"
    );
}

#[test]
fn a_step_moves_the_parameters_by_minus_the_rate_times_the_gradient() {
    let (x, labels) = synthetic_batch(5);
    let mut params = W2Params::new(6);
    let loss = loss_and_gradient(&mut params, &x, &labels);
    let (before, gradient) = (params.value.clone(), params.grad.clone());
    assert_eq!(step(&mut params, &x, &labels, 0.01), loss);
    let moved = |after: &[f32], before: &[f32], gradient: &[f32]| {
        after.iter().zip(before).zip(gradient).all(|((&a, &b), &g)| a == b - 0.01 * g)
    };
    assert!(moved(&params.value.w1, &before.w1, &gradient.w1));
    assert!(moved(&params.value.b1, &before.b1, &gradient.b1));
    assert!(moved(&params.value.w2, &before.w2, &gradient.w2));
    assert!(moved(&params.value.b2, &before.b2, &gradient.b2));
    assert_ne!(params.value, before);
}

#[test]
fn the_loss_decreases_over_20_steps() {
    let (x, labels) = synthetic_batch(7);
    let mut params = W2Params::new(8);
    let losses: Vec<f32> = (0..20).map(|_| step(&mut params, &x, &labels, 0.01)).collect();
    // Ten classes at random initialisation: about ln 10.
    assert!((losses[0] - 10f32.ln()).abs() < 0.2, "first loss {}", losses[0]);
    assert!(losses.windows(2).all(|pair| pair[1] < pair[0]), "losses {losses:?}");
    // At η = 0.01 the steps are small: 20 of them take about 0.09 off ln 10.
    assert!(losses[19] < losses[0] - 0.05, "losses {losses:?}");
}

#[test]
fn initialisation_and_data_are_deterministic() {
    assert_eq!(W2Params::new(9).value, W2Params::new(9).value);
    assert_ne!(W2Params::new(9).value, W2Params::new(10).value);
    assert_eq!(synthetic_batch(11), synthetic_batch(11));
    let (x, labels) = synthetic_batch(11);
    assert_eq!((x.len(), labels.len()), (BATCH * INPUTS, BATCH));
    assert!(x.iter().all(|&v| (0.0..1.0).contains(&v)));
}
