//! `#[differentiable]`: gradients and tangents of ordinary functions, checked against
//! the tape, the dual numbers and finite differences.

use fluxion::autodiff::{differentiable, value_and_grad};
use fluxion::prelude::*;

#[differentiable]
fn scalar(x: f64, y: f64) -> f64 {
    let a = x * y + x.sin();
    let b = a / (y * y + 1.0);
    let c = b.exp() - 2.0 * x;
    c * c.tanh() + (-y).powi(3)
}

fn scalar_traced(x: Var<f64>, y: Var<f64>) -> Var<f64> {
    let a = &(&x * &y) + &x.sin();
    let b = &a / &(&(&y * &y) + 1.0);
    let c = &b.exp() - &(&x * 2.0);
    &(&c * &c.tanh()) + &(-&y).powi(3)
}

#[test]
fn scalar_gradient_matches_the_tape() {
    let (x, y) = (0.7, -1.3);
    let (value, (gx, gy)) = scalar::value_and_grad(x, y);
    assert_eq!(value, scalar(x, y));
    let (tape_value, (tx, ty)) = value_and_grad(|(x, y): (Var<f64>, Var<f64>)| scalar_traced(x, y), &(x, y));
    assert!((value - tape_value).abs() < 1e-14);
    assert!((gx - tx).abs() < 1e-13, "{gx} {tx}");
    assert!((gy - ty).abs() < 1e-13, "{gy} {ty}");
    let (_, dx) = scalar::jvp(x, y, &1.0, &0.0);
    let (_, dy) = scalar::jvp(x, y, &0.0, &1.0);
    assert!((dx - gx).abs() < 1e-13 && (dy - gy).abs() < 1e-13);
}

#[derive(Differentiable, Clone, Debug)]
struct Pair {
    a: f64,
    b: Vector<f64, 2>,
}

/// A derived struct read through its fields.
#[differentiable]
fn weighted(p: &Pair) -> f64 {
    p.a * p.b.sum() + p.b.dot(&p.b)
}

#[test]
fn fields_of_a_derived_struct_gather_into_its_tangent() {
    let p = Pair { a: 1.5, b: Vector::from_array([2.0, -1.0]) };
    let gradient = weighted::grad(&p);
    assert_eq!(gradient.a, 1.0);
    assert_eq!(gradient.b.to_array(), [1.5 + 4.0, 1.5 - 2.0]);
}

#[test]
fn derived_tangents_count_their_fields() {
    assert_eq!(<PairTangent as VectorSpace>::FIELDS, 2);
    assert_eq!(<(f64, f64, f64) as VectorSpace>::FIELDS, 3);
}

/// A branch on a condition that is not differentiated, with values from outside
/// added to in one arm only.
#[differentiable]
fn piecewise(x: f64, y: f64) -> f64 {
    let s = x * y;
    let z = if x > 0.0 {
        let t = s.sin();
        t * y
    } else if y > 1.0 {
        x * 3.0
    } else {
        s
    };
    z * x
}

/// Finite-difference derivative of `f` along `direction` at `point`.
fn central_difference(f: impl Fn(f64, f64) -> f64, (x, y): (f64, f64), (dx, dy): (f64, f64)) -> f64 {
    let h = 1e-6;
    (f(x + h * dx, y + h * dy) - f(x - h * dx, y - h * dy)) / (2.0 * h)
}

#[test]
fn branches_differentiate_the_arm_that_ran() {
    for point in [(0.8, -0.4), (-0.6, 1.7), (-0.6, 0.3)] {
        let (value, (gx, gy)) = piecewise::value_and_grad(point.0, point.1);
        assert_eq!(value, piecewise(point.0, point.1));
        let fx = central_difference(piecewise, point, (1.0, 0.0));
        let fy = central_difference(piecewise, point, (0.0, 1.0));
        assert!((gx - fx).abs() < 1e-7 && (gy - fy).abs() < 1e-7, "{point:?}: {gx} {fx} {gy} {fy}");
        let (_, dx) = piecewise::jvp(point.0, point.1, &1.0, &0.0);
        let (_, dy) = piecewise::jvp(point.0, point.1, &0.0, &1.0);
        assert!((dx - gx).abs() < 1e-13 && (dy - gy).abs() < 1e-13);
    }
}

/// A `match` on a plain integer picks the formula.
#[differentiable(wrt(x))]
fn by_mode(x: f64, mode: u8) -> f64 {
    match mode {
        0 => x.exp(),
        1 | 2 => {
            let c = x.cos();
            c * c
        }
        _ => 2.0,
    }
}

#[test]
fn match_arms_differentiate_the_arm_that_ran() {
    let x = 0.3;
    assert!((by_mode::grad(x, 0) - x.exp()).abs() < 1e-15);
    assert!((by_mode::grad(x, 2) + 2.0 * x.cos() * x.sin()).abs() < 1e-15);
    assert_eq!(by_mode::grad(x, 7), 0.0);
    assert_eq!(by_mode::jvp(x, 1, &1.0).1, by_mode::grad(x, 1));
}

/// A map from the plane to three coordinates.
#[differentiable]
fn lift(v: &Vector<f64, 2>) -> Vector<f64, 3> {
    let w: Matrix<f64, 3, 2> = Matrix::from_array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]]);
    w.matmul(v).tanh() * v.dot(v)
}

#[test]
fn jacobians_by_both_modes_agree_with_forward_duals() {
    let v = Vector::from_array([0.3, -0.7]);
    let forward: Matrix<f64, 3, 2> = lift::jacfwd(&v);
    let reverse: Matrix<f64, 3, 2> = lift::jacrev(&v);
    let duals: Matrix<f64, 3, 2> = fluxion::autodiff::jacrev(
        |v: Var<Vector<f64, 2>>| {
            let w: Matrix<f64, 3, 2> = Matrix::from_array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]]);
            Var::constant(w).matmul(&v).tanh().scale_by(&v.dot(&v))
        },
        &v,
    );
    for (a, b) in forward.iter().zip(duals.iter()).chain(reverse.iter().zip(duals.iter())) {
        assert!((a - b).abs() < 1e-14, "{forward:?} {reverse:?} {duals:?}");
    }
}

/// A loop that carries a differentiated value and a plain counter, and makes a
/// plain accumulator differentiated.
#[differentiable]
fn power_series(x: f64, y: f64) -> f64 {
    let mut term = y;
    let mut sum = 0.0;
    let mut factor = 1.0;
    for k in 1..6 {
        term = term * x / (k as f64);
        sum += term * factor;
        factor = -factor;
    }
    sum + term.sin()
}

#[test]
fn loops_differentiate_every_iteration() {
    for point in [(0.7, 1.3), (-1.2, 0.4)] {
        let (value, (gx, gy)) = power_series::value_and_grad(point.0, point.1);
        assert_eq!(value, power_series(point.0, point.1));
        let fx = central_difference(power_series, point, (1.0, 0.0));
        let fy = central_difference(power_series, point, (0.0, 1.0));
        assert!((gx - fx).abs() < 1e-7 && (gy - fy).abs() < 1e-7, "{point:?}: {gx} {fx} {gy} {fy}");
        let (_, dx) = power_series::jvp(point.0, point.1, &1.0, &0.0);
        let (_, dy) = power_series::jvp(point.0, point.1, &0.0, &1.0);
        assert!((dx - gx).abs() < 1e-13 && (dy - gy).abs() < 1e-13, "{dx} {gx} {dy} {gy}");
    }
}

/// Early returns: a guard clause, returns in an `if`/`else if` chain (one arm with
/// statements of its own), a `match` whose arms return or fall through, and a final
/// `return`.
#[differentiable(wrt(x, y))]
#[allow(clippy::needless_return)] // the final `return` in an arm is one of the forms tested
fn early_returns(x: f64, y: f64, mode: u8) -> f64 {
    if mode == 0 {
        return x * y;
    }
    let s = x.sin();
    if mode == 1 {
        let t = s * y;
        return t + 1.0;
    } else if mode == 2 {
        return s - y;
    }
    match mode {
        3 => return y.exp() * x,
        4 => {
            let w = s * s;
            return w * y;
        }
        _ => {}
    }
    let z = s * y * x;
    if mode == 5 {
        z.tanh()
    } else {
        return z + y;
    }
}

#[test]
fn early_returns_differentiate_the_path_that_ran() {
    for mode in 0..7 {
        let f = |x: f64, y: f64| early_returns(x, y, mode);
        for point in [(0.8, -0.4), (-0.6, 1.7)] {
            let (value, (gx, gy)) = early_returns::value_and_grad(point.0, point.1, mode);
            assert_eq!(value, f(point.0, point.1), "mode {mode}");
            let fx = central_difference(f, point, (1.0, 0.0));
            let fy = central_difference(f, point, (0.0, 1.0));
            assert!(
                (gx - fx).abs() < 1e-7 && (gy - fy).abs() < 1e-7,
                "mode {mode} {point:?}: {gx} {fx} {gy} {fy}"
            );
            let (_, dx) = early_returns::jvp(point.0, point.1, mode, &1.0, &0.0);
            assert!((dx - gx).abs() < 1e-13, "mode {mode}: {dx} {gx}");
            let (linear_value, map) = early_returns::linearize(point.0, point.1, mode);
            assert_eq!(linear_value, value);
            assert!(
                (map(&0.0, &1.0) - gy).abs() < 1e-13 && (map(&2.0, &-1.0) - (2.0 * gx - gy)).abs() < 1e-12
            );
        }
    }
}

/// An arm that returns binds a name that the statements after it bind again, and
/// an item is declared after the return.
#[differentiable]
fn returns_beside_an_item(x: f64) -> f64 {
    if x > 1.0 {
        let y = x.ln();
        return y * y * SCALE;
    }
    const SCALE: f64 = 2.0;
    let y = x * x;
    y * SCALE
}

#[test]
fn early_returns_keep_names_and_items_as_written() {
    for (x, derivative) in [(1.5f64, 4.0 * 1.5f64.ln() / 1.5), (0.5, 2.0)] {
        let (value, gradient) = returns_beside_an_item::value_and_grad(x);
        assert_eq!(value, returns_beside_an_item(x));
        assert!((gradient - derivative).abs() < 1e-14, "{x}: {gradient} {derivative}");
    }
}

/// A loop with a literal trip count carrying a tensor and a scalar: the reverse
/// sweep is unrolled, each iteration's values kept.
#[differentiable(wrt(v))]
fn rotations_with_a_running_product(v: &Vector<f64, 2>, angle: f64) -> f64 {
    let rotation: Matrix<f64, 2, 2> =
        Matrix::from_array([[angle.cos(), -angle.sin()], [angle.sin(), angle.cos()]]);
    let mut w = v.tanh();
    let mut product = v[[1]];
    for k in (0..5).rev() {
        w = rotation.matmul(&w).tanh();
        product = product * w[[0]] + (k as f64) * 0.1;
    }
    w.sum() * product
}

#[test]
fn loops_with_a_literal_trip_count_carrying_a_tensor_and_a_scalar() {
    let v = Vector::from_array([0.4, -0.9]);
    let (value, gradient) = rotations_with_a_running_product::value_and_grad(&v, 0.3);
    assert_eq!(value, rotations_with_a_running_product(&v, 0.3));
    let h = 1e-6;
    for i in 0..2 {
        let (mut plus, mut minus) = (v, v);
        plus[[i]] += h;
        minus[[i]] -= h;
        let fd = (rotations_with_a_running_product(&plus, 0.3)
            - rotations_with_a_running_product(&minus, 0.3))
            / (2.0 * h);
        assert!((gradient[[i]] - fd).abs() < 1e-8, "{i}: {gradient:?} {fd}");
        let mut direction = Vector::zeros();
        direction[[i]] = 1.0;
        let (_, derivative) = rotations_with_a_running_product::jvp(&v, 0.3, &direction);
        assert!((derivative - gradient[[i]]).abs() < 1e-14, "{derivative} {gradient:?}");
        let (_, map) = rotations_with_a_running_product::linearize(&v, 0.3);
        assert!((map(&direction) - gradient[[i]]).abs() < 1e-14);
    }
}

/// Nested loops with literal trip counts: the inner one unrolled, the outer one
/// keeping an array of its iterations.
#[differentiable]
fn nested_literal_loops(x: f64) -> f64 {
    let mut s = x;
    for i in 0..3 {
        for j in 0..2 {
            s = (s * x).sin() + ((i + j) as f64) * 0.1;
        }
    }
    s
}

#[test]
fn nested_loops_with_literal_trip_counts() {
    for x in [0.3, -0.8, 1.4] {
        let (value, gradient) = nested_literal_loops::value_and_grad(x);
        assert_eq!(value, nested_literal_loops(x));
        let h = 1e-6;
        let fd = (nested_literal_loops(x + h) - nested_literal_loops(x - h)) / (2.0 * h);
        assert!((gradient - fd).abs() < 1e-8, "{x}: {gradient} {fd}");
        assert!((nested_literal_loops::jvp(x, &1.0).1 - gradient).abs() < 1e-13);
    }
}

/// A loop with a trip count known only at run time, over a tensor.
#[differentiable(wrt(v))]
fn repeated_rotation(v: &Vector<f64, 2>, angle: f64, turns: usize) -> f64 {
    let rotation: Matrix<f64, 2, 2> =
        Matrix::from_array([[angle.cos(), -angle.sin()], [angle.sin(), angle.cos()]]);
    let mut w = v.tanh();
    for _ in 0..turns {
        w = rotation.matmul(&w).tanh();
    }
    w.sum()
}

#[test]
fn loops_with_a_run_time_trip_count() {
    let v = Vector::from_array([0.4, -0.9]);
    for turns in [0, 1, 4] {
        let gradient = repeated_rotation::grad(&v, 0.3, turns);
        let h = 1e-6;
        for i in 0..2 {
            let mut plus = v;
            let mut minus = v;
            plus[[i]] += h;
            minus[[i]] -= h;
            let fd =
                (repeated_rotation(&plus, 0.3, turns) - repeated_rotation(&minus, 0.3, turns)) / (2.0 * h);
            assert!((gradient[[i]] - fd).abs() < 1e-8, "{turns} turns: {gradient:?} {fd}");
        }
        let mut direction = Vector::zeros();
        direction[[0]] = 1.0;
        let (_, derivative) = repeated_rotation::jvp(&v, 0.3, turns, &direction);
        assert!((derivative - gradient[[0]]).abs() < 1e-13);
    }
}

/// Rosenbrock's function, generic over the real scalar: its static-mode gradient then
/// runs on dual numbers too (forward over reverse).
#[differentiable]
fn rosenbrock<T: RealScalar>(v: &Vector<T, 2>) -> T {
    let (a, b) = (v[[0]], v[[1]]);
    let hundred = T::from_f64(100.0);
    (T::one() - a).powi(2) + (b - a * a).powi(2) * hundred
}

#[test]
fn second_order_by_forward_over_static_reverse() {
    use fluxion::autodiff::Dual;
    let x = Vector::from_array([0.7, -0.2]);
    let (a, b) = (0.7, -0.2);
    let expected = [[2.0 - 400.0 * (b - a * a) + 800.0 * a * a, -400.0 * a], [-400.0 * a, 200.0]];
    let hessian: Matrix<f64, 2, 2> =
        fluxion::autodiff::jacfwd(|v: Vector<Dual<f64, 2>, 2>| rosenbrock::grad(&v), &x);
    for (row, expected_row) in expected.iter().enumerate() {
        for (column, value) in expected_row.iter().enumerate() {
            assert!((hessian[[row, column]] - value).abs() < 1e-10, "{hessian:?}");
        }
    }
    let direction = Vector::from_array([1.0, -2.0]);
    let (gradient, hvp) =
        fluxion::autodiff::jvp(|v: Vector<Dual<f64>, 2>| rosenbrock::grad(&v), &x, &direction);
    assert_eq!(gradient.to_array(), rosenbrock::grad(&x).to_array());
    assert!((hvp[[0]] - (expected[0][0] - 2.0 * expected[0][1])).abs() < 1e-10);
    assert!((hvp[[1]] - (expected[1][0] - 2.0 * expected[1][1])).abs() < 1e-10);
}

/// Calls another differentiable function, generic, from a generic one.
#[differentiable]
fn shifted_rosenbrock<T: RealScalar>(v: &Vector<T, 2>) -> T {
    let w = v.scale(T::from_f64(0.5));
    rosenbrock(&w) * T::from_f64(2.0) + v.sum()
}

#[test]
fn calls_compose_in_every_mode() {
    let v: Vector<f64, 2> = Vector::from_array([0.9, 0.4]);
    let w = v.scale(0.5);
    let inner = rosenbrock::grad(&w);
    // ∇(2·r(v/2) + Σv) = ∇r(v/2) + 1.
    let expected = [inner[[0]] + 1.0, inner[[1]] + 1.0];
    assert_eq!(shifted_rosenbrock::grad(&v).to_array(), expected);
    let jacobian: Matrix<f64, 1, 2> = shifted_gradient_row(&v);
    assert!((jacobian[[0, 0]] - expected[0]).abs() < 1e-12 && (jacobian[[0, 1]] - expected[1]).abs() < 1e-12);
    let (_, along) = shifted_rosenbrock::jvp(&v, &Vector::from_array([1.0, 0.0]));
    assert!((along - expected[0]).abs() < 1e-12);
}

