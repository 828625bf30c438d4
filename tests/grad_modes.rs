//! Reverse mode as a user meets it: Rust control flow (loops, value-dependent
//! branches, early return, helper functions, recursion), the operators (`grad`,
//! `value_and_grad`, `vjp` and their `_with_aux` forms), `stop_gradient`,
//! differentiating with respect to a subset of the inputs, the types gradients come
//! back as, custom primitives through `record_unary` / `record_binary`, misuse that
//! must panic, and dynamic-shape mismatches between a value and a tangent.

mod common_grad;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common_grad::{assert_close, assert_close_slices, mixed_values, ok, positive_values, static_tensor};
use fluxion::autodiff::check::{CheckOptions, check_grad, check_vjp};
use fluxion::autodiff::{
    Differentiable, Var, grad, grad_with_aux, record_binary, record_unary, stop_gradient, value_and_grad,
    value_and_grad_with_aux, vjp, vjp_with_aux,
};
use fluxion::prelude::*;

type C64 = Complex64;
type V3 = Vector<f64, 3>;
type M33 = Matrix<f64, 3, 3>;
type M23 = Matrix<f64, 2, 3>;

fn w33() -> M33 {
    Matrix::from_array([[0.9, -0.4, 0.3], [0.2, 0.7, -0.8], [-0.5, 0.6, 1.1]])
}

fn x3() -> V3 {
    Vector::from_array([0.4, -0.9, 0.25])
}

fn dvector(values: &[f64]) -> DVector<f64> {
    Tensor::from_shape_vec((Dyn(values.len()),), values.to_vec()).unwrap()
}

/// The message of a panic payload.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload.downcast_ref::<&str>().map(|s| s.to_string()).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------
// Control flow
// ---------------------------------------------------------------------------------

/// x ← tanh(W x), `steps` times.
fn iterate_tanh(w: &Var<M33>, x: Var<V3>, steps: usize) -> Var<V3> {
    let mut x = x;
    for _ in 0..steps {
        x = w.matmul(&x).tanh();
    }
    x
}

#[test]
fn loop_of_ten_tanh_layers_matches_hand_written_backprop() {
    let (w, x0) = (w33(), x3());
    let c: V3 = Vector::from_array([1.0, -2.0, 0.5]);
    let loss = |x: Var<V3>| iterate_tanh(&Var::constant(w), x, 10).dot(&Var::constant(c));
    let (value, g) = value_and_grad(loss, &x0);

    // Forward, keeping every iterate; then backward by hand: for y = tanh(W x),
    // x̄ = Wᵀ((1 − y²) ⊙ ȳ).
    let mut xs = vec![x0];
    for k in 0..10 {
        xs.push(w.matmul(&xs[k]).tanh());
    }
    assert_close(value, xs[10].dot(&c), 1e-15);
    let mut x_bar = c;
    for k in (0..10).rev() {
        let local = xs[k + 1].map(|y| 1.0 - y * y).hadamard(&x_bar);
        x_bar = w.transpose().matmul(&local);
    }
    assert_close_slices(g.as_slice(), x_bar.as_slice(), 1e-13);

    ok("loop, gradient in x", check_grad(loss, &x0, CheckOptions::f64()));
    ok(
        "loop, gradient in (W, x)",
        check_grad(
            |(w, x): (Var<M33>, Var<V3>)| iterate_tanh(&w, x, 10).dot(&Var::constant(c)),
            &(w, x0),
            CheckOptions::f64(),
        ),
    );
    ok(
        "loop, vector output",
        check_vjp(|x: Var<V3>| iterate_tanh(&Var::constant(w), x, 10), &x0, CheckOptions::f64()),
    );
}

#[test]
fn branch_on_a_value_differentiates_the_branch_taken() {
    let f = |x: Var<V3>| if x.value().sum() > 0.0 { x.exp().sum() } else { (&x * 3.0).sum() };
    let positive: V3 = Vector::from_array([0.5, 0.2, -0.1]);
    let negative: V3 = Vector::from_array([-0.5, 0.2, -0.1]);
    assert_close_slices(grad(f, &positive).as_slice(), positive.exp().as_slice(), 1e-15);
    assert_eq!(grad(f, &negative).to_array(), [3.0; 3]);
    ok("branch, taken: exp", check_grad(f, &positive, CheckOptions::f64()));
    ok("branch, taken: scale", check_grad(f, &negative, CheckOptions::f64()));

    // A branch on a scalar inside a loop: |x| by cases, then squared.
    let piecewise = |x: Var<f64>| {
        let mut acc = Var::constant(0.0);
        for k in 1..=3 {
            let term = if *x.value() > 0.0 { x.powi(k) } else { -&x.powi(k) };
            acc = &acc + &term;
        }
        acc
    };
    // x > 0: x + x² + x³ → 1 + 2x + 3x²; x < 0: −(x + x² + x³) → −(1 + 2x + 3x²).
    assert_close(grad(piecewise, &0.5), 1.0 + 1.0 + 0.75, 1e-15);
    assert_close(grad(piecewise, &-0.5), -(1.0 - 1.0 + 0.75), 1e-15);
}

/// Multiplies by x until the value exceeds 10 (at most 100 times), returning early.
fn power_until_large(x: &Var<f64>) -> Var<f64> {
    let mut y = x.clone();
    for _ in 0..100 {
        if *y.value() > 10.0 {
            return y;
        }
        y = &y * x;
    }
    y
}

#[test]
fn early_return() {
    // 2 → 2, 4, 8, 16: x⁴, gradient 4x³ = 32.
    let (value, g) = value_and_grad(|x: Var<f64>| power_until_large(&x), &2.0);
    assert_eq!((value, g), (16.0, 32.0));
    // 1.5 → x⁶ ≈ 11.39: gradient 6x⁵.
    let (value, g) = value_and_grad(|x: Var<f64>| power_until_large(&x), &1.5);
    assert_close(value, 1.5f64.powi(6), 1e-15);
    assert_close(g, 6.0 * 1.5f64.powi(5), 1e-14);
    ok("early return", check_grad(|x: Var<f64>| power_until_large(&x), &1.5, CheckOptions::f64()));
}

/// A dense layer tanh(W x + b), generic over its sizes.
fn layer<const I: usize, const O: usize>(
    w: &Var<Matrix<f64, O, I>>,
    b: &Var<Vector<f64, O>>,
    x: &Var<Vector<f64, I>>,
) -> Var<Vector<f64, O>> {
    (&w.matmul(x) + b).tanh()
}

type Mlp = (Matrix<f64, 4, 3>, Vector<f64, 4>, Matrix<f64, 2, 4>, Vector<f64, 2>);
type MlpTraced = (Var<Matrix<f64, 4, 3>>, Var<Vector<f64, 4>>, Var<Matrix<f64, 2, 4>>, Var<Vector<f64, 2>>);

