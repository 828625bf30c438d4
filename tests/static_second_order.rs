//! Second order in static mode, one test per primitive family: the Hessian of a
//! function generic over its scalar (`hessian`, forward mode over the static
//! gradient at dual numbers) equals central finite differences of the gradient, and
//! `hvp` equals the Hessian times the direction; and `f::grad` called inside another
//! `#[differentiable]` body, whose derivative is that Hessian.

use fluxion::ops::elementwise::FusedFunction;
use fluxion::prelude::*;

/// Central differences of `gradient` along each coordinate: a finite-difference
/// Hessian, row i = ∂∇f/∂xᵢ.
fn finite_difference_hessian<const N: usize>(
    gradient: impl Fn(&Vector<f64, N>) -> Vector<f64, N>,
    x: &Vector<f64, N>,
) -> [[f64; N]; N] {
    let h = 1e-5;
    core::array::from_fn(|i| {
        let (mut plus, mut minus) = (*x, *x);
        plus[[i]] += h;
        minus[[i]] -= h;
        let (g_plus, g_minus) = (gradient(&plus), gradient(&minus));
        core::array::from_fn(|j| (g_plus[[j]] - g_minus[[j]]) / (2.0 * h))
    })
}

/// Checks `hessian` and `hvp` of a function against the finite differences of its
/// gradient at `x`.
fn check<const N: usize>(
    hessian: Matrix<f64, N, N>,
    hvp: impl Fn(&Vector<f64, N>) -> Vector<f64, N>,
    gradient: impl Fn(&Vector<f64, N>) -> Vector<f64, N>,
    x: &Vector<f64, N>,
) {
    let expected = finite_difference_hessian(gradient, x);
    for i in 0..N {
        for j in 0..N {
            let (value, fd) = (hessian[[i, j]], expected[i][j]);
            assert!(
                (value - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "H[{i}][{j}] = {value}, finite differences {fd}"
            );
        }
    }
    let direction = Vector::from_fn(|[i]| 1.0 - 0.5 * i as f64);
    let product = hvp(&direction);
    for i in 0..N {
        let expected: f64 = (0..N).map(|j| hessian[[i, j]] * direction[[j]]).sum();
        assert!((product[[i]] - expected).abs() < 1e-12 * (1.0 + expected.abs()));
    }
}

/// Arithmetic: + − × ÷ and negation.
#[differentiable]
fn arithmetic<T: RealScalar>(v: &Vector<T, 3>) -> T {
    let (a, b, c) = (v[[0]], v[[1]], v[[2]]);
    (a * b - c) / (T::one() + a * a) + -(b * c * c)
}

/// The elementary functions.
#[differentiable]
fn elementary<T: RealScalar>(v: &Vector<T, 3>) -> T {
    let (a, b, c) = (v[[0]], v[[1]], v[[2]]);
    a.exp() * b.sin()
        + c.cos() * a.tanh()
        + b.sqrt() * c.ln()
        + b.powi(3)
        + c.powf(T::from_f64(1.5))
        + v.sigmoid().sum()
}

/// Products of tensors: dot, hadamard, matmul, scaling.
#[differentiable]
fn products<T: RealScalar>(v: &Vector<T, 3>) -> T {
    let w: Matrix<T, 2, 3> = Matrix::from_fn(|[i, j]| T::from_f64(0.5 * i as f64 - 0.25 * j as f64 + 0.1));
    let y = w.matmul(v).tanh();
    let z = v.hadamard(v).scale(T::from_f64(0.3));
    y.dot(&y) * z.sum()
}

/// Reductions, layout and elementwise maps on tensors.
#[differentiable]
fn layout<T: RealScalar>(v: &Vector<T, 3>) -> T {
    let m: Matrix<T, 2, 2> = Matrix::from_array([[v[[0]], v[[1]]], [v[[2]], v[[0]] * v[[1]]]]);
    let t = m.transpose().matmul(&m);
    t.sin().mean() + m.sum() * v.exp().sum()
}

/// a·tanh(b) + eᵃ·b² elementwise: a library author's fused function of two tensors.
#[derive(Clone, Copy, Debug)]
struct Blend;

impl FusedFunction<2> for Blend {
    fn value<T: RealScalar>(&self, [a, b]: [T; 2]) -> T {
        a * b.tanh() + a.exp() * b * b
    }
}

/// A fused function of the input, a function of it, and the input again.
#[differentiable]
fn fused<T: RealScalar>(v: &Vector<T, 3>) -> T {
    let blended = Blend.apply([v, &v.sin()]);
    Blend.apply([&blended, v]).sum()
}

#[test]
fn arithmetic_second_order() {
    let x = Vector::from_array([0.7, -0.4, 1.3]);
    check(arithmetic::hessian(&x), |d| arithmetic::hvp(&x, d), arithmetic::grad, &x);
}

#[test]
fn elementary_second_order() {
    let x = Vector::from_array([0.7, 0.4, 1.3]);
    check(elementary::hessian(&x), |d| elementary::hvp(&x, d), elementary::grad, &x);
}

#[test]
fn products_second_order() {
    let x = Vector::from_array([0.7, -0.4, 1.3]);
    check(products::hessian(&x), |d| products::hvp(&x, d), products::grad, &x);
}

#[test]
fn layout_second_order() {
    let x = Vector::from_array([0.7, -0.4, 1.3]);
    check(layout::hessian(&x), |d| layout::hvp(&x, d), layout::grad, &x);
}

#[test]
fn fused_second_order() {
    // At 0 every partial of `Blend` is 0 and its derivatives are not.
    for x in [Vector::from_array([0.7, -0.4, 1.3]), Vector::zeros()] {
        check(fused::hessian(&x), |d| fused::hvp(&x, d), fused::grad, &x);
        // The tape's, over duals, agrees.
        let taped: Matrix<f64, 3, 3> = hessian(|v: Var<Vector<Dual<f64>, 3>>| fused_traced(&v), &x);
        assert!(taped.iter().zip(fused::hessian(&x).iter()).all(|(a, b)| (a - b).abs() < 1e-12), "{taped:?}");
    }
}

/// [`fused`] on the tape.
fn fused_traced(v: &Var<Vector<Dual<f64>, 3>>) -> Var<Dual<f64>> {
    let blended = Blend.apply([v, &v.sin()]);
    Blend.apply([&blended, v]).sum()
}

/// Generic over the size as well as the scalar: ‖q‖³, and a weight `K` that no
/// argument determines (named on the call, its companions' `_` for their own).
#[differentiable]
fn norm_cubed<T: RealScalar, const N: usize>(q: &Vector<T, N>) -> T {
    let s = q.dot(q);
    s * s.sqrt()
}

#[differentiable]
fn weighted_cube<T: RealScalar, const K: usize, const N: usize>(q: &Vector<T, N>) -> T {
    let s = q.sum();
    s * s * s * T::from_f64(K as f64)
}

/// The scalar's bound in a `where` clause.
#[differentiable]
fn bounded_in_a_where_clause<T>(x: &Vector<T, 2>) -> T
where
    T: RealScalar,
{
    let a = x[[0]];
    a * a.sin() * x[[1]]
}

#[test]
fn functions_generic_over_sizes_or_bounded_in_where_clauses_have_second_order_companions() {
    let y = Vector::from_array([0.5, 2.0]);
    check(
        bounded_in_a_where_clause::hessian(&y),
        |d| bounded_in_a_where_clause::hvp(&y, d),
        bounded_in_a_where_clause::grad,
        &y,
    );
    let x = Vector::from_array([0.7, -0.4, 1.3]);
    check(norm_cubed::hessian(&x), |d| norm_cubed::hvp(&x, d), norm_cubed::grad, &x);
    let hessian = weighted_cube::hessian::<f64, 2, 3>(&x);
    let (hvp, grad) = (|d: &_| weighted_cube::hvp::<f64, 2, 3>(&x, d), weighted_cube::grad::<f64, 2, 3, _>);
    check(hessian, hvp, grad, &x);
    // f = K·s³ with s = Σq: every entry of the Hessian is 6K·s.
    assert!((hessian[[0, 1]] - 12.0 * 1.6).abs() < 1e-13);
}

/// `stop_gradient` stops second derivatives too: the Hessian of stop(x₀x₁)·x₀ is 0
/// (as JAX's, and the tape's), while its gradient is (x₀x₁, 0).
#[differentiable]
fn stopped_weight<T: RealScalar>(x: &Vector<T, 2>) -> T {
    let weight = stop_gradient(x[[0]] * x[[1]]);
    weight * x[[0]]
}

#[test]
fn stop_gradient_stops_static_second_derivatives() {
    let x: Vector<f64, 2> = Vector::from_array([0.7, -0.4]);
    assert_eq!(stopped_weight::grad(&x).as_slice(), [0.7 * -0.4, 0.0]);
    assert_eq!(stopped_weight::hessian(&x).as_slice(), [0.0; 4]);
    let e1: Vector<f64, 2> = Vector::from_array([0.0, 1.0]);
    assert_eq!(stopped_weight::hvp(&x, &e1).as_slice(), [0.0; 2]);
}

/// A scalar-generic function with a vector output: its Jacobians (no Hessian
/// companions, which need a real output), at `f64` and at duals (a Jacobian's own
/// derivative).
#[differentiable]
fn planar_arm<T: RealScalar>(angles: &Vector<T, 2>) -> Vector<T, 2> {
    let (a, b) = (angles[[0]], angles[[0]] + angles[[1]]);
    Vector::from_array([a.cos() + b.cos(), a.sin() + b.sin()])
}

#[test]
fn a_scalar_generic_function_with_a_vector_output_has_its_jacobians() {
    let q: Vector<f64, 2> = Vector::from_array([0.3, 0.9]);
    let jacobian = planar_arm::jacfwd(&q);
    let (s, s12) = (q[[0]].sin(), (q[[0]] + q[[1]]).sin());
    assert!((jacobian[[0, 0]] - (-s - s12)).abs() < 1e-15 && (jacobian[[0, 1]] + s12).abs() < 1e-15);
    assert_eq!(planar_arm::jacrev(&q), jacobian);
    // At duals: the values are the Jacobian, the tangents its derivative along the
    // first angle (against central differences).
    let along_first: Vector<Dual<f64>, 2> =
        Vector::from_fn(|[i]| Dual::new(q[[i]], [if i == 0 { 1.0 } else { 0.0 }]));
    let at_duals = planar_arm::jacfwd(&along_first);
    let reverse_at_duals = planar_arm::jacrev(&along_first);
    let step = 1e-6;
    let shifted = |h: f64| planar_arm::jacfwd(&Vector::from_array([q[[0]] + h, q[[1]]]));
    let (plus, minus) = (shifted(step), shifted(-step));
    for k in 0..4 {
        let dual = at_duals.as_slice()[k];
        let difference = (plus.as_slice()[k] - minus.as_slice()[k]) / (2.0 * step);
        assert_eq!(dual.value(), jacobian.as_slice()[k]);
        let reverse = reverse_at_duals.as_slice()[k];
        assert!((reverse.tangent()[0] - dual.tangent()[0]).abs() < 1e-14 && reverse.value() == dual.value());
        assert!((dual.tangent()[0] - difference).abs() < 1e-8, "{} against {difference}", dual.tangent()[0]);
    }
}

/// `min` in scalar-generic code (`RealScalar::min`): first and second derivatives of
/// the operand it picks.
#[differentiable]
fn smaller_of_product_and_first<T: RealScalar>(x: &Vector<T, 2>) -> T {
    (x[[0]] * x[[1]]).min(x[[0]])
}

#[test]
fn min_in_generic_code_differentiates_the_operand_it_picks() {
    let first: Vector<f64, 2> = Vector::from_array([0.5, 3.0]);
    assert_eq!(smaller_of_product_and_first::grad(&first).as_slice(), [1.0, 0.0]);
    assert_eq!(smaller_of_product_and_first::hessian(&first).as_slice(), [0.0; 4]);
    let product: Vector<f64, 2> = Vector::from_array([2.0, 0.25]);
    assert_eq!(smaller_of_product_and_first::grad(&product).as_slice(), [0.25, 2.0]);
    assert_eq!(smaller_of_product_and_first::hessian(&product).as_slice(), [0.0, 1.0, 1.0, 0.0]);
    assert!(RealScalar::min(f64::NAN, 1.0).is_nan() && RealScalar::min(-0.5, 1.0) == -0.5);
}

/// atan2, asin, acos, atan and tan in scalar-generic static-mode code: values as
/// `f64`'s, gradients against central differences, Hessians against central
/// differences of the gradient.
#[differentiable]
fn angles<T: RealScalar>(x: &Vector<T, 2>) -> T {
    let (a, b) = (x[[0]], x[[1]]);
    a.atan2(b) + (a * b).asin() * b.acos() + a.atan() * b.tan()
}

#[test]
fn inverse_trigonometry_differentiates_to_first_and_second_order() {
    let reference = |a: f64, b: f64| a.atan2(b) + (a * b).asin() * b.acos() + a.atan() * b.tan();
    for point in [[0.3, 0.4], [-0.7, 0.2], [0.5, -0.9]] {
        check_two_orders(reference, angles::value_and_grad, angles::grad, angles::hessian, point);
    }
}

/// The value of a function of two scalars against `reference`, its gradient against
/// central differences, and its Hessian against central differences of the gradient.
fn check_two_orders(
    reference: impl Fn(f64, f64) -> f64,
    value_and_grad: impl Fn(&Vector<f64, 2>) -> (f64, Vector<f64, 2>),
    grad: impl Fn(&Vector<f64, 2>) -> Vector<f64, 2>,
    hessian: impl Fn(&Vector<f64, 2>) -> Matrix<f64, 2, 2>,
    [a, b]: [f64; 2],
) {
    let x: Vector<f64, 2> = Vector::from_array([a, b]);
    let (value, gradient) = value_and_grad(&x);
    assert!((value - reference(a, b)).abs() < 1e-15, "{value} vs {}", reference(a, b));
    let h = 1e-6;
    let numeric = [
        (reference(a + h, b) - reference(a - h, b)) / (2.0 * h),
        (reference(a, b + h) - reference(a, b - h)) / (2.0 * h),
    ];
    for k in 0..2 {
        assert!((gradient[[k]] - numeric[k]).abs() < 1e-8, "∂{k}: {} vs {}", gradient[[k]], numeric[k]);
    }
    let hessian = hessian(&x);
    for j in 0..2 {
        let mut plus = x;
        let mut minus = x;
        plus[[j]] += h;
        minus[[j]] -= h;
        let (g_plus, g_minus) = (grad(&plus), grad(&minus));
        for i in 0..2 {
            let numeric = (g_plus[[i]] - g_minus[[i]]) / (2.0 * h);
            assert!((hessian[[i, j]] - numeric).abs() < 1e-6, "H[{i},{j}]: {} vs {numeric}", hessian[[i, j]]);
        }
    }
}

/// hypot, clamp and sin_cos in scalar-generic static-mode code (a joint limit, a
/// distance, a rotation).
#[differentiable]
fn geometry<T: RealScalar>(x: &Vector<T, 2>) -> T {
    let (a, b) = (x[[0]], x[[1]]);
    let limited = a.clamp(T::from_f64(-0.5), T::from_f64(0.5));
    let (s, c) = (a * b).sin_cos();
    a.hypot(b) * limited + s * c * c + b.hypot(T::from_f64(2.0))
}

#[test]
fn hypot_clamp_and_sin_cos_differentiate_to_first_and_second_order() {
    let reference = |a: f64, b: f64| {
        a.hypot(b) * a.clamp(-0.5, 0.5) + (a * b).sin() * (a * b).cos().powi(2) + b.hypot(2.0)
    };
    // Inside the clamp's interval and beyond it on either side.
    for point in [[0.3, 0.4], [-0.7, 0.2], [0.9, -1.3]] {
        check_two_orders(reference, geometry::value_and_grad, geometry::grad, geometry::hessian, point);
    }
    // At the origin hypot has no derivative; the rules give 0, not NaN.
    let origin = Vector::from_array([0.0, 0.0]);
    assert_eq!(geometry::grad(&origin).as_slice(), [0.0, 0.0]);
    // On a bound the clamp passes the derivative (PyTorch's convention): at (0.5, 0)
    // ∂/∂a of a·clamp(a) is clamp(a) + a·1 = 1 (0.5 if the bound stopped it).
    let (_, tangent) = geometry::jvp(&Vector::from_array([0.5, 0.0]), &Vector::from_array([1.0, 0.0]));
    assert_eq!(tangent, 1.0);
}

/// The rounding functions and erf in scalar-generic code, on scalars and elementwise
/// on a tensor: a quantised gain (derivative 0 through `floor`, `round`, …) times
/// smooth terms, so the Hessian is the smooth part's with the gains held.
#[differentiable]
fn quantised<T: RealScalar>(x: &Vector<T, 2>) -> T {
    let (a, b) = (x[[0]], x[[1]]);
    let steps = (a * T::from_f64(4.0)).floor() + b.ceil() + (a + b).round() + b.trunc();
    let elementwise = x.erf().hadamard(&x.scale(T::from_f64(3.0)).floor()).sum();
    steps * a * b + elementwise + a.fract() * b.erfc() + x.tan().hadamard(&x.atan()).sum()
}

#[test]
fn rounding_and_error_functions_differentiate_to_first_and_second_order() {
    let reference = |a: f64, b: f64| {
        let steps = (a * 4.0).floor() + b.ceil() + (a + b).round() + b.trunc();
        let elementwise = RealScalar::erf(a) * (3.0 * a).floor() + RealScalar::erf(b) * (3.0 * b).floor();
        // tan and atan as `RealScalar` defines them, sin/cos and atan2(x, 1).
        let tan_atan = |x: f64| x.sin() / x.cos() * x.atan2(1.0);
        steps * a * b + elementwise + a.fract() * RealScalar::erfc(b) + (tan_atan(a) + tan_atan(b))
    };
    // Away from every jump (finite differences cross none).
    for point in [[0.3, 0.4], [-0.65, 1.3], [1.45, -0.9]] {
        check_two_orders(reference, quantised::value_and_grad, quantised::grad, quantised::hessian, point);
    }
}

/// A scalar-generic function of a rank-4 tensor: no Hessian companion (`S ++ S` would
/// have rank 8), but its gradient and `hvp`.
#[fluxion::autodiff::differentiable]
fn image_energy<T: RealScalar>(x: &Tensor<T, (Const<1>, Const<2>, Const<2>, Const<1>), Inline>) -> T {
    x.hadamard(x).sum()
}

/// The same through the `Tensor3` alias.
#[fluxion::autodiff::differentiable]
fn volume_energy<T: RealScalar>(x: &Tensor3<T, 2, 1, 2>) -> T {
    x.hadamard(x).sum()
}

#[test]
fn a_rank_four_input_has_a_gradient_and_hvp() {
    let volume: Tensor3<f64, 2, 1, 2> = Tensor::from_flat_fn((Const, Const, Const), |i| i as f64);
    assert!(volume_energy::grad(&volume).iter().zip(volume.iter()).all(|(g, x)| *g == 2.0 * x));
    let x: Tensor<f64, (Const<1>, Const<2>, Const<2>, Const<1>), Inline> =
        Tensor::from_flat_fn((Const, Const, Const, Const), |i| i as f64 - 1.5);
    let gradient = image_energy::grad(&x);
    assert!(gradient.iter().zip(x.iter()).all(|(g, x)| *g == 2.0 * x));
    let direction = Tensor::from_flat_fn((Const, Const, Const, Const), |i| (i * i) as f64);
    let product = image_energy::hvp(&x, &direction);
    assert!(product.iter().zip(direction.iter()).all(|(p, v)| *p == 2.0 * v));
}

/// The energy of a pendulum on a spring (q = position in the plane, p = momentum),
/// generic over its scalar: its `grad` can be differentiated inside another body.
#[differentiable]
fn spring_pendulum<T: RealScalar>(q: &Vector<T, 2>, p: &Vector<T, 2>) -> T {
    let stretch = q.dot(q).sqrt() - T::one();
    p.dot(p) * T::from_f64(0.5) + stretch * stretch * T::from_f64(4.0) + q[[1]]
}

/// Leapfrog steps of Hamilton's equations, the forces from `grad` of the energy:
/// a call at the top level (the reverse sweep keeps its pullback) and calls in a
/// loop (recomputed in the reverse sweep).
#[differentiable]
fn leapfrog(q: &Vector<f64, 2>, p: &Vector<f64, 2>, steps: usize) -> f64 {
    let dt = 0.05;
    let (force, _) = spring_pendulum::grad(q, p);
    let mut p = p - force * (0.5 * dt);
    let mut q = *q;
    for _ in 0..steps {
        let (_, velocity) = spring_pendulum::grad(&q, &p);
        q += velocity * dt;
        let (force, _) = spring_pendulum::grad(&q, &p);
        p -= force * dt;
    }
    q.dot(&q) + p[[0]]
}

#[test]
fn the_gradient_of_a_differentiable_function_differentiates_inside_another_body() {
    use fluxion::autodiff::check::{CheckOptions, check_pullback};
    let point = (Vector::from_array([0.9, -0.4]), Vector::from_array([0.3, 0.7]));
    let (value, pullback) = leapfrog::vjp(&point.0, &point.1, 6);
    assert_eq!(value, leapfrog(&point.0, &point.1, 6));
    let comparisons = check_pullback(
        |(q, p): &(Vector<f64, 2>, Vector<f64, 2>)| leapfrog(q, p, 6),
        pullback,
        &point,
        CheckOptions::f64(),
    )
    .unwrap();
    assert!(comparisons >= 4);
    // Forward mode along each coordinate is the gradient's.
    let (dq, dp) = leapfrog::grad(&point.0, &point.1, 6);
    let basis = [Vector::from_array([1.0, 0.0]), Vector::from_array([0.0, 1.0])];
    let zero = Vector::zeros();
    for (i, e) in basis.iter().enumerate() {
        let (_, along_q) = leapfrog::jvp(&point.0, &point.1, 6, e, &zero);
        let (_, along_p) = leapfrog::jvp(&point.0, &point.1, 6, &zero, e);
        assert!((along_q - dq[[i]]).abs() < 1e-12 && (along_p - dp[[i]]).abs() < 1e-12);
    }
}

/// A potential with a constant stiffness `k` (not differentiated by the potential).
#[differentiable(wrt(x))]
fn anisotropic<T: RealScalar>(x: &Vector<T, 3>, k: T) -> T {
    let squares = x.hadamard(x);
    (squares[[0]] + squares[[1]] * k + squares[[2]] * squares[[0]]).sqrt() + x.sin().sum()
}

/// The force −∇U: its Jacobians are −H.
#[differentiable]
fn force(x: &Vector<f64, 3>) -> Vector<f64, 3> {
    -anisotropic::grad(x, 2.5)
}

#[test]
fn jacobians_of_a_gradient_are_the_hessian() {
    let x = Vector::from_array([0.4, -1.1, 0.8]);
    let hessian = anisotropic::hessian(&x, 2.5);
    check(hessian, |v| anisotropic::hvp(&x, 2.5, v), |x| anisotropic::grad(x, 2.5), &x);
    let (forward, reverse) = (force::jacfwd(&x), force::jacrev(&x));
    for i in 0..3 {
        for j in 0..3 {
            let expected = -hessian[[i, j]];
            assert!((forward[[i, j]] - expected).abs() < 1e-13, "{i} {j}");
            assert!((reverse[[i, j]] - expected).abs() < 1e-13, "{i} {j}");
        }
    }
}

/// ‖∇U‖², generic over its scalar, so that its own Hessian (third derivatives of U)
/// comes from forward mode over it.
#[differentiable]
fn gradient_norm<T: RealScalar>(x: &Vector<T, 3>) -> T {
    let g = anisotropic::grad(x, T::from_f64(2.5));
    g.dot(&g)
}

#[test]
fn a_function_of_a_gradient_has_second_order_companions_too() {
    let x = Vector::from_array([0.4, -1.1, 0.8]);
    let gradient = |x: &Vector<f64, 3>| gradient_norm::grad(x);
    // ∇‖∇U‖² = 2·H·∇U.
    let (g, h) = (anisotropic::grad(&x, 2.5), anisotropic::hessian(&x, 2.5));
    let expected = h.matmul(&g).scale(2.0);
    assert!(gradient(&x).iter().zip(expected.iter()).all(|(a, b)| (a - b).abs() < 1e-13));
    check(gradient_norm::hessian(&x), |v| gradient_norm::hvp(&x, v), gradient, &x);
}

/// A spring whose stiffness the struct holds, its energy a method generic over the
/// scalar: `self.energy_grad(q)` inside another body differentiates too.
struct Spring {
    stiffness: f64,
}

impl Spring {
    #[differentiable(wrt(q))]
    fn energy<T: RealScalar>(&self, q: &Vector<T, 2>) -> T {
        let stretch = q.dot(q).sqrt() - T::one();
        stretch * stretch * T::from_f64(0.5 * self.stiffness) + q[[0]] * q[[1]]
    }

    /// One gradient step on the energy, from `q`.
    #[differentiable(wrt(q))]
    fn relaxed(&self, q: &Vector<f64, 2>) -> f64 {
        let step = q - self.energy_grad(q) * 0.1;
        step.dot(&step)
    }
}

#[test]
fn a_methods_gradient_differentiates_inside_another_method() {
    use fluxion::autodiff::check::{CheckOptions, check_pullback, check_pushforward};
    let spring = Spring { stiffness: 3.0 };
    let q = Vector::from_array([0.8, -0.5]);
    let (_, pullback) = spring.relaxed_vjp(&q);
    check_pullback(|q: &Vector<f64, 2>| spring.relaxed(q), pullback, &q, CheckOptions::f64()).unwrap();
    let (_, pushforward) = spring.relaxed_linearize(&q);
    check_pushforward(|q: &Vector<f64, 2>| spring.relaxed(q), pushforward, &q, CheckOptions::f64()).unwrap();
    // ∇(s·s) with s = q − 0.1∇E: 2(I − 0.1H)·s.
    let s = q - spring.energy_grad(&q) * 0.1;
    let h = Matrix::<f64, 2, 2>::from_fn(|[i, j]| {
        let e = Vector::from_fn(|[k]| if k == j { 1.0 } else { 0.0 });
        spring.energy_hvp(&q, &e)[[i]]
    });
    let expected = (s - h.matmul(&s) * 0.1) * 2.0;
    let gradient = spring.relaxed_grad(&q);
    assert!(gradient.iter().zip(expected.iter()).all(|(a, b)| (a - b).abs() < 1e-13), "{gradient:?}");
}
