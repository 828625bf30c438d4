//! Traced and dual values mix with constants as in maths: a plain scalar on either
//! side of `+`, `−`, `*` and `/` beside a scalar `Var` or a dual, a plain tensor of
//! the same shape on either side of `+` and `−` beside a traced tensor, a plain
//! scalar scaling a tensor of duals, and gradients scaled by the model's own real
//! type. The reverse-mode rules are checked against finite differences and the
//! adjoint identity; the dual results against their closed forms.

// Every owned and borrowed form of the operators is exercised on purpose.
#![allow(clippy::op_ref)]

mod common_grad;

use common_grad::{assert_close, ok, static_tensor};
use fluxion::autodiff::check::{CheckOptions, check_grad, check_vjp};
use fluxion::autodiff::{Dual, VectorSpace, grad, jvp};
use fluxion::prelude::*;

type M23 = Matrix<f64, 2, 3>;

#[test]
fn a_constant_on_the_left_of_a_scalar_var() {
    let opts = CheckOptions::f64();
    ok("1 − x", check_grad(|x: Var<f64>| 1.0 - x, &0.3, opts));
    ok("2 + x", check_grad(|x: Var<f64>| 2.0 + &x, &0.3, opts));
    ok("3 / x", check_grad(|x: Var<f64>| 3.0 / x, &0.7, opts));
    assert_close(grad(|x: Var<f64>| 1.0 - x, &0.3), -1.0, 0.0);
    assert_close(grad(|x: Var<f64>| 3.0 / x, &0.5), -12.0, 1e-15);
    // f32 and complex values too.
    assert_eq!(grad(|x: Var<f32>| 1.0f32 - &x, &2.0f32), -1.0);
    let z = Complex64::new(1.0, 2.0);
    let g = grad(|z: Var<Complex64>| (Complex64::new(1.0, 0.0) / z).abs(), &z);
    // |1/z| = 1/|z|; the gradient of a real function of z is ∂/∂x + i·∂/∂y = −z/|z|³.
    let expected = -z / z.norm().powi(3);
    assert!((g - expected).norm() < 1e-15, "{g} vs {expected}");
}

#[test]
fn a_plain_tensor_beside_a_traced_one() {
    let x: M23 = static_tensor(&[0.5, -1.0, 2.0, 0.25, 3.0, -0.75]);
    let c: M23 = static_tensor(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let opts = CheckOptions::f64();
    ok("x + c", check_vjp(|x: Var<M23>| &x + &c, &x, opts));
    ok("c + x", check_vjp(|x: Var<M23>| &c + &x, &x, opts));
    ok("x − c", check_vjp(|x: Var<M23>| x - c, &x, opts));
    ok("c − x", check_vjp(|x: Var<M23>| c - x, &x, opts));
    // Every mix of owned and borrowed operands compiles.
    ok("&x + c", check_vjp(|x: Var<M23>| &x + c, &x, opts));
    ok("x − &c", check_vjp(|x: Var<M23>| x - &c, &x, opts));
    ok("&c − x", check_vjp(|x: Var<M23>| &c - x, &x, opts));
    ok("c + &x", check_vjp(|x: Var<M23>| c + &x, &x, opts));
    let g = grad(|x: Var<M23>| (&c - &x).hadamard(&(&c - &x)).sum(), &x);
    // d/dx Σ (c − x)² = −2(c − x).
    assert_eq!(g.to_array(), ((c - x) * -2.0).to_array());
}

#[test]
fn a_plain_tensor_of_another_dynamic_shape_panics_naming_both() {
    let x: DMatrix<f64> = Tensor::from_shape_vec((Dyn(2), Dyn(2)), vec![1.0; 4]).unwrap();
    let c: DMatrix<f64> = Tensor::from_shape_vec((Dyn(1), Dyn(4)), vec![1.0; 4]).unwrap();
    let panic = std::panic::catch_unwind(|| grad(|x: Var<DMatrix<f64>>| (&x + &c).sum(), &x)).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("[2, 2]") && message.contains("[1, 4]"), "{message}");
}