fn mlp_loss((w1, b1, w2, b2): MlpTraced, x: V3, target: Vector<f64, 2>) -> Var<f64> {
    let hidden = layer(&w1, &b1, &Var::constant(x));
    let out = layer(&w2, &b2, &hidden);
    let error = &out - &Var::constant(target);
    &error.dot(&error) * 0.5
}

#[test]
fn helper_functions_and_a_two_layer_network() {
    let m = mixed_values(32);
    let params: Mlp = (
        static_tensor(&m[..12]),
        static_tensor(&m[12..16]),
        static_tensor(&m[16..24]),
        static_tensor(&m[24..26]),
    );
    let (x, target) = (x3(), Vector::from_array([0.3, -0.2]));
    ok("two-layer network", check_grad(|p: MlpTraced| mlp_loss(p, x, target), &params, CheckOptions::f64()));
    // The output bias gradient is (out − target) ⊙ (1 − out²), by hand.
    let (_, _, _, g_b2) = grad(|p: MlpTraced| mlp_loss(p, x, target), &params);
    let hidden = (params.0.matmul(&x) + params.1).tanh();
    let out = (params.2.matmul(&hidden) + params.3).tanh();
    let expected = (out - target).hadamard(&out.map(|y| 1.0 - y * y));
    assert_close_slices(g_b2.as_slice(), expected.as_slice(), 1e-14);
}

/// xⁿ by repeated squaring, recursively.
fn power(x: &Var<f64>, n: u32) -> Var<f64> {
    match n {
        0 => Var::constant(1.0),
        n if n % 2 == 0 => {
            let half = power(x, n / 2);
            &half * &half
        }
        n => x * &power(x, n - 1),
    }
}

#[test]
fn recursion() {
    for n in [1u32, 2, 5, 8, 13] {
        let x = 1.1;
        let (value, g) = value_and_grad(|x: Var<f64>| power(&x, n), &x);
        assert_close(value, x.powi(n as i32), 1e-14);
        assert_close(g, f64::from(n) * x.powi(n as i32 - 1), 1e-13);
    }
    // x⁰ is a constant: zero gradient.
    assert_eq!(grad(|x: Var<f64>| power(&x, 0), &1.1), 0.0);
    ok("recursive power", check_grad(|x: Var<f64>| power(&x, 7), &0.9, CheckOptions::f64()));
}

// ---------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------

#[test]
fn value_and_grad_returns_the_value() {
    let x: M23 = Matrix::from_array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]);
    let f = |x: Var<M23>| x.sin().hadamard(&x).sum();
    let (value, g) = value_and_grad(f, &x);
    assert_eq!(value, x.sin().hadamard(&x).sum(), "the traced value equals the plain computation");
    assert_eq!(g, grad(f, &x));
    let expected = x.sin() + x.cos().hadamard(&x);
    assert_close_slices(g.as_slice(), expected.as_slice(), 1e-15);
}

#[test]
fn vjp_pullback_is_linear_and_reusable() {
    let x = x3();
    let (y, mut pullback) = vjp(|x: Var<V3>| x.sin().hadamard(&x), &x);
    assert_eq!(y, x.sin().hadamard(&x));
    let w1: V3 = Vector::from_array([1.0, -0.5, 2.0]);
    let w2: V3 = Vector::from_array([0.25, 3.0, -1.0]);
    let g1 = pullback.call(&w1);
    let g1_twice = pullback.call(&w1.scale(2.0));
    assert_close_slices(g1_twice.as_slice(), g1.scale(2.0).as_slice(), 1e-15);
    let g2 = pullback.call(&w2);
    let g_sum = pullback.call(&(w1 + w2));
    assert_close_slices(g_sum.as_slice(), (g1 + g2).as_slice(), 1e-15);
    // Calling again with the first cotangent gives the first answer (no stale adjoints).
    assert_eq!(pullback.call(&w1), g1);
    // d/dx (x sin x) = sin x + x cos x.
    let derivative = x.sin() + x.cos().hadamard(&x);
    assert_close_slices(g1.as_slice(), derivative.hadamard(&w1).as_slice(), 1e-15);
    // The zero cotangent gives the zero gradient.
    assert_eq!(pullback.call(&V3::zeros()).to_array(), [0.0; 3]);
}

#[test]
fn vjp_of_vector_outputs_is_the_transposed_jacobian() {
    let a: M23 = Matrix::from_array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]);
    let x = x3();
    let (y, mut pullback) = vjp(|x: Var<V3>| Var::constant(a).matmul(&x), &x);
    assert_eq!(y, a.matmul(&x));
    let w: Vector<f64, 2> = Vector::from_array([0.5, -2.0]);
    assert_close_slices(pullback.call(&w).as_slice(), a.transpose().matmul(&w).as_slice(), 1e-15);
    // Dynamic shapes.
    let xd = dvector(&[0.3, -0.4, 1.2, 0.7]);
    let (y, mut pullback) = vjp(|x: Var<DVector<f64>>| x.exp(), &xd);
    let w = dvector(&[1.0, 2.0, 3.0, 4.0]);
    assert_close_slices(pullback.call(&w).as_slice(), y.hadamard(&w).as_slice(), 1e-15);
}

#[test]
fn vjp_of_complex_outputs() {
    // Holomorphic f: x̄ = conj(f′(z))·ȳ.
    let z = C64::new(0.3, -0.8);
    let (y, mut pullback) = vjp(|z: Var<C64>| z.exp(), &z);
    assert_eq!(y, z.exp());
    let w = C64::new(0.5, 2.0);
    assert_close(pullback.call(&w), z.exp().conj() * w, 1e-15);
    // A real cotangent on the real part and on the imaginary part of the output.
    assert_close(pullback.call(&C64::new(1.0, 0.0)), z.exp().conj(), 1e-15);
    assert_close(pullback.call(&C64::new(0.0, 1.0)), z.exp().conj() * C64::new(0.0, 1.0), 1e-15);
    // y = M z: x̄ = Mᴴ ȳ.
    type CM23 = Matrix<C64, 2, 3>;
    type CV3 = Vector<C64, 3>;
    let c = C64::new;
    let m: CM23 = Matrix::from_array([
        [c(1.0, 2.0), c(-0.5, 0.3), c(0.0, -1.0)],
        [c(2.0, -1.0), c(0.7, 0.7), c(-1.2, 0.4)],
    ]);
    let zv: CV3 = Vector::from_array([c(0.1, 0.2), c(-0.3, 0.4), c(0.5, -0.6)]);
    let (_, mut pullback) = vjp(|z: Var<CV3>| Var::constant(m).matmul(&z), &zv);
    let w: Vector<C64, 2> = Vector::from_array([c(1.0, -1.0), c(0.5, 2.0)]);
    let m_adjoint: Matrix<C64, 3, 2> = m.transpose().conj();
    assert_close_slices(pullback.call(&w).as_slice(), m_adjoint.matmul(&w).as_slice(), 1e-15);
    ok(
        "complex vector output",
        check_vjp(|z: Var<CV3>| Var::constant(m).matmul(&z).exp(), &zv, CheckOptions::f64()),
    );
}

