//! Edge values (a saturated sigmoid, a masked −∞ logit, NaN in a maximum or a clamp,
//! x⁰ and xᵖ at x ≤ 0) give one convention in every mode: forward mode, the tape, static mode and the plain
//! function agree, and no NaN appears where the derivative is a number.

use fluxion::autodiff::{differentiable, hvp};
use fluxion::nn::loss::{Reduction, argmax, cross_entropy, cross_entropy_one_hot, unreduced};
use fluxion::nn::per_example;
use fluxion::prelude::*;

const MASKED: f64 = f64::NEG_INFINITY;

#[test]
fn a_saturated_sigmoid_has_derivative_zero_in_forward_mode_not_nan() {
    // e⁸⁹ overflows f32, e⁸⁰⁰ overflows f64: σ is 0 there, and so is its slope.
    let x: Vector<f32, 2> = Vector::from_array([-89.0, 1.0]);
    let (_, tangent) = jvp(|x: Vector<Dual<f32>, 2>| x.sigmoid().sum(), &x, &Vector::from_array([1.0, 1.0]));
    let slope = 1.0f32.sigmoid() * (1.0 - 1.0f32.sigmoid());
    assert!((tangent - slope).abs() < 1e-7, "{tangent}");
    let reverse = grad(|x: Var<Vector<f32, 2>>| x.sigmoid().sum(), &x);
    assert_eq!(reverse[[0]], 0.0);

    // Second order: forward over reverse, and nested duals, at −800.
    let x: Vector<f64, 2, Heap> = Tensor::from_array([-800.0, 0.5]);
    let product =
        hvp(|x: Var<Vector<Dual<f64>, 2, Heap>>| x.sigmoid().sum(), &x, &Tensor::from_array([1.0, 1.0]));
    let s = 0.5f64.sigmoid();
    assert_eq!(product[[0]], 0.0);
    assert!((product[[1]] - s * (1.0 - s) * (1.0 - 2.0 * s)).abs() < 1e-15);
    let nested = Dual::variable(Dual::variable(-800.0f64)).sigmoid();
    assert_eq!((nested.value().tangent()[0], nested.tangent()[0].tangent()[0]), (0.0, 0.0));
}

#[test]
fn binary_cross_entropy_second_order_is_finite_at_large_logits() {
    let z: Vector<f64, 2, Heap> = Tensor::from_array([-800.0, 0.3]);
    let t: Vector<f64, 2, Heap> = Tensor::from_array([0.0, 1.0]);
    let product = hvp(
        |z: Var<Vector<Dual<f64>, 2, Heap>>| {
            let t = Var::constant(t.map(Dual::constant));
            fluxion::nn::loss::binary_cross_entropy_with_logits(&z, &t.value().clone(), Reduction::Sum)
        },
        &z,
        &Tensor::from_array([1.0, 0.0]),
    );
    // softplus″ = σ(1 − σ), 0 at −800.
    assert_eq!(product.to_array(), [0.0, 0.0]);
}

/// Static mode, and what the tape gives, for logsumexp of a fully masked line.
#[differentiable]
fn log_sum_exp(x: &Vector<f64, 3>) -> f64 {
    x.logsumexp(Axis::<0>)[[]]
}

#[test]
fn logsumexp_of_a_masked_line_has_derivative_zero_in_every_mode() {
    let x = Vector::from_array([MASKED; 3]);
    let v = Vector::from_array([1.0, 2.0, 3.0]);
    let (value, tangent) = log_sum_exp::jvp(&x, &v);
    assert_eq!((value, tangent), (MASKED, 0.0));
    assert_eq!(log_sum_exp::grad(&x).to_array(), [0.0; 3]);
    let (_, dual_tangent) = jvp(|x: Vector<Dual<f64>, 3>| x.logsumexp(Axis::<0>)[[]], &x, &v);
    assert_eq!(dual_tangent, 0.0);
}

