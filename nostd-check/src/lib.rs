//! A `#![no_std]` crate without an allocator that uses fluxion with default features
//! off: it proves the core builds and works for embedded, real-time code, forward-mode
//! derivatives, static mode (`#[differentiable]`), layers and optimisers included. CI
//! also builds it for a microcontroller target, `thumbv7em-none-eabihf` (Cortex-M4F),
//! training step included.
#![no_std]

use fluxion::nn::layer::{Linear, Sequential, StaticModule, Tanh, module};
use fluxion::nn::optim::{Adam, Optimizer};
use fluxion::prelude::*;

/// One dense layer with tanh, `y = tanh(W x + b)`, entirely on the stack.
pub fn dense_tanh(w: &Matrix<f32, 2, 3>, b: &Vector<f32, 2>, x: &Vector<f32, 3>) -> Vector<f32, 2> {
    (w.matmul(x) + b).tanh()
}

/// Link lengths of a planar three-link arm, metres.
const LENGTHS: [f32; 3] = [1.0, 0.8, 0.5];

/// The hand's position (x, y) for joint angles θ, generic over the real scalar.
pub fn hand<S: RealScalar>(theta: Vector<S, 3>) -> Vector<S, 2> {
    let (mut angle, mut x, mut y) = (S::zero(), S::zero(), S::zero());
    for (joint, length) in theta.to_array().into_iter().zip(LENGTHS) {
        angle += joint;
        x += S::from_f64(f64::from(length)) * angle.cos();
        y += S::from_f64(f64::from(length)) * angle.sin();
    }
    Vector::from_array([x, y])
}

/// The arm's Jacobian in one forward pass (three tangents per dual).
pub fn arm_jacobian(theta: &Vector<f32, 3>) -> Matrix<f32, 2, 3> {
    jacfwd(|theta: Vector<Dual<f32, 3>, 3>| hand(theta), theta)
}

/// A layer's parameters, derived: its tangent and forward-mode twins need no heap.
#[derive(Clone, Differentiable)]
pub struct Layer {
    /// Weights.
    pub w: Matrix<f32, 2, 3>,
    /// Bias.
    pub b: Vector<f32, 2>,
}

/// The planar arm's hand position, written over plain values for static mode.
#[differentiable]
pub fn static_hand(theta: &Vector<f32, 3>) -> Vector<f32, 2> {
    let (mut angle, mut x, mut y) = (0.0, 0.0, 0.0);
    for joint in 0..3 {
        angle += theta[[joint]];
        x += LENGTHS[joint] * angle.cos();
        y += LENGTHS[joint] * angle.sin();
    }
    Vector::from_array([x, y])
}

/// ½‖tanh(W x + b) − t‖² of a layer, differentiated at compile time.
#[differentiable(wrt(layer))]
pub fn static_layer_loss(layer: &Layer, x: &Vector<f32, 3>, t: &Vector<f32, 2>) -> f32 {
    let r = (layer.w.matmul(x) + layer.b).tanh() - t;
    r.dot(&r) * 0.5
}

/// A fixed-size net of two layers, inline: what a controller carries.
#[derive(Differentiable, Clone, Debug)]
pub struct Net {
    /// 2 → 4.
    pub hidden: Linear<f32, 2, 4, Inline>,
    /// 4 → 1.
    pub output: Linear<f32, 4, 1, Inline>,
}

/// ½(net(x) − t)² for one example, differentiated at compile time through the
/// layers' own static-mode forward pass (`Linear::apply`).
#[differentiable(wrt(net))]
pub fn net_loss(net: &Net, x: &Vector<f32, 2>, t: f32) -> f32 {
    let h = net.hidden.apply(x).tanh();
    let r = net.output.apply(&h)[[0]] - t;
    r * r * 0.5
}

/// One Adam step of the net on the example `(x, t)`, as a controller learning online
/// takes it: no heap, no std (CI builds this crate for a bare-metal target). Returns
/// the loss before the step.
pub fn train_step(net: &mut Net, adam: &mut Adam<Net>, x: &Vector<f32, 2>, t: f32) -> f32 {
    let (loss, gradient) = net_loss::value_and_grad(net, x, t);
    adam.step(net, &gradient);
    loss
}