#[test]
fn real_constants_mix_with_complex_scalar_vars_on_either_side() {
    // f(z) = (1 − z/2)·(z + 1.5)⁻¹… written with real constants, against the same
    // function with the constants as complex numbers, and the checkers.
    let z = C64::new(0.3, -0.8);
    let with_reals = |z: Var<C64>| {
        let a = (1.0 - &z * 0.5) * (2.0 / (&z + 1.5));
        let b = (z.clone() - 0.25) / 4.0 + 3.0 * z;
        (&a + &b).abs()
    };
    let with_complex = |z: Var<C64>| {
        let c = |x: f64| C64::new(x, 0.0);
        let a = (c(1.0) - &z * c(0.5)) * (c(2.0) / (&z + c(1.5)));
        let b = (z.clone() - c(0.25)) / c(4.0) + c(3.0) * z;
        (&a + &b).abs()
    };
    let (value, gradient) = value_and_grad(with_reals, &z);
    assert_eq!((value, gradient), value_and_grad(with_complex, &z));
    ok("real constants", check_grad(with_reals, &z, CheckOptions::f64()));
    // A real factor on either side of a complex tensor: plain, traced and dual.
    type CV2 = Vector<C64, 2>;
    let v: CV2 = Vector::from_array([C64::new(0.3, -0.8), C64::new(-1.1, 0.2)]);
    let heap: Vector<C64, 2, Heap> = Vector::from_array(v.to_array());
    let doubled = &heap * C64::new(2.0, 0.0);
    assert_eq!(
        (2.0 * &heap, &heap * 2.0, 2.0 * v),
        (doubled.clone(), doubled.clone(), v * C64::new(2.0, 0.0))
    );
    let traced = |z: Var<CV2>| (&(0.5 * &z) + &(z.clone() * 1.5)).abs().sum();
    let complex = |z: Var<CV2>| (&(&z * C64::new(0.5, 0.0)) + &(z.clone() * C64::new(1.5, 0.0))).abs().sum();
    assert_eq!(value_and_grad(traced, &v), value_and_grad(complex, &v));
    let direction: CV2 = Vector::from_array([C64::new(1.0, 0.5), C64::new(-0.25, 2.0)]);
    let (_, tangent) = jvp(|z: Vector<Dual<C64>, 2>| (0.5 * &z + z * 1.5).sum(), &v, &direction);
    assert_eq!(tangent, direction.sum() * C64::new(2.0, 0.0));
    // f32 beside `Complex32`.
    let (value32, _) = value_and_grad(
        |z: Var<fluxion::Complex32>| (&z * 2.0f32 - 1.0f32).abs(),
        &fluxion::Complex32::new(1.0, 1.0),
    );
    assert!((value32 - 5f32.sqrt()).abs() < 1e-6);
}

#[test]
fn aux_outputs_come_back_untouched() {
    let x = x3();
    let f = |x: Var<V3>| {
        let y = x.exp();
        let loss = y.sum();
        (loss, (*y.value(), String::from("label"), vec![1, 2, 3]))
    };
    let (g, (y, label, list)) = grad_with_aux(f, &x);
    assert_eq!(y, x.exp());
    assert_eq!(label, "label");
    assert_eq!(list, vec![1, 2, 3]);
    assert_close_slices(g.as_slice(), x.exp().as_slice(), 1e-15);

    let (value, (y, label, list), g2) = value_and_grad_with_aux(f, &x);
    assert_eq!(value, x.exp().sum());
    assert_eq!((y, label.as_str(), list), (x.exp(), "label", vec![1, 2, 3]));
    assert_eq!(g, g2);

    let (out, aux, mut pullback) = vjp_with_aux(|x: Var<V3>| (x.sin(), x.value().sum()), &x);
    assert_eq!(out, x.sin());
    assert_eq!(aux, x.sum());
    let ones = V3::ones();
    assert_close_slices(pullback.call(&ones).as_slice(), x.cos().as_slice(), 1e-15);
}

#[test]
fn stop_gradient_blocks_flow() {
    let x = x3();
    // x ⊙ stop(x): the stopped factor is a constant, so the gradient is x, not 2x.
    let g = grad(|x: Var<V3>| x.hadamard(&stop_gradient(&x)).sum(), &x);
    assert_eq!(g, x);
    // ⟨x, stop(eˣ)⟩: gradient eˣ (not eˣ + x ⊙ eˣ).
    let g = grad(|x: Var<V3>| x.dot(&stop_gradient(x.exp())), &x);
    assert_close_slices(g.as_slice(), x.exp().as_slice(), 1e-15);
    // Everything stopped: zero gradient.
    let g = grad(|x: Var<V3>| stop_gradient(&x).sin().sum(), &x);
    assert_eq!(g.to_array(), [0.0; 3]);
    // The value is unchanged and inactive.
    grad(
        |x: Var<V3>| {
            let stopped = stop_gradient(&x);
            assert!(x.is_active() && !stopped.is_active());
            assert_eq!(stopped.value(), x.value());
            x.sum()
        },
        &x,
    );
    // Scalars: x·stop(x) → x.
    assert_eq!(grad(|x: Var<f64>| &x * &stop_gradient(&x), &1.5), 1.5);
    // The prelude's `stop_gradient` is this one: it cuts a traced value taken by value
    // or by reference, and leaves a plain value as it is.
    let g = grad(|x: Var<V3>| x.hadamard(&fluxion::prelude::stop_gradient(x.clone())).sum(), &x);
    assert_eq!(g, x);
    let g = grad(|x: Var<V3>| x.hadamard(&fluxion::prelude::stop_gradient(&x)).sum(), &x);
    assert_eq!(g, x);
    assert_eq!(fluxion::prelude::stop_gradient(x3()), x3());
}

#[test]
fn subset_tuple_input_and_captured_constant_agree() {
    let m = mixed_values(12);
    let (a, b): (M23, V3) = (static_tensor(&m[..6]), static_tensor(&m[6..9]));
    let loss = |a: &Var<M23>, b: &Var<V3>| a.matmul(b).tanh().sum();
    let (g_a, g_b) = grad(|(a, b): (Var<M23>, Var<V3>)| loss(&a, &b), &(a, b));
    let g_a_only = grad(|a: Var<M23>| loss(&a, &Var::constant(b)), &a);
    let g_b_only = grad(|b: Var<V3>| loss(&Var::constant(a), &b), &b);
    assert_eq!(g_a, g_a_only);
    assert_eq!(g_b, g_b_only);
    // An input the function never uses gets a zero gradient.
    let (g_a, g_unused) = grad(|(a, _unused): (Var<M23>, Var<V3>)| a.sum(), &(a, b));
    assert_eq!(g_a.to_array(), [[1.0; 3]; 2]);
    assert_eq!(g_unused.to_array(), [0.0; 3]);
}

