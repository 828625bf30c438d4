//! Forward mode and higher order: jvp against vjp (the adjoint identity) for every
//! primitive, real and complex; jacfwd = jacrev; Hessians against finite differences
//! of the gradient; nested duals for third derivatives; complex derivatives of
//! holomorphic functions.

// One closure body serves both modes: `Var`s need the references that duals do not.
#![allow(clippy::op_ref)]

use fluxion::autodiff::check::coordinates;
use fluxion::autodiff::{
    Dual, Lift, Trace, Unlift, grad, hessian, hvp, jacfwd, jacrev, jvp, linearize, value_and_grad, vjp,
};
use fluxion::prelude::*;
use fluxion::tensor::Storage;

/// Random coordinates in [-1, 1), the same for the same seed.
fn coordinates_like<V: RealLeaves + Clone>(prototype: &V, seed: u64) -> V {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut out = prototype.clone();
    out.map_reals(&mut |_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    });
    out
}

/// ⟨vjp(w), v⟩ = ⟨w, jvp(v)⟩ for random v and w, with the real inner product of
/// coordinates (Re Σ conj(a)·b on complex data). Also checks that both modes compute
/// the same value.
fn adjoint_identity<X, Y, L>(reverse: impl Fn(X::Traced) -> Var<Y>, forward: impl Fn(X::Lifted) -> L, x: &X)
where
    X: Trace + Lift + Clone,
    Y: Differentiable<Tangent = Y> + VectorSpace,
    L: Unlift<Primal = Y>,
{
    let v = coordinates_like(&x.zero_tangent(), 11);
    let (y, y_dot) = jvp(&forward, x, &v);
    let (y_reverse, mut pullback) = vjp(&reverse, x);
    let w = coordinates_like(&y, 23);
    let lhs: f64 = coordinates(&pullback.call(&w)).iter().zip(coordinates(&v)).map(|(a, b)| a * b).sum();
    let rhs: f64 = coordinates(&w).iter().zip(coordinates(&y_dot)).map(|(a, b)| a * b).sum();
    assert!((lhs - rhs).abs() <= 1e-10 * (1.0 + lhs.abs()), "⟨vjp(w), v⟩ = {lhs} but ⟨w, jvp(v)⟩ = {rhs}");
    let same = coordinates(&y)
        .iter()
        .zip(coordinates(&y_reverse))
        .all(|(a, b)| (a - b).abs() <= 1e-12 * (1.0 + a.abs()));
    assert!(same, "forward and reverse values differ");
}

/// Runs [`adjoint_identity`] with one closure body written once for both modes.
macro_rules! adjoint {
    ($x:expr, |$arg:pat_param| $body:expr) => {
        adjoint_identity(|$arg| $body, |$arg| $body, &$x)
    };
}

fn matrix<const R: usize, const C: usize>(seed: u64) -> Matrix<f64, R, C> {
    Matrix::random_uniform(0.2, 1.5, seed)
}

fn complex_matrix<const R: usize, const C: usize>(seed: u64) -> Matrix<Complex64, R, C> {
    Matrix::random_uniform(0.2, 1.5, seed)
}

#[test]
fn adjoint_identity_holds_for_every_real_primitive() {
    let a: Matrix<f64, 2, 3> = matrix(1);
    let b: Matrix<f64, 2, 3> = matrix(2);
    let c: Matrix<f64, 3, 4> = matrix(3);
    let v: Vector<f64, 3> = Vector::random_uniform(0.2, 1.5, 4);
    let u: Vector<f64, 2> = Vector::random_uniform(0.2, 1.5, 5);
    let batch: Tensor3<f64, 2, 2, 3> = Tensor3::random_uniform(0.2, 1.5, 6);
    let batch_rhs: Tensor3<f64, 2, 3, 2> = Tensor3::random_uniform(0.2, 1.5, 7);
    adjoint!(a, |x| x.exp());
    adjoint!(a, |x| x.ln());
    adjoint!(a, |x| x.sin());
    adjoint!(a, |x| x.cos());
    adjoint!(a, |x| x.tanh());
    adjoint!(a, |x| x.sqrt());
    adjoint!(a, |x| x.sigmoid());
    adjoint!(a, |x| x.powi(3));
    adjoint!(a, |x| x.relu());
    adjoint!(a, |x| x.abs());
    adjoint!(a, |x| x.conj());
    adjoint!(a, |x| x.norm_sqr());
    adjoint!(a, |x| -&x);
    adjoint!((a, b), |(x, y)| &x + &y);
    adjoint!((a, b), |(x, y)| &x - &y);
    adjoint!((a, b), |(x, y)| x.hadamard(&y));
    adjoint!((a, b), |(x, y)| x.dot(&y));
    adjoint!((a, b), |(x, y)| x.inner(&y));
    adjoint!((a, b), |(x, y)| x.dotu(&y));
    adjoint!((a, c), |(x, y)| x.matmul(&y));
    adjoint!((a, v), |(x, y)| x.matmul(&y));
    adjoint!((batch, batch_rhs), |(x, y)| x.matmul(&y));
    // A batch by one matrix: [2, 2, 3]×[3, 4].
    adjoint!((batch, c), |(x, y)| x.matmul(&y));
    adjoint!((u, v), |(x, y)| x.outer(&y));
    adjoint!(a, |x| x.sum());
    adjoint!(a, |x| x.mean());
    adjoint!(a, |x| x.max());
    adjoint!(a, |x| x.sum_axis(Axis::<0>));
    adjoint!(a, |x| x.mean_axis(Axis::<1>));
    adjoint!(a, |x| x.max_axis(Axis::<1>));
    adjoint!(a, |x| x.softmax(Axis::<1>));
    adjoint!(a, |x| x.log_softmax(Axis::<0>));
    adjoint!(a, |x| x.logsumexp(Axis::<1>));
    adjoint!(a, |x| x.transpose());
    adjoint!(a, |x| x.reshape::<(Const<3>, Const<2>)>());
    adjoint!(a, |x| x.flatten::<6>());
    adjoint!(v, |x| x.broadcast::<(Const<2>, Const<3>)>());
    adjoint!((a, b), |(x, y)| x.concat::<0, Const<2>, Const<4>>(Axis::<0>, &y));
    adjoint!(a, |x| x.narrow::<1, 1, 2>());
}