/// A NaN target makes its row's loss and gradient NaN and leaves the other rows alone;
/// so does a positive target on a masked logit (its loss is +∞): bad labels show.
#[test]
fn a_nan_target_or_a_target_on_a_masked_logit_makes_its_row_nan() {
    let z: Matrix<f64, 3, 3, Heap> =
        Tensor::from_array([[1.0, 2.0, 0.5], [1.0, MASKED, 0.5], [0.2, 0.4, 0.6]]);
    let t: Matrix<f64, 3, 3, Heap> =
        Tensor::from_array([[0.5, f64::NAN, 0.5], [0.5, 0.25, 0.25], [0.0, 1.0, 0.0]]);
    let each = unreduced::cross_entropy_one_hot(&z, &t);
    assert!(each[[0]].is_nan() && each[[1]] == f64::INFINITY && each[[2]].is_finite(), "{each:?}");
    let gradient = grad(|z: Var<_>| cross_entropy_one_hot(&z, &t, Reduction::Sum), &z);
    for row in 0..2 {
        assert!((0..3).all(|c| gradient[[row, c]].is_nan()), "row {row}: {gradient:?}");
    }
    assert!((0..3).all(|c| gradient[[2, c]].is_finite()), "{gradient:?}");
    // A class index on the masked logit: the same infinite loss and NaN row as its
    // one-hot row.
    let classes = [0, 1, 1];
    let by_index = grad(|z: Var<_>| cross_entropy(&z, &classes, Reduction::Sum), &z);
    let one_hot = Matrix::from_fn(|[b, c]| if classes[b] == c { 1.0 } else { 0.0 });
    let by_one_hot = grad(|z: Var<_>| cross_entropy_one_hot(&z, &one_hot, Reduction::Sum), &z);
    assert_eq!(unreduced::cross_entropy(&z, &classes)[[1]], f64::INFINITY);
    assert!((0..3).all(|c| by_index[[1, c]].is_nan()), "{by_index:?}");
    for (a, b) in by_index.iter().zip(by_one_hot.iter()) {
        assert!(a == b || a.is_nan() && b.is_nan(), "{by_index:?} vs {by_one_hot:?}");
    }
}

#[test]
fn cross_entropy_with_a_masked_logit_is_the_loss_of_the_other_classes() {
    let z: Matrix<f64, 2, 3, Heap> = Tensor::from_array([[1.0, MASKED, 2.0], [0.5, 0.1, MASKED]]);
    let classes = [0, 1];
    // −log softmax over the classes left: PyTorch gives 1.1131384699590876.
    let (first, second): (Vector<f64, 3>, Vector<f64, 3>) =
        (Vector::from_array([1.0, MASKED, 2.0]), Vector::from_array([0.5, 0.1, MASKED]));
    let rows = [per_example::cross_entropy(&first, 0), per_example::cross_entropy(&second, 1)];
    assert!((rows[0] - (1.0 + 2.0f64.exp() / 1.0f64.exp()).ln()).abs() < 1e-15);
    let (loss, gradient) = value_and_grad(|z: Var<_>| cross_entropy(&z, &classes, Reduction::Mean), &z);
    assert!((loss - 1.1131384699590876).abs() < 1e-15, "{loss}");
    assert!((loss - (rows[0] + rows[1]) / 2.0).abs() < 1e-15);
    assert_eq!(gradient[[0, 1]], 0.0);
    assert!(gradient.iter().all(|g| g.is_finite()));
    let plain: f64 = cross_entropy(&z, &classes, Reduction::Sum);
    assert!((plain - 2.0 * loss).abs() < 1e-14);
    let each = unreduced::cross_entropy(&z, &classes);
    assert!((each[[0]] - rows[0]).abs() < 1e-15 && (each[[1]] - rows[1]).abs() < 1e-15);
    // Forward mode: the value and the tangent along a direction that leaves the
    // masked logits alone are numbers, the tangent ⟨∇, v⟩.
    let v: Matrix<f64, 2, 3, Heap> = Tensor::from_array([[0.3, 0.0, -0.2], [0.1, 0.4, 0.0]]);
    let (value, tangent) =
        jvp(|z: Matrix<Dual<f64>, 2, 3, Heap>| cross_entropy(&z, &classes, Reduction::Mean), &z, &v);
    assert!((value - loss).abs() < 1e-15);
    let directional: f64 = gradient.iter().zip(v.iter()).map(|(g, v)| g * v).sum();
    assert!((tangent - directional).abs() < 1e-15, "{tangent} vs {directional}");
    // One-hot targets: 0·log 0 = 0 for the masked class.
    let one_hot: Matrix<f64, 2, 3, Heap> = Tensor::from_array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
    let soft: f64 = cross_entropy_one_hot(&z, &one_hot, Reduction::Mean);
    assert!((soft - loss).abs() < 1e-15);
    // Static mode's per-example losses agree.
    let (static_value, static_gradient) =
        per_example::cross_entropy_one_hot::value_and_grad(&first, &Vector::from_array([1.0, 0.0, 0.0]));
    assert_eq!(static_value, rows[0]);
    let by_class = per_example::cross_entropy::grad(&first, 0);
    assert!(static_gradient.iter().zip(by_class.iter()).all(|(a, b)| (a - b).abs() < 1e-15));
    assert_eq!(static_gradient[[1]], 0.0);
    // A NaN target is no number to weigh by: the loss is NaN.
    let unknown: Matrix<f64, 2, 3, Heap> = Tensor::from_array([[f64::NAN, 0.0, 1.0], [0.0, 1.0, 0.0]]);
    assert!(cross_entropy_one_hot::<f64, _, _, _, _>(&z, &unknown, Reduction::Mean).is_nan());
    // The class itself masked: an infinite loss, as in PyTorch.
    let hopeless: f64 = cross_entropy(&z, &[1, 0], Reduction::Mean);
    assert_eq!(hopeless, f64::INFINITY);
}