/// Compiles only when both arguments have one type.
fn same_type<T>(_: &T, _: &T) {}

#[test]
fn gradients_have_the_input_tangent_type() {
    let m = mixed_values(12);
    let (a, b): (M23, V3) = (static_tensor(&m[..6]), static_tensor(&m[6..9]));
    // Tuple in, tuple of tensors out.
    let g = grad(|(a, b): (Var<M23>, Var<V3>)| a.matmul(&b).sum(), &(a, b));
    same_type(&g, &(a, b));
    let (g_a, g_b): (M23, V3) = g;
    assert_eq!(g_a.to_array(), [b.to_array(), b.to_array()]);
    assert_eq!(
        g_b.to_array(),
        [
            a.to_array()[0][0] + a.to_array()[1][0],
            a.to_array()[0][1] + a.to_array()[1][1],
            a.to_array()[0][2] + a.to_array()[1][2]
        ]
    );
    // Arrays of tensors.
    let pair: [V3; 2] = [x3(), b];
    let g: [V3; 2] = grad(|[p, q]: [Var<V3>; 2]| p.dot(&q), &pair);
    assert_eq!(g, [b, x3()]);
    // Vec of dynamic vectors (each its own length).
    let list = vec![dvector(&[1.0, 2.0]), dvector(&[3.0, -1.0, 0.5])];
    let g: Vec<DVector<f64>> = grad(|v: Vec<Var<DVector<f64>>>| &v[0].norm_sqr().sum() + &v[1].sum(), &list);
    assert_eq!(g[0].as_slice(), [2.0, 4.0]);
    assert_eq!(g[1].as_slice(), [1.0, 1.0, 1.0]);
    // Mixed real and complex scalars: (|z|², 2x·z).
    let (g_x, g_z): (f64, C64) =
        grad(|(x, z): (Var<f64>, Var<C64>)| &x * &z.norm_sqr(), &(2.0, C64::new(3.0, 4.0)));
    assert_eq!(g_x, 25.0);
    assert_eq!(g_z, C64::new(12.0, 16.0));
    // A constant output: a zero gradient of the input's run-time shape.
    let g = grad(|_: Var<DVector<f64>>| Var::constant(3.0), &dvector(&[1.0, 2.0, 3.0, 4.0, 5.0]));
    assert_eq!(g.as_slice(), [0.0; 5]);
}

// ---------------------------------------------------------------------------------
// Custom primitives
// ---------------------------------------------------------------------------------

/// softplus(x) = ln(1 + eˣ) elementwise, with its own rule x̄ = σ(x)·ȳ.
fn softplus<S: Shape, K: Storage<f64, S>>(x: &Var<Tensor<f64, S, K>>) -> Var<Tensor<f64, S, K>> {
    let v = x.value().clone();
    let y = v.map(|t| if t > 0.0 { t + (-t).exp().ln_1p() } else { t.exp().ln_1p() });
    record_unary(x, y, move |y_bar: &Tensor<f64, S, K>| y_bar.zip_map(&v, |g, t| g / (1.0 + (-t).exp())))
}

/// softplus on a scalar.
fn softplus_scalar(x: &Var<f64>) -> Var<f64> {
    let v = *x.value();
    let y = if v > 0.0 { v + (-v).exp().ln_1p() } else { v.exp().ln_1p() };
    record_unary(x, y, move |y_bar: &f64| y_bar / (1.0 + (-v).exp()))
}

/// hypot(a, b) = √(a² + b²), with ā = ȳ·a/y and b̄ = ȳ·b/y.
fn hypot(a: &Var<f64>, b: &Var<f64>) -> Var<f64> {
    let (x, y) = (*a.value(), *b.value());
    let h = x.hypot(y);
    record_binary(a, b, h, move |&g: &f64| (g * x / h, g * y / h))
}

/// (sin x, cos x) elementwise as one primitive with a tuple output.
fn sincos(x: &Var<V3>) -> Var<(V3, V3)> {
    let v = *x.value();
    record_unary(x, (v.sin(), v.cos()), move |(s_bar, c_bar): &(V3, V3)| {
        s_bar.hadamard(&v.cos()) - c_bar.hadamard(&v.sin())
    })
}

#[test]
fn custom_primitives_pass_the_checker() {
    let o = CheckOptions::f64();
    let x = x3();
    ok("softplus sum", check_grad(|x: Var<V3>| softplus(&x).sum(), &x, o));
    ok("softplus vector", check_vjp(|x: Var<V3>| softplus(&x), &x, o));
    ok("softplus dynamic", check_vjp(|x: Var<DVector<f64>>| softplus(&x), &dvector(&mixed_values(5)), o));
    ok(
        "softplus at large inputs",
        check_vjp(|x: Var<V3>| softplus(&x), &Vector::from_array([30.0, -30.0, 5.0]), o),
    );
    // d/dx softplus = σ(x).
    let g = grad(|x: Var<V3>| softplus(&x).sum(), &x);
    assert_close_slices(g.as_slice(), x.sigmoid().as_slice(), 1e-15);
    assert_close(grad(|x: Var<f64>| softplus_scalar(&x), &0.0), 0.5, 1e-15);
    ok("softplus scalar", check_grad(|x: Var<f64>| softplus_scalar(&x), &-0.7, o));
    // Composed with built-in operations on both sides.
    ok(
        "softplus inside a network",
        check_grad(|x: Var<V3>| softplus(&Var::constant(w33()).matmul(&x)).dot(&x.tanh()), &x, o),
    );
    ok("hypot", check_vjp(|(a, b): (Var<f64>, Var<f64>)| hypot(&a, &b), &(3.0, -4.0), o));
    assert_eq!(grad(|(a, b): (Var<f64>, Var<f64>)| hypot(&a, &b), &(3.0, 4.0)), (0.6, 0.8));
    // A constant operand receives nothing; the other still does.
    assert_eq!(grad(|a: Var<f64>| hypot(&a, &Var::constant(4.0)), &3.0), 0.6);
    ok("sincos, tuple output", check_vjp(|x: Var<V3>| sincos(&x), &x, o));
}