#[test]
fn adjoint_identity_holds_for_every_complex_primitive() {
    let a: Matrix<Complex64, 2, 3> = complex_matrix(1);
    let b: Matrix<Complex64, 2, 3> = complex_matrix(2);
    let c: Matrix<Complex64, 3, 2> = complex_matrix(3);
    let v: Vector<Complex64, 3> = Vector::random_uniform(0.2, 1.5, 4);
    let u: Vector<Complex64, 2> = Vector::random_uniform(0.2, 1.5, 5);
    adjoint!(a, |x| x.exp());
    adjoint!(a, |x| x.ln());
    adjoint!(a, |x| x.sin());
    adjoint!(a, |x| x.cos());
    adjoint!(a, |x| x.tanh());
    adjoint!(a, |x| x.sqrt());
    adjoint!(a, |x| x.sigmoid());
    adjoint!(a, |x| x.powi(3));
    adjoint!(a, |x| x.conj());
    adjoint!(a, |x| x.abs());
    adjoint!(a, |x| x.re());
    adjoint!(a, |x| x.im());
    adjoint!(a, |x| x.norm_sqr());
    adjoint!((a, b), |(x, y)| &x + &y);
    adjoint!((a, b), |(x, y)| x.hadamard(&y));
    adjoint!((a, b), |(x, y)| x.inner(&y));
    adjoint!((a, b), |(x, y)| x.dotu(&y));
    adjoint!((a, c), |(x, y)| x.matmul(&y));
    adjoint!((a, v), |(x, y)| x.matmul(&y));
    adjoint!((u, v), |(x, y)| x.outer(&y));
    adjoint!(a, |x| x.sum());
    adjoint!(a, |x| x.transpose());
    adjoint!(a, |x| x.reshape::<(Const<6>,)>());
    adjoint!(a, |x| x.narrow::<0, 1, 1>());
}

#[test]
fn adjoint_identity_holds_for_scalar_operations() {
    let x = 0.7f64;
    let z = Complex64::new(0.4, -0.9);
    adjoint!((x, 1.3), |(a, b)| &(&a * &b) / &(&a + &b));
    adjoint!(x, |a| a.exp().sin().tanh());
    adjoint!((z, Complex64::new(1.1, 0.2)), |(a, b)| &(&a * &b) / &(&a - &b));
    adjoint!(z, |a| a.exp().cos().sqrt());
    adjoint!(z, |a| a.norm_sqr());
}

/// y = tanh(W·x) ⊙ x₀..ₘ + (x·x)·1, written once for both modes.
macro_rules! mixed_body {
    ($x:expr, $w:expr) => {{
        let x = $x;
        let hidden = $w.matmul(&x).tanh();
        let head = x.narrow::<0, 0, 3>();
        let square = x.hadamard(&x).sum_axis(Axis::<0>).broadcast::<(Const<3>,)>();
        &hidden.hadamard(&head) + &square
    }};
}

#[test]
fn jacfwd_equals_jacrev_on_random_functions() {
    for seed in 0..5 {
        let w: Matrix<f64, 3, 4> = Matrix::random_uniform(-1.0, 1.0, seed);
        let x: Vector<f64, 4> = Vector::random_uniform(-1.0, 1.0, seed + 100);
        // One coordinate per pass, and all four in one pass.
        let w_dual = w.map(Dual::<f64>::constant);
        let forward: Matrix<f64, 3, 4> = jacfwd(|x| mixed_body!(x, w_dual), &x);
        let w_dual4 = w.map(Dual::<f64, 4>::constant);
        let one_pass: Matrix<f64, 3, 4> = jacfwd(|x| mixed_body!(x, w_dual4), &x);
        assert_eq!(one_pass.to_array(), forward.to_array());
        let reverse: Matrix<f64, 3, 4> = jacrev(|x| mixed_body!(x, Var::constant(w)), &x);
        for (f, r) in forward.iter().zip(reverse.iter()) {
            assert!((f - r).abs() < 1e-12, "{forward} vs {reverse}");
        }
    }
}

#[test]
fn jvp_of_a_dynamic_function_matches_the_jacobian() {
    let x = DVector::from_shape_vec((Dyn(3),), vec![0.3, -0.4, 1.2]).unwrap();
    let v = DVector::from_shape_vec((Dyn(3),), vec![1.0, 2.0, -1.0]).unwrap();
    let (y, y_dot) = jvp(|x: DVector<Dual<f64>>| x.sin().hadamard(&x), &x, &v);
    let (_, linear) = linearize(|x: DVector<Dual<f64>>| x.sin().hadamard(&x), &x);
    for i in 0..3 {
        let (xi, vi) = (x[[i]], v[[i]]);
        assert!((y[[i]] - xi.sin() * xi).abs() < 1e-15);
        assert!((y_dot[[i]] - (xi.cos() * xi + xi.sin()) * vi).abs() < 1e-15);
    }
    assert_eq!(linear(&v), y_dot);
}

/// Rosenbrock, generic over the element type so that it runs on duals too.
fn rosenbrock<T: RealScalar, const N: usize>(x: Var<Vector<T, N, Heap>>) -> Var<T> {
    let one = T::from_f64(1.0);
    let hundred = T::from_f64(100.0);
    let head = Var::constant(Vector::<T, N, Heap>::from_fn(
        |[i]: [usize; 1]| if i + 1 < N { one } else { T::zero() },
    ));
    // Σ_{i<N−1} 100 (x_{i+1} − x_i²)² + (1 − x_i)², with next = S·x for the shift S and
    // the mask `head` dropping the last term.
    let shift = Var::constant(Matrix::<T, N, N, Heap>::from_fn(
        |[i, j]: [usize; 2]| {
            if j == i + 1 { one } else { T::zero() }
        },
    ));
    let next = shift.matmul(&x);
    let square = x.hadamard(&x).hadamard(&head);
    let valley = (&next - &square).hadamard(&head);
    let slope = (&head - &x).hadamard(&head);
    &(&valley.dot(&valley) * hundred) + &slope.dot(&slope)
}