#[test]
fn a_tensor_of_duals_scales_by_a_plain_scalar() {
    let x: Vector<f64, 2> = Vector::from_array([1.0, 2.0]);
    let v: Vector<f64, 2> = Vector::from_array([0.5, -1.0]);
    // f(x) = 3·x·2 on either side: the tangent is 6·v.
    let (y, tangent) = jvp(|x: Vector<Dual<f64>, 2>| 3.0 * (x * 2.0), &x, &v);
    assert_eq!(y.to_array(), [6.0, 12.0]);
    assert_eq!(tangent.to_array(), [3.0, -6.0]);
}

#[test]
fn gradients_scale_by_the_models_own_real_type() {
    let w: Vector<f32, 3> = Vector::from_array([1.0, -2.0, 0.5]);
    let learning_rate: f32 = 0.1;
    let g = grad(|w: Var<Vector<f32, 3>>| w.hadamard(&w).sum(), &w);
    let step = g.scaled(-learning_rate);
    let mut in_place = g;
    VectorSpace::scale_mut(&mut in_place, -learning_rate);
    for ((s, t), g) in step.iter().zip(in_place.iter()).zip(g.iter()) {
        assert!((s + 0.1 * g).abs() < 1e-6 && s == t);
    }
}

#[test]
fn a_dual_and_a_plain_scalar_on_either_side() {
    let d: Dual<f64> = Dual::variable(2.0);
    // Each result's tangent is the derivative at x = 2.
    let cases = [
        (1.0 - d, -1.0, -1.0),
        (d - 1.0, 1.0, 1.0),
        (3.0 + d, 5.0, 1.0),
        (d + 3.0, 5.0, 1.0),
        (3.0 * d, 6.0, 3.0),
        (d * 3.0, 6.0, 3.0),
        (1.0 / d, 0.5, -0.25),
        (d / 4.0, 0.5, 0.25),
    ];
    for (k, (y, value, derivative)) in cases.into_iter().enumerate() {
        assert_eq!((y.value(), y.tangent()[0]), (value, derivative), "case {k}");
    }
    // The same formula, generic over the scalar, runs on plain floats and on duals.
    fn logistic<S: RealScalar>(x: S) -> S {
        S::one() / (S::one() + (-x).exp())
    }
    let (y, dy) = jvp(|x: Dual<f64>| 1.0 - logistic(x), &0.0, &1.0);
    assert_eq!((y, dy), (0.5, -0.25));
}

#[test]
fn a_plain_tensor_as_the_right_operand_of_a_product() {
    let x: M23 = static_tensor(&[0.5, -1.0, 2.0, 0.25, 3.0, -0.75]);
    let c: M23 = static_tensor(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let w: Matrix<f64, 3, 2> = static_tensor(&[0.5, 1.0, -1.0, 2.0, 0.25, -0.5]);
    let opts = CheckOptions::f64();
    ok("x ⊙ c", check_vjp(|x: Var<M23>| x.hadamard(&c), &x, opts));
    ok("x·w", check_vjp(|x: Var<M23>| x.matmul(&w), &x, opts));
    ok("⟨x, c⟩", check_vjp(|x: Var<M23>| x.dot(&c), &x, opts));
    // The same gradient as with the constant wrapped by hand.
    let plain = grad(|x: Var<M23>| x.matmul(&w).sum(), &x);
    let wrapped = grad(|x: Var<M23>| x.matmul(&Var::constant(w)).sum(), &x);
    assert_eq!(plain.to_array(), wrapped.to_array());
}

#[test]
fn a_scalar_divided_by_a_traced_tensor() {
    let x: M23 = static_tensor(&[0.5, -1.0, 2.0, 0.25, 3.0, -0.75]);
    ok("2 / x", check_vjp(|x: Var<M23>| 2.0 / x, &x, CheckOptions::f64()));
    let g = grad(|x: Var<M23>| (2.0 / &x).sum(), &x);
    assert_close(g[[0, 0]], -2.0 / (0.5 * 0.5), 1e-15);
}