/// The same two layers as one chain, `Sequential` in static mode.
pub type ChainNet = Sequential<(Linear<f32, 2, 4, Inline>, Tanh, Linear<f32, 4, 1, Inline>)>;

/// ½‖net(X) − T‖² over a batch of three, through the whole chain at once
/// (`StaticModule::apply_batch`), differentiated at compile time.
#[differentiable(wrt(net))]
pub fn chain_loss(net: &ChainNet, x: &Matrix<f32, 3, 2>, t: &Matrix<f32, 3, 1>) -> f32 {
    fluxion::nn::per_example::squared_error(&net.apply_batch(x), t)
}

/// The cross-entropy of a linear classifier's logits for one example, through the
/// library's per-example loss (static mode, no std).
#[differentiable(wrt(classifier))]
pub fn classifier_loss(classifier: &Linear<f32, 2, 2, Inline>, x: &Vector<f32, 2>, class: usize) -> f32 {
    fluxion::nn::per_example::cross_entropy(&classifier.apply(x), class)
}

/// The binary cross-entropy of two independent labels' logits for one example
/// (static mode, no std).
#[differentiable(wrt(classifier))]
pub fn labels_loss(
    classifier: &Linear<f32, 2, 2, Inline>,
    x: &Vector<f32, 2>,
    labels: &Vector<f32, 2>,
) -> f32 {
    fluxion::nn::per_example::binary_cross_entropy_with_logits(&classifier.apply(x), labels)
}

/// A gated layer of the batch, written once (`#[module]`, with a helper method): its
/// plain forward pass and its static form, without std (the traced form needs the tape, and std).
#[derive(Differentiable, Clone, Debug)]
pub struct GatedHidden {
    /// The values.
    pub map: Linear<f32, 2, 4, Inline>,
    /// The gates.
    pub gate: Linear<f32, 2, 4, Inline>,
}

#[module]
impl GatedHidden {
    fn forward(&self, x: &Matrix<f32, 3, 2>) -> Matrix<f32, 3, 4> {
        self.map.forward(x).hadamard(&self.opening(x))
    }

    /// How far each gate opens: a helper method, with its static form too.
    fn opening(&self, x: &Matrix<f32, 3, 2>) -> Matrix<f32, 3, 4> {
        self.gate.forward(x).sigmoid()
    }
}

/// The sum of the gated layer's outputs, differentiated at compile time.
#[differentiable(wrt(layer))]
pub fn gated_loss(layer: &GatedHidden, x: &Matrix<f32, 3, 2>) -> f32 {
    layer.apply_batch(x).sum()
}

#[cfg(test)]
mod tests {
    use fluxion::nn::optim::{AdamConfig, Sgd, SgdConfig};

    use super::*;

    #[test]
    fn dense_layer_runs_without_std() {
        let w: Matrix<f32, 2, 3> = Matrix::from_array([[1., 0., 0.], [0., 1., 0.]]);
        let b: Vector<f32, 2> = Vector::from_array([0., 0.5]);
        let x: Vector<f32, 3> = Vector::from_array([0.25, -0.5, 2.]);
        let y = dense_tanh(&w, &b, &x);
        assert!((y[[0]] - 0.25f32.tanh()).abs() < 1e-6);
        assert_eq!(y[[1]], 0.0);
    }