fn check_hessian_against_gradient_differences<const N: usize>(x: &Vector<f64, N, Heap>) {
    let h = hessian(rosenbrock::<Dual<f64>, N>, x);
    let step = 1e-6;
    for j in 0..N {
        let mut plus = x.clone();
        let mut minus = x.clone();
        plus[[j]] += step;
        minus[[j]] -= step;
        let g_plus = grad(rosenbrock::<f64, N>, &plus);
        let g_minus = grad(rosenbrock::<f64, N>, &minus);
        for i in 0..N {
            let numeric = (g_plus[[i]] - g_minus[[i]]) / (2.0 * step);
            assert!(
                (h[[i, j]] - numeric).abs() < 1e-4 * (1.0 + numeric.abs()),
                "H[{i},{j}] = {} vs {numeric}",
                h[[i, j]]
            );
        }
    }
}

#[test]
fn rosenbrock_hessian_matches_closed_form_and_finite_differences() {
    let x: Vector<f64, 2, Heap> = Vector::from_array([-1.2, 1.0]);
    let h = hessian(rosenbrock::<Dual<f64>, 2>, &x);
    let (a, b) = (x[[0]], x[[1]]);
    let expected = [[1200.0 * a * a - 400.0 * b + 2.0, -400.0 * a], [-400.0 * a, 200.0]];
    for i in 0..2 {
        for j in 0..2 {
            assert!((h[[i, j]] - expected[i][j]).abs() < 1e-9, "{h}");
        }
    }
    check_hessian_against_gradient_differences(&x);
    let x10: Vector<f64, 10, Heap> = Vector::random_uniform(-1.5, 1.5, 3);
    check_hessian_against_gradient_differences(&x10);
    let v: Vector<f64, 10, Heap> = Vector::random_uniform(-1.0, 1.0, 4);
    let h10 = hessian(rosenbrock::<Dual<f64>, 10>, &x10);
    assert_eq!(h10.transpose(), h10, "a Hessian is symmetric");
    let product = hvp(rosenbrock::<Dual<f64>, 10>, &x10, &v);
    let expected_product = h10.matmul(&v);
    for (p, e) in product.iter().zip(expected_product.iter()) {
        assert!((p - e).abs() < 1e-9);
    }
}

/// The W1 MLP (6→32→32→3, tanh, ½‖y − t‖²) over a flat vector of its 1379
/// parameters, generic over the element type. (A static length of 1379 is beyond the
/// compile-time slice check, so the vector's length is `Dyn`.)
fn mlp_loss<T: RealScalar>(p: Var<DVector<T>>, x: &[f64; 6], t: &[f64; 3]) -> Var<T> {
    let w1: Var<Matrix<T, 32, 6, Heap>> = p.narrow::<0, 0, 192>().reshape();
    let b1 = p.narrow::<0, 192, 32>();
    let w2: Var<Matrix<T, 32, 32, Heap>> = p.narrow::<0, 224, 1024>().reshape();
    let b2 = p.narrow::<0, 1248, 32>();
    let w3: Var<Matrix<T, 3, 32, Heap>> = p.narrow::<0, 1280, 96>().reshape();
    let b3 = p.narrow::<0, 1376, 3>();
    let x = Var::constant(Vector::<T, 6, Heap>::from_fn(|[i]: [usize; 1]| T::from_f64(x[i])));
    let t = Var::constant(Vector::<T, 3, Heap>::from_fn(|[i]: [usize; 1]| T::from_f64(t[i])));
    let h1 = (&w1.matmul(&x) + &b1).tanh();
    let h2 = (&w2.matmul(&h1) + &b2).tanh();
    let residual = &(&w3.matmul(&h2) + &b3) - &t;
    &residual.dot(&residual) * T::from_f64(0.5)
}

#[test]
fn mlp_hessian_matches_finite_differences_of_the_gradient() {
    let p: DVector<f64> = Tensor::random_normal_shaped((Dyn(1379),), 0.0, 0.3, 9);
    let (x, t) = ([0.5, -0.3, 0.8, 0.1, -0.7, 0.2], [0.3, -0.2, 0.6]);
    // Every column of the 1379×1379 Hessian against central differences of the
    // reverse-mode gradient.
    for j in 0..1379 {
        let e_j = DVector::from_shape_fn((Dyn(1379),), |[i]| if i == j { 1.0 } else { 0.0 });
        let column = hvp(|p| mlp_loss::<Dual<f64>>(p, &x, &t), &p, &e_j);
        let step = 1e-5;
        let (mut plus, mut minus) = (p.clone(), p.clone());
        plus[[j]] += step;
        minus[[j]] -= step;
        let g_plus = grad(|p| mlp_loss::<f64>(p, &x, &t), &plus);
        let g_minus = grad(|p| mlp_loss::<f64>(p, &x, &t), &minus);
        for i in 0..1379 {
            let numeric = (g_plus[[i]] - g_minus[[i]]) / (2.0 * step);
            assert!((column[[i]] - numeric).abs() < 1e-6 * (1.0 + numeric.abs()), "H[{i},{j}]");
        }
    }
    let (value, _) = value_and_grad(|p| mlp_loss::<f64>(p, &x, &t), &p);
    assert!(value > 0.0);
}

/// f(x) = x³·sin x, generic over the scalar.
fn cubic_sine<S: RealScalar>(x: S) -> S {
    x * x * x * x.sin()
}