#[test]
fn a_maximum_with_nan_or_minus_infinity_picks_the_same_element_in_every_mode() {
    let cases: [[f64; 3]; 3] = [[1.0, f64::NAN, 3.0], [MASKED, MASKED, MASKED], [2.0, 5.0, 5.0]];
    for case in cases {
        let x = Vector::from_array(case);
        let reverse = grad(|x: Var<Vector<f64, 3>>| x.max(), &x);
        let picked = reverse.iter().position(|&g| g == 1.0).expect("one element picked");
        let (value, tangent) =
            jvp(|x: Vector<Dual<f64>, 3>| x.max(), &x, &Vector::from_array([1.0, 10.0, 100.0]));
        assert_eq!(tangent, [1.0, 10.0, 100.0][picked], "{case:?}");
        assert!(value.is_nan() == case.iter().any(|c| c.is_nan()));
        // Along an axis: the same element.
        let rows: Matrix<f64, 1, 3> = Matrix::from_array([case]);
        let (_, row_tangent) = jvp(
            |x: Matrix<Dual<f64>, 1, 3>| x.max_axis(Axis::<1>)[[0]],
            &rows,
            &Matrix::from_array([[1.0, 10.0, 100.0]]),
        );
        assert_eq!(row_tangent, tangent);
        assert_eq!(argmax(&rows.to_storage::<Heap>()), [picked]);
    }
}

#[test]
fn logsumexp_of_a_line_with_plus_infinity_follows_that_element_in_every_mode() {
    let x = Vector::from_array([1.0, f64::INFINITY, f64::INFINITY]);
    let reverse = grad(|x: Var<Vector<f64, 3>>| x.logsumexp(Axis::<0>).sum(), &x);
    assert_eq!(reverse.to_array(), [0.0, 1.0, 0.0]);
    let (_, tangent) = jvp(
        |x: Vector<Dual<f64>, 3>| x.logsumexp(Axis::<0>)[[]],
        &x,
        &Vector::from_array([1.0, 10.0, 100.0]),
    );
    assert_eq!(tangent, 10.0);
    assert_eq!(log_sum_exp::grad(&x).to_array(), [0.0, 1.0, 0.0]);
}

#[test]
fn relu_of_nan_is_nan_with_derivative_zero_in_every_mode() {
    let x = Vector::from_array([f64::NAN, 0.0, 2.0]);
    let (value, tangent) = jvp(|x: Vector<Dual<f64>, 3>| x.relu(), &x, &Vector::from_array([1.0, 1.0, 1.0]));
    assert!(value[[0]].is_nan());
    assert_eq!(tangent.to_array(), [0.0, 0.0, 1.0]);
    let reverse =
        grad(|x: Var<Vector<f64, 3>>| x.relu().dot(&Var::constant(Vector::from_array([1.0; 3]))), &x);
    assert_eq!(reverse.to_array(), [0.0, 0.0, 1.0]);
}