#[test]
fn the_checker_rejects_wrong_rules() {
    let o = CheckOptions::f64();
    // sin with the rule of −sin′.
    let wrong_sign = |x: Var<f64>| {
        let v = *x.value();
        record_unary(&x, v.sin(), move |g: &f64| -g * v.cos())
    };
    let error = check_grad(wrong_sign, &0.3, o).unwrap_err();
    assert!(error.what.contains("Jacobian entry"), "{error}");
    // exp on complex numbers with the rule f′·ȳ instead of conj(f′)·ȳ: the convention
    // is enforced by perturbing real and imaginary parts separately.
    let unconjugated = |z: Var<C64>| {
        let v = *z.value();
        record_unary(&z, v.exp(), move |g: &C64| v.exp() * g)
    };
    assert!(check_vjp(unconjugated, &C64::new(0.2, 0.9), o).is_err());
    let conjugated = |z: Var<C64>| {
        let v = *z.value();
        record_unary(&z, v.exp(), move |g: &C64| v.exp().conj() * g)
    };
    ok("complex exp by hand", check_vjp(conjugated, &C64::new(0.2, 0.9), o));
    // conj with the identity as its rule: the first entry found wrong is the
    // imaginary part's, named by element and part.
    let wrong_conj = |z: Var<Vector<C64, 2>>| record_unary(&z, z.value().conj(), |g: &Vector<C64, 2>| *g);
    let error =
        check_vjp(wrong_conj, &Vector::from_array([C64::new(1.0, 2.0), C64::new(-0.5, 0.1)]), o).unwrap_err();
    assert!(error.what.contains("Jacobian entry (output [0] im, input [0] im)"), "{error}");
    // A matrix's coordinate is named by its index; with several leaves, by its leaf
    // too (in the order of the value's fields).
    type M23 = Matrix<f64, 2, 3>;
    let drops_one = |(m, s): (Var<M23>, Var<f64>)| {
        let product = m.value().scale(*s.value());
        let (value, factor) = (*m.value(), *s.value());
        record_binary(&m, &s, product, move |g: &M23| {
            let mut m_bar = g.scale(factor);
            m_bar[[1, 2]] = 0.0;
            (m_bar, g.dot(&value))
        })
    };
    let point: (M23, f64) = (Tensor::from_array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), 0.5);
    let error = check_vjp(drops_one, &point, o).unwrap_err();
    assert!(error.what.contains("Jacobian entry (output [1, 2], input leaf 0 [1, 2])"), "{error}");
}

// ---------------------------------------------------------------------------------
// Tapes: nesting, panics, misuse
// ---------------------------------------------------------------------------------

#[test]
fn nested_grad_on_independent_values() {
    // The inner gradient is a plain number to the outer computation.
    let g = grad(
        |x: Var<f64>| {
            let inner = grad(|y: Var<f64>| &y * &y, &2.0);
            &x * inner
        },
        &5.0,
    );
    assert_eq!(g, 4.0);
}

#[test]
fn a_panic_inside_the_function_leaves_no_tape_behind() {
    let result = catch_unwind(|| grad(|_: Var<f64>| -> Var<f64> { panic!("inside f") }, &1.0));
    assert_eq!(panic_message(result.unwrap_err()), "inside f");
    // The next gradient on this thread is unaffected.
    assert_eq!(grad(|x: Var<f64>| &x * &x, &3.0), 6.0);
    assert_eq!(value_and_grad(|x: Var<V3>| x.sum(), &x3()).1.to_array(), [1.0; 3]);
}

#[test]
#[should_panic(expected = "a Var from another gradient computation was used")]
fn a_var_used_after_its_grad_finished_panics() {
    let mut leaked = None;
    let _ = grad(
        |x: Var<f64>| {
            leaked = Some(x.clone());
            x.sin()
        },
        &1.0,
    );
    let stale = leaked.unwrap();
    let _ = stale.sin();
}

#[test]
#[should_panic(expected = "a Var from another gradient computation was used")]
fn a_var_used_in_a_later_grad_panics() {
    let mut leaked = None;
    let _ = grad(
        |x: Var<V3>| {
            leaked = Some(x.clone());
            x.sum()
        },
        &x3(),
    );
    let stale = leaked.unwrap();
    let _ = grad(|y: Var<V3>| (&y + &stale).sum(), &x3());
}

#[test]
fn constants_record_nothing() {
    grad(
        |x: Var<f64>| {
            let c = Var::constant(2.0);
            let d = c.exp();
            assert!(!d.is_active(), "an operation on constants is a constant");
            let e = &x * &d;
            assert!(e.is_active());
            e
        },
        &1.0,
    );
    // Outside any gradient computation, constants work as plain values.
    let c = Var::constant(x3());
    assert_eq!(*c.sin().value(), x3().sin());
}

// ---------------------------------------------------------------------------------
// Dynamic shapes: a value and a tangent of different lengths
// ---------------------------------------------------------------------------------

#[test]
fn move_by_with_a_tangent_of_another_length() {
    let mut x = dvector(&[1.0, 2.0, 3.0]);
    let tangent = dvector(&[0.1, 0.2, 0.3, 0.4]);
    let error = x.try_move_by(&tangent).unwrap_err();
    assert_eq!(error.lhs().as_slice(), [3]);
    assert_eq!(error.rhs().as_slice(), [4]);
    let message = error.to_string();
    assert!(message.contains("[3]") && message.contains("[4]"), "{message}");
    assert_eq!(x.as_slice(), [1.0, 2.0, 3.0], "a failed move leaves the value unchanged");
    let payload = catch_unwind(AssertUnwindSafe(|| x.move_by(&tangent))).unwrap_err();
    assert_eq!(panic_message(payload), message);
    // A matching tangent moves the value.
    x.move_by(&dvector(&[0.5, 0.5, 0.5]));
    assert_eq!(x.as_slice(), [1.5, 2.5, 3.5]);
    // Inside a tuple, the error names the part that differs.
    let mut pair = (1.0, dvector(&[1.0, 2.0]));
    let error = pair.try_move_by(&(0.5, dvector(&[1.0]))).unwrap_err();
    assert_eq!((error.lhs().as_slice(), error.rhs().as_slice()), (&[2][..], &[1][..]));
    // A Vec of a different length.
    let mut list = vec![1.0, 2.0];
    let error = list.try_move_by(&vec![1.0]).unwrap_err();
    assert_eq!((error.lhs().as_slice(), error.rhs().as_slice()), (&[2][..], &[1][..]));
}

#[test]
#[should_panic(expected = "[3] and [4]")]
fn move_by_panics_naming_both_shapes() {
    let mut x = dvector(&[1.0, 2.0, 3.0]);
    x.move_by(&dvector(&[0.1, 0.2, 0.3, 0.4]));
}

#[test]
#[should_panic(expected = "[3] and [2]")]
fn a_dynamic_mismatch_inside_grad_names_both_shapes() {
    let _ = grad(
        |(a, b): (Var<DVector<f64>>, Var<DVector<f64>>)| (&a + &b).sum(),
        &(dvector(&[1.0, 2.0, 3.0]), dvector(&[1.0, 2.0])),
    );
}