/// The gradient as a 1×2 Jacobian, by static forward mode through the call.
fn shifted_gradient_row(v: &Vector<f64, 2>) -> Matrix<f64, 1, 2> {
    let jacobian: Matrix<f64, 1, 2> = shifted_as_vector::jacfwd(v);
    jacobian
}

/// The shifted function with a one-element vector output, so `jacfwd` applies.
#[differentiable]
fn shifted_as_vector(v: &Vector<f64, 2>) -> Vector<f64, 1> {
    Vector::from_array([shifted_rosenbrock(v)])
}

/// Differentiable functions in another module, called by path.
mod geometry {
    use fluxion::prelude::*;

    /// ‖v‖².
    #[differentiable]
    pub fn norm_squared(v: &Vector<f64, 3>) -> f64 {
        v.dot(v)
    }
}

/// A layer whose forward pass is a differentiable method, used by another method.
#[derive(Differentiable, Clone, Debug)]
struct Dense {
    w: Matrix<f64, 3, 2>,
    b: Vector<f64, 3>,
}

impl Dense {
    /// tanh(W x + b).
    #[differentiable]
    fn forward(&self, x: &Vector<f64, 2>) -> Vector<f64, 3> {
        (self.w.matmul(x) + self.b).tanh()
    }

    /// ‖forward(x)‖², through the method and a function in another module.
    #[differentiable(wrt(self))]
    fn energy(&self, x: &Vector<f64, 2>) -> f64 {
        let y = self.forward(x);
        geometry::norm_squared(&y)
    }
}

#[test]
fn methods_and_functions_in_modules_compose() {
    let layer = Dense {
        w: Matrix::from_array([[0.5, -1.0], [0.25, 0.75], [-0.5, 0.1]]),
        b: Vector::from_array([0.1, -0.2, 0.3]),
    };
    let x = Vector::from_array([0.8, -0.6]);
    let (value, gradient) = layer.energy_value_and_grad(&x);
    let traced = |l: DenseTraced| {
        let y = (&l.w.matmul(&Var::constant(x)) + &l.b).tanh();
        y.dot(&y)
    };
    let (expected_value, expected) = fluxion::autodiff::value_and_grad(traced, &layer);
    assert!((value - expected_value).abs() < 1e-15);
    assert!(gradient.w.iter().zip(expected.w.iter()).all(|(a, b)| (a - b).abs() < 1e-14));
    assert!(gradient.b.iter().zip(expected.b.iter()).all(|(a, b)| (a - b).abs() < 1e-14));
    let direction = DenseTangent { w: Matrix::ones(), b: Vector::zeros() };
    let (_, derivative) = layer.energy_jvp(&x, &direction);
    let inner: f64 = gradient.w.iter().sum();
    assert!((derivative - inner).abs() < 1e-13);
}

/// A long loop with a literal trip count: its iterations are kept as records.
#[differentiable]
fn logistic_orbit(r: f64, x0: f64) -> f64 {
    let mut x = x0;
    for _ in 0..40 {
        x = r * x * (1.0 - x);
    }
    x
}

#[test]
fn long_loops_keep_records_and_agree_with_finite_differences() {
    let (r, x0) = (2.9, 0.3);
    let (value, (dr, dx0)) = logistic_orbit::value_and_grad(r, x0);
    assert_eq!(value, logistic_orbit(r, x0));
    let fr = central_difference(logistic_orbit, (r, x0), (1.0, 0.0));
    let fx = central_difference(logistic_orbit, (r, x0), (0.0, 1.0));
    assert!(
        (dr - fr).abs() < 1e-6 * (1.0 + fr.abs()) && (dx0 - fx).abs() < 1e-6 * (1.0 + fx.abs()),
        "{dr} {fr} {dx0} {fx}"
    );
    let (_, along_r) = logistic_orbit::jvp(r, x0, &1.0, &0.0);
    assert!((along_r - dr).abs() < 1e-12 * (1.0 + dr.abs()));
}

/// |x|, max and min: piecewise derivatives (the larger operand's for max, half of
/// each on a tie).
#[differentiable]
fn hinge_mix(x: f64, y: f64) -> f64 {
    x.abs() * y.max(x) + (x - y).min(0.5)
}

#[test]
fn abs_max_and_min_follow_the_operand_they_pick() {
    for point in [(0.8, -0.4), (-0.6, 1.7), (0.3, 0.1), (-2.0, -3.0)] {
        let (gx, gy) = hinge_mix::grad(point.0, point.1);
        let fx = central_difference(hinge_mix, point, (1.0, 0.0));
        let fy = central_difference(hinge_mix, point, (0.0, 1.0));
        assert!((gx - fx).abs() < 1e-7 && (gy - fy).abs() < 1e-7, "{point:?}: {gx} {fx} {gy} {fy}");
        let (_, dx) = hinge_mix::jvp(point.0, point.1, &1.0, &0.0);
        assert_eq!(dx, gx);
    }
    // On a tie y = x, max's derivative is split in halves (as PyTorch and JAX):
    // ∂/∂x = sign(x)·x + |x|/2 + 1, ∂/∂y = |x|/2 − 1.
    let (gx, gy) = hinge_mix::grad(0.7, 0.7);
    assert!((gx - 2.05).abs() < 1e-15 && (gy + 0.65).abs() < 1e-15, "{gx} {gy}");
    assert_eq!(hinge_mix::jvp(0.7, 0.7, &1.0, &0.0).1, gx);
}

/// A vector function through every construct of the reverse sweep: a call, a
/// branch, a long loop (kept records), a short loop, an operand used twice, tuples,
/// element access and a hand-given derivative.
#[differentiable]
fn kitchen_sink(v: &Vector<f64, 3>) -> Vector<f64, 3> {
    let (a, b) = (v[[0]], v[[1]]);
    let c = v[[2]];
    let norm = geometry::norm_squared(v);
    let bent = if a > 0.0 { a * a + b } else { (b * c).sin() };
    let mut s = c;
    for _ in 0..20 {
        s = s * 0.9 + a * 0.05;
    }
    let mut t = b;
    for k in 0..3 {
        t = t * c + (k as f64);
    }
    let pair = (bent, s.max(t));
    let twisted = custom_cube(a) + pair.0 * norm;
    Vector::from_array([twisted, pair.1 * a, (norm - b).tanh()])
}

/// x³ with its derivative given by hand.
#[differentiable(vjp = custom_cube_vjp, jvp = custom_cube_jvp)]
fn custom_cube(x: f64) -> f64 {
    x * x * x
}

fn custom_cube_vjp(x: f64, y_bar: f64) -> f64 {
    3.0 * x * x * y_bar
}

fn custom_cube_jvp(x: f64, x_dot: &f64) -> f64 {
    3.0 * x * x * x_dot
}

#[test]
fn reverse_lanes_agree_with_forward_lanes_and_finite_differences() {
    for point in [[0.6, -0.3, 0.8], [-0.5, 0.7, 0.4]] {
        let v = Vector::from_array(point);
        let forward: Matrix<f64, 3, 3> = kitchen_sink::jacfwd(&v);
        let reverse: Matrix<f64, 3, 3> = kitchen_sink::jacrev(&v);
        let h = 1e-6;
        for j in 0..3 {
            let (mut plus, mut minus) = (v, v);
            plus[[j]] += h;
            minus[[j]] -= h;
            let (p, m) = (kitchen_sink(&plus), kitchen_sink(&minus));
            for i in 0..3 {
                let fd = (p[[i]] - m[[i]]) / (2.0 * h);
                assert!((forward[[i, j]] - reverse[[i, j]]).abs() < 1e-12, "{forward:?} {reverse:?}");
                assert!((reverse[[i, j]] - fd).abs() < 1e-6, "J[{i}][{j}] = {} vs {fd}", reverse[[i, j]]);
            }
        }
    }
}

/// A scalar function generic over its scalar: `hvp` along 1 is its second derivative.
#[differentiable]
fn exp_times<T: RealScalar>(x: T) -> T {
    x.exp() * x
}

/// Nested loops, a loop over an array by value, a loop bounded by a differentiated
/// heap vector's length, and a constant made with `stop_gradient`.
#[differentiable(wrt(v))]
fn nested(v: &DVector<f64>, weights: [f64; 3]) -> f64 {
    let mut total = 0.0;
    for i in 0..v.len() {
        for j in 0..v.len() {
            total += v[[i]] * v[[j]] * ((i + j) as f64 + 1.0);
        }
    }
    let mut series = 0.0;
    for w in weights {
        series = series * v[[0]] + w;
    }
    let frozen = stop_gradient(v[[1]]);
    total + series * frozen
}

#[test]
fn scalar_generics_nested_loops_array_loops_and_stop_gradient() {
    let x = 0.4;
    // d²/dx² (x eˣ) = (x + 2) eˣ.
    assert!((exp_times::hvp(x, &1.0) - (x + 2.0) * x.exp()).abs() < 1e-14);
    let v = DVector::from_shape_vec((Dyn(2),), vec![0.3, -0.7]).unwrap();
    let weights = [0.5, -1.0, 2.0];
    let gradient = nested::grad(&v, weights);
    let h = 1e-6;
    for k in 0..2 {
        let (mut plus, mut minus) = (v.clone(), v.clone());
        plus[[k]] += h;
        minus[[k]] -= h;
        let mut fd = (nested(&plus, weights) - nested(&minus, weights)) / (2.0 * h);
        if k == 1 {
            // `frozen` is a constant: remove its derivative from the finite difference.
            let series = (0.5 * v[[0]] - 1.0) * v[[0]] + 2.0;
            fd -= series;
        }
        assert!((gradient[[k]] - fd).abs() < 1e-7, "{k}: {} {fd}", gradient[[k]]);
    }
}

/// `*=` and `/=` by a scalar on a tensor, in plain code and in static mode.
#[differentiable]
fn rescaled(v: &Vector<f64, 2>, s: f64) -> f64 {
    let mut w = v.tanh();
    w *= s;
    w /= 1.0 + s * s;
    w.sum()
}

#[test]
fn compound_scaling_of_tensors() {
    let mut plain: Vector<f64, 2> = Vector::from_array([1.0, -2.0]);
    plain *= 3.0;
    plain /= 2.0;
    assert_eq!(plain.to_array(), [1.5, -3.0]);
    let v = Vector::from_array([0.3, -0.6]);
    let (gv, gs) = rescaled::grad(&v, 0.7);
    let h = 1e-6;
    let fd_s = (rescaled(&v, 0.7 + h) - rescaled(&v, 0.7 - h)) / (2.0 * h);
    assert!((gs - fd_s).abs() < 1e-8, "{gs} {fd_s}");
    let (mut plus, mut minus) = (v, v);
    plus[[0]] += h;
    minus[[0]] -= h;
    let fd_v = (rescaled(&plus, 0.7) - rescaled(&minus, 0.7)) / (2.0 * h);
    assert!((gv[[0]] - fd_v).abs() < 1e-8);
}

/// Six outputs: `jacrev` takes two sweeps of its lanes, `jacfwd` one pass.
#[differentiable]
fn six_outputs(v: &Vector<f64, 6>) -> Vector<f64, 6> {
    v.tanh().scale(v.sum()) + v.hadamard(v)
}

#[test]
fn jacobians_with_more_outputs_than_lanes() {
    let v = Vector::from_array([0.1, -0.4, 0.7, 0.2, -0.9, 0.5]);
    let forward: Matrix<f64, 6, 6> = six_outputs::jacfwd(&v);
    let reverse: Matrix<f64, 6, 6> = six_outputs::jacrev(&v);
    for (a, b) in forward.iter().zip(reverse.iter()) {
        assert!((a - b).abs() < 1e-13, "{forward:?} {reverse:?}");
    }
    // ∂yᵢ/∂vᵢ = (1 − tanh² vᵢ)·Σv + tanh vᵢ + 2vᵢ.
    let sum: f64 = v.iter().sum();
    let expected = (1.0 - v[[2]].tanh().powi(2)) * sum + v[[2]].tanh() + 2.0 * v[[2]];
    assert!((reverse[[2, 2]] - expected).abs() < 1e-13);
}

/// A dynamic output: `jacrev` runs the function once for the output's length.
#[differentiable]
fn six_outputs_on_the_heap(v: &DVector<f64>) -> DVector<f64> {
    v.tanh().scale(v.sum()) + v.hadamard(v)
}

#[test]
fn jacobians_of_dynamic_shapes() {
    let values = [0.1, -0.4, 0.7, 0.2, -0.9, 0.5];
    let v = DVector::from_shape_vec((Dyn(6),), values.to_vec()).unwrap();
    let reverse: DMatrix<f64> = six_outputs_on_the_heap::jacrev(&v);
    let forward: DMatrix<f64> = six_outputs_on_the_heap::jacfwd(&v);
    let inline: Matrix<f64, 6, 6> = six_outputs::jacrev(&Vector::from_array(values));
    assert_eq!(reverse.dims().as_slice(), &[6, 6]);
    for ((a, b), c) in forward.iter().zip(reverse.iter()).zip(inline.iter()) {
        assert!((a - b).abs() < 1e-13 && (b - c).abs() < 1e-13, "{forward:?} {reverse:?} {inline:?}");
    }
}