/// The larger of two coordinates, by the static-mode rule.
#[differentiable]
fn larger<T: RealScalar>(v: &Vector<T, 2>) -> T {
    v[[0]].max(v[[1]])
}

#[test]
fn scalar_max_propagates_nan_in_every_mode() {
    for pair in [[f64::NAN, 1.0], [1.0, f64::NAN]] {
        let v = Vector::from_array(pair);
        assert!(larger(&v).is_nan());
        let (value, gradient) = larger::value_and_grad(&v);
        assert!(value.is_nan(), "{pair:?}");
        let nan_at = pair.iter().position(|p| p.is_nan()).expect("a NaN");
        assert_eq!(gradient[[nan_at]], 1.0);
        let (tape_value, tape_gradient) =
            value_and_grad(|v: Var<Vector<f64, 2>>| v.at([0]).max(&v.at([1])), &v);
        assert!(tape_value.is_nan());
        assert_eq!(tape_gradient, gradient);
        // Forward mode takes the NaN's tangent too, on either side.
        let (forward_value, tangent) =
            jvp(|v: Vector<Dual<f64>, 2>| v[[0]].max(v[[1]]), &v, &Vector::from_array([10.0, 100.0]));
        assert!(forward_value.is_nan());
        assert_eq!(tangent, [10.0, 100.0][nan_at], "{pair:?}");
    }
}

/// x^0.0 and x^2.5 at the origin.
#[differentiable]
fn constant_power<T: RealScalar>(x: T) -> T {
    x.powf(T::zero()) + x.powf(T::from_f64(2.5))
}

#[test]
fn a_zeroth_power_has_derivative_zero_at_the_origin_in_every_mode() {
    // x⁰ ≡ 1, as `powi(0)`: 0, not 0·0⁻¹ = NaN.
    assert_eq!(constant_power::grad(0.0), 0.0);
    assert_eq!(constant_power::hessian(0.0), 0.0);
    let (_, tangent) =
        jvp(|x: Dual<f64>| x.powf(Dual::constant(0.0)) + x.powf(Dual::constant(2.5)), &0.0, &1.0);
    assert_eq!(tangent, 0.0);
    let x: Vector<f64, 2> = Vector::from_array([0.0, 3.0]);
    let tape = grad(|x: Var<Vector<f64, 2>>| x.powf(0.0).sum(), &x);
    assert_eq!(tape.to_array(), [0.0, 0.0]);
    let (_, tangent) =
        jvp(|x: Vector<Dual<f64>, 2>| x.powf(Dual::constant(0.0)).sum(), &x, &Vector::from_array([1.0, 1.0]));
    assert_eq!(tangent, 0.0);
}

#[test]
fn a_differentiated_exponent_keeps_the_value_and_the_base_s_slope() {
    let power = |(x, p): (Dual<f64>, Dual<f64>)| x.powf(p);
    // (−2)² = 4 and ∂/∂x = −4 whatever the exponent's tangent; ∂/∂p = 4·ln(−2) is NaN.
    assert_eq!(jvp(power, &(-2.0, 2.0), &(1.0, 0.0)), (4.0, -4.0));
    let (value, tangent) = jvp(power, &(-2.0, 2.0), &(0.0, 1.0));
    assert_eq!(value, 4.0);
    assert!(tangent.is_nan());
    // At the origin, ∂/∂p = 0 (JAX's convention), not 0·ln 0.
    assert_eq!(jvp(power, &(0.0, 2.0), &(0.0, 1.0)), (0.0, 0.0));
    // Both lanes at once: a NaN in ∂/∂p stays out of ∂/∂x.
    let lanes = Dual::new(-2.0f64, [1.0, 0.0]).powf(Dual::new(2.0, [0.0, 1.0]));
    assert_eq!(lanes.value(), 4.0);
    assert_eq!(lanes.tangent()[0], -4.0);
    assert!(lanes.tangent()[1].is_nan());
    // Elsewhere, both partial derivatives.
    let (value, tangent) = jvp(power, &(2.0, 1.5), &(0.5, -1.0));
    assert!((value - 2f64.powf(1.5)).abs() < 1e-15);
    let expected = 1.5 * 2f64.sqrt() * 0.5 - 2f64.powf(1.5) * 2f64.ln();
    assert!((tangent - expected).abs() < 1e-14, "{tangent} against {expected}");
}