#[test]
fn gradient_descent_with_move_by() {
    // ½‖x − t‖² on a dynamic vector: grad = x − t, and x ← x − lr·grad converges.
    let target = dvector(&positive_values(4));
    let mut x = dvector(&[0.0; 4]);
    for _ in 0..200 {
        let g =
            grad(|x: Var<DVector<f64>>| &(&x - &Var::constant(target.clone())).norm_sqr().sum() * 0.5, &x);
        x.move_by(&g.scale(-0.1));
    }
    assert_close_slices(x.as_slice(), target.as_slice(), 1e-8);
}

/// Every operator form on `Var`s: owned and borrowed operands, constants on either
/// side; the gradient of each against its closed form.
#[test]
fn operators_accept_owned_borrowed_and_constant_operands() {
    let g = grad(|x: Var<f64>| 2.0 * (x.clone() - 1.0) * x.clone() / 4.0 + (-x) - &Var::constant(3.0), &5.0);
    // f(x) = (x − 1)·x/2 − x − 3, f′(x) = x − 1/2 − 1.
    assert!((g - 3.5).abs() < 1e-15);
    let v: Vector<f64, 2> = Vector::from_array([1.0, -2.0]);
    let g =
        grad(|x: Var<Vector<f64, 2>>| (2.0 * (x.clone() + x.clone()) / 4.0 - (-x.clone()) * 3.0).sum(), &v);
    assert_eq!(g.to_array(), [4.0, 4.0]);
}

/// `try_reshape` and `try_broadcast_to` differentiate dynamic shapes.
#[test]
fn dynamic_reshape_and_broadcast_differentiate() {
    let bias = DVector::from_shape_vec((Dyn(3),), vec![0.5, -1.0, 2.0]).unwrap();
    let g = grad(
        |b: Var<DVector<f64>>| {
            let rows = b.try_broadcast_to((Dyn(2), Dyn(3))).unwrap();
            let flat = rows.try_reshape((Dyn(6),)).unwrap();
            flat.hadamard(&flat).sum()
        },
        &bias,
    );
    // Σ over two copies of b²: ∇ = 4b.
    assert_eq!(g.to_vec(), vec![2.0, -4.0, 8.0]);
    let error = grad(
        |b: Var<DVector<f64>>| match b.try_reshape((Dyn(4),)) {
            Ok(_) => unreachable!("3 elements cannot be 4"),
            Err(error) => {
                assert!(error.to_string().contains("[3]") && error.to_string().contains("[4]"));
                b.sum()
            }
        },
        &bias,
    );
    assert_eq!(error.to_vec(), vec![1.0; 3]);
}

/// A model whose forward pass is written once, over its traced twin.
#[derive(Clone, Differentiable)]
struct Affine {
    w: Matrix<f64, 2, 3>,
    b: Vector<f64, 2>,
}

fn predict(model: &AffineTraced, x: &Vector<f64, 3>) -> Var<Vector<f64, 2>> {
    &model.w.matmul(&Var::constant(*x)) + &model.b
}

#[test]
fn one_forward_definition_serves_training_and_inference() {
    let model = Affine {
        w: Matrix::from_array([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]),
        b: Vector::from_array([0.5, -2.0]),
    };
    let x: Vector<f64, 3> = Vector::from_array([1.0, -1.0, 2.0]);
    // Inference: the same function on the model's constants, outside any gradient.
    let y = predict(&model.as_constant(), &x);
    assert!(!y.is_active(), "constants record nothing");
    assert_eq!(y.value().to_array(), (model.w.matmul(&x) + model.b).to_array());
    // Training: the same function inside a gradient.
    let (loss, gradient) = value_and_grad(|m: AffineTraced| predict(&m, &x).sum(), &model);
    assert_eq!(loss, y.value().sum());
    assert_eq!(gradient.b.to_array(), [1.0, 1.0]);
    assert_eq!(gradient.w.to_array(), [x.to_array(), x.to_array()]);
}

#[test]
fn elements_of_a_traced_tensor_and_stacked_scalars_have_their_rules() {
    let x: Vector<f64, 3> = Vector::from_array([0.5, -1.25, 2.0]);
    // A planar "hand" assembled from traced scalars: (x₂·x₀, sin x₁).
    let f = |x: Var<Vector<f64, 3>>| -> Var<Vector<f64, 2>> {
        let (a, b, c) = (x.at([0]), x.at([1]), x.at([2]));
        Var::stack([&(&c * &a), &b.sin()])
    };
    ok("at + stack", check_vjp(f, &x, CheckOptions::f64()));
    let g = grad(|x: Var<Vector<f64, 3>>| f(x).sum(), &x);
    assert_eq!(g.to_array(), [2.0, (-1.25f64).cos(), 0.5]);
    // An element used twice accumulates.
    let twice = grad(|x: Var<Vector<f64, 3>>| &x.at([1]) + &x.at([1]), &x);
    assert_eq!(twice.to_array(), [0.0, 2.0, 0.0]);
}

#[test]
fn a_rule_of_three_inputs_is_one_node_checked_by_finite_differences() {
    use fluxion::autodiff::record_many;
    // y = x₁·x₂ + sin x₃.
    let f = |x: [Var<f64>; 3]| {
        let v = [*x[0].value(), *x[1].value(), *x[2].value()];
        record_many([&x[0], &x[1], &x[2]], v[0] * v[1] + v[2].sin(), move |_, &y_bar, mut adjoints| {
            adjoints.input(0).add(|| y_bar * v[1]);
            adjoints.input(1).add(|| y_bar * v[0]);
            adjoints.input(2).add(|| y_bar * v[2].cos());
        })
    };
    ok("record_many", check_grad(f, &[0.5, -2.0, 1.0], CheckOptions::f64()));
    // The same Var in two input positions receives both cotangents.
    let g = grad(|x: Var<f64>| f([x.clone(), x.clone(), Var::constant(0.0)]), &3.0);
    assert_eq!(g, 6.0);
}

/// A point in polar form: a derived struct whose tangent is another type
/// (`PolarTangent`), with a field that carries no derivative.
#[derive(Differentiable, Clone, Debug)]
struct Polar {
    radius: f64,
    angle: f64,
    #[no_derivative]
    label: u32,
}