#[test]
fn nested_duals_give_the_third_derivative() {
    type Third = Dual<Dual<Dual<f64>>>;
    let x0 = 0.8f64;
    // x = x0 + ε₁ + ε₂ + ε₃: the ε₁ε₂ε₃ coefficient is f‴(x0).
    let x: Third = Dual::new(
        Dual::new(Dual::variable(x0), [Dual::constant(1.0)]),
        [Dual::constant(Dual::constant(1.0))],
    );
    let y = cubic_sine(x);
    let third = y.tangent()[0].tangent()[0].tangent()[0];
    let second = y.tangent()[0].tangent()[0].value();
    let first = y.tangent()[0].value().value();
    let (s, c) = (x0.sin(), x0.cos());
    let expected_first = 3.0 * x0 * x0 * s + x0.powi(3) * c;
    let expected_second = 6.0 * x0 * s + 6.0 * x0 * x0 * c - x0.powi(3) * s;
    let expected_third = 6.0 * s + 18.0 * x0 * c - 9.0 * x0 * x0 * s - x0.powi(3) * c;
    assert!((first - expected_first).abs() < 1e-13);
    assert!((second - expected_second).abs() < 1e-13);
    assert!((third - expected_third).abs() < 1e-12);
    assert!((y.value().value().value() - cubic_sine(x0)).abs() < 1e-15);
}

#[test]
fn forward_mode_gives_complex_derivatives_of_holomorphic_functions() {
    let z = Complex64::new(0.3, -1.1);
    let at = |f: fn(Dual<Complex64>) -> Dual<Complex64>| f(Dual::variable(z)).tangent()[0];
    let close = |a: Complex64, b: Complex64| (a - b).norm() < 1e-13;
    assert!(close(at(|w| w.exp()), z.exp()));
    assert!(close(at(|w| w.sin()), z.cos()));
    assert!(close(at(|w| w * w * w + w * Dual::constant(Complex64::new(2.0, 0.0))), z * z * 3.0 + 2.0));
    assert!(close(at(|w| w.tanh()), Complex64::new(1.0, 0.0) - z.tanh() * z.tanh()));
    // The same derivative through a complex tensor.
    let x: Vector<Complex64, 2> = Vector::from_array([z, Complex64::new(1.0, 0.5)]);
    let ones: Vector<Complex64, 2> = Vector::ones();
    let (_, derivative) = jvp(|x: Vector<Dual<Complex64>, 2>| x.exp(), &x, &ones);
    assert_eq!(derivative, x.exp());
}

#[test]
fn generic_storage_lifts_and_unlifts() {
    fn round_trip<S: Shape, K: Storage<f64, S> + Storage<Dual<f64>, S>>(x: &Tensor<f64, S, K>) {
        let tangent = x.scale(2.0);
        let (value, back) = x.lift(&tangent).unlift();
        assert_eq!(&value, x);
        assert_eq!(back, tangent);
    }
    round_trip(&Matrix::<f64, 2, 2>::from_array([[1.0, 2.0], [3.0, 4.0]]));
    round_trip(&DVector::from_shape_vec((Dyn(2),), vec![1.0, -1.0]).unwrap());
}

#[test]
fn jacobians_of_tensor_functions_have_shape_out_then_in() {
    let w: Matrix<f64, 2, 3> = Matrix::random_uniform(-1.0, 1.0, 8);
    let x: Vector<f64, 3> = Vector::from_array([0.5, -0.25, 1.0]);
    // ∂(W·x)/∂W is a 2×(2×3) tensor: J[i, k, l] = δᵢₖ·xₗ.
    let x_dual = x.map(Dual::constant);
    let forward: Tensor3<f64, 2, 2, 3> = jacfwd(|w: Matrix<Dual<f64>, 2, 3>| w.matmul(&x_dual), &w);
    let reverse: Tensor3<f64, 2, 2, 3> = jacrev(|w: Var<Matrix<f64, 2, 3>>| w.matmul(&Var::constant(x)), &w);
    assert_eq!(forward, reverse);
    for [i, k, l] in (0..12).map(|flat| forward.shape().unravel(flat)) {
        let expected = if i == k { x[[l]] } else { 0.0 };
        assert_eq!(forward[[i, k, l]], expected);
    }
    // A scalar output: the Jacobian has the input's shape and is the gradient.
    let gradient: Matrix<f64, 2, 3> =
        jacfwd(|w: Matrix<Dual<f64>, 2, 3>| Tensor0::from_array([w.hadamard(&w).sum()]), &w);
    assert_eq!(gradient, w.scale(2.0));
}

#[test]
fn jacfwd_and_jacrev_agree_on_holomorphic_complex_functions() {
    let z: Vector<Complex64, 2> = Vector::from_array([Complex64::new(0.3, -0.7), Complex64::new(-1.1, 0.4)]);
    let m: Matrix<Complex64, 2, 2> = Matrix::random_uniform(-1.0, 1.0, 12);
    let m_dual = m.map(Dual::constant);
    let forward: Matrix<Complex64, 2, 2> =
        jacfwd(|z: Vector<Dual<Complex64>, 2>| m_dual.matmul(&z.exp()), &z);
    let reverse: Matrix<Complex64, 2, 2> =
        jacrev(|z: Var<Vector<Complex64, 2>>| Var::constant(m).matmul(&z.exp()), &z);
    for i in 0..2 {
        for j in 0..2 {
            let expected = m[[i, j]] * z[[j]].exp();
            assert!((forward[[i, j]] - expected).norm() < 1e-14);
            assert!((reverse[[i, j]] - expected).norm() < 1e-14);
        }
    }
}

#[test]
fn duals_compare_by_value() {
    let a = Dual::new(1.0, [2.0]);
    assert_eq!(a, Dual::constant(1.0));
    assert!(Dual::new(1.0, [5.0]) < Dual::new(2.0, [-5.0]));
}

#[test]
fn jvp_lifts_arrays_vectors_and_long_tuples() {
    let (y, dy) = jvp(|[a, b]: [Dual<f64>; 2]| a * b, &[2.0, 3.0], &[1.0, 0.0]);
    assert_eq!((y, dy), (6.0, 3.0));
    let (y, dy) = jvp(
        |v: Vec<Dual<f64>>| v.iter().fold(Dual::constant(0.0), |acc, &x| acc + x * x),
        &vec![1.0, 2.0],
        &vec![1.0, 1.0],
    );
    assert_eq!((y, dy), (5.0, 6.0));
    let (y, dy) = jvp(
        |(a, b, c, d, e): (Dual<f64>, Dual<f64>, Dual<f64>, Dual<f64>, Dual<f64>)| a + b + c + d * e,
        &(1.0, 1.0, 1.0, 2.0, 3.0),
        &(0.0, 0.0, 0.0, 1.0, 0.0),
    );
    assert_eq!((y, dy), (9.0, 3.0));
    let ([y0, y1], [d0, d1]) = jvp(|[a, b]: [Dual<f64>; 2]| [a.sin(), b.cos()], &[0.0, 0.0], &[1.0, 1.0]);
    assert_eq!((y0, y1, d0, d1), (0.0, 1.0, 1.0, 0.0));
}