std::thread_local! {
    /// How many times `counted_cube`'s pullback ran on this thread.
    static CUBE_PULLBACKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// x³ with a hand-written pullback that counts its calls.
#[differentiable(vjp = counted_cube_vjp, jvp = custom_cube_jvp)]
fn counted_cube(x: f64) -> f64 {
    x * x * x
}

fn counted_cube_vjp(x: f64, y_bar: f64) -> f64 {
    CUBE_PULLBACKS.with(|count| count.set(count.get() + 1));
    3.0 * x * x * y_bar
}

/// w·x³.
#[differentiable]
fn weighted_cube(w: f64, x: f64) -> f64 {
    w * counted_cube(x)
}

/// 2·w·x³, differentiated in w only.
#[differentiable(wrt(w))]
fn twice_weighted_cube(w: f64, x: f64) -> f64 {
    weighted_cube(w, x) * 2.0
}

/// 2·w·x³, differentiated in both.
#[differentiable]
fn twice_weighted_cube_both(w: f64, x: f64) -> f64 {
    weighted_cube(w, x) * 2.0
}

/// A call keeps its callee's pullback from the forward sweep and tells it which
/// arguments the caller differentiates: the cotangent of an argument the caller does
/// not differentiate is never computed (here, the pullback of x³ never runs).
#[test]
fn a_call_computes_only_the_cotangents_its_caller_differentiates() {
    let before = CUBE_PULLBACKS.with(|count| count.get());
    let (value, gradient) = twice_weighted_cube::value_and_grad(1.5, 2.0);
    assert_eq!((value, gradient), (24.0, 16.0));
    assert_eq!(CUBE_PULLBACKS.with(|count| count.get()), before, "x's cotangent was computed");
    let (value, (w_bar, x_bar)) = twice_weighted_cube_both::value_and_grad(1.5, 2.0);
    assert_eq!((value, w_bar, x_bar), (24.0, 16.0, 36.0));
    assert_eq!(CUBE_PULLBACKS.with(|count| count.get()), before + 1);
}

/// Settings without `Clone`, passed by reference.
struct Settings {
    scale: f64,
}

#[differentiable(wrt(x))]
fn scaled_square(x: f64, settings: &Settings) -> f64 {
    x * x * settings.scale
}

/// Shapes whose forward sweep borrows the function's own locals (a loop over a
/// local's iterator, indices in a local `Vec`, a constant argument of a type without
/// `Clone`): they compile, and a caller's pullback recomputes their forward sweep.
#[differentiable]
fn over_local_iterators(x: f64) -> f64 {
    let weights = [0.5, 2.0];
    let mut total = x * 0.0;
    for w in weights.iter() {
        total += x * *w;
    }
    let settings = Settings { scale: 3.0 };
    total + scaled_square(x, &settings)
}

#[differentiable(wrt(table))]
fn gathered_with_local_indices(table: &Matrix<f64, 3, 2, Heap>) -> f64 {
    let indices = vec![2, 0, 2];
    table.gather_rows(&indices).tanh().sum()
}

#[differentiable]
fn calls_borrowing_callees(x: f64) -> f64 {
    over_local_iterators(x) * 2.0
}

#[test]
fn functions_that_borrow_their_locals_compile_and_differentiate() {
    // 2·(2.5x + 3x²): derivative 2·(2.5 + 6x).
    let (value, gradient) = calls_borrowing_callees::value_and_grad(0.5);
    assert!((value - 2.0 * (1.25 + 0.75)).abs() < 1e-15);
    assert!((gradient - 2.0 * (2.5 + 3.0)).abs() < 1e-14);
    let table: Matrix<f64, 3, 2, Heap> =
        Matrix::from_shape_vec(Default::default(), vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
    let (_, gradient) = gathered_with_local_indices::value_and_grad(&table);
    // Row 2 picked twice, row 0 once, row 1 never: d tanh = 1 − tanh².
    let d = |v: f64| 1.0 - v.tanh() * v.tanh();
    assert_eq!(gradient.as_slice()[2..4], [0.0, 0.0]);
    assert!((gradient.as_slice()[4] - 2.0 * d(0.5)).abs() < 1e-15);
    assert!((gradient.as_slice()[0] - d(0.1)).abs() < 1e-15);
}

/// The first row of M dotted with its last column, the index of the latter a
/// runtime argument.
#[differentiable(wrt(m))]
fn row_times_column(m: &Matrix<f64, 3, 3>, last: usize) -> f64 {
    m.row(0).dot(&m.column(last))
}

#[test]
fn rows_and_columns_in_static_mode() {
    let m: Matrix<f64, 3, 3> = Matrix::from_fn(|[i, j]| (i * 3 + j) as f64 + 1.0);
    // m₀₀m₀₂ + m₀₁m₁₂ + m₀₂m₂₂ = (1, 2, 3)·(3, 6, 9) = 42, whose derivative in m₀₂
    // is m₀₀ + m₂₂ (m₀₂ is in both the row and the column).
    let (value, gradient) = row_times_column::value_and_grad(&m, 2);
    assert_eq!(value, 42.0);
    assert_eq!(gradient.to_array(), [[3.0, 6.0, 1.0 + 9.0], [0.0, 0.0, 2.0], [0.0, 0.0, 3.0]]);
    let direction: Matrix<f64, 3, 3> = Matrix::from_fn(|[i, j]| if i == 0 { 1.0 } else { j as f64 });
    let (_, tangent) = row_times_column::jvp(&m, 2, &direction);
    assert_eq!(tangent, gradient.dot(&direction));
}

/// A branch whose arms give heap tensors (not `Copy`).
#[fluxion::autodiff::differentiable]
fn heap_branch(x: &Vector<f64, 3, Heap>, smooth: bool) -> f64 {
    let y = if smooth { x.tanh() } else { x.sin() };
    y.hadamard(x).sum()
}

#[test]
fn branches_give_heap_tensors_with_their_derivatives() {
    let x: Vector<f64, 3, Heap> = Tensor::from_array([0.1, -0.7, 1.3]);
    for smooth in [true, false] {
        let gradient = heap_branch::grad(&x, smooth);
        let v: Vector<f64, 3, Heap> = Tensor::from_array([0.4, -0.2, 0.9]);
        let (_, tangent) = heap_branch::jvp(&x, smooth, &v);
        let h = 1e-6;
        let (mut plus, mut minus) = (x.clone(), x.clone());
        plus.move_by(&v.scaled(h));
        minus.move_by(&v.scaled(-h));
        let numeric = (heap_branch(&plus, smooth) - heap_branch(&minus, smooth)) / (2.0 * h);
        let analytic: f64 = gradient.iter().zip(v.iter()).map(|(g, v)| g * v).sum();
        assert!((analytic - numeric).abs() < 1e-8, "{analytic} vs {numeric}");
        assert!((tangent - analytic).abs() < 1e-14);
    }
}

/// A parameter of methods taken by reference and not differentiated, of types that
/// cannot be taken by value or that borrow.
#[derive(Clone, Debug, Differentiable)]
struct Gain {
    g: f64,
}

/// A borrowed view, not differentiated.
struct Labels<'a>(&'a [&'a str]);

impl Gain {
    #[fluxion::autodiff::differentiable(wrt(self))]
    fn by_path(&self, x: f64, path: &std::path::Path) -> f64 {
        self.g * x * path.as_os_str().len() as f64
    }

    #[fluxion::autodiff::differentiable(wrt(self))]
    fn by_label<I: ?Sized + AsRef<str>>(&self, label: &I) -> f64 {
        self.g * self.g * label.as_ref().len() as f64
    }

    #[fluxion::autodiff::differentiable(wrt(self))]
    fn by_view(&self, labels: &Labels<'_>) -> f64 {
        self.g * labels.0.len() as f64
    }

    #[fluxion::autodiff::differentiable(wrt(self))]
    fn by_indices(&self, indices: &[usize], x: &Vector<f64, 2>) -> f64 {
        self.g * x[[0]] * indices.len() as f64
    }
}

#[test]
fn methods_with_constant_references_of_any_type_differentiate() {
    let gain = Gain { g: 1.5 };
    assert_eq!(gain.by_path_grad(2.0, std::path::Path::new("abc")).g, 6.0);
    assert_eq!(gain.by_label_grad("four").g, 12.0);
    assert_eq!(gain.by_view_grad(&Labels(&["a", "b"])).g, 2.0);
    assert_eq!(gain.by_indices_grad(&[1, 2, 3], &Vector::from_array([0.5, 7.0])).g, 1.5);
}

/// Loops with a run-time trip count, whose reverse sweep reruns the body after the
/// forward sweep: a plain variable the body only reads is assigned, or shadowed,
/// after the loop (or by an enclosing loop after the inner one).
#[differentiable(wrt(x))]
fn read_then_assigned(x: f64, n: usize) -> f64 {
    let mut c = 2.0;
    let mut s = x;
    for _ in 0..n {
        s *= c;
    }
    c = 5.0;
    s * c
}

#[differentiable(wrt(x))]
fn read_then_shadowed(x: f64, n: usize) -> f64 {
    let c = 2.0;
    let mut s = x;
    for _ in 0..n {
        s *= c;
    }
    let c = 5.0;
    s * c
}

#[differentiable(wrt(x))]
fn inner_loop_reads_outer_state(x: f64, n: usize, m: usize) -> f64 {
    let mut s = x;
    let mut c = 1.0;
    for _ in 0..n {
        for _ in 0..m {
            s *= c;
        }
        c += 1.0;
    }
    s
}

#[differentiable(wrt(x))]
fn inner_loop_in_a_literal_loop<T: RealScalar>(x: T, m: usize) -> T {
    let mut s = x * x;
    let mut c = T::one();
    for _ in 0..3 {
        for _ in 0..m {
            s *= c;
        }
        c += T::one();
    }
    s
}

#[test]
fn a_rerun_loop_reads_plain_variables_as_they_were_when_it_ran() {
    let x = 0.7;
    // 5·2³·x: the loop multiplied by 2, the last line by 5.
    for derivative in [read_then_assigned::grad(x, 3), (read_then_assigned::vjp(x, 3).1)(&1.0)] {
        assert_eq!(derivative, 40.0);
    }
    assert_eq!(read_then_assigned::jvp(x, 3, &1.0).1, 40.0);
    assert_eq!(read_then_shadowed::grad(x, 3), 40.0);
    // (1·2·3)² x: each outer iteration multiplies twice by its own c.
    assert_eq!(inner_loop_reads_outer_state::grad(x, 3, 2), 36.0);
    let (value, gradient) = inner_loop_in_a_literal_loop::value_and_grad(x, 2);
    assert_eq!(value, inner_loop_in_a_literal_loop(x, 2));
    assert!((gradient - 36.0 * 2.0 * x).abs() < 1e-12);
    assert!((inner_loop_in_a_literal_loop::hvp(x, 2, &1.0) - 72.0).abs() < 1e-12);
}

/// Named lifetime parameters, on a differentiated reference and on a constant slice
/// (written out: they are the case under test).
#[allow(clippy::needless_lifetimes)]
#[differentiable]
fn squared_through<'a>(x: &'a f64) -> f64 {
    *x * *x
}

#[allow(clippy::needless_lifetimes)]
#[differentiable(wrt(x))]
fn times_first<'a>(x: f64, c: &'a [f64]) -> f64 {
    x * c[0]
}

#[test]
fn functions_with_lifetime_parameters_differentiate() {
    assert_eq!(squared_through::grad(&3.0), 6.0);
    assert_eq!((squared_through::vjp(&3.0).1)(&1.0), 6.0);
    let c = [2.0, 7.0];
    assert_eq!(times_first::grad(3.0, &c), 2.0);
    assert_eq!((times_first::vjp(3.0, &c).1)(&1.0), 2.0);
}

/// Layout and elementwise operations of tensors: `flatten`, `reshape` (their shapes
/// from a type on the `let` or a turbofish), `abs` (real and complex), `erf`.
#[differentiable]
fn layout_and_abs(m: &Matrix<f64, 2, 3>) -> f64 {
    let v: Vector<f64, 6> = m.flatten();
    let r = m.reshape::<(Const<3>, Const<2>)>();
    let w = r.matmul(&Vector::from_array([1.0, -2.0]));
    v.abs().sum() + w.dot(&w) + m.flatten::<6>()[[1]] * r[[2, 1]]
}

fn layout_and_abs_on_the_tape(m: Var<Matrix<f64, 2, 3>>) -> Var<f64> {
    let v: Var<Vector<f64, 6>> = m.flatten();
    let r = m.reshape::<(Const<3>, Const<2>)>();
    let w = r.matmul(&Vector::from_array([1.0, -2.0]));
    v.abs().sum() + w.dot(&w) + m.flatten::<6>().at([1]) * r.at([2, 1])
}

#[differentiable]
fn complex_moduli(z: &Vector<Complex64, 2>) -> f64 {
    let a = z.abs();
    a.dot(&a.sigmoid())
}

#[differentiable]
fn error_function<T: RealScalar>(x: T) -> T {
    x.erf() * x
}

#[differentiable]
fn complementary_error_function<T: RealScalar>(x: T) -> T {
    x.erfc() * x
}

#[test]
fn flatten_reshape_abs_and_erf_differentiate_as_on_the_tape() {
    let m = Matrix::from_array([[0.5, -1.0, 0.2], [2.0, -0.3, 1.5]]);
    let (value, gradient) = layout_and_abs::value_and_grad(&m);
    let (tape_value, tape_gradient) = value_and_grad(layout_and_abs_on_the_tape, &m);
    assert_eq!(value, tape_value);
    assert_eq!(gradient, tape_gradient);
    let direction = Matrix::from_array([[1.0, 0.5, -1.0], [0.3, 0.0, 2.0]]);
    let along: f64 = gradient.iter().zip(direction.iter()).map(|(g, d)| g * d).sum();
    assert!((layout_and_abs::jvp(&m, &direction).1 - along).abs() < 1e-12);

    let z = Vector::from_array([Complex64::new(0.3, -0.4), Complex64::new(-1.0, 0.5)]);
    let gradient = complex_moduli::grad(&z);
    let tape = fluxion::autodiff::grad(
        |z: Var<Vector<Complex64, 2>>| {
            let a = z.abs();
            a.dot(&a.sigmoid())
        },
        &z,
    );
    assert_eq!(gradient, tape);
    // Forward and reverse agree: ẏ = Re⟨x̄, ż⟩.
    let dz = Vector::from_array([Complex64::new(1.0, 0.2), Complex64::new(-0.5, 0.7)]);
    let along: f64 = gradient.iter().zip(dz.iter()).map(|(g, d)| (g.conj() * d).re).sum();
    assert!((complex_moduli::jvp(&z, &dz).1 - along).abs() < 1e-12);

    // erf′(x) = 2/√π·e^(−x²).
    let x = 0.6;
    let expected = RealScalar::erf(x) + x * std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp();
    assert!((error_function::grad(x) - expected).abs() < 1e-15);
    assert_eq!(error_function::jvp(x, &1.0).1, error_function::grad(x));
    assert!(
        (error_function::hvp(x, &1.0)
            - (2.0 - 2.0 * x * x) * std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp())
        .abs()
            < 1e-14
    );
    // erfc′(x) = −2/√π·e^(−x²); far in the tail, where 1 − erf x is 0.
    for x in [0.6, 7.0] {
        let expected = RealScalar::erfc(x) - x * std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp();
        let gradient = complementary_error_function::grad(x);
        assert!((gradient - expected).abs() <= 1e-14 * expected.abs(), "{x}: {gradient} vs {expected}");
        assert_eq!(complementary_error_function::jvp(x, &1.0).1, gradient);
    }
}

/// A literal trip count too long to keep every iteration on the stack: run again
/// in the reverse sweep, as a run-time one.
#[differentiable(wrt(x))]
fn long_literal_loop(x: f64, r: f64) -> f64 {
    let mut s = x;
    for _ in 0..3000 {
        s = s * r + 0.001 * x;
    }
    s
}

#[test]
fn a_long_literal_loop_differentiates_without_keeping_every_iteration() {
    let (x, r) = (0.7, 0.999);
    // ds/dx follows d ← d·r + 0.001 from d = 1.
    let expected = (0..3000).fold(1.0, |d: f64, _| d * r + 0.001);
    let (value, gradient) = long_literal_loop::value_and_grad(x, r);
    assert_eq!(value, long_literal_loop(x, r));
    assert!((gradient - expected).abs() < 1e-12 * expected, "{gradient} vs {expected}");
    assert!((long_literal_loop::jvp(x, r, &1.0).1 - expected).abs() < 1e-12 * expected);
}

/// A run-time loop rerun from checkpoints in the reverse sweep: a carried value, a
/// plain counter it assigns, an inner run-time loop, inside a branch, and a caller
/// (whose pullback keeps the callee's checkpoints).
#[differentiable(wrt(x))]
fn checkpointed_loops(x: f64, n: usize, m: usize) -> f64 {
    let mut s = x;
    let mut k = 0.0;
    for i in 0..n {
        k += 1.0;
        s = (s * 0.9 + 0.01 * k).sin() + x * 0.001 * i as f64;
        for _ in 0..m {
            s = s * 0.99 + 0.001 * k;
        }
    }
    let y = if n.is_multiple_of(2) {
        let mut t = s;
        for j in 0..n {
            t = t * 0.98 + (j as f64) * 0.0001 * s;
        }
        t
    } else {
        s * s
    };
    y + k * x
}

#[differentiable(wrt(x))]
fn calls_checkpointed_loops(x: f64, n: usize) -> f64 {
    checkpointed_loops(x, n, 2) * x
}

/// The same on the tape.
fn checkpointed_loops_on_the_tape(x: &Var<f64>, n: usize, m: usize) -> Var<f64> {
    let mut s = x.clone();
    let mut k = 0.0;
    for i in 0..n {
        k += 1.0;
        s = (s * 0.9 + 0.01 * k).sin() + x * (0.001 * i as f64);
        for _ in 0..m {
            s = s * 0.99 + 0.001 * k;
        }
    }
    let y = if n.is_multiple_of(2) {
        let mut t = s.clone();
        for j in 0..n {
            t = t * 0.98 + &s * ((j as f64) * 0.0001);
        }
        t
    } else {
        &s * &s
    };
    y + x * k
}

#[test]
fn run_time_loops_rerun_from_checkpoints_as_the_tape_differentiates() {
    let x = 0.7;
    for n in [0, 1, 2, 31, 32, 33, 64, 65, 100, 257] {
        for m in [0, 3, 40] {
            let (value, gradient) = checkpointed_loops::value_and_grad(x, n, m);
            let (tape_value, tape_gradient) =
                value_and_grad(|x: Var<f64>| checkpointed_loops_on_the_tape(&x, n, m), &x);
            assert_eq!(value, checkpointed_loops(x, n, m));
            assert!((value - tape_value).abs() < 1e-12, "n = {n}, m = {m}");
            assert!(
                (gradient - tape_gradient).abs() < 1e-12 * (1.0 + tape_gradient.abs()),
                "n = {n}, m = {m}: {gradient} vs {tape_gradient}"
            );
            assert!(
                (checkpointed_loops::jvp(x, n, m, &1.0).1 - gradient).abs() < 1e-12 * (1.0 + gradient.abs())
            );
        }
        let (value, gradient) = calls_checkpointed_loops::value_and_grad(x, n);
        let (tape_value, tape_gradient) =
            value_and_grad(|x: Var<f64>| checkpointed_loops_on_the_tape(&x, n, 2) * &x, &x);
        assert!((value - tape_value).abs() < 1e-12);
        assert!((gradient - tape_gradient).abs() < 1e-12 * (1.0 + tape_gradient.abs()), "n = {n}");
        assert_eq!((calls_checkpointed_loops::vjp(x, n).1)(&1.0), gradient);
    }
}

/// `while` loops: the forward sweep counts the iterations (keeping up to 16
/// checkpoints, thinned to every other one as they fill), the reverse sweep reruns
/// from them and never tests the condition again. A plain counter, a nested `while`,
/// one inside a branch.
#[differentiable(wrt(x))]
fn counted_while_loops(x: f64, n: usize, m: usize) -> f64 {
    let mut s = x;
    let mut k = 0.0;
    let mut i = 0;
    while i < n {
        k += 1.0;
        s = (s * 0.9 + 0.01 * k).sin() + x * 0.001 * i as f64;
        let mut j = 0;
        while j < m {
            s = s * 0.99 + 0.001 * k;
            j += 1;
        }
        i += 1;
    }
    let y = if n.is_multiple_of(2) {
        let mut t = s;
        let mut j = 0;
        while j < n {
            t = t * 0.98 + (j as f64) * 0.0001 * s;
            j += 1;
        }
        t
    } else {
        s * s
    };
    y + k * x
}

#[test]
fn while_loops_rerun_from_checkpoints_as_the_tape_differentiates() {
    let x = 0.7;
    // Around each thinning of the checkpoints: 16, 32, 64 iterations.
    for n in [0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000] {
        for m in [0, 3] {
            let (value, gradient) = counted_while_loops::value_and_grad(x, n, m);
            let (tape_value, tape_gradient) =
                value_and_grad(|x: Var<f64>| checkpointed_loops_on_the_tape(&x, n, m), &x);
            assert_eq!(value, counted_while_loops(x, n, m));
            assert!((value - tape_value).abs() < 1e-12, "n = {n}, m = {m}");
            assert!(
                (gradient - tape_gradient).abs() < 1e-12 * (1.0 + tape_gradient.abs()),
                "n = {n}, m = {m}: {gradient} vs {tape_gradient}"
            );
            let tangent = counted_while_loops::jvp(x, n, m, &1.0).1;
            assert!((tangent - gradient).abs() < 1e-12 * (1.0 + gradient.abs()), "n = {n}, m = {m}");
        }
    }
}

/// Newton's iteration for √a, left by `break` once the step is below a tolerance
/// (the `let` before the test becomes part of the condition, tested before each
/// iteration).
#[differentiable]
fn newton_sqrt(a: f64) -> f64 {
    let mut x = a;
    for _ in 0..50 {
        let step = (x * x - a) / (2.0 * x);
        if step.abs() < 1e-12 {
            break;
        }
        x -= step;
    }
    x
}

/// The same on the tape, which follows any control flow.
fn newton_sqrt_on_the_tape(a: &Var<f64>) -> Var<f64> {
    let mut x = a.clone();
    for _ in 0..50 {
        let step = (&x * &x - a) / (&x * 2.0);
        if step.value().abs() < 1e-12 {
            break;
        }
        x = &x - &step;
    }
    x
}

#[test]
fn a_loop_left_by_break_is_differentiated_through_the_iterations_that_ran() {
    // a = 1 leaves before the first step; the others after a few.
    for a in [1.0, 2.0, 9.0, 1e6] {
        let (value, gradient) = newton_sqrt::value_and_grad(a);
        let (tape_value, tape_gradient) = value_and_grad(|a: Var<f64>| newton_sqrt_on_the_tape(&a), &a);
        assert_eq!(value, tape_value, "a = {a}");
        assert!(
            (gradient - tape_gradient).abs() < 1e-15 * tape_gradient,
            "a = {a}: {gradient} vs {tape_gradient}"
        );
        assert!((value - a.sqrt()).abs() < 1e-12 * a.sqrt());
        // No step ran at a = 1: x = a, whose derivative is 1; after converged steps,
        // the derivative of √a.
        let expected = if a == 1.0 { 1.0 } else { 0.5 / a.sqrt() };
        assert!((gradient - expected).abs() < 1e-9 * expected, "a = {a}: {gradient}");
        let (jvp_value, tangent) = newton_sqrt::jvp(a, &1.0);
        assert_eq!(jvp_value, value);
        assert!((tangent - gradient).abs() < 1e-15 * gradient, "a = {a}: {tangent} vs {gradient}");
    }
}

/// Loops left by `break` after many iterations (past the forward sweep's 16
/// checkpoints), as `for`, `while` (with its own condition) and `loop`.
#[differentiable(wrt(x))]
fn leaving_loops(x: f64, limit: f64) -> f64 {
    let mut s = x;
    for i in 0..1000 {
        let big = s * (i as f64);
        if big > limit {
            break;
        }
        s = (s * 1.01).sin() + 0.001 * x;
    }
    let mut t = s;
    let mut k = 0;
    while k < 500 {
        if t * (k as f64) > limit * 0.5 {
            break;
        }
        t = t * 1.02 + 0.0001 * s;
        k += 1;
    }
    let mut u = t;
    loop {
        if u > limit {
            break;
        }
        u = u * 1.5 + 0.01 * x;
    }
    s + t + u
}

fn leaving_loops_on_the_tape(x: &Var<f64>, limit: f64) -> Var<f64> {
    let mut s = x.clone();
    for i in 0..1000 {
        if s.value() * (i as f64) > limit {
            break;
        }
        s = (&s * 1.01).sin() + x * 0.001;
    }
    let mut t = s.clone();
    let mut k = 0;
    while k < 500 {
        if t.value() * (k as f64) > limit * 0.5 {
            break;
        }
        t = &t * 1.02 + &s * 0.0001;
        k += 1;
    }
    let mut u = t.clone();
    loop {
        if *u.value() > limit {
            break;
        }
        u = &u * 1.5 + x * 0.01;
    }
    &(&s + &t) + &u
}

#[test]
fn loops_left_by_break_rerun_from_checkpoints_as_the_tape_differentiates() {
    let x = 0.6;
    for limit in [0.0, 3.0, 20.0, 90.0, 400.0] {
        let (value, gradient) = leaving_loops::value_and_grad(x, limit);
        let (tape_value, tape_gradient) =
            value_and_grad(|x: Var<f64>| leaving_loops_on_the_tape(&x, limit), &x);
        assert_eq!(value, leaving_loops(x, limit));
        assert!((value - tape_value).abs() < 1e-12 * (1.0 + value.abs()), "limit {limit}");
        assert!(
            (gradient - tape_gradient).abs() < 1e-12 * (1.0 + tape_gradient.abs()),
            "limit {limit}: {gradient} vs {tape_gradient}"
        );
        let tangent = leaving_loops::jvp(x, limit, &1.0).1;
        assert!((tangent - gradient).abs() < 1e-12 * (1.0 + gradient.abs()), "limit {limit}");
    }
}

/// The `let`s before a loop's test run once per iteration: `next` on a plain
/// iterator, read by the test and the body.
#[differentiable(wrt(x))]
fn drawn_until(x: f64, data: &[f64], limit: f64) -> f64 {
    let mut s = x;
    let mut weights = data.iter();
    for _ in 0..data.len() {
        let w = *weights.next().unwrap();
        if s * w > limit {
            break;
        }
        s = s * w + x;
    }
    s
}

/// A loop left by `break` inside another loop (and inside a branch of it).
#[differentiable(wrt(x))]
fn nested_leaving(x: f64, n: usize, limit: f64) -> f64 {
    let mut s = x;
    for i in 0..n {
        let mut t = s;
        for j in 0..n {
            if t > limit {
                break;
            }
            t = t * 1.3 + x * 0.01 * (j as f64);
        }
        let u = if i % 2 == 0 {
            let mut v = t;
            while v < limit * 2.0 {
                let next = v * 1.7 + 0.1;
                if next > limit * 3.0 {
                    break;
                }
                v = next;
            }
            v
        } else {
            t
        };
        s = (s + u * 0.1).sin() + 0.01 * (i as f64);
    }
    s
}

#[test]
fn the_lets_before_a_break_run_once_and_inner_loops_may_leave_early() {
    let data = [1.5, 2.0, 0.5, 3.0, 1.1];
    for limit in [0.5, 2.0, 1e9] {
        let (value, gradient) = drawn_until::value_and_grad(0.6, &data, limit);
        assert_eq!(value, drawn_until(0.6, &data, limit), "limit {limit}");
        let step = 1e-6;
        let slope =
            (drawn_until(0.6 + step, &data, limit) - drawn_until(0.6 - step, &data, limit)) / (2.0 * step);
        assert!(
            (gradient - slope).abs() < 1e-6 * (1.0 + slope.abs()),
            "limit {limit}: {gradient} vs {slope}"
        );
    }
    for (n, limit) in [(3, 1.0), (6, 2.5), (20, 0.8)] {
        let (value, gradient) = nested_leaving::value_and_grad(0.4, n, limit);
        assert_eq!(value, nested_leaving(0.4, n, limit));
        let step = 1e-6;
        let slope =
            (nested_leaving(0.4 + step, n, limit) - nested_leaving(0.4 - step, n, limit)) / (2.0 * step);
        assert!((gradient - slope).abs() < 1e-6 * (1.0 + slope.abs()), "n = {n}: {gradient} vs {slope}");
        assert!(
            (nested_leaving::jvp(0.4, n, limit, &1.0).1 - gradient).abs() < 1e-12 * (1.0 + gradient.abs())
        );
    }
}

fn advance(i: &mut usize, n: usize) -> bool {
    *i += 1;
    *i <= n
}

/// A `while` condition that changes the plain state the body reads: the reverse
/// sweep evaluates it again as it reruns iterations from a checkpoint. s = x + Σ i·x
/// for i = 1..n, so ds/dx = 1 + n(n+1)/2.
#[differentiable(wrt(x))]
fn counted_by_its_condition(x: f64, n: usize) -> f64 {
    let mut s = x;
    let mut i = 0usize;
    while advance(&mut i, n) {
        s += x * i as f64;
    }
    let mut t = s;
    let mut j = 0usize;
    while {
        j += 1;
        j <= n
    } {
        t = (t * 0.5).sin() + s * j as f64 * 0.001;
    }
    s + t
}

#[test]
fn while_conditions_that_change_state_rerun_with_the_body() {
    for n in [0, 1, 16, 17, 20, 33, 100] {
        let x = 0.3;
        let gradient = counted_by_its_condition::grad(x, n);
        let (_, tangent) = counted_by_its_condition::jvp(x, n, &1.0);
        assert!(
            (gradient - tangent).abs() < 1e-12 * (1.0 + tangent.abs()),
            "n = {n}: {gradient} vs {tangent}"
        );
        let h = 1e-6;
        let fd = (counted_by_its_condition(x + h, n) - counted_by_its_condition(x - h, n)) / (2.0 * h);
        assert!((gradient - fd).abs() < 1e-6 * (1.0 + fd.abs()), "n = {n}: {gradient} vs {fd}");
    }
}

/// Long run-time loops, past 16³ iterations (so the reverse sweep's last level of
/// checkpoints holds parts of several iterations), `for` and `while`.
#[differentiable(wrt(k))]
fn long_recurrences(k: f64, n: usize) -> f64 {
    let mut x = 0.3;
    for i in 0..n {
        x = (x * k).sin() + 0.5 * x + 1e-6 * i as f64;
    }
    let mut y = x;
    let mut j = 0;
    while j < n / 2 {
        y = (y * k).cos() * 0.5 + 0.25 * y;
        j += 1;
    }
    x + y
}

#[test]
fn long_loops_rerun_through_every_level_of_checkpoints() {
    let k = 0.9;
    for n in [4095, 4096, 4097, 9000, 70_001] {
        let (value, gradient) = long_recurrences::value_and_grad(k, n);
        let (tape_value, tape_gradient) = value_and_grad(
            |k: Var<f64>| {
                let mut x = Var::constant(0.3);
                for i in 0..n {
                    x = (&x * &k).sin() + &x * 0.5 + 1e-6 * i as f64;
                }
                let mut y = x.clone();
                for _ in 0..n / 2 {
                    y = (&y * &k).cos() * 0.5 + &y * 0.25;
                }
                x + y
            },
            &k,
        );
        assert_eq!(value, long_recurrences(k, n));
        assert!((value - tape_value).abs() < 1e-12, "n = {n}");
        assert!(
            (gradient - tape_gradient).abs() < 1e-10 * (1.0 + tape_gradient.abs()),
            "n = {n}: {gradient} vs {tape_gradient}"
        );
        let tangent = long_recurrences::jvp(k, n, &1.0).1;
        assert!((tangent - gradient).abs() < 1e-10 * (1.0 + gradient.abs()), "n = {n}");
    }
}

/// The gradient checker on a static-mode pullback: a struct-returning step passes,
/// and a pullback off by 10% is caught.
#[test]
fn the_checker_takes_static_mode_pullbacks() {
    use fluxion::autodiff::check::{CheckOptions, check_pullback};
    let start = Cart { position: 0.4, velocity: Vector::from_array([0.2, -0.3]), steps: 7 };
    let point = (start.clone(), 0.5);
    let step = |(cart, force): &(Cart, f64)| cart_step(cart, *force);
    let (_, pullback) = cart_step::vjp(&start, 0.5);
    let comparisons = check_pullback(step, pullback, &point, CheckOptions::f64()).unwrap();
    // 3 outputs × 4 inputs, and 3 random directions.
    assert_eq!(comparisons, 3 * 4 + 3);
    let (_, pullback) = cart_step::vjp(&start, 0.5);
    let wrong = |y_bar: &CartTangent| {
        let (cart, force) = pullback(y_bar);
        (cart, force * 1.1)
    };
    let error = check_pullback(step, wrong, &point, CheckOptions::f64()).unwrap_err();
    // Leaves named by their path: the cart's `position` field, the tuple's second
    // part (the force).
    assert!(error.what.contains("Jacobian entry (output leaf position, input leaf 1)"), "{error}");
}

/// The same for forward mode: `linearize`'s map passes, a custom rule whose `jvp`
/// misses a factor (its `vjp` right, so `check_pullback` passes) is caught.
#[test]
fn the_checker_takes_static_mode_pushforwards() {
    use fluxion::autodiff::check::{CheckOptions, check_pullback, check_pushforward};
    let start = Cart { position: 0.4, velocity: Vector::from_array([0.2, -0.3]), steps: 7 };
    let point = (start.clone(), 0.5);
    let step = |(cart, force): &(Cart, f64)| cart_step(cart, *force);
    let (_, map) = cart_step::linearize(&start, 0.5);
    let comparisons = check_pushforward(
        step,
        |(cart, force): &(CartTangent, f64)| map(cart, force),
        &point,
        CheckOptions::f64(),
    )
    .unwrap();
    assert_eq!(comparisons, 3 * 4 + 3 * 3);
    let square = |x: &f64| half_wrong_square(*x);
    assert!(check_pullback(square, half_wrong_square::vjp(1.5).1, &1.5, CheckOptions::f64()).is_ok());
    let error = check_pushforward(
        square,
        |x_dot: &f64| half_wrong_square::jvp(1.5, x_dot).1,
        &1.5,
        CheckOptions::f64(),
    )
    .unwrap_err();
    assert!(
        error.what == "Jacobian entry (output 0, input 0) by forward mode"
            && (error.analytic - 1.5).abs() < 1e-12,
        "{error}"
    );
}

#[differentiable(vjp = half_wrong_square_vjp, jvp = half_wrong_square_jvp)]
fn half_wrong_square(x: f64) -> f64 {
    x * x
}

fn half_wrong_square_vjp(x: f64, y_bar: f64) -> f64 {
    2.0 * x * y_bar
}

/// Wrong on purpose: d(x²) = 2x·ẋ.
fn half_wrong_square_jvp(x: f64, x_dot: &f64) -> f64 {
    x * x_dot
}

/// A `while` whose condition reads the differentiated value it updates: the trip
/// count depends on `x`, and the derivative is that of the iterations that ran.
#[differentiable]
fn grow_until(x: f64, limit: f64) -> f64 {
    let mut s = x;
    let mut steps = 0.0;
    while s < limit {
        s = s * 1.01 + 0.01 + x * 0.001;
        steps += 1.0;
    }
    s * steps
}

fn grow_until_on_the_tape(x: &Var<f64>, limit: f64) -> (Var<f64>, usize) {
    let mut s = x.clone();
    let mut steps = 0;
    while *s.value() < limit {
        s = s * 1.01 + 0.01 + x * 0.001;
        steps += 1;
    }
    (s * steps as f64, steps)
}

#[test]
fn while_conditions_read_differentiated_values() {
    let x = 0.5;
    let mut trip_counts = Vec::new();
    for limit in [0.1, 0.52, 0.6, 1.0, 3.0, 50.0, 1e4] {
        let (value, (gradient, limit_gradient)) = grow_until::value_and_grad(x, limit);
        let mut steps = 0;
        let (tape_value, tape_gradient) = value_and_grad(
            |x: Var<f64>| {
                let (y, n) = grow_until_on_the_tape(&x, limit);
                steps = n;
                y
            },
            &x,
        );
        trip_counts.push(steps);
        assert_eq!(value, grow_until(x, limit));
        assert!((value - tape_value).abs() < 1e-12 * (1.0 + value.abs()), "limit {limit}");
        assert!(
            (gradient - tape_gradient).abs() < 1e-12 * (1.0 + tape_gradient.abs()),
            "limit {limit}: {gradient} vs {tape_gradient}"
        );
        // The limit only decides when to stop: no derivative flows from it.
        assert_eq!(limit_gradient, 0.0);
        let tangent = grow_until::jvp(x, limit, &1.0, &0.0).1;
        assert!((tangent - gradient).abs() < 1e-12 * (1.0 + gradient.abs()), "limit {limit}");
    }
    assert_eq!(trip_counts[0], 0);
    assert!(trip_counts.windows(2).all(|pair| pair[0] < pair[1]), "{trip_counts:?}");
    assert!(*trip_counts.last().unwrap() > 64, "{trip_counts:?}");
}

/// Newton's iteration for √a, to convergence: the derivative through the iterations
/// is that of √a, and forward over reverse gives the second derivative.
#[differentiable]
fn newton_square_root<T: RealScalar>(a: T) -> T {
    let mut x = a;
    let mut steps = 0;
    while steps < 100 && (x * x - a).abs() > T::from_f64(1e-15) * a {
        x = (x + a / x) * T::from_f64(0.5);
        steps += 1;
    }
    x
}

/// Explicit Euler for ẋ = −kx until time 1, the time a plain variable beside it.
#[differentiable(wrt(k, x0))]
fn euler_decay(k: f64, x0: f64, dt: f64) -> f64 {
    let mut time = 0.0;
    let mut x = x0;
    while time < 1.0 - 1e-9 {
        x = x - dt * k * x;
        time += dt;
    }
    x
}

/// A `while` loop carrying a tensor: rotate until the turned angle passes a bound.
#[differentiable(wrt(v))]
fn rotate_until(v: &Vector<f64, 2>, angle: f64, bound: f64) -> f64 {
    let rotation: Matrix<f64, 2, 2> =
        Matrix::from_array([[angle.cos(), -angle.sin()], [angle.sin(), angle.cos()]]);
    let mut w = v.tanh();
    let mut turned = 0.0;
    while turned < bound {
        w = rotation.matmul(&w).tanh() + v.scale(0.1);
        turned += angle;
    }
    w.dot(&w)
}

#[test]
fn while_loops_agree_with_finite_differences_and_forward_mode() {
    let h = 1e-6;
    for a in [0.3f64, 2.0, 10.0, 1e6] {
        let expected = 0.5 / a.sqrt();
        assert!((newton_square_root::grad(a) - expected).abs() < 1e-12 * expected, "a = {a}");
        assert!((newton_square_root::jvp(a, &1.0).1 - expected).abs() < 1e-12 * expected);
        let second = -0.25 * a.powf(-1.5);
        let hessian = newton_square_root::hessian(a);
        assert!((hessian - second).abs() < 1e-9 * second.abs(), "a = {a}: {hessian} vs {second}");
        assert_eq!(newton_square_root::hvp(a, &1.0), hessian);
    }
    for dt in [0.1, 0.01, 0.001] {
        let (k, x0) = (0.7, 2.0);
        let (gradient_k, gradient_x0) = euler_decay::grad(k, x0, dt);
        let fd_k = (euler_decay(k + h, x0, dt) - euler_decay(k - h, x0, dt)) / (2.0 * h);
        let fd_x0 = (euler_decay(k, x0 + h, dt) - euler_decay(k, x0 - h, dt)) / (2.0 * h);
        assert!((gradient_k - fd_k).abs() < 1e-8, "dt = {dt}: {gradient_k} vs {fd_k}");
        assert!((gradient_x0 - fd_x0).abs() < 1e-8, "dt = {dt}: {gradient_x0} vs {fd_x0}");
        // Adjoint identity: ⟨ȳ, J ẋ⟩ = ⟨Jᵀȳ, ẋ⟩ with ẋ = (0.3, −1.2).
        let tangent = euler_decay::jvp(k, x0, dt, &0.3, &-1.2).1;
        assert!((tangent - (0.3 * gradient_k - 1.2 * gradient_x0)).abs() < 1e-13);
    }
    let v = Vector::from_array([0.4, -0.9]);
    for bound in [0.0, 0.5, 5.0, 30.0] {
        let gradient = rotate_until::grad(&v, 0.3, bound);
        for i in 0..2 {
            let (mut plus, mut minus) = (v, v);
            plus[[i]] += h;
            minus[[i]] -= h;
            let fd = (rotate_until(&plus, 0.3, bound) - rotate_until(&minus, 0.3, bound)) / (2.0 * h);
            assert!((gradient[[i]] - fd).abs() < 1e-8, "bound {bound}: {gradient:?} {fd}");
        }
        let direction = Vector::from_array([0.6, 0.8]);
        let (_, derivative) = rotate_until::jvp(&v, 0.3, bound, &direction);
        assert!((derivative - gradient.dot(&direction)).abs() < 1e-13, "bound {bound}");
    }
}

/// A state of a derived struct, a plain count riding along.
#[derive(Differentiable, Clone, Debug)]
struct Cart {
    position: f64,
    velocity: Vector<f64, 2>,
    #[no_derivative]
    steps: usize,
}

/// One step of a damped, forced cart: a struct literal of differentiated fields, the
/// fields not named from a plain value.
#[differentiable]
fn cart_step(cart: &Cart, force: f64) -> Cart {
    let pushed: Vector<f64, 2> = Vector::from_array([force, force * cart.position]);
    let velocity = cart.velocity.scale(0.9) + pushed.scale(0.1);
    Cart { position: cart.position + 0.1 * velocity.sum(), velocity, ..stop_gradient(cart.clone()) }
}

/// A rollout of steps (a struct carried by a loop) scored at its end, a literal in a
/// branch, and one with a plain field.
#[differentiable]
fn cart_rollout(start: &Cart, force: f64, steps: usize) -> f64 {
    let mut cart = start.clone();
    for _ in 0..steps {
        cart = cart_step(&cart, force);
    }
    let target = if force > 0.0 {
        Cart { position: force * 2.0, velocity: cart.velocity.scale(0.5), steps: 0 }
    } else {
        Cart { position: 1.0, velocity: Vector::from_array([force, 0.0]), steps: 0 }
    };
    let miss = cart.position - target.position;
    miss * miss + cart.velocity.dot(&target.velocity)
}

/// The same rollout over the fields as separate values.
#[differentiable]
fn cart_rollout_by_fields(position: f64, velocity: &Vector<f64, 2>, force: f64, steps: usize) -> f64 {
    let (mut x, mut v) = (position, *velocity);
    for _ in 0..steps {
        let pushed: Vector<f64, 2> = Vector::from_array([force, force * x]);
        v = v.scale(0.9) + pushed.scale(0.1);
        x += 0.1 * v.sum();
    }
    let (target_position, target_velocity) =
        if force > 0.0 { (force * 2.0, v.scale(0.5)) } else { (1.0, Vector::from_array([force, 0.0])) };
    let miss = x - target_position;
    miss * miss + v.dot(&target_velocity)
}

#[test]
fn struct_literals_of_differentiated_fields() {
    let start = Cart { position: 0.4, velocity: Vector::from_array([0.2, -0.3]), steps: 7 };
    let h = 1e-6;
    for (force, steps) in [(0.5, 0), (0.5, 1), (0.5, 12), (-0.7, 12), (0.3, 40)] {
        let (value, (gradient, force_gradient)) = cart_rollout::value_and_grad(&start, force, steps);
        assert_eq!(value, cart_rollout(&start, force, steps));
        // The same derivatives as the function over the fields.
        let (expected, (position, velocity, force_expected)) =
            cart_rollout_by_fields::value_and_grad(start.position, &start.velocity, force, steps);
        assert!((value - expected).abs() < 1e-14);
        assert!((gradient.position - position).abs() < 1e-12, "{steps}: {gradient:?} {position}");
        for i in 0..2 {
            assert!((gradient.velocity[[i]] - velocity[[i]]).abs() < 1e-12, "{gradient:?} {velocity:?}");
        }
        assert!((force_gradient - force_expected).abs() < 1e-12);
        // Finite differences in the force and the position.
        let fd =
            (cart_rollout(&start, force + h, steps) - cart_rollout(&start, force - h, steps)) / (2.0 * h);
        assert!((force_gradient - fd).abs() < 1e-7 * (1.0 + fd.abs()), "{force_gradient} vs {fd}");
        let moved = |d: f64| Cart { position: start.position + d, ..start.clone() };
        let fd = (cart_rollout(&moved(h), force, steps) - cart_rollout(&moved(-h), force, steps)) / (2.0 * h);
        assert!((gradient.position - fd).abs() < 1e-7 * (1.0 + fd.abs()));
        // The adjoint identity along a direction in the state and the force.
        let direction = CartTangent { position: 0.3, velocity: Vector::from_array([-0.5, 0.8]) };
        let (_, tangent) = cart_rollout::jvp(&start, force, steps, &direction, &1.5);
        let paired =
            0.3 * gradient.position + gradient.velocity.dot(&direction.velocity) + 1.5 * force_gradient;
        assert!((tangent - paired).abs() < 1e-12 * (1.0 + paired.abs()), "{tangent} vs {paired}");
    }
    // A function returning the struct: its pullback takes the struct's tangent, and
    // the plain count comes through unchanged.
    let (next, pullback) = cart_step::vjp(&start, 0.5);
    assert_eq!(next.steps, 7);
    let (state_cotangent, force_cotangent) =
        pullback(&CartTangent { position: 1.0, velocity: Vector::from_array([0.5, 0.25]) });
    // By hand: v' = 0.9 v + 0.1 (f, f x), x' = x + 0.1 Σv'.
    let velocity_adjoint = [0.5 + 0.1, 0.25 + 0.1];
    assert!((state_cotangent.position - (1.0 + 0.1 * 0.5 * velocity_adjoint[1])).abs() < 1e-15);
    assert!((state_cotangent.velocity[[0]] - 0.9 * velocity_adjoint[0]).abs() < 1e-15);
    assert!((state_cotangent.velocity[[1]] - 0.9 * velocity_adjoint[1]).abs() < 1e-15);
    let expected = 0.1 * (velocity_adjoint[0] + start.position * velocity_adjoint[1]);
    assert!((force_cotangent - expected).abs() < 1e-15);
    // Forward mode: along the position, x' moves by 1 + 0.1 · 0.1 f and v' by (0, 0.1 f).
    let along_position = CartTangent { position: 1.0, velocity: Vector::zeros() };
    let (jvp_value, jvp_tangent) = cart_step::jvp(&start, 0.5, &along_position, &0.0);
    assert_eq!(jvp_value.position, next.position);
    assert!((jvp_tangent.position - (1.0 + 0.1 * 0.1 * 0.5)).abs() < 1e-15);
    assert_eq!(jvp_tangent.velocity[[0]], 0.0);
    assert!((jvp_tangent.velocity[[1]] - 0.1 * 0.5).abs() < 1e-15);
}

/// A point of a derived struct generic over the scalar, and a tuple struct.
#[derive(Differentiable, Clone, Debug)]
struct Tip<T: RealScalar> {
    x: T,
    y: T,
}

#[derive(Differentiable, Clone, Debug)]
struct Polar<T: RealScalar>(T, T);

/// A pendulum's end on a cart: struct literals inside a scalar-generic function, so
/// forward over reverse gives its Hessian.
#[differentiable]
fn pendulum_energy<T: RealScalar>(q: &Vector<T, 2>) -> T {
    let polar = Polar(q[[1]] * T::from_f64(0.5), q[[0]]);
    let tip = Tip { x: q[[0]] + polar.0 * polar.1.sin(), y: polar.0 * polar.1.cos() };
    tip.x * tip.x * tip.y + tip.y
}

fn pendulum_energy_by_hand(q: [f64; 2]) -> f64 {
    let (x, y) = (q[0] + 0.5 * q[1] * q[0].sin(), 0.5 * q[1] * q[0].cos());
    x * x * y + y
}

#[test]
fn struct_literals_in_scalar_generic_functions_give_hessians() {
    let q = Vector::from_array([0.3, 0.7]);
    let gradient = pendulum_energy::grad(&q);
    let hessian = pendulum_energy::hessian(&q);
    let h = 1e-5;
    for i in 0..2 {
        let (mut plus, mut minus) = ([0.3, 0.7], [0.3, 0.7]);
        plus[i] += h;
        minus[i] -= h;
        let fd = (pendulum_energy_by_hand(plus) - pendulum_energy_by_hand(minus)) / (2.0 * h);
        assert!((gradient[[i]] - fd).abs() < 1e-8, "{i}: {gradient:?} {fd}");
        // Row i of the Hessian: differences of the gradient.
        let (plus, minus) = (Vector::from_array(plus), Vector::from_array(minus));
        let (gradient_plus, gradient_minus) = (pendulum_energy::grad(&plus), pendulum_energy::grad(&minus));
        for j in 0..2 {
            let fd = (gradient_plus[[j]] - gradient_minus[[j]]) / (2.0 * h);
            assert!((hessian[[i, j]] - fd).abs() < 1e-7, "({i}, {j}): {hessian:?} {fd}");
        }
    }
    assert!((hessian[[0, 1]] - hessian[[1, 0]]).abs() < 1e-14, "{hessian:?}");
}

/// A loop bound kept in a `#[no_derivative]` field of a differentiated struct.
#[derive(Differentiable, Clone, Debug)]
struct Repeated {
    w: f64,
    #[no_derivative]
    times: usize,
}

#[differentiable]
fn repeated_product(c: &Repeated, x: f64) -> f64 {
    let mut s = x;
    for _ in 0..c.times {
        s *= c.w;
    }
    s
}

#[test]
fn a_loop_bound_may_be_a_size_field_of_a_differentiated_struct() {
    let c = Repeated { w: 1.5, times: 3 };
    // x·w³: ∂/∂w = 3x·w², ∂/∂x = w³.
    let (gradient, dx) = repeated_product::grad(&c, 0.5);
    assert_eq!((gradient.w, dx), (3.0 * 0.5 * 1.5 * 1.5, 1.5f64.powi(3)));
    assert_eq!(repeated_product::jvp(&c, 0.5, &RepeatedTangent { w: 1.0 }, &0.0).1, gradient.w);
}

/// Plain variables a rerun loop reads, changed other than by `=`: through an
/// element, `%=`, `mem::swap`, a method.
#[differentiable(wrt(x))]
fn element_assigned_after(x: f64, n: usize) -> f64 {
    let mut c = [2.0, 3.0];
    let mut s = x;
    for _ in 0..n {
        s *= c[0];
    }
    c[0] = 5.0;
    s * c[1]
}

#[differentiable(wrt(x))]
fn remainder_in_the_body(x: f64, n: usize) -> f64 {
    let mut c = 3.7;
    let mut s = x;
    for _ in 0..n {
        s *= c;
        c %= 2.0;
    }
    s
}

#[differentiable(wrt(x))]
fn swapped_after(x: f64, n: usize) -> f64 {
    let (mut a, mut b) = (2.0, 3.0);
    let mut s = x;
    for _ in 0..n {
        s *= a;
    }
    core::mem::swap(&mut a, &mut b);
    s * a
}

#[differentiable(wrt(x))]
fn pushed_in_the_body(x: f64, n: usize) -> f64 {
    let mut seen: Vec<f64> = Vec::new();
    let mut s = x;
    for _ in 0..n {
        s *= 1.0 + seen.len() as f64;
        seen.push(1.0);
    }
    s
}

/// A `let` shadowing a variable the loop body or arm had just assigned.
#[differentiable(wrt(x))]
fn shadowed_after_assignment(x: f64, n: usize) -> f64 {
    let mut s = x;
    let mut k = 1.0;
    for _ in 0..n {
        k += 1.0;
        s = s * 1.5 * k;
        let s = 2.0;
        let k = s * x;
        let _ = k;
    }
    s * k
}

#[differentiable(wrt(x))]
fn shadowed_in_an_arm(x: f64, c: bool) -> f64 {
    let mut k = 1.0;
    let y = if c {
        k += 1.0;
        let k = x * 2.0;
        k * x
    } else {
        x
    };
    y * k
}

/// A rerun loop in an arm reading the arm's own plain local; a reference variable
/// moved along a slice.
#[differentiable(wrt(x))]
fn loop_in_an_arm(x: f64, n: usize) -> f64 {
    let y = if n > 2 {
        let m = 1.0 + n as f64 * 0.1;
        let mut s = x;
        for _ in 0..n {
            s = (s * m).sin() + x;
        }
        s
    } else {
        x
    };
    y * x
}

#[differentiable(wrt(x))]
fn walks_a_slice(x: f64, weights: &[f64], n: usize) -> f64 {
    let mut rest: &[f64] = weights;
    let mut s = x;
    for _ in 0..n {
        s *= rest[0];
        rest = &rest[1..];
    }
    s
}

/// A literal loop over large inline values, rerun from checkpoints.
#[differentiable(wrt(v))]
fn long_loop_over_a_large_vector(v: &Vector<f64, 256>) -> f64 {
    let mut w = *v;
    for _ in 0..500 {
        w = (w.scale(0.9) + v).tanh();
    }
    w.sum()
}

#[test]
fn rerun_loops_and_shadowing_lets_read_each_variable_as_it_was() {
    let x = 0.7;
    let cases: [(&str, fn(f64) -> (f64, f64), fn(f64) -> f64, fn(f64) -> f64, f64); 4] = [
        (
            "element",
            |x| element_assigned_after::value_and_grad(x, 2),
            |x| element_assigned_after(x, 2),
            |x| element_assigned_after::jvp(x, 2, &1.0).1,
            12.0,
        ),
        (
            "remainder",
            |x| remainder_in_the_body::value_and_grad(x, 2),
            |x| remainder_in_the_body(x, 2),
            |x| remainder_in_the_body::jvp(x, 2, &1.0).1,
            3.7 * 1.7,
        ),
        (
            "swap",
            |x| swapped_after::value_and_grad(x, 2),
            |x| swapped_after(x, 2),
            |x| swapped_after::jvp(x, 2, &1.0).1,
            12.0,
        ),
        (
            "push",
            |x| pushed_in_the_body::value_and_grad(x, 2),
            |x| pushed_in_the_body(x, 2),
            |x| pushed_in_the_body::jvp(x, 2, &1.0).1,
            2.0,
        ),
    ];
    for (name, value_and_grad, plain, tangent, expected) in cases {
        let (value, gradient) = value_and_grad(x);
        assert_eq!(value, plain(x), "{name}");
        assert!(
            (gradient - expected).abs() < 1e-12 && (tangent(x) - expected).abs() < 1e-12,
            "{name}: {gradient}"
        );
    }
    for n in [1, 3] {
        let (value, gradient) = shadowed_after_assignment::value_and_grad(x, n);
        assert_eq!(value, shadowed_after_assignment(x, n));
        // s = x·1.5ⁿ·(n + 1)!, k = n + 1.
        let expected = 1.5f64.powi(n as i32) * (1..=n + 1).product::<usize>() as f64 * (n + 1) as f64;
        assert!((gradient - expected).abs() < 1e-12 * expected, "n = {n}: {gradient} vs {expected}");
    }
    // y = 2x², k = 2.
    assert_eq!(shadowed_in_an_arm::value_and_grad(x, true), (shadowed_in_an_arm(x, true), 8.0 * x));
    for n in [3, 4, 40] {
        let (value, gradient) = loop_in_an_arm::value_and_grad(x, n);
        assert_eq!(value, loop_in_an_arm(x, n));
        let tangent = loop_in_an_arm::jvp(x, n, &1.0).1;
        assert!(
            (gradient - tangent).abs() < 1e-9 * (1.0 + tangent.abs()),
            "n = {n}: {gradient} vs {tangent}"
        );
    }
    assert_eq!(walks_a_slice::grad(x, &[1.0, 2.0, 3.0, 4.0], 3), 6.0);
    let v = Vector::from_fn(|[i]| (i as f64 * 0.37).sin());
    let gradient = long_loop_over_a_large_vector::grad(&v);
    let direction = Vector::from_fn(|[i]| (i as f64 * 0.11).cos());
    let along: f64 = gradient.iter().zip(direction.iter()).map(|(g, d)| g * d).sum();
    assert!(
        (long_loop_over_a_large_vector::jvp(&v, &direction).1 - along).abs() < 1e-10 * (1.0 + along.abs())
    );
}

/// `let (a, b) = (e1, e2)` evaluates both elements before binding either.
#[differentiable]
fn swapped_by_a_tuple(x: f64, y: f64) -> f64 {
    let (x, y) = (y, x * 2.0);
    x - y
}

#[differentiable]
fn plain_rebound_in_a_tuple(x: f64, y: f64) -> f64 {
    let k = 1.0;
    let (k, z) = (k + 1.0, x * k);
    z * k + y
}

/// Conditions stay lazy: `&&` guards an index, a `match` guard reads its pattern's
/// name.
#[differentiable(wrt(v))]
fn guarded_index(v: &Vector<f64, 3>, n: usize) -> f64 {
    if n < 3 && v[[n]] > 0.0 { v[[0]] * 2.0 } else { v.sum() }
}

#[differentiable(wrt(v))]
fn guard_reads_its_binding(v: &Vector<f64, 3>, n: usize) -> f64 {
    let k = 0;
    let _ = k;
    match n {
        k if v[[k]] > 0.0 => v[[k]] * 2.0,
        _ => v.sum(),
    }
}

/// A run-time loop inside a literal one, reading the outer loop's variable and its
/// body's plain local; an `if let` binding named like the differentiated variable.
#[differentiable(wrt(x))]
fn inner_loop_reads_the_outer_body(x: f64, n: usize, weights: &[f64]) -> f64 {
    let mut s = x;
    for i in 0..3 {
        let w = (i + 1) as f64;
        for _ in 0..n {
            s = s * w + 0.01 * i as f64;
        }
    }
    let mut total = 0.0;
    if let Some(x) = weights.first() {
        total += *x;
    }
    s * total
}

#[test]
fn tuples_conditions_and_nested_loops_keep_the_plain_function_s_meaning() {
    assert_eq!(swapped_by_a_tuple::value_and_grad(1.0, 5.0), (swapped_by_a_tuple(1.0, 5.0), (-2.0, 1.0)));
    assert_eq!(
        plain_rebound_in_a_tuple::value_and_grad(0.5, 3.0),
        (plain_rebound_in_a_tuple(0.5, 3.0), (2.0, 1.0))
    );
    let v = Vector::from_array([1.0, -2.0, 3.0]);
    for n in [0, 1, 5] {
        let (value, gradient) = guarded_index::value_and_grad(&v, n);
        assert_eq!(value, guarded_index(&v, n), "n = {n}");
        let expected = if n < 3 && v[[n]] > 0.0 { [2.0, 0.0, 0.0] } else { [1.0; 3] };
        assert_eq!(gradient.to_array(), expected, "n = {n}");
    }
    for n in [1, 2] {
        let (value, gradient) = guard_reads_its_binding::value_and_grad(&v, n);
        assert_eq!(value, guard_reads_its_binding(&v, n), "n = {n}");
        let expected =
            if v[[n]] > 0.0 { core::array::from_fn(|i| if i == n { 2.0 } else { 0.0 }) } else { [1.0; 3] };
        assert_eq!(gradient.to_array(), expected, "n = {n}");
    }
    for n in [0, 2, 20] {
        let (value, gradient) = inner_loop_reads_the_outer_body::value_and_grad(0.7, n, &[2.0]);
        assert_eq!(value, inner_loop_reads_the_outer_body(0.7, n, &[2.0]));
        // ds/dx = (1·2·3)ⁿ, times the total 2.
        assert!((gradient - 2.0 * 6f64.powi(n as i32)).abs() < 1e-9 * gradient.abs(), "n = {n}: {gradient}");
    }
}

/// Conditions reading a parameter under another name (`let x = y;`, a tuple swap,
/// an alias of a reference parameter, a reference to a local, in a guard), and a
/// loop body ending in a plain expression without a semicolon.
#[allow(unused_variables)] // `x` shadowed before any read: the case under test
#[differentiable]
fn condition_on_a_renamed_parameter(x: f64, y: f64) -> f64 {
    let x = y;
    if x > 0.0 { x * 2.0 } else { x * 5.0 }
}

#[differentiable]
fn condition_after_a_swap(x: f64, y: f64) -> f64 {
    let (x, y) = (y, x);
    if x > 0.0 { x * y } else { y }
}

#[differentiable]
fn condition_on_aliases(v: &Vector<f64, 2>, y: f64) -> f64 {
    let w = v;
    let z = w.sum() * y;
    let r = &z;
    let t = y;
    let first = if w[[0]] > 0.0 && *r > 0.0 { w.dot(w) } else { z };
    match 1usize {
        _ if t > 0.0 => first * t,
        _ => first,
    }
}

#[differentiable]
fn loop_body_ending_without_a_semicolon(x: f64, n: usize) -> f64 {
    let mut s = x;
    let mut count = 1.0;
    for i in 0..n {
        s *= x;
        if i == 0 { count += 1.0 } else { count += 2.0 }
    }
    for _ in 0..3 {
        s *= 0.5;
        count += 1.0
    }
    s * count
}

#[test]
fn conditions_read_renamed_parameters_and_loop_bodies_keep_their_last_expression() {
    assert_eq!(condition_on_a_renamed_parameter::value_and_grad(-1.0, 2.0), (4.0, (0.0, 2.0)));
    assert_eq!(condition_after_a_swap::value_and_grad(-1.0, 2.0), (-2.0, (2.0, -1.0)));
    let v = Vector::from_array([1.0, 2.0]);
    for y in [2.0, -2.0] {
        let (value, (gradient, dy)) = condition_on_aliases::value_and_grad(&v, y);
        assert_eq!(value, condition_on_aliases(&v, y), "y = {y}");
        // y > 0: (v·v)·y; y < 0: z = Σv·y.
        let expected = if y > 0.0 { ([2.0 * y, 4.0 * y], 5.0) } else { ([y, y], 3.0) };
        assert_eq!((gradient.to_array(), dy), expected, "y = {y}");
    }
    for n in [0, 1, 3] {
        let (value, gradient) = loop_body_ending_without_a_semicolon::value_and_grad(0.5, n);
        assert_eq!(value, loop_body_ending_without_a_semicolon(0.5, n), "n = {n}");
        // s = xⁿ⁺¹/8 with count = 1 + (2n − 1 for n > 0) + 3.
        let count = 4.0 + if n > 0 { 2.0 * n as f64 - 1.0 } else { 0.0 };
        let expected = (n + 1) as f64 * 0.5f64.powi(n as i32) / 8.0 * count;
        assert!((gradient - expected).abs() < 1e-15, "n = {n}: {gradient} vs {expected}");
    }
}

/// The float functions of `f32`/`f64` that `RealScalar` lacks, on concrete scalars.
#[differentiable]
fn float_functions(x: f64) -> f64 {
    x.recip()
        + x.cbrt()
        + x.sinh() * x.cosh()
        + x.asinh()
        + (x + 1.5).acosh()
        + (x * 0.5).atanh()
        + x.ln_1p()
        + x.exp_m1()
        + x.exp2()
        + x.log2()
        + x.log10()
}

#[differentiable]
fn float_functions_f32(x: f32) -> f32 {
    x.sinh() * x.recip()
}

/// Angles as robotics code writes them: degrees, wrapped to [0, 2π) by
/// `rem_euclid`, the associated-function forms (`f64::atan2(y, x)`), a sign, and
/// the piecewise-constant roundings (derivative 0 between their jumps).
#[differentiable]
fn wrapped_heading(x: f64, y: f64) -> f64 {
    let heading = f64::atan2(y, x).rem_euclid(2.0 * std::f64::consts::PI);
    let degrees = heading.to_degrees();
    let steps = (degrees / 15.0).floor() + (degrees / 7.0).ceil() + degrees.round() + degrees.trunc();
    f64::sin(heading) * degrees.fract()
        + steps * 0.01
        + y.signum() * x * f64::hypot(x, y)
        + (degrees * 0.5).to_radians()
}

/// `rem_euclid` with a differentiated divisor: r = a − b·q, so ∂r/∂b = −q.
#[differentiable]
fn remainder(a: f64, b: f64) -> f64 {
    a.rem_euclid(b)
}

#[test]
fn float_functions_of_concrete_scalars_differentiate() {
    for x in [0.3, 0.7, 1.2] {
        let h = 1e-6;
        let difference = (float_functions(x + h) - float_functions(x - h)) / (2.0 * h);
        let (value, gradient) = float_functions::value_and_grad(x);
        assert_eq!(value, float_functions(x));
        assert!(
            (gradient - difference).abs() < 1e-7 * (1.0 + difference.abs()),
            "at {x}: {gradient} vs {difference}"
        );
        assert!((float_functions::jvp(x, &1.0).1 - gradient).abs() < 1e-14 * gradient.abs());
    }
    let h = 1e-7;
    for (x, y) in [(0.3, 0.4), (-0.8, 0.35), (-0.5, -1.2), (0.9, -0.2)] {
        let (gradient_x, gradient_y) = wrapped_heading::grad(x, y);
        let fd_x = (wrapped_heading(x + h, y) - wrapped_heading(x - h, y)) / (2.0 * h);
        let fd_y = (wrapped_heading(x, y + h) - wrapped_heading(x, y - h)) / (2.0 * h);
        assert!((gradient_x - fd_x).abs() < 1e-6 * (1.0 + fd_x.abs()), "({x}, {y}): {gradient_x} vs {fd_x}");
        assert!((gradient_y - fd_y).abs() < 1e-6 * (1.0 + fd_y.abs()), "({x}, {y}): {gradient_y} vs {fd_y}");
        let tangent = wrapped_heading::jvp(x, y, &0.6, &-0.8).1;
        assert!((tangent - (0.6 * gradient_x - 0.8 * gradient_y)).abs() < 1e-12 * (1.0 + tangent.abs()));
    }
    for (a, b) in [(7.3, 2.0), (-7.3, 2.0), (7.3, -2.0), (0.5, 3.0)] {
        let (gradient_a, gradient_b) = remainder::grad(a, b);
        let fd_b = (remainder(a, b + h) - remainder(a, b - h)) / (2.0 * h);
        assert_eq!(gradient_a, 1.0);
        assert!((gradient_b - fd_b).abs() < 1e-6, "({a}, {b}): {gradient_b} vs {fd_b}");
    }
    // (sinh x / x)′ = cosh x / x − sinh x / x².
    let x = 0.5f32;
    let expected = x.cosh() / x - x.sinh() / (x * x);
    assert!((float_functions_f32::grad(x) - expected).abs() < 1e-6);
}

/// A leapfrog-like update written as a tuple assignment, over observations iterated
/// straight from a slice and an array reference.
#[differentiable(wrt(x0, v0))]
fn tuple_assigned_orbit(x0: f64, v0: f64, times: &[f64], weights: &[f64; 3]) -> f64 {
    let (mut x, mut v) = (x0, v0);
    for &dt in times {
        (x, v) = (x + dt * v, v - dt * x);
    }
    let mut score = 0.0;
    for w in weights {
        (score, x) = (score + *w * x, x * 0.5);
    }
    score + v
}

/// Items of a loop over references, `&f64`, in arithmetic as Rust takes them
/// (`s * w`, `d * x`).
#[differentiable(wrt(x))]
fn reference_items(x: f64, weights: &[f64; 3], data: &[f64]) -> f64 {
    let mut s = x;
    for w in weights {
        s = s * w + w;
    }
    for d in data {
        s += d * x;
    }
    s
}

#[test]
fn loop_items_that_are_references_enter_arithmetic() {
    // s = ((x·2 + 2)·3 + 3)·4 + 4 + 3x: ds/dx = 24 + 3.
    let gradient = reference_items::grad(0.5, &[2.0, 3.0, 4.0], &[1.0, 2.0]);
    assert_eq!(gradient, 27.0);
    assert_eq!(reference_items::jvp(0.5, &[2.0, 3.0, 4.0], &[1.0, 2.0], &1.0).1, 27.0);
}

#[test]
fn tuple_assignments_and_loops_over_references() {
    let times = [0.1, 0.2, 0.15, 0.05];
    let weights = [0.5, -1.0, 2.0];
    let (x0, v0, h) = (0.7, -0.3, 1e-6);
    let (gradient_x, gradient_v) = tuple_assigned_orbit::grad(x0, v0, &times, &weights);
    let fd_x = (tuple_assigned_orbit(x0 + h, v0, &times, &weights)
        - tuple_assigned_orbit(x0 - h, v0, &times, &weights))
        / (2.0 * h);
    let fd_v = (tuple_assigned_orbit(x0, v0 + h, &times, &weights)
        - tuple_assigned_orbit(x0, v0 - h, &times, &weights))
        / (2.0 * h);
    assert!((gradient_x - fd_x).abs() < 1e-8, "{gradient_x} vs {fd_x}");
    assert!((gradient_v - fd_v).abs() < 1e-8, "{gradient_v} vs {fd_v}");
    let tangent = tuple_assigned_orbit::jvp(x0, v0, &times, &weights, &1.0, &2.0).1;
    assert!((tangent - (gradient_x + 2.0 * gradient_v)).abs() < 1e-13);
    // The swap reads the old values: a plain simulation of the same updates.
    let (mut x, mut v) = (x0, v0);
    for dt in times {
        (x, v) = (x + dt * v, v - dt * x);
    }
    let mut score = 0.0;
    for w in weights {
        (score, x) = (score + w * x, x * 0.5);
    }
    assert_eq!(tuple_assigned_orbit::value_and_grad(x0, v0, &times, &weights).0, score + v);
}

/// Block expressions: their names stay inside (the outer plain `t` is 3 after the
/// block that binds its own), in straight-line code and in a rerun loop.
#[differentiable(wrt(x, y))]
fn block_values(x: f64, y: f64, n: usize) -> f64 {
    let t = 3.0;
    let a = {
        let t = x * y;
        let u = t.sin();
        u * t
    };
    let mut s = a;
    for _ in 0..n {
        s = {
            let t = s * 0.5;
            t.cos() + x
        };
    }
    s * (x + t)
}

#[test]
fn block_expressions_keep_their_names_inside() {
    let h = 1e-6;
    for n in [0, 3, 40] {
        let (x, y) = (0.4, 0.9);
        let (gradient_x, gradient_y) = block_values::grad(x, y, n);
        let fd_x = (block_values(x + h, y, n) - block_values(x - h, y, n)) / (2.0 * h);
        let fd_y = (block_values(x, y + h, n) - block_values(x, y - h, n)) / (2.0 * h);
        assert!((gradient_x - fd_x).abs() < 1e-8, "{n}: {gradient_x} vs {fd_x}");
        assert!((gradient_y - fd_y).abs() < 1e-8, "{n}: {gradient_y} vs {fd_y}");
        let (value, tangent) = block_values::jvp(x, y, n, &0.5, &-1.0);
        assert_eq!(value, block_values(x, y, n));
        assert!((tangent - (0.5 * gradient_x - gradient_y)).abs() < 1e-13);
    }
}

/// `if let` with an `else`, chained: the arm that ran is differentiated, as a
/// `match` would.
#[differentiable(wrt(x))]
fn optional_gain(x: f64, gain: Option<f64>, mode: Result<f64, u8>) -> f64 {
    let a = if let Some(g) = gain {
        x * g
    } else if let Ok(k) = mode {
        x.sin() * k
    } else {
        x * x
    };
    a + x
}

#[test]
fn if_let_differentiates_the_arm_that_ran() {
    let x = 0.5;
    for (gain, mode, expected) in
        [(Some(3.0), Ok(1.0), 3.0 + 1.0), (None, Ok(2.0), 2.0 * x.cos() + 1.0), (None, Err(1), 2.0 * x + 1.0)]
    {
        let (value, gradient) = optional_gain::value_and_grad(x, gain, mode);
        assert_eq!(value, optional_gain(x, gain, mode));
        assert!((gradient - expected).abs() < 1e-15, "{gain:?} {mode:?}: {gradient}");
        assert!((optional_gain::jvp(x, gain, mode, &1.0).1 - expected).abs() < 1e-15);
    }
}

/// Methods named like a `Cell`'s on values that are no `Cell` (a string's `replace`,
/// an iterator's `take`, a type of the user's called `Cell` or `AtomicMass`), a
/// tuple assignment to `_`, and `T::sqrt(x)` of the scalar type parameter.
mod names_like_std {
    use super::*;

    #[derive(Clone, Copy)]
    pub struct Cell {
        pub weight: f64,
    }

    impl Cell {
        fn set(&self, weight: f64) -> Cell {
            Cell { weight: self.weight + weight }
        }
    }

    pub struct AtomicMass(pub f64);

    /// A generic type of the user's named `Cell`, and a `RefCell` only read.
    pub mod mesh {
        pub struct Cell<T>(pub Vec<T>);
    }

    #[differentiable(wrt(x))]
    pub fn read_only_cells(x: f64, grid: &mesh::Cell<f64>, scale: &std::cell::RefCell<f64>) -> f64 {
        let mut s = x;
        for c in grid.0.iter() {
            s = s * *c + *scale.borrow();
        }
        s
    }

    #[differentiable(wrt(x))]
    pub fn no_interior_mutability(x: f64, name: &str, cell: Cell, mass: &AtomicMass, weights: &[f64]) -> f64 {
        let label = name.replace('-', "_");
        let heavier = cell.set(1.0);
        let mut s = x * heavier.weight * mass.0 + label.len() as f64;
        let it = weights.iter();
        for w in it.take(2) {
            s *= *w;
        }
        let mut unused = 0.0;
        (s, unused) = (s * x, unused + 1.0);
        (_, s) = (unused, s + x);
        s
    }
}

#[differentiable]
fn generic_norm<T: RealScalar>(x: T, y: T) -> T {
    T::sqrt(x * x + y * y) + T::sin(x) * T::atan2(y, x)
}

#[test]
fn names_like_interior_mutability_and_associated_scalar_functions() {
    let (x, h) = (0.7, 1e-6);
    let weights = [2.0, 3.0, 5.0];
    use names_like_std::{AtomicMass, Cell, no_interior_mutability};
    let f = |x: f64| no_interior_mutability(x, "a-b", Cell { weight: 0.5 }, &AtomicMass(2.0), &weights);
    let gradient = no_interior_mutability::grad(x, "a-b", Cell { weight: 0.5 }, &AtomicMass(2.0), &weights);
    // s = (3x + 3)·6·x + x.
    assert!((f(x) - ((3.0 * x + 3.0) * 6.0 * x + x)).abs() < 1e-12);
    assert!((gradient - (36.0 * x + 18.0 + 1.0)).abs() < 1e-12, "{gradient}");
    assert!((gradient - (f(x + h) - f(x - h)) / (2.0 * h)).abs() < 1e-6);
    let grid = names_like_std::mesh::Cell(vec![2.0, 3.0]);
    let scale = std::cell::RefCell::new(0.5);
    assert_eq!(names_like_std::read_only_cells::grad(0.7, &grid, &scale), 6.0);
    let (gradient_x, gradient_y) = generic_norm::grad(0.3, 0.4);
    let by_hand = |x: f64, y: f64| (x * x + y * y).sqrt() + x.sin() * y.atan2(x);
    let fd_x = (by_hand(0.3 + h, 0.4) - by_hand(0.3 - h, 0.4)) / (2.0 * h);
    let fd_y = (by_hand(0.3, 0.4 + h) - by_hand(0.3, 0.4 - h)) / (2.0 * h);
    assert!((gradient_x - fd_x).abs() < 1e-8 && (gradient_y - fd_y).abs() < 1e-8);
}

/// A differentiated parameter's name reused after it is read: by a plain `let`
/// (of another type too), inside a rerun loop; and parameters named like the
/// companions' own (`q` with `q_dot`, `gradient`, `direction`).
#[differentiable]
fn parameter_name_reused(x: f64, y: f64, v: &Vector<f64, 3>) -> f64 {
    let z = x * y * v.sum();
    let y = 10.0;
    let v = 2usize;
    z + y * v as f64
}

#[differentiable(wrt(x, y))]
fn parameter_name_reused_in_a_loop(x: f64, y: f64, n: usize) -> f64 {
    let mut s = x;
    for _ in 0..n {
        s *= y;
        let y = 0.5;
        s += y;
    }
    s
}

#[differentiable]
fn lagrangian(q: f64, q_dot: f64) -> f64 {
    0.5 * q_dot * q_dot - 0.5 * q * q
}

#[differentiable]
fn named_like_companion_arguments<T: RealScalar>(gradient: &Vector<T, 2>, direction: T) -> T {
    gradient.dot(gradient) * direction
}

/// A condition in a rerun loop on a parameter whose name a later `let` reuses.
#[differentiable(wrt(x))]
fn condition_on_a_parameter_reused_later(x: f64, n: usize) -> f64 {
    let mut s = x;
    for _ in 0..n {
        let t = if x > 1.0 { s * x } else { s + x };
        s = t;
    }
    let x = 0.5;
    s + x
}

#[test]
fn reused_parameter_names_and_companion_argument_names_differentiate() {
    let v = Vector::from_array([1.0, 2.0, 3.0]);
    let (value, (dx, dy, dv)) = parameter_name_reused::value_and_grad(0.5, 2.0, &v);
    assert_eq!(value, parameter_name_reused(0.5, 2.0, &v));
    assert_eq!((dx, dy, dv.to_array()), (12.0, 3.0, [1.0; 3]));
    for n in [0, 1, 3, 40] {
        let (x, y) = (0.7, 0.9);
        let (value, (dx, dy)) = parameter_name_reused_in_a_loop::value_and_grad(x, y, n);
        assert_eq!(value, parameter_name_reused_in_a_loop(x, y, n));
        let (_, tx) = parameter_name_reused_in_a_loop::jvp(x, y, n, &1.0, &0.0);
        let (_, ty) = parameter_name_reused_in_a_loop::jvp(x, y, n, &0.0, &1.0);
        assert!((dx - tx).abs() < 1e-12 && (dy - ty).abs() < 1e-12, "n = {n}");
    }
    for n in [1, 3, 20] {
        // xⁿ⁺¹ + 0.5 for x > 1.
        let expected = (n + 1) as f64 * 2f64.powi(n as i32);
        assert_eq!(condition_on_a_parameter_reused_later::grad(2.0, n), expected, "n = {n}");
    }
    assert_eq!(lagrangian::value_and_grad(1.0, 2.0), (1.5, (-1.0, 2.0)));
    assert_eq!(lagrangian::jvp(1.0, 2.0, &1.0, &0.0).1, -1.0);
    let g = Vector::from_array([1.0, 2.0]);
    let mut gradient = (Vector::zeros(), 0.0);
    assert_eq!(named_like_companion_arguments::value_and_grad_into(&g, 3.0, &mut gradient), 15.0);
    assert_eq!((gradient.0.to_array(), gradient.1), ([6.0, 12.0], 5.0));
}

/// `outer` of two vectors, real and complex, against the tape and forward mode.
#[differentiable]
fn outer_products(a: &Vector<f64, 3>, b: &Vector<f64, 2>) -> f64 {
    let m = a.outer(b);
    let w = Vector::from_array([0.5, -1.5]);
    m.matmul(&w).tanh().sum() + m.hadamard(&m).sum()
}

#[differentiable]
fn complex_outer(a: &Vector<Complex64, 2>, b: &Vector<Complex64, 2>) -> f64 {
    a.outer(b).norm_sqr().sum() + a.outer(b).re().sum()
}

#[test]
fn outer_products_differentiate_as_on_the_tape() {
    let (a, b) = (Vector::from_array([0.3, -0.7, 1.1]), Vector::from_array([0.9, 0.4]));
    let (value, (da, db)) = outer_products::value_and_grad(&a, &b);
    let (tape_value, (ta, tb)) = value_and_grad(
        |(a, b): (Var<Vector<f64, 3>>, Var<Vector<f64, 2>>)| {
            let m = a.outer(&b);
            m.matmul(&Vector::from_array([0.5, -1.5])).tanh().sum() + m.hadamard(&m).sum()
        },
        &(a, b),
    );
    assert!((value - tape_value).abs() < 1e-14);
    for (static_mode, tape) in da.iter().zip(ta.iter()).chain(db.iter().zip(tb.iter())) {
        assert!((static_mode - tape).abs() < 1e-13, "{static_mode} vs {tape}");
    }
    let (ad, bd) = (Vector::from_array([1.0, 0.5, -0.5]), Vector::from_array([0.2, -1.0]));
    let along: f64 = da.iter().zip(ad.iter()).chain(db.iter().zip(bd.iter())).map(|(g, d)| g * d).sum();
    assert!((outer_products::jvp(&a, &b, &ad, &bd).1 - along).abs() < 1e-12);

    let a = Vector::from_array([Complex64::new(0.3, -0.4), Complex64::new(-1.0, 0.5)]);
    let b = Vector::from_array([Complex64::new(0.7, 0.2), Complex64::new(0.1, -0.9)]);
    let (da, db) = complex_outer::grad(&a, &b);
    let (ta, tb) = fluxion::autodiff::grad(
        |(a, b): (Var<Vector<Complex64, 2>>, Var<Vector<Complex64, 2>>)| {
            let m = a.outer(&b);
            m.norm_sqr().sum() + m.re().sum()
        },
        &(a, b),
    );
    for (static_mode, tape) in da.iter().zip(ta.iter()).chain(db.iter().zip(tb.iter())) {
        assert!((static_mode - tape).norm() < 1e-13, "{static_mode} vs {tape}");
    }
    // Forward and reverse agree: ẏ = Re⟨ā, ȧ⟩ + Re⟨b̄, ḃ⟩.
    let (ad, bd) = (
        Vector::from_array([Complex64::new(1.0, 0.2); 2]),
        Vector::from_array([Complex64::new(-0.5, 0.7); 2]),
    );
    let along: f64 =
        da.iter().zip(ad.iter()).chain(db.iter().zip(bd.iter())).map(|(g, d)| (g.conj() * d).re).sum();
    assert!((complex_outer::jvp(&a, &b, &ad, &bd).1 - along).abs() < 1e-12);
}

/// A plain point, its field and method named like a differentiated variable.
#[derive(Clone, Copy)]
struct Point {
    x: f64,
    y: f64,
}

impl Point {
    fn x(&self) -> f64 {
        self.x
    }
}

/// `x` is differentiated; the closure's own `x`, the field and method names `x` and
/// the struct literal's field `x` are plain code.
#[differentiable(wrt(x))]
fn names_like_a_differentiated_variable(x: f64, weights: &[f64], p: &Point) -> f64 {
    let total: f64 = weights.iter().map(|x| x * 2.0).sum();
    let q = Point { x: 2.0, y: p.y };
    let shifted = {
        let x = q.x() + 1.0;
        x * x
    };
    x * total + x * (p.x + q.x() + q.y) + shifted
}

#[test]
fn plain_code_may_bind_and_name_members_like_a_differentiated_variable() {
    let (p, weights) = (Point { x: 0.5, y: 0.25 }, [1.0, 2.0]);
    let (value, gradient) = names_like_a_differentiated_variable::value_and_grad(0.7, &weights, &p);
    assert_eq!(value, names_like_a_differentiated_variable(0.7, &weights, &p));
    assert_eq!(gradient, 6.0 + 2.75);
    assert_eq!(names_like_a_differentiated_variable::jvp(0.7, &weights, &p, &1.0).1, gradient);
}

/// A function whose generic parameter no argument determines, and a caller naming
/// it with a turbofish.
#[differentiable]
fn times_count<const N: usize>(x: f64) -> f64 {
    x * x * N as f64
}

#[differentiable]
fn calls_with_a_turbofish(x: f64) -> f64 {
    times_count::<3>(x) + x
}

#[test]
fn generic_arguments_no_argument_determines_are_named_on_the_companions() {
    let x = 0.7;
    // The companion's own generic parameters (the output type) follow, inferred.
    assert_eq!(times_count::value_and_grad::<3, _>(x), (times_count::<3>(x), 6.0 * x));
    assert_eq!(times_count::jvp::<3>(x, &2.0).1, 12.0 * x);
    assert_eq!(calls_with_a_turbofish::value_and_grad(x), (calls_with_a_turbofish(x), 6.0 * x + 1.0));
    assert_eq!(calls_with_a_turbofish::jvp(x, &1.0).1, 6.0 * x + 1.0);
    let (_, pullback) = calls_with_a_turbofish::vjp(x);
    assert_eq!(pullback(&1.0), 6.0 * x + 1.0);
}

/// A method taking `self` by value, of a type that is not `Copy` (a `String` field).
#[derive(Clone, Debug, Differentiable)]
struct Labelled {
    w: Vector<f64, 2>,
    #[no_derivative]
    label: String,
}

impl Labelled {
    #[differentiable]
    fn quadratic(self, x: f64) -> f64 {
        let n = self.label.len() as f64;
        self.w[[0]] * x * x + self.w[[1]] * x * n
    }
}

#[test]
fn a_method_taking_a_non_copy_self_by_value_differentiates_in_every_mode() {
    let model = Labelled { w: Vector::from_array([1.5, -0.5]), label: "ab".into() };
    let x = 0.7;
    let (value, (gradient, dx)) = model.clone().quadratic_value_and_grad(x);
    assert_eq!(value, model.clone().quadratic(x));
    // f = w₀x² + 2w₁x: ∂f/∂w = (x², 2x), ∂f/∂x = 2w₀x + 2w₁.
    assert_eq!(gradient.w.to_array(), [x * x, 2.0 * x]);
    assert!((dx - (2.0 * 1.5 * x - 1.0)).abs() < 1e-15);
    let (_, pullback) = model.clone().quadratic_vjp(x);
    assert_eq!(pullback(&2.0).1, 2.0 * dx, "the pullback is called twice");
    assert_eq!(pullback(&1.0).1, dx);
    let direction = LabelledTangent { w: Vector::from_array([1.0, 0.0]) };
    let (_, tangent) = model.clone().quadratic_jvp(x, &direction, &0.0);
    assert_eq!(tangent, x * x);
}

/// A recurrent cell: its fields read inside loops, branches and after them.
#[derive(Differentiable, Clone, Debug)]
struct Cell {
    w: Vector<f64, 3>,
    u: f64,
    out: Vector<f64, 3>,
}

/// One field read only in a loop, another only after it.
#[differentiable]
fn field_in_a_loop_and_one_after(c: &Cell) -> f64 {
    let mut x = 0.0;
    for i in 0..3 {
        x += c.w[[i]];
    }
    x + c.u
}

/// 20 iterations (their values kept in an array), a field read before the loop too.
#[differentiable]
fn fields_across_a_long_loop(c: &Cell) -> f64 {
    let start = c.u;
    let mut h = start;
    for k in 0..20 {
        h = (h * c.u + c.w[[k % 3]]).tanh();
    }
    h + c.out[[0]] * start
}

/// A trip count known only when it runs (the loop is rerun for its reverse sweep).
#[differentiable(wrt(c))]
fn fields_across_a_loop_of_n(c: &Cell, n: usize) -> f64 {
    let mut x = 0.5;
    for _ in 0..n {
        x = x * c.u + c.w.sum();
    }
    x + c.out.dot(&c.out)
}

/// A field read in one arm only, another after the branch; and a loop in an arm.
#[differentiable]
fn fields_across_a_branch(c: &Cell) -> f64 {
    let y = if c.u > 0.0 {
        let mut total = 0.0;
        for i in 0..3 {
            total += c.w[[i]] * c.out[[i]];
        }
        total
    } else {
        c.u
    };
    y + c.out[[1]]
}

/// Fields of a local tuple made before a loop and a branch, read only inside them.
#[differentiable]
fn fields_of_a_local_across_a_loop_and_a_branch(c: &Cell) -> f64 {
    let t = (c.u * 2.0, c.w * 3.0);
    let mut x = 0.0;
    for i in 0..3 {
        x += t.1[[i]] * t.0;
    }
    let s = (c.out * 2.0, c.u);
    let y = if c.u > 0.0 { s.0.sum() } else { 0.0 };
    x + y + s.1
}

/// A loop-carried tuple read through its fields in the body.
#[differentiable]
fn a_carried_tuple_read_by_fields(c: &Cell) -> f64 {
    let mut s = (c.u, c.w[[0]]);
    for i in 0..3 {
        s = (s.0 * s.1, s.1 + c.w[[i]]);
    }
    s.0 + s.1
}

/// A call given the whole struct after a field of it was read: the call's
/// cotangent adds to the field's, and every other field is written too.
#[differentiable]
fn a_call_after_a_field(c: &Cell) -> f64 {
    let a = field_in_a_loop_and_one_after(c);
    a * c.out[[0]] + c.u * 2.0
}

/// Central differences of `f` at `c` along each of its seven coordinates./// Central differences of `f` at `c` along each of its seven coordinates.
fn cell_differences(f: impl Fn(&Cell) -> f64, c: &Cell) -> [f64; 7] {
    let h = 1e-6;
    core::array::from_fn(|k| {
        let basis = |scale: f64| CellTangent {
            w: Vector::from_fn(|[i]| if k == i { scale } else { 0.0 }),
            u: if k == 3 { scale } else { 0.0 },
            out: Vector::from_fn(|[i]| if k == 4 + i { scale } else { 0.0 }),
        };
        let (mut ahead, mut behind) = (c.clone(), c.clone());
        ahead.move_by(&basis(h));
        behind.move_by(&basis(-h));
        (f(&ahead) - f(&behind)) / (2.0 * h)
    })
}

/// The gradient's seven coordinates in the order of [`cell_differences`].
fn cell_coordinates(g: &CellTangent) -> [f64; 7] {
    let (w, out) = (g.w.to_array(), g.out.to_array());
    [w[0], w[1], w[2], g.u, out[0], out[1], out[2]]
}

/// Fields of a differentiated struct, of a local tuple or of a loop-carried tuple
/// read inside a loop or a branch collect every iteration's cotangent, whatever
/// else reads them outside, and a gradient written into a used buffer overwrites
/// every coordinate (each case once lost cotangents or kept the buffer's contents).
#[test]
fn fields_read_in_loops_and_branches_collect_every_cotangent() {
    let cell =
        Cell { w: Vector::from_array([0.3, -0.2, 0.5]), u: 0.7, out: Vector::from_array([1.1, -0.4, 0.9]) };
    /// The gradient written into a buffer that holds garbage (every coordinate
    /// must be written, not added to).
    fn into_garbage(f: fn(&Cell, &mut CellTangent) -> f64, c: &Cell) -> CellTangent {
        let mut gradient = CellTangent { w: Vector::full(777.0), u: 777.0, out: Vector::full(777.0) };
        f(c, &mut gradient);
        gradient
    }
    type Case =
        (&'static str, fn(&Cell) -> f64, fn(&Cell) -> CellTangent, fn(&Cell, &mut CellTangent) -> f64);
    let cases: [Case; 7] = [
        (
            "in a loop and after",
            field_in_a_loop_and_one_after,
            field_in_a_loop_and_one_after::grad,
            field_in_a_loop_and_one_after::value_and_grad_into,
        ),
        (
            "a long loop",
            fields_across_a_long_loop,
            fields_across_a_long_loop::grad,
            fields_across_a_long_loop::value_and_grad_into,
        ),
        (
            "a loop of n",
            |c| fields_across_a_loop_of_n(c, 4),
            |c| fields_across_a_loop_of_n::grad(c, 4),
            |c, g| fields_across_a_loop_of_n::value_and_grad_into(c, 4, g),
        ),
        (
            "a branch",
            fields_across_a_branch,
            fields_across_a_branch::grad,
            fields_across_a_branch::value_and_grad_into,
        ),
        (
            "a local's fields",
            fields_of_a_local_across_a_loop_and_a_branch,
            fields_of_a_local_across_a_loop_and_a_branch::grad,
            fields_of_a_local_across_a_loop_and_a_branch::value_and_grad_into,
        ),
        (
            "a carried tuple",
            a_carried_tuple_read_by_fields,
            a_carried_tuple_read_by_fields::grad,
            a_carried_tuple_read_by_fields::value_and_grad_into,
        ),
        (
            "a call after a field",
            a_call_after_a_field,
            a_call_after_a_field::grad,
            a_call_after_a_field::value_and_grad_into,
        ),
    ];
    for (name, f, gradient, into) in cases {
        let exact = cell_coordinates(&gradient(&cell));
        let differences = cell_differences(f, &cell);
        for (k, (g, d)) in exact.iter().zip(differences).enumerate() {
            assert!((g - d).abs() < 1e-7, "{name}, coordinate {k}: gradient {g}, differences {d}");
        }
        assert_eq!(cell_coordinates(&into_garbage(into, &cell)), exact, "{name}: written into a used buffer");
    }
    assert_eq!(
        cell_coordinates(&field_in_a_loop_and_one_after::grad(&cell)),
        [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    );
}

/// A scalar-generic cost of one differentiated argument beside constants that
/// mention the scalar: a target by reference, an offset by value and a weight.
#[differentiable(wrt(q))]
fn weighted_distance<T: RealScalar>(
    q: &Vector<T, 3>,
    target: &Vector<T, 3>,
    offset: Vector<T, 3>,
    weight: T,
) -> T {
    let d = (q - target) + offset;
    d.dot(&d) * weight + q[[0]] * q[[1]] * q[[2]]
}

/// The second-order companions take constants that mention the scalar: as duals of
/// whatever width each companion runs at (one tangent for `hvp`, eight for
/// `hessian`).
#[test]
fn second_order_companions_take_constants_that_mention_the_scalar() {
    let q: Vector<f64, 3> = Vector::from_array([0.5, -1.0, 2.0]);
    let target: Vector<f64, 3> = Vector::from_array([1.0, 0.0, -1.0]);
    let offset: Vector<f64, 3> = Vector::from_array([0.25, 0.5, 0.75]);
    let weight = 1.5;
    // H = 2w·I plus the product term's: ∂²(q₀q₁q₂)/∂qᵢ∂qⱼ = q_k for {i, j, k} = {0, 1, 2}.
    let expected = [[3.0, q[[2]], q[[1]]], [q[[2]], 3.0, q[[0]]], [q[[1]], q[[0]], 3.0]];
    let hessian = weighted_distance::hessian(&q, &target, offset, weight);
    for (i, row) in expected.iter().enumerate() {
        for (j, &value) in row.iter().enumerate() {
            assert!((hessian[[i, j]] - value).abs() < 1e-12, "H[{i}][{j}] = {}", hessian[[i, j]]);
        }
    }
    let direction: Vector<f64, 3> = Vector::from_array([1.0, -2.0, 0.5]);
    let product = weighted_distance::hvp(&q, &target, offset, weight, &direction);
    for (i, row) in expected.iter().enumerate() {
        let value: f64 = row.iter().zip(direction.iter()).map(|(h, v)| h * v).sum();
        assert!((product[[i]] - value).abs() < 1e-12, "(Hv)[{i}] = {}", product[[i]]);
    }
}

/// Rows centred on their means, PyTorch's `x - x.mean(1, keepdim=True)`: the means
/// gain their axis back with `broadcast_axis`, whose shape comes from its use; a
/// typed `let` gives it too.
#[differentiable]
fn centred_energy(x: &Matrix<f64, 2, 3>) -> f64 {
    let means = x.mean_axis(Axis::<1>);
    let centred = x - means.broadcast_axis(Axis::<1>);
    let column_sums: Matrix<f64, 2, 3> = x.sum_axis(Axis::<0>).broadcast_axis(Axis::<0>);
    centred.hadamard(&centred).sum() + column_sums.hadamard(x).sum()
}

#[test]
fn broadcast_axis_differentiates_in_static_mode() {
    let x: Matrix<f64, 2, 3> = Matrix::from_array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]);
    let (value, gradient) = centred_energy::value_and_grad(&x);
    assert!((value - centred_energy(&x)).abs() < 1e-14);
    // ∂/∂x Σ (x − x̄)² = 2(x − x̄); ∂/∂x Σ (column sum)·x = 2·(column sum).
    for i in 0..2 {
        let mean = (0..3).map(|j| x[[i, j]]).sum::<f64>() / 3.0;
        for j in 0..3 {
            let column = x[[0, j]] + x[[1, j]];
            let expected = 2.0 * (x[[i, j]] - mean) + 2.0 * column;
            assert!(
                (gradient[[i, j]] - expected).abs() < 1e-13,
                "({i}, {j}): {} vs {expected}",
                gradient[[i, j]]
            );
        }
    }
    let direction: Matrix<f64, 2, 3> = Matrix::from_array([[1.0, 0.0, -2.0], [0.5, 1.0, 0.0]]);
    let (_, derivative) = centred_energy::jvp(&x, &direction);
    assert!((derivative - gradient.hadamard(&direction).sum()).abs() < 1e-13);
}

/// A `let` inside a loop that shadows an outer variable, then is assigned: the
/// outer variable is untouched by the loop.
#[differentiable]
fn shadowed_in_a_loop(x: f64, y: f64) -> f64 {
    let t = x * 2.0;
    let mut s = y;
    for _ in 0..3 {
        let mut t = s;
        t *= x;
        s = t + 1.0;
    }
    s + t
}

/// A `match` guard reads the function's values (here a shadowed parameter).
#[differentiable(wrt(x))]
fn guarded(x: f64, k: u32) -> f64 {
    let x = x - 1.0;
    match k {
        0 if x > 0.0 => x * x,
        _ => x * 3.0,
    }
}

/// A tensor divided by a differentiated scalar: the value is the plain one, bit for
/// bit (each element divided, not scaled by the reciprocal).
#[differentiable]
fn divided(v: &Vector<f64, 3>, x: f64) -> f64 {
    (v * x - v / x).sum()
}

/// A constant the function assigns after using it; a method of a plain local that is
/// not `Clone`; a mutable parameter that is not differentiated.
#[differentiable(wrt(x))]
fn with_plain_state(x: f64, mut n: usize) -> f64 {
    let mut c = 2.0;
    let y = x * c;
    c = 5.0;
    n += 1;
    let rate = Rate(0.5);
    rate.apply(y * c) + n as f64
}

/// A constant helper without `Clone`, with a differentiable method.
struct Rate(f64);

impl Rate {
    #[differentiable(wrt(x))]
    fn apply(&self, x: f64) -> f64 {
        x * self.0
    }
}

#[test]
fn shadowing_guards_division_and_plain_state_match_the_plain_function() {
    let h = 1e-6;
    let (x, y) = (0.7, -1.3);
    let (value, (gx, gy)) = shadowed_in_a_loop::value_and_grad(x, y);
    assert_eq!(value, shadowed_in_a_loop(x, y));
    let fx = (shadowed_in_a_loop(x + h, y) - shadowed_in_a_loop(x - h, y)) / (2.0 * h);
    let fy = (shadowed_in_a_loop(x, y + h) - shadowed_in_a_loop(x, y - h)) / (2.0 * h);
    assert!((gx - fx).abs() < 1e-7 && (gy - fy).abs() < 1e-7, "{gx} {fx} {gy} {fy}");
    for (x, k, derivative) in [(0.5, 0, 3.0), (2.0, 0, 2.0), (2.0, 1, 3.0)] {
        let (value, gradient) = guarded::value_and_grad(x, k);
        assert_eq!((value, gradient), (guarded(x, k), derivative), "at {x}, {k}");
    }
    let v: Vector<f64, 3> = Vector::from_array([0.3, -1.1, 2.5]);
    for x in [-0.4, 0.7, 3.0] {
        assert_eq!(divided::value_and_grad(&v, x).0, divided(&v, x), "at {x}");
    }
    let (value, gradient) = with_plain_state::value_and_grad(0.8, 2);
    assert_eq!((value, gradient), (with_plain_state(0.8, 2), 5.0));
}

/// An `if` statement whose conditions alone read differentiated values (a counter
/// updated on comparisons, `!`, `is_nan`), beside an `if` that gives a value.
// `!` of comparisons is what is tested (NaN goes the other way than `<=`).
#[allow(clippy::neg_cmp_op_on_partial_ord)]
#[differentiable]
fn counted(x: f64) -> f64 {
    let mut count = 0;
    if x > 0.0 {
        count += 1;
    } else if !(x >= -0.5) || x.is_nan() {
        count += 2;
    }
    let y = if !(x > 0.5) { x * 2.0 } else { x };
    // A plain value chosen by a comparison: an index.
    let weights = [1.0, 3.0];
    let k: usize = if x > 0.5 { 1 } else { 0 };
    y * count as f64 + x * weights[k]
}

#[test]
fn statements_that_only_compare_differentiated_values_run_as_written() {
    for (x, derivative) in [(0.7, 4.0), (0.3, 3.0), (-0.2, 1.0), (-0.9, 5.0)] {
        let (value, gradient) = counted::value_and_grad(x);
        assert_eq!((value, gradient), (counted(x), derivative), "at {x}");
    }
}

/// A scalar-generic helper called with its scalar spelled out (`f::<T>(x)`).
#[differentiable]
fn squared_norm<T: RealScalar>(q: &Vector<T, 3>) -> T {
    q.dot(q)
}

/// Calls the helper with a turbofish, from scalar-generic code.
#[differentiable]
fn scaled_norm<T: RealScalar>(q: &Vector<T, 3>) -> T {
    squared_norm::<T>(q) * q[[0]]
}

#[test]
fn a_call_with_a_turbofish_differentiates_through_the_callee() {
    let q: Vector<f64, 3> = Vector::from_array([0.5, -1.0, 2.0]);
    // ∂/∂q (|q|²·q₀) = 2q·q₀ + |q|²·e₀.
    let gradient = scaled_norm::grad(&q);
    let norm = q.dot(&q);
    let expected = [2.0 * q[[0]] * q[[0]] + norm, 2.0 * q[[1]] * q[[0]], 2.0 * q[[2]] * q[[0]]];
    for (g, e) in gradient.iter().zip(expected) {
        assert!((g - e).abs() < 1e-13, "{g} vs {e}");
    }
    let hessian = scaled_norm::hessian(&q);
    assert!((hessian[[0, 0]] - 6.0 * 0.5).abs() < 1e-12, "{hessian:?}");
}

/// Differentiable functions written by a `macro_rules!` macro, whose bodies open
/// scopes of their own (a block with a `let`, a branch) or pass a computed value to
/// another differentiable function (a local of the generated code, which the
/// caller's tokens must not rename).
macro_rules! smooth_step {
    ($name:ident, $x:ident, $($body:tt)*) => {
        #[differentiable]
        fn $name($x: f64) -> f64 {
            $($body)*
        }
    };
}

/// sin t, called from a function a macro writes.
#[differentiable]
fn macro_helper(t: f64) -> f64 {
    t.sin()
}

smooth_step!(macro_block, x, let a = { let t = x * x; t.sin() }; a * x);
smooth_step!(macro_call, x, macro_helper(x * x) * x);
smooth_step!(
    macro_branch,
    x,
    if x > 0.0 {
        let t = x.exp();
        t * x
    } else {
        x * x
    }
);

#[test]
fn functions_written_by_a_macro_differentiate_through_their_scopes() {
    let x = 0.5;
    let expected = (x * x).sin() + 2.0 * x * x * (x * x).cos();
    assert!((macro_block::grad(x) - expected).abs() < 1e-15);
    assert_eq!(macro_block::jvp(x, &1.0).1, macro_block::grad(x));
    // d/dx (sin(x²)·x) is the same function.
    assert!((macro_call::grad(x) - expected).abs() < 1e-15);
    assert_eq!(macro_call::jvp(x, &1.0).1, macro_call::grad(x));
    assert!((macro_branch::grad(x) - x.exp() * (1.0 + x)).abs() < 1e-15);
    assert_eq!(macro_branch::grad(-x), -2.0 * x);
}

/// `mul_add` with each operand differentiated or plain, and `copysign`.
#[differentiable]
fn fused_and_signed(a: f64, b: f64, c: f64) -> f64 {
    let all = a.mul_add(b, c);
    let plain_addend = b.mul_add(a, 0.25);
    let plain_factor = a.mul_add(3.0, c);
    let only_addend = 2.0f64.mul_add(0.5, c);
    let signed = (a * b).copysign(c) + 1.5f64.copysign(a);
    all * plain_addend + plain_factor * only_addend + signed
}

#[test]
fn mul_add_and_copysign_differentiate() {
    use fluxion::autodiff::check::{CheckOptions, check_pullback, check_pushforward};
    let f = |(a, b, c): &(f64, f64, f64)| fused_and_signed(*a, *b, *c);
    for point in [(0.7, -1.2, 0.4), (-0.3, 0.8, -2.0), (1.1, 0.5, -0.6)] {
        let (value, pullback) = fused_and_signed::vjp(point.0, point.1, point.2);
        assert_eq!(value, f(&point));
        check_pullback(f, |y_bar: &f64| pullback(y_bar), &point, CheckOptions::f64()).unwrap();
        let (_, map) = fused_and_signed::linearize(point.0, point.1, point.2);
        check_pushforward(f, |(a, b, c): &(f64, f64, f64)| map(a, b, c), &point, CheckOptions::f64())
            .unwrap();
    }
    // ∂/∂c of (a·b).copysign(c) is 0 (a sign only), also at c = ±0, where finite
    // differences jump: ∂/∂c is the three factors that multiply c; through the sign
    // bit of c = −0 the copied term's ∂/∂a is −b·sign(a·b) (its sign flipped).
    for (a, b, c) in [(0.7, -1.2, 0.4), (1.1, 0.5, -0.0), (1.1, 0.5, 0.0)] {
        let (_, (da, db, dc)) = fused_and_signed::value_and_grad(a, b, c);
        let expected = b.mul_add(a, 0.25) + 2.0f64.mul_add(0.5, c) + a.mul_add(3.0, c);
        assert!((dc - expected).abs() < 1e-14, "{dc} vs {expected}");
        let (all, plain_addend) = (a.mul_add(b, c), b.mul_add(a, 0.25));
        let sign = (a * b).signum() * 1.0f64.copysign(c);
        let expected_da = b * plain_addend + all * b + 3.0 * 2.0f64.mul_add(0.5, c) + b * sign;
        let expected_db = a * plain_addend + all * a + a * sign;
        assert!((da - expected_da).abs() < 1e-14 && (db - expected_db).abs() < 1e-14, "{da} {db}");
    }
}

/// Σ (A·B) for matrices of run-time sizes.
#[differentiable]
fn product_sum(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    a.matmul(b).sum()
}

#[test]
fn value_and_grad_into_refits_buffers_of_another_shape() {
    let a: DMatrix<f64> = Tensor::from_shape_fn((Dyn(2), Dyn(3)), |[i, j]| (i * 3 + j) as f64);
    let b: DMatrix<f64> = Tensor::from_shape_fn((Dyn(3), Dyn(4)), |[i, j]| (i + 2 * j) as f64 * 0.5);
    let (_, (ga, gb)) = product_sum::value_and_grad(&a, &b);
    // Buffers from another computation: the same element counts transposed, and
    // other counts altogether.
    for (rows_a, cols_a, rows_b, cols_b) in [(3, 2, 4, 3), (1, 1, 5, 5), (2, 3, 3, 4)] {
        let mut buffers = (
            DMatrix::<f64>::zeros_shaped((Dyn(rows_a), Dyn(cols_a))),
            DMatrix::<f64>::zeros_shaped((Dyn(rows_b), Dyn(cols_b))),
        );
        let value = product_sum::value_and_grad_into(&a, &b, &mut buffers);
        assert_eq!(value, product_sum(&a, &b));
        assert_eq!((&buffers.0, &buffers.1), (&ga, &gb));
    }
}