/// (x, y) ↦ (r, θ) in one node: r̄ carries (x, y)/r, θ̄ carries (−y, x)/r²; `wrong`
/// flips the sign of the angle's part.
fn to_polar(point: &Var<Vector<f64, 2>>, wrong: bool) -> Var<Polar> {
    let [x, y] = point.value().to_array();
    let r = x.hypot(y);
    let sign = if wrong { -1.0 } else { 1.0 };
    let polar = Polar { radius: r, angle: y.atan2(x), label: 7 };
    record_unary(point, polar, move |bar: &PolarTangent| {
        let angle_part = sign * bar.angle / (r * r);
        Vector::from_array([x / r * bar.radius - y * angle_part, y / r * bar.radius + x * angle_part])
    })
}

#[test]
fn check_vjp_takes_outputs_whose_tangent_is_another_type() {
    let point: Vector<f64, 2> = Vector::from_array([0.6, -1.3]);
    let comparisons = check_vjp(|p: Var<Vector<f64, 2>>| to_polar(&p, false), &point, CheckOptions::f64());
    // Two outputs × two inputs, plus the adjoint identity on three directions.
    assert_eq!(comparisons, Ok(4 + 3));
    assert_eq!(to_polar(&Var::constant(point), false).value().label, 7);
    let error =
        check_vjp(|p: Var<Vector<f64, 2>>| to_polar(&p, true), &point, CheckOptions::f64()).unwrap_err();
    assert!(error.what.contains("Jacobian entry (output leaf angle, input [0])"), "{error}");
}

/// A library author's vector type: every field is its own tangent.
#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Point3 {
    x: f64,
    y: f64,
    z: f64,
}

/// Fields that are their own tangents, generic and in a tuple struct.
#[derive(Differentiable, Clone, Debug, PartialEq)]
struct Frame<T: fluxion::Scalar + fluxion::autodiff::RealOutput>(Vector<T, 3>, T);

/// A field that is not its own tangent (a derived struct): no conversion is
/// usable, but the type itself derives.
#[derive(Differentiable, Clone, Debug)]
struct Segment {
    start: Point3,
    length: f64,
}

#[test]
fn a_struct_of_own_tangents_converts_to_and_from_its_tangent() {
    let v = Point3 { x: 1.0, y: -2.0, z: 0.5 };
    let t: Point3Tangent = v.clone().into();
    assert_eq!((t.x, t.y, t.z), (1.0, -2.0, 0.5));
    // A gradient becomes a value: one step of gradient descent on |v|².
    let g = grad(|v: Point3Traced| &(&v.x * &v.x + &v.y * &v.y) + &v.z * &v.z, &v);
    let g_value = Point3::from(g);
    assert_eq!(g_value, Point3 { x: 2.0, y: -4.0, z: 1.0 });
    assert_eq!(Point3::from(Point3Tangent::from(v.clone())), v);

    let frame = Frame(Vector::from_array([1.0f32, 2.0, 3.0]), 4.0f32);
    let tangent: FrameTangent<f32> = frame.clone().into();
    assert_eq!((tangent.0.to_array(), tangent.1), ([1.0, 2.0, 3.0], 4.0));
    assert_eq!(Frame::from(tangent), frame);
    let segment = Segment { start: v, length: 2.0 };
    assert_eq!(segment.zero_tangent().length, 0.0);
}

#[test]
fn derived_tangents_compare_field_by_field() {
    let segment = Segment { start: Point3 { x: 1.0, y: 2.0, z: 3.0 }, length: 2.0 };
    let mut moved = segment.zero_tangent();
    assert_eq!(moved, segment.zero_tangent());
    moved.start.z = 1.0;
    assert_ne!(moved, segment.zero_tangent());
    // A field without a derivative is not compared; a generic tuple struct's tangent is.
    let polar = Polar { radius: 1.0, angle: 0.5, label: 3 };
    assert_eq!(polar.zero_tangent(), Polar { label: 4, ..polar.clone() }.zero_tangent());
    let frame = Frame(Vector::from_array([1.0f32, 2.0, 3.0]), 4.0f32);
    assert_ne!(FrameTangent::from(frame.clone()), frame.zero_tangent());
}

/// a × b for whole `Point3`s in one node: ā = b × ȳ, b̄ = ȳ × a.
fn cross(a: &Var<Point3>, b: &Var<Point3>) -> Var<Point3> {
    let (u, v) = (a.value().clone(), b.value().clone());
    let product = |p: [f64; 3], q: [f64; 3]| {
        [p[1] * q[2] - p[2] * q[1], p[2] * q[0] - p[0] * q[2], p[0] * q[1] - p[1] * q[0]]
    };
    let [x, y, z] = product([u.x, u.y, u.z], [v.x, v.y, v.z]);
    record_binary(a, b, Point3 { x, y, z }, move |bar: &Point3Tangent| {
        let bar = [bar.x, bar.y, bar.z];
        let [ax, ay, az] = product([v.x, v.y, v.z], bar);
        let [bx, by, bz] = product(bar, [u.x, u.y, u.z]);
        (Point3Tangent { x: ax, y: ay, z: az }, Point3Tangent { x: bx, y: by, z: bz })
    })
}

#[test]
fn a_derived_struct_traced_as_one_value_takes_its_own_rule() {
    use fluxion::autodiff::Whole;
    let a = Point3 { x: 0.3, y: -1.1, z: 2.0 };
    let b = Point3 { x: 1.5, y: 0.4, z: -0.7 };
    let pair = (Whole(a.clone()), Whole(b.clone()));
    let comparisons =
        check_vjp(|(a, b): (Var<Point3>, Var<Point3>)| cross(&a, &b), &pair, CheckOptions::f64());
    assert_eq!(comparisons, Ok(3 * 6 + 3));
    // d/da ⟨a × b, c⟩ = b × c: the gradient arrives as `a`'s tangent.
    let c = Point3 { x: 2.0, y: 0.0, z: 1.0 };
    let g = grad(
        |(a, b): (Var<Point3>, Var<Point3>)| {
            let n = cross(&a, &b);
            let c = c.clone();
            record_unary(&n, n.value().x * c.x + n.value().y * c.y + n.value().z * c.z, move |bar: &f64| {
                Point3Tangent { x: c.x * bar, y: c.y * bar, z: c.z * bar }
            })
        },
        &pair,
    );
    let expected = Point3 { x: b.y * c.z - b.z * c.y, y: b.z * c.x - b.x * c.z, z: b.x * c.y - b.y * c.x };
    assert_eq!(Point3::from(g.0), expected);
}