    #[test]
    fn forward_mode_runs_without_std_or_a_heap() {
        let theta: Vector<f32, 3> = Vector::from_array([0.3, -0.5, 1.1]);
        let jacobian = arm_jacobian(&theta);
        // ∂x/∂θ₃ = −l₃·sin(θ₁ + θ₂ + θ₃), ∂y/∂θ₃ = l₃·cos(θ₁ + θ₂ + θ₃).
        assert!((jacobian[[0, 2]] + 0.5 * 0.9f32.sin()).abs() < 1e-6);
        assert!((jacobian[[1, 2]] - 0.5 * 0.9f32.cos()).abs() < 1e-6);
        // A directional derivative is the Jacobian times the direction.
        let v: Vector<f32, 3> = Vector::from_array([1.0, 0.0, 0.0]);
        let (_, along_v) = jvp(|theta: Vector<Dual<f32>, 3>| hand(theta), &theta, &v);
        assert!((along_v[[0]] - jacobian[[0, 0]]).abs() < 1e-6);
        let (_, linear) = linearize(|theta: Vector<Dual<f32>, 3>| hand(theta), &theta);
        assert_eq!(linear(&v).to_array(), along_v.to_array());
        // A derived struct lifts to its forward-mode twin.
        let layer = Layer { w: Matrix::ones(), b: Vector::zeros() };
        let direction = LayerTangent { w: Matrix::zeros(), b: Vector::ones() };
        let x: Vector<f32, 3> = Vector::from_array([1.0, 2.0, 3.0]);
        let (y, dy) = jvp(|l: LayerLifted| l.w.matmul(&x.map(Dual::constant)) + l.b, &layer, &direction);
        assert_eq!((y.to_array(), dy.to_array()), ([6.0, 6.0], [1.0, 1.0]));
    }

    #[test]
    fn static_mode_runs_without_std_or_a_heap() {
        let theta: Vector<f32, 3> = Vector::from_array([0.3, -0.5, 1.1]);
        let jacobian: Matrix<f32, 2, 3> = static_hand::jacfwd(&theta);
        let expected = arm_jacobian(&theta);
        assert!(jacobian.iter().zip(expected.iter()).all(|(a, b)| (a - b).abs() < 1e-6));
        let layer = Layer { w: Matrix::ones(), b: Vector::zeros() };
        let (x, t) = (Vector::from_array([0.1, 0.2, 0.3]), Vector::from_array([0.0, 1.0]));
        let (loss, gradient) = static_layer_loss::value_and_grad(&layer, &x, &t);
        // ∂L/∂b = (y − t) ⊙ (1 − y²) with y = tanh(0.6) in both rows.
        let y = 0.6f32.tanh();
        assert!((loss - 0.5 * (y * y + (y - 1.0) * (y - 1.0))).abs() < 1e-6);
        assert!((gradient.b[[1]] - (y - 1.0) * (1.0 - y * y)).abs() < 1e-6);
    }