/// y = W·x + b over a derived struct, with a constant field.
#[derive(Differentiable, Clone, Debug)]
struct Affine {
    w: Matrix<f64, 2, 2>,
    b: Vector<f64, 2>,
    #[no_derivative]
    label: u8,
}

#[test]
fn jvp_runs_on_derived_structs() {
    let model = Affine {
        w: Matrix::from_array([[1.0, 2.0], [3.0, 4.0]]),
        b: Vector::from_array([0.5, -0.5]),
        label: 7,
    };
    let direction =
        AffineTangent { w: Matrix::from_array([[1.0, 0.0], [0.0, 1.0]]), b: Vector::from_array([1.0, 2.0]) };
    let x: Vector<f64, 2> = Vector::from_array([2.0, -1.0]);
    let x_dual = x.map(Dual::constant);
    let (y, y_dot) = jvp(
        |m: AffineLifted| {
            assert_eq!(m.label, 7);
            &m.w.matmul(&x_dual) + &m.b
        },
        &model,
        &direction,
    );
    assert_eq!(y.to_array(), [0.5, 1.5]);
    // ẏ = Ẇ·x + ḃ = x + ḃ.
    assert_eq!(y_dot.to_array(), [3.0, 1.0]);
    let (back, tangent): (Affine, AffineTangent) = model.lift(&direction).unlift();
    assert_eq!((back.w, back.b, back.label), (model.w, model.b, 7));
    assert_eq!((tangent.w, tangent.b), (direction.w, direction.b));
}

#[test]
fn the_hessian_of_a_matrix_input_is_typed_s_plus_s_and_matches_the_flattened_one() {
    let w: Matrix<f64, 2, 3> = Matrix::random_uniform(-1.0, 1.0, 7);
    let x: Vector<Dual<f64>, 3> = Vector::from_array([0.5, -1.0, 2.0]).map(Dual::constant);
    // f(W) = Σ tanh(W·x)ᵢ³: coordinates of W interact through the cube and tanh.
    let f = |w: Var<Matrix<Dual<f64>, 2, 3>>| w.matmul(&Var::constant(x)).tanh().powi(3).sum();
    let h: Tensor4<f64, 2, 3, 2, 3> = hessian(f, &w);
    let flat: Vector<f64, 6> = w.reshape();
    let h_flat: Matrix<f64, 6, 6> =
        hessian(|v: Var<Vector<Dual<f64>, 6>>| f(v.reshape::<(Const<2>, Const<3>)>()), &flat);
    for (a, b) in h.iter().zip(h_flat.iter()) {
        assert!((a - b).abs() < 1e-14, "{a} vs {b}");
    }
    // Symmetric, and not diagonal (the coordinates interact).
    assert!((h[[0, 1, 1, 2]] - h[[1, 2, 0, 1]]).abs() < 1e-14);
    assert!(h[[0, 0, 0, 1]].abs() > 1e-3);
}

/// f(w, b) = Σ tanh(w·b)³ for a layer's parameters, generic over the scalar.
fn layer_loss<S: Scalar>((w, b): (Var<Matrix<S, 2, 3>>, Var<Vector<S, 3>>)) -> Var<S> {
    w.matmul(&b).tanh().powi(3).sum()
}

#[test]
fn hvp_on_a_tuple_of_parameters_matches_finite_differences_of_the_gradient() {
    let w: Matrix<f64, 2, 3> = Matrix::random_uniform(-1.0, 1.0, 11);
    let b: Vector<f64, 3> = Vector::random_uniform(-1.0, 1.0, 12);
    let v: (Matrix<f64, 2, 3>, Vector<f64, 3>) =
        (Matrix::random_uniform(-1.0, 1.0, 13), Vector::random_uniform(-1.0, 1.0, 14));
    let (hw, hb) = hvp(layer_loss::<Dual<f64>>, &(w, b), &v);
    // (∇f(x + εv) − ∇f(x − εv)) / 2ε.
    let eps = 1e-6;
    let gradient_at = |sign: f64| {
        let x = (w + v.0 * (sign * eps), b + v.1 * (sign * eps));
        grad(layer_loss::<f64>, &x)
    };
    let ((w_plus, b_plus), (w_minus, b_minus)) = (gradient_at(1.0), gradient_at(-1.0));
    for (h, (p, m)) in hw.iter().zip(w_plus.iter().zip(w_minus.iter())) {
        assert!((h - (p - m) / (2.0 * eps)).abs() < 1e-7, "{h} vs {}", (p - m) / (2.0 * eps));
    }
    for (h, (p, m)) in hb.iter().zip(b_plus.iter().zip(b_minus.iter())) {
        assert!((h - (p - m) / (2.0 * eps)).abs() < 1e-7);
    }
}