#[test]
fn a_clamp_of_nan_has_derivative_zero_in_every_mode() {
    let (value, tangent) =
        jvp(|x: Dual<f64>| x.clamp(Dual::constant(-1.0), Dual::constant(1.0)), &f64::NAN, &1.0);
    assert!(value.is_nan());
    assert_eq!(tangent, 0.0);
    let reverse = grad(|x: Var<f64>| x.clamp(-1.0, 1.0), &f64::NAN);
    assert_eq!(reverse, 0.0);
}

#[test]
fn an_infinite_value_times_or_over_a_constant_keeps_its_tangent_in_forward_mode() {
    let d = Dual::<f64>::new(f64::NEG_INFINITY, [1.0]);
    assert_eq!(((d * 2.0).tangent(), (2.0 * d).tangent(), (d / 2.0).tangent()), ([2.0], [2.0], [0.5]));
    // A masked (−∞) entry in a mean: the tangent is the mean of the tangents (JAX's).
    let x: Vector<f64, 3> = Vector::from_array([MASKED, 1.0, 2.0]);
    let ones = Vector::from_array([1.0, 1.0, 1.0]);
    let (value, tangent) = jvp(|x: Vector<Dual<f64>, 3>| x.mean(), &x, &ones);
    assert_eq!((value, tangent), (MASKED, 1.0));
    let rows: Matrix<f64, 2, 3> = Matrix::from_array([[MASKED, 1.0, 2.0], [0.5, MASKED, 4.0]]);
    let (_, tangent) = jvp(
        |m: Matrix<Dual<f64>, 2, 3>| m.mean_axis(Axis::<1>).sum(),
        &rows,
        &Matrix::from_array([[1.0, 2.0, 3.0], [3.0, 0.0, 3.0]]),
    );
    assert_eq!(tangent, 4.0);
}