#[test]
fn generic_and_nested_derived_structs_have_hessians() {
    use fluxion::autodiff::{Lift, Trace, coordinate_hessian, hvp};
    // f = t·|v|² for Frame(v, t): ∂²f/∂v² = 2t·I, ∂²f/∂t∂v = 2v, ∂²f/∂t² = 0.
    let frame = Frame(Vector::from_array([1.0, -2.0, 0.5]), 3.0);
    let f = |m: <<Frame<f64> as Lift>::Lifted as Trace>::Traced| m.0.dot(&m.0) * &m.1;
    let h = coordinate_hessian(f, &frame);
    assert_eq!(h.block("0", "0").unwrap().to_vec(), vec![6.0, 0.0, 0.0, 0.0, 6.0, 0.0, 0.0, 0.0, 6.0]);
    assert_eq!(h.block("1", "0").unwrap().to_vec(), vec![2.0, -4.0, 1.0]);
    assert_eq!(h.block("1", "1").unwrap().to_vec(), vec![0.0]);
    let hv = hvp(f, &frame, &FrameTangent(Vector::zeros(), 1.0));
    assert_eq!((hv.0.to_array(), hv.1), ([2.0, -4.0, 1.0], 0.0));
    // A struct of structs: leaves named by field path. f = x²·length.
    let segment = Segment { start: Point3 { x: 0.5, y: 1.0, z: 2.0 }, length: 4.0 };
    let h = coordinate_hessian(
        |s: <<Segment as Lift>::Lifted as Trace>::Traced| &(&s.start.x * &s.start.x) * &s.length,
        &segment,
    );
    let names: Vec<&str> = h.leaves.iter().map(|leaf| leaf.name.as_str()).collect();
    assert_eq!(names, ["start.x", "start.y", "start.z", "length"]);
    assert_eq!(h.block("start.x", "start.x").unwrap().to_vec(), vec![8.0]);
    assert_eq!(h.block("length", "start.x").unwrap().to_vec(), vec![1.0]);
    // A `#[no_derivative]` field rides along: f = r²·θ has ∂²/∂r² = 2θ, ∂²/∂r∂θ = 2r.
    let polar = Polar { radius: 2.0, angle: 0.5, label: 3 };
    let f = |p: <<Polar as Lift>::Lifted as Trace>::Traced| {
        assert_eq!(p.label, 3);
        &(&p.radius * &p.radius) * &p.angle
    };
    let h = coordinate_hessian(f, &polar);
    assert_eq!(h.matrix.to_vec(), vec![1.0, 4.0, 4.0, 0.0]);
    assert_eq!(h.leaves.iter().map(|leaf| leaf.name.as_str()).collect::<Vec<_>>(), ["radius", "angle"]);
    let hv = hvp(f, &polar, &PolarTangent { radius: 1.0, angle: 0.0 });
    assert_eq!((hv.radius, hv.angle), (1.0, 4.0));
}

/// A cotangent of another dynamic shape than the output's is an error naming both
/// shapes, not a gradient of the wrong shape.
#[test]
fn a_pullback_refuses_a_cotangent_of_another_shape() {
    type Rows = Tensor<f64, (Dyn, Dyn), Heap>;
    let a = Rows::from_shape_fn((Dyn(2), Dyn(3)), |[i, j]| (i + 2 * j) as f64);
    let (y, mut pullback) = vjp(|a: Var<Rows>| a.transpose(), &a);
    assert_eq!(y.shape(), (Dyn(3), Dyn(2)));
    let error = pullback.try_call(&a).unwrap_err();
    assert!(error.to_string().contains("[3, 2]") && error.to_string().contains("[2, 3]"), "{error}");
    assert_eq!(pullback.call(&y), a.transpose().transpose());
    let panic = catch_unwind(AssertUnwindSafe(|| pullback.call(&a))).expect_err("a wrong cotangent panics");
    assert!(panic.downcast_ref::<String>().is_some_and(|message| message.contains("pullback")));
}

#[test]
fn move_by_names_itself_on_a_shape_mismatch() {
    let mut a = DVector::<f64>::zeros_shaped((Dyn(3),));
    let error = a.try_move_by(&DVector::zeros_shaped((Dyn(2),))).unwrap_err();
    assert!(error.to_string().starts_with("move_by: shapes [3] and [2]"), "{error}");
    assert_eq!(a, DVector::zeros_shaped((Dyn(3),)));
}

/// A custom rule whose cotangent has another shape than its input is stopped with
/// both shapes named, even where it is the input's only contribution (it would
/// otherwise come back as the gradient).
#[test]
#[should_panic(expected = "a custom rule's cotangent for its input: shapes [3] and [5]")]
fn a_custom_rule_with_a_cotangent_of_the_wrong_shape_is_reported() {
    type D = Tensor<f64, (Dyn,), Heap>;
    let x = D::from_shape_slice((Dyn(3),), &[1.0, 2.0, 3.0]).unwrap();
    let five = D::from_shape_slice((Dyn(5),), &[1.0; 5]).unwrap();
    let _ = grad(|x: Var<D>| record_unary(&x, x.value().clone(), move |_| five.clone()).sum(), &x);
}

/// The same check for each input of a binary rule.
#[test]
#[should_panic(expected = "a custom rule's cotangent for its input: shapes [2] and [4]")]
fn a_binary_custom_rule_checks_both_cotangents() {
    type D = Tensor<f64, (Dyn,), Heap>;
    let a = D::from_shape_slice((Dyn(3),), &[1.0, 2.0, 3.0]).unwrap();
    let b = D::from_shape_slice((Dyn(2),), &[1.0, 2.0]).unwrap();
    let _ = grad(
        |(a, b): (Var<D>, Var<D>)| {
            let (left, wrong) = (a.value().clone(), D::from_shape_slice((Dyn(4),), &[0.0; 4]).unwrap());
            record_binary(&a, &b, a.value().sum() + b.value().sum(), move |&g: &f64| {
                (left.map(|_| g), wrong.clone())
            })
        },
        &(a, b),
    );
}

#[derive(Differentiable, Clone)]
struct Layer {
    weight: Vector<f64, 2>,
    bias: f64,
}

#[derive(Differentiable, Clone)]
struct Stack {
    layers: Vec<Layer>,
}

#[test]
fn the_checker_names_a_leaf_by_its_path_through_fields_and_elements() {
    let stack = Stack {
        layers: (0..3)
            .map(|k| Layer { weight: Vector::from_array([0.5 + k as f64, -0.25]), bias: 0.1 * k as f64 })
            .collect(),
    };
    let x: Vector<f64, 2> = Vector::from_array([1.0, 2.0]);
    // Σₖ wₖ·x + bₖ, with a rule that doubles the cotangent of the second bias.
    let loss = |s: StackTraced| {
        let terms = s.layers.iter().enumerate().map(|(k, layer)| {
            let bias = match k {
                1 => record_unary(&layer.bias, *layer.bias.value(), |g: &f64| 2.0 * g),
                _ => layer.bias.clone(),
            };
            &layer.weight.dot(&Var::constant(x)) + &bias
        });
        terms.reduce(|a, b| &a + &b).expect("three layers")
    };
    let error = check_grad(loss, &stack, CheckOptions::f64()).unwrap_err();
    assert!(error.what.contains("input leaf layers.1.bias"), "{error}");
}