/// The Hessian of a tuple input over its coordinates: each column equals central
/// differences of the gradient, the matrix is symmetric, its (w, w) block equals the
/// typed Hessian in w alone, and every coordinate maps back to its leaf.
#[test]
fn coordinate_hessian_of_a_tuple_matches_finite_differences_and_the_typed_blocks() {
    use fluxion::autodiff::coordinate_hessian;
    let w: Matrix<f64, 2, 3> = Matrix::random_uniform(-1.0, 1.0, 21);
    let b: Vector<f64, 3> = Vector::random_uniform(-1.0, 1.0, 22);
    let h = coordinate_hessian(layer_loss::<Dual<f64>>, &(w, b));
    assert_eq!(h.matrix.dims().as_slice(), &[9, 9]);
    let names: Vec<_> =
        h.leaves.iter().map(|leaf| (leaf.name.as_str(), leaf.shape.clone(), leaf.range.clone())).collect();
    assert_eq!(names, vec![("0", vec![2, 3], 0..6), ("1", vec![3], 6..9)]);
    let eps = 1e-5;
    for k in 0..9 {
        let shifted = |sign: f64| {
            let (mut w, mut b) = (w, b);
            if k < 6 {
                w.as_mut_slice()[k] += sign * eps
            } else {
                b.as_mut_slice()[k - 6] += sign * eps
            }
            let (gw, gb) = grad(layer_loss::<f64>, &(w, b));
            gw.iter().chain(gb.iter()).copied().collect::<Vec<f64>>()
        };
        let (plus, minus) = (shifted(1.0), shifted(-1.0));
        for i in 0..9 {
            let difference = (plus[i] - minus[i]) / (2.0 * eps);
            assert!(
                (h.matrix[[i, k]] - difference).abs() < 1e-7,
                "H[{i}, {k}] = {} vs {difference}",
                h.matrix[[i, k]]
            );
            assert!((h.matrix[[i, k]] - h.matrix[[k, i]]).abs() < 1e-13, "symmetry at ({i}, {k})");
        }
    }
    let typed: Tensor4<f64, 2, 3, 2, 3> =
        hessian(|w: Var<Matrix<Dual<f64>, 2, 3>>| layer_loss((w, Var::constant(b.map(Dual::constant)))), &w);
    assert_eq!(h.block("0", "0").unwrap().as_slice(), typed.as_slice());
    assert_eq!(h.block("0", "1").unwrap().dims().as_slice(), &[6, 3]);
    assert!(h.block("0", "2").is_none());
    let (leaf, position) = h.coordinate(4).unwrap();
    assert_eq!((leaf.name.as_str(), position), ("0", 4));
    assert!(h.coordinate(9).is_none());
}

#[test]
fn coordinate_hessian_of_a_nested_tuple_names_its_leaves_by_position() {
    use fluxion::autodiff::coordinate_hessian;
    let w: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [3.0, 4.0]]);
    let (b, scale): (Vector<f64, 2>, f64) = (Vector::from_array([0.5, -0.5]), 1.5);
    let x: Vector<Dual<f64>, 2> = Vector::from_array([2.0, -1.0]).map(Dual::constant);
    // f = s·Σ (W·x + b)ᵢ²: ∂²f/∂b∂b = 2s·I, ∂²f/∂bᵢ∂Wᵢⱼ = 2s·xⱼ, ∂²f/∂s∂bᵢ = 2yᵢ.
    let h = coordinate_hessian(
        |((w, b), s): ((Var<Matrix<Dual<f64>, 2, 2>>, Var<Vector<Dual<f64>, 2>>), Var<Dual<f64>>)| {
            let y = &w.matmul(&Var::constant(x)) + &b;
            y.hadamard(&y).sum() * &s
        },
        &((w, b), scale),
    );
    assert_eq!(h.leaf("0.0").unwrap().range, 0..4);
    assert_eq!(h.leaf("1").unwrap().shape, Vec::<usize>::new());
    assert_eq!(h.block("0.1", "0.1").unwrap().to_vec(), vec![3.0, 0.0, 0.0, 3.0]);
    assert_eq!(h.block("0.1", "0.0").unwrap().to_vec(), vec![6.0, -3.0, 0.0, 0.0, 0.0, 0.0, 6.0, -3.0]);
    // y = W·x + b = (0.5, 1.5).
    assert_eq!(h.block("1", "0.1").unwrap().to_vec(), vec![1.0, 3.0]);
    assert_eq!(h.block("1", "1").unwrap().to_vec(), vec![0.0]);
}

/// A derived struct: its parameters are named by field, and the closure takes the
/// struct lifted to duals and traced (a `ScaledAffineLiftedTraced`).
#[derive(Differentiable, Clone, Debug)]
struct ScaledAffine {
    w: Matrix<f64, 2, 2>,
    b: Vector<f64, 2>,
    scale: f64,
}

#[test]
fn second_order_of_a_derived_struct_names_its_leaves_by_field() {
    use fluxion::autodiff::coordinate_hessian;
    let model = ScaledAffine {
        w: Matrix::from_array([[1.0, 2.0], [3.0, 4.0]]),
        b: Vector::from_array([0.5, -0.5]),
        scale: 1.5,
    };
    let x: Vector<Dual<f64>, 2> = Vector::from_array([2.0, -1.0]).map(Dual::constant);
    // f = s·Σ (W·x + b)ᵢ², as in the nested-tuple test above.
    let f = |m: <<ScaledAffine as Lift>::Lifted as Trace>::Traced| {
        let y = &m.w.matmul(&Var::constant(x)) + &m.b;
        y.hadamard(&y).sum() * &m.scale
    };
    let h = coordinate_hessian(f, &model);
    assert_eq!(h.leaf("w").unwrap().range, 0..4);
    assert_eq!(h.leaf("scale").unwrap().shape, Vec::<usize>::new());
    assert_eq!(h.block("b", "b").unwrap().to_vec(), vec![3.0, 0.0, 0.0, 3.0]);
    assert_eq!(h.block("b", "w").unwrap().to_vec(), vec![6.0, -3.0, 0.0, 0.0, 0.0, 0.0, 6.0, -3.0]);
    assert_eq!(h.block("scale", "b").unwrap().to_vec(), vec![1.0, 3.0]);
    // H·v from `hvp` is the struct's tangent and equals the matrix times v's coordinates.
    let v = ScaledAffineTangent {
        w: Matrix::from_array([[0.3, -0.2], [0.1, 0.4]]),
        b: Vector::from_array([-0.7, 0.2]),
        scale: 0.5,
    };
    let hv = hvp(f, &model, &v);
    let v_coordinates = coordinates(&v);
    let hv_coordinates = coordinates(&hv);
    for (i, value) in hv_coordinates.iter().enumerate() {
        let expected: f64 = (0..7).map(|j| h.matrix[[i, j]] * v_coordinates[j]).sum();
        assert!((value - expected).abs() < 1e-13, "(H·v)[{i}] = {value} vs {expected}");
    }
}