/// Complex tanh, sigmoid and exp against num-complex's textbook formulas where those
/// are finite and well conditioned, on the imaginary axis against tan, and at the
/// real parts where the textbook overflows (|Re z| beyond 355 for tanh, −709 for σ)
/// against the limits: ±1 and 0, with finite derivatives in every mode.
#[test]
fn complex_tanh_sigmoid_and_exp_stay_finite_at_large_real_parts() {
    let (mut worst_tanh, mut worst_sigmoid, mut worst_exp) = (0.0f64, 0.0f64, 0.0f64);
    for i in 0..400 {
        let a = (i as f64 * 0.37).sin() * 12.0 * (1.0 + (i % 5) as f64);
        let b = (i as f64 * 0.73).cos() * 4.0;
        let z = Complex64::new(a * 10f64.powi(-(i % 7)), b);
        let relative = |x: Complex64, y: Complex64| (x - y).norm() / y.norm().max(1e-300);
        // Near a pole (tanh: a ≈ 0, cos b ≈ 0; σ: a ≈ 0, b ≈ ±π) the textbook's
        // denominator cancels; those points are checked on the axis below.
        let near_pole = |b: f64| z.re.abs() < 0.1 && b.cos().abs() < 0.1;
        if !near_pole(b) {
            worst_tanh = worst_tanh.max(relative(Scalar::tanh(z), num_complex::Complex::tanh(z)));
        }
        if !near_pole(b / 2.0) {
            let textbook =
                Complex64::new(1.0, 0.0) / (Complex64::new(1.0, 0.0) + num_complex::Complex::exp(-z));
            worst_sigmoid = worst_sigmoid.max(relative(Scalar::sigmoid(z), textbook));
        }
        worst_exp = worst_exp.max(relative(Scalar::exp(z), num_complex::Complex::exp(z)));
    }
    assert!(
        worst_tanh < 1e-14 && worst_sigmoid < 1e-14 && worst_exp < 1e-15,
        "{worst_tanh} {worst_sigmoid} {worst_exp}"
    );
    // On the imaginary axis, up to the poles: tanh(ib) = i·tan b, σ(ib) = ½ + ½i·tan(b/2).
    use std::f64::consts::{FRAC_PI_2, PI};
    for b in [FRAC_PI_2 - 1e-4, -FRAC_PI_2 + 3e-8, PI - 3e-6, 1e-300, 0.7] {
        let tanh = Scalar::tanh(Complex64::new(0.0, b));
        assert!(tanh.re == 0.0 && (tanh.im - b.tan()).abs() <= 4e-16 * b.tan().abs(), "{b}: {tanh}");
        let sigmoid = Scalar::sigmoid(Complex64::new(0.0, b));
        let half_tan = (b / 2.0).tan() / 2.0;
        assert!(
            sigmoid.re == 0.5 && (sigmoid.im - half_tan).abs() <= 4e-16 * half_tan.abs(),
            "{b}: {sigmoid}"
        );
    }
    // Small real parts keep their relative accuracy: tanh(10⁻¹⁰ + i) and σ(−30 + 0.1i).
    let tiny = Scalar::tanh(Complex64::new(1e-10, 1.0));
    let expected_re = 1e-10 * (1.0 + 1f64.tan().powi(2)); // ∂/∂a tanh(a + i) at a = 0
    assert!((tiny.re - expected_re).abs() < 1e-6 * expected_re, "{tiny}");
    let far = Scalar::sigmoid(Complex64::new(-30.0, 0.1));
    let expected = num_complex::Complex::exp(Complex64::new(-30.0, 0.1)); // σ(z) ≈ eᶻ there
    assert!((far - expected).norm() < 1e-12 * expected.norm(), "{far}");

    let one = Complex64::new(1.0, 0.0);
    for z in [Complex64::new(400.0, 0.0), Complex64::new(-800.0, 0.3), Complex64::new(1e4, -2.0)] {
        let tanh = Scalar::tanh(z);
        assert_eq!(tanh, Complex64::new(z.re.signum(), 0.0 * tanh.im.signum()));
        let (value, tangent) = jvp(|z: Dual<Complex64>| z.tanh(), &z, &one);
        assert_eq!((value, tangent), (tanh, Complex64::new(0.0, 0.0)));
        assert_eq!(grad(|z: Var<Complex64>| z.tanh().re(), &z), Complex64::new(0.0, 0.0));
        let sigmoid = Scalar::sigmoid(z);
        assert_eq!(sigmoid.re, if z.re > 0.0 { 1.0 } else { 0.0 });
        assert_eq!(grad(|z: Var<Complex64>| z.sigmoid().re(), &z).norm(), 0.0);
    }
    assert_eq!(Scalar::exp(Complex64::new(800.0, 0.0)), Complex64::new(f64::INFINITY, 0.0));
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    for b in [inf, nan, 2.0] {
        assert_eq!(Scalar::exp(Complex64::new(-inf, b)), Complex64::new(0.0, 0.0), "e^(−∞ + {b}i)");
    }
    assert!(Scalar::exp(Complex64::new(nan, 1.0)).re.is_nan());
    // f32: tanh breaks at |Re z| ≥ 45 in the textbook form.
    let tanh32 = Scalar::tanh(Complex32::new(45.0, 0.1));
    assert_eq!(tanh32.re, 1.0);
    assert!(tanh32.im.is_finite());
    let x: Vector<Complex64, 2> = Vector::from_array([Complex64::new(400.0, 0.0), Complex64::new(0.5, 0.0)]);
    let gradient = grad(|x: Var<Vector<Complex64, 2>>| x.tanh().re().sum(), &x);
    let real = grad(|x: Var<Vector<f64, 2>>| x.tanh().sum(), &Vector::from_array([400.0, 0.5]));
    assert_eq!(gradient.to_array().map(|g| g.re), real.to_array());
}