    #[test]
    fn a_layer_written_once_runs_plainly_and_in_static_mode_without_std() {
        let layer =
            GatedHidden { map: net().hidden, gate: Linear { weight: Matrix::ones(), bias: Vector::zeros() } };
        let x: Matrix<f32, 3, 2> = Matrix::from_array([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]]);
        let (value, gradient) = gated_loss::value_and_grad(&layer, &x);
        assert_eq!(value, layer.forward(&x).sum());
        // ∂L/∂b_map,j = Σ_rows σ(gate_j(x)), each gate's output the row's sum.
        let expected: f32 = [1.0f32, 1.0, 0.0].iter().map(|s| 1.0 / (1.0 + (-s).exp())).sum();
        assert!((gradient.map.bias[[0]] - expected).abs() < 1e-6);
    }

    fn net() -> Net {
        Net {
            hidden: Linear {
                weight: Matrix::from_array([[0.5, -0.3], [0.2, 0.8], [-0.6, 0.1], [0.4, 0.4]]),
                bias: Vector::from_array([0.1, -0.1, 0.0, 0.2]),
            },
            output: Linear {
                weight: Matrix::from_array([[0.3, -0.5, 0.7, 0.2]]),
                bias: Vector::from_array([0.0]),
            },
        }
    }

    #[test]
    fn a_fixed_size_net_evaluates_and_trains_without_std_or_a_heap() {
        // Inference on a static batch, through the layers.
        let model = Sequential((net().hidden, Tanh, net().output));
        let batch: Matrix<f32, 3, 2> = Matrix::from_array([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]]);
        let y: Matrix<f32, 3, 1> = model.forward(&batch);
        let x: Vector<f32, 2> = Vector::from_array([0.5, -0.5]);
        let h = (net().hidden.weight.matmul(&x) + net().hidden.bias).tanh();
        assert!((y[[2, 0]] - (net().output.weight.matmul(&h) + net().output.bias)[[0]]).abs() < 1e-6);
        // Training: Adam's state is a pair of inline tangents of the net.
        let mut trained = net();
        let mut adam = Adam::new(AdamConfig { learning_rate: 0.05, ..AdamConfig::default() });
        let first = train_step(&mut trained, &mut adam, &x, 1.0);
        for _ in 0..49 {
            train_step(&mut trained, &mut adam, &x, 1.0);
        }
        let (last, _) = net_loss::value_and_grad(&trained, &x, 1.0);
        assert!(last < 0.01 * first, "loss {first} -> {last}");
        let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.1, momentum: 0.9, ..SgdConfig::default() });
        let (_, gradient) = net_loss::value_and_grad(&trained, &x, 1.0);
        sgd.step(&mut trained, &gradient);
    }

    #[test]
    fn a_chain_of_layers_is_differentiated_in_static_mode_without_std_or_a_heap() {
        let chain: ChainNet = Sequential((net().hidden, Tanh, net().output));
        let x: Matrix<f32, 3, 2> = Matrix::from_array([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]]);
        let t: Matrix<f32, 3, 1> = Matrix::from_array([[1.0], [0.0], [1.0]]);
        let (loss, gradient) = chain_loss::value_and_grad(&chain, &x, &t);
        // The sum of the per-example losses, and of their gradients.
        let (mut expected, mut output_weight) = (0.0, [0.0f32; 4]);
        for row in 0..3 {
            let example = Vector::from_array([x[[row, 0]], x[[row, 1]]]);
            let (value, each) = net_loss::value_and_grad(&net(), &example, t[[row, 0]]);
            expected += value;
            (0..4).for_each(|c| output_weight[c] += each.output.weight[[0, c]]);
        }
        assert!((loss - expected).abs() < 1e-6, "{loss} vs {expected}");
        assert!((0..4).all(|c| (gradient.2.weight[[0, c]] - output_weight[c]).abs() < 1e-6));
    }

    #[test]
    fn a_classifier_trains_with_cross_entropy_without_std_or_a_heap() {
        let mut classifier = Linear { weight: Matrix::zeros(), bias: Vector::zeros() };
        let examples = [(Vector::from_array([1.0, 0.2]), 0), (Vector::from_array([-0.5, 1.0]), 1)];
        let mut adam = Adam::new(AdamConfig { learning_rate: 0.1, ..AdamConfig::default() });
        let total = |c: &Linear<f32, 2, 2, Inline>| {
            examples.iter().map(|(x, k)| classifier_loss(c, x, *k)).sum::<f32>()
        };
        let first = total(&classifier);
        for _ in 0..40 {
            for (x, class) in &examples {
                let (_, gradient) = classifier_loss::value_and_grad(&classifier, x, *class);
                adam.step(&mut classifier, &gradient);
            }
        }
        assert!(total(&classifier) < 0.1 * first, "loss {first} -> {}", total(&classifier));
    }

    #[test]
    fn independent_labels_train_with_binary_cross_entropy() {
        let mut classifier = Linear { weight: Matrix::zeros(), bias: Vector::zeros() };
        let examples = [
            (Vector::from_array([1.0, 0.2]), Vector::from_array([1.0, 0.0])),
            (Vector::from_array([-0.5, 1.0]), Vector::from_array([1.0, 1.0])),
        ];
        let mut sgd = Sgd::new(SgdConfig { learning_rate: 0.5, ..SgdConfig::default() });
        let total =
            |c: &Linear<f32, 2, 2, Inline>| examples.iter().map(|(x, t)| labels_loss(c, x, t)).sum::<f32>();
        let first = total(&classifier);
        for _ in 0..200 {
            for (x, labels) in &examples {
                let (_, gradient) = labels_loss::value_and_grad(&classifier, x, labels);
                sgd.step(&mut classifier, &gradient);
            }
        }
        assert!(total(&classifier) < 0.1 * first, "loss {first} -> {}", total(&classifier));
    }
}