/// `stop_gradient` stops derivatives of every order, as JAX's and PyTorch's `detach`
/// do: a dual's tangent (forward mode through generic scalar code), a tensor of
/// duals, and a traced value of duals (forward over reverse) all come back constant.
#[test]
fn stop_gradient_stops_forward_mode_and_second_derivatives() {
    fn half_square<T: RealScalar>(x: T) -> T {
        x * stop_gradient(x) / T::from_f64(2.0)
    }
    // d/dx (x·stop(x)/2) = x/2, not x.
    assert_eq!(jvp(half_square::<Dual<f64>>, &1.5, &1.0), (1.125, 0.75));
    let nested = half_square(Dual::<Dual<f64, 1>, 1>::new(Dual::variable(1.5), [Dual::constant(1.0)]));
    assert_eq!((nested.tangent()[0].value(), nested.tangent()[0].tangent()), (0.75, [0.0]));
    let x: Vector<f64, 3, Heap> = Vector::from_array([0.5, -1.0, 2.0]);
    let (_, tangent) =
        jvp(|x: Vector<Dual<f64>, 3, Heap>| x.hadamard(&stop_gradient(x.clone())), &x, &Vector::full(1.0));
    assert_eq!(tangent, x);
    // Tuples, arrays, `Vec`s and derived structs of duals: every tangent, constants kept.
    #[derive(Differentiable, Clone)]
    struct Point {
        position: Dual<f64>,
        #[no_derivative]
        label: u8,
    }
    let d = Dual::<f64>::variable(2.0);
    let (a, [b], c, point) = stop_gradient((d, [d], vec![d], Point { position: d, label: 7 }));
    assert_eq!([a.tangent(), b.tangent(), c[0].tangent(), point.position.tangent()], [[0.0]; 4]);
    assert_eq!((a.value(), point.label), (2.0, 7));
    // The gradient of x ⊙ stop(x) summed is stop(x) = x, a constant: zero Hessian.
    let h = hessian(|x: Var<Vector<Dual<f64>, 3, Heap>>| x.hadamard(&stop_gradient(&x)).sum(), &x);
    assert_eq!(h.as_slice(), [0.0; 9]);
    assert_eq!(grad(|x: Var<Vector<f64, 3, Heap>>| x.hadamard(&stop_gradient(&x)).sum(), &x), x);
}

/// At x = 0, ReLU's derivative is 0 in every mode (the subgradient the pullback takes):
/// forward mode on duals, the `Relu` layer on duals, and reverse mode agree.
#[test]
fn relu_at_zero_has_the_same_derivative_in_every_mode() {
    use fluxion::nn::layer::{Module, Relu};
    let x: Vector<f64, 3, Heap> = Vector::from_array([0.0, 1.0, -1.0]);
    let v = Vector::full(1.0);
    let (_, forward) = jvp(|x: Vector<Dual<f64>, 3, Heap>| x.relu(), &x, &v);
    assert_eq!(forward.as_slice(), [0.0, 1.0, 0.0]);
    let reverse = grad(|x: Var<Vector<f64, 3, Heap>>| x.relu().sum(), &x);
    assert_eq!(reverse.as_slice(), forward.as_slice());
    let rows = Tensor::<f64, (Dyn, Const<3>), Heap>::from_shape_fn((Dyn(1), Const), |[_, c]| x[[c]]);
    let (_, layer) =
        jvp(|r: Tensor<Dual<f64>, (Dyn, Const<3>), Heap>| Relu.forward(&r), &rows, &rows.map(|_| 1.0));
    assert_eq!(layer.as_slice(), forward.as_slice());
    // NaN passes through.
    assert!(Vector::<f64, 1>::from_array([f64::NAN]).relu()[[0]].is_nan());
}

/// Forward mode follows a `ScalarFunction`'s written derivative, as reverse mode
/// does, even where its value is not differentiable on duals (computed by outside
/// `f64` code, or a formula with a kink at the point).
#[test]
fn forward_mode_follows_a_scalar_functions_written_derivative() {
    use fluxion::ops::elementwise::ScalarFunction;
    /// erf by `f64` code outside the library: the value carries no tangent.
    #[derive(Clone, Copy, Debug)]
    struct OutsideErf;
    impl ScalarFunction for OutsideErf {
        fn value<T: RealScalar>(&self, x: T) -> T {
            T::from_f64(RealScalar::erf(x.to_f64()))
        }
        fn derivative<T: RealScalar>(&self, x: T, _: T) -> T {
            T::from_f64(std::f64::consts::FRAC_2_SQRT_PI) * (-(x * x)).exp()
        }
    }
    /// softplus by its stable formula, which has a kink at 0; its derivative σ(x).
    #[derive(Clone, Copy, Debug)]
    struct StableSoftplus;
    impl ScalarFunction for StableSoftplus {
        fn value<T: RealScalar>(&self, x: T) -> T {
            x.max(T::zero()) + (T::one() + (-x.abs()).exp()).ln()
        }
        fn derivative<T: RealScalar>(&self, x: T, _: T) -> T {
            T::one() / (T::one() + (-x).exp())
        }
    }
    type V = Vector<f64, 3, Heap>;
    let x: V = Vector::from_array([0.3, -0.8, 0.0]);
    let ones: V = Vector::full(1.0);
    let (_, forward) = jvp(|x: Vector<Dual<f64>, 3, Heap>| x.map_function(OutsideErf), &x, &ones);
    let reverse = grad(|x: Var<V>| x.map_function(OutsideErf).sum(), &x);
    assert_eq!(forward, reverse);
    let (_, forward) = jvp(|x: Vector<Dual<f64>, 3, Heap>| x.map_function(StableSoftplus), &x, &ones);
    assert_eq!(forward[[2]], 0.5, "σ(0), not the kink's one-sided slope");
    // The Hessian of Σ erf(x)² by forward over reverse: 2(f′² + f·f″) on the diagonal.
    let hessian = hessian(
        |x: Var<Vector<Dual<f64>, 3, Heap>>| {
            x.map_function(OutsideErf).hadamard(&x.map_function(OutsideErf)).sum()
        },
        &x,
    );
    for i in 0..3 {
        let (v, e) = (x[[i]], RealScalar::erf(x[[i]]));
        let slope = std::f64::consts::FRAC_2_SQRT_PI * (-v * v).exp();
        let expected = 2.0 * (slope * slope + e * (-2.0 * v * slope));
        assert!((hessian[[i, i]] - expected).abs() < 1e-12, "H[{i},{i}] = {} vs {expected}", hessian[[i, i]]);
    }
}

/// Checks a model's coordinate Hessian against central differences of `gradient`
/// (the model's gradient as its real coordinates), column by column.
fn check_model_hessian<M: Differentiable<Tangent: RealLeaves> + Clone>(
    h: &fluxion::autodiff::CoordinateHessian,
    model: &M,
    gradient: impl Fn(&M) -> Vec<f64>,
) {
    let n = h.matrix.dims().as_slice()[0];
    let eps = 1e-5;
    for k in 0..n {
        let shifted = |sign: f64| {
            let mut direction = model.zero_tangent();
            let mut index = 0;
            direction.map_reals(&mut |_| {
                index += 1;
                if index - 1 == k { sign * eps } else { 0.0 }
            });
            let mut moved = model.clone();
            moved.move_by(&direction);
            gradient(&moved)
        };
        let (plus, minus) = (shifted(1.0), shifted(-1.0));
        for i in 0..n {
            let difference = (plus[i] - minus[i]) / (2.0 * eps);
            assert!(
                (h.matrix[[i, k]] - difference).abs() < 1e-6,
                "H[{i}, {k}] = {} vs {difference}",
                h.matrix[[i, k]]
            );
            assert!((h.matrix[[i, k]] - h.matrix[[k, i]]).abs() < 1e-12, "symmetry at ({i}, {k})");
        }
    }
}

/// A small CNN's Hessian over its parameters (convolution, tanh, flatten, linear)
/// against central differences of its gradient, from a plain batch of images.
#[test]
fn coordinate_hessian_of_a_cnn_runs_its_convolution() {
    use fluxion::autodiff::coordinate_hessian;
    use fluxion::nn::layer::{Conv2d, Flatten, Linear, Sequential, Tanh};
    use fluxion::nn::loss::{Reduction, cross_entropy};
    type Cnn = Sequential<(Conv2d<f64, 1, 2, 3, 3, 2, 2>, Tanh, Flatten<8>, Linear<f64, 8, 2>)>;
    let model: Cnn = Sequential((Conv2d::new(41), Tanh, Flatten, Linear::new(42)));
    let images: Tensor<f64, (Dyn, Const<1>, Const<4>, Const<4>), Heap> =
        Tensor::random_uniform_shaped((Dyn(3), Const, Const, Const), -1.0, 1.0, 43);
    let classes = [1, 0, 1];
    let h = coordinate_hessian(
        |m: <<Cnn as Lift>::Lifted as Trace>::Traced| {
            cross_entropy(&m.forward(&images), &classes, Reduction::Mean)
        },
        &model,
    );
    let n = h.matrix.dims().as_slice()[0];
    assert_eq!(n, 2 * 9 + 2 + 8 * 2 + 2);
    assert_eq!(h.leaves[0].name, "0.weight");
    check_model_hessian(&h, &model, |m: &Cnn| {
        let g = grad(
            |m: <Cnn as Trace>::Traced| cross_entropy(&m.forward(&images), &classes, Reduction::Mean),
            m,
        );
        let mut coordinates = Vec::new();
        g.for_each_real(&mut |value| coordinates.push(value));
        coordinates
    });
}

/// The Hessian of a loss over a model's parameters goes through the layers' own
/// forward pass: `Sequential` of `Linear`, `Tanh` and `LayerNorm`, lifted and traced.
/// Each column equals central differences of the gradient, and the matrix is
/// symmetric.
#[test]
fn coordinate_hessian_of_a_model_runs_its_layers() {
    use fluxion::autodiff::coordinate_hessian;
    use fluxion::nn::layer::{LayerNorm, Linear, Sequential, Tanh};
    use fluxion::nn::loss::{Reduction, cross_entropy};
    type Model = Sequential<(Linear<f64, 3, 4>, Tanh, LayerNorm<f64, 4>, Linear<f64, 4, 2>)>;
    let model: Model = Sequential((Linear::new(31), Tanh, LayerNorm::default(), Linear::new(32)));
    let x: Tensor<f64, (Dyn, Const<3>), Heap> = Tensor::random_uniform_shaped((Dyn(5), Const), -1.0, 1.0, 33);
    let classes = [0, 1, 1, 0, 1];
    let lifted_x = Var::constant(x.map(Dual::constant));
    let h = coordinate_hessian(
        |m: <<Model as Lift>::Lifted as Trace>::Traced| {
            cross_entropy(&m.forward(&lifted_x), &classes, Reduction::Mean)
        },
        &model,
    );
    let n = h.matrix.dims().as_slice()[0];
    assert_eq!(n, 3 * 4 + 4 + 4 + 4 + 4 * 2 + 2);
    assert_eq!(h.leaves[0].name, "0.weight");
    // A plain batch enters as a constant of duals, as a traced model's does.
    let from_plain = coordinate_hessian(
        |m: <<Model as Lift>::Lifted as Trace>::Traced| {
            cross_entropy(&m.forward(&x), &classes, Reduction::Mean)
        },
        &model,
    );
    assert_eq!(from_plain.matrix, h.matrix);
    let plain_x = Var::constant(x.clone());
    check_model_hessian(&h, &model, |m: &Model| {
        let g = grad(
            |m: <Model as Trace>::Traced| cross_entropy(&m.forward(&plain_x), &classes, Reduction::Mean),
            m,
        );
        let mut coordinates = Vec::new();
        g.for_each_real(&mut |value| coordinates.push(value));
        coordinates
    });
}
