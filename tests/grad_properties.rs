//! Properties of reverse mode at random values (proptest, 16 cases each):
//! finite-difference agreement of a layer, closed-form gradients of least squares
//! (real and complex), and linearity of the pullback.

mod common_grad;

use common_grad::ok;
use fluxion::autodiff::check::{CheckOptions, check_grad, check_vjp};
use fluxion::autodiff::{Var, grad, vjp};
use fluxion::prelude::*;
use proptest::collection::vec;
use proptest::prelude::*;

type C64 = Complex64;
type W34 = Matrix<f64, 3, 4>;
type V4 = Vector<f64, 4>;
type V3 = Vector<f64, 3>;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(16)
}

fn reals(len: usize) -> impl Strategy<Value = Vec<f64>> {
    vec(-2.0..2.0f64, len)
}

fn complexes(len: usize) -> impl Strategy<Value = Vec<C64>> {
    vec((-2.0..2.0f64, -2.0..2.0f64).prop_map(|(re, im)| C64::new(re, im)), len)
}

fn static_tensor<T: Copy, S: StaticShape, K: Storage<T, S>>(values: &[T]) -> Tensor<T, S, K> {
    Tensor::from_shape_slice(S::default(), values).unwrap()
}

/// |actual − expected| ≤ tol·(1 + scale) elementwise.
fn within<T: Scalar>(actual: &[T], expected: &[T], scale: f64, tol: f64) -> Result<(), TestCaseError> {
    prop_assert_eq!(actual.len(), expected.len());
    for (index, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let difference = (a - e).abs().to_f64();
        prop_assert!(difference <= tol * (1.0 + scale), "element {}: {} vs {}", index, a, e);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// x ↦ tanh(W x) agrees with finite differences, in x and in (W, x).
    #[test]
    fn tanh_layer_passes_the_checker(w in reals(12), x in reals(4)) {
        let (w, x): (W34, V4) = (static_tensor(&w), static_tensor(&x));
        let result = check_vjp(|x: Var<V4>| Var::constant(w).matmul(&x).tanh(), &x, CheckOptions::f64());
        prop_assert!(matches!(result, Ok(n) if n > 0), "{:?}", result);
        ok("tanh(W x) in (W, x)", check_vjp(|(w, x): (Var<W34>, Var<V4>)| w.matmul(&x).tanh(), &(w, x), CheckOptions::f64()));
    }

    /// ∇ ½‖A x − b‖² = Aᵀ(A x − b), computed directly; also on dynamic shapes.
    #[test]
    fn least_squares_gradient_is_the_normal_residual(a in reals(12), x in reals(4), b in reals(3)) {
        let (a, x, b): (W34, V4, V3) = (static_tensor(&a), static_tensor(&x), static_tensor(&b));
        let g = grad(|x: Var<V4>| {
            let r = &Var::constant(a).matmul(&x) - &Var::constant(b);
            &r.dot(&r) * 0.5
        }, &x);
        let residual = a.matmul(&x) - b;
        let expected = a.transpose().matmul(&residual);
        let scale = a.iter().map(|v| v.abs()).sum::<f64>() * residual.iter().map(|v| v.abs()).sum::<f64>();
        within(g.as_slice(), expected.as_slice(), scale, 1e-14)?;

        let ad = DMatrix::from_shape_slice((Dyn(3), Dyn(4)), a.as_slice()).unwrap();
        let bd = DVector::from_shape_slice((Dyn(3),), b.as_slice()).unwrap();
        let xd = DVector::from_shape_slice((Dyn(4),), x.as_slice()).unwrap();
        let gd = grad(|x: Var<DVector<f64>>| {
            let r = &Var::constant(ad.clone()).matmul(&x) - &Var::constant(bd.clone());
            &r.norm_sqr().sum() * 0.5
        }, &xd);
        within(gd.as_slice(), expected.as_slice(), scale, 1e-14)?;
    }

    /// Complex least squares: ∇ ½‖A z − b‖² = Aᴴ(A z − b) under ∂/∂x + i·∂/∂y.
    #[test]
    fn complex_least_squares_gradient(a in complexes(6), z in complexes(3), b in complexes(2)) {
        type CA = Matrix<C64, 2, 3>;
        let (a, z, b): (CA, Vector<C64, 3>, Vector<C64, 2>) = (static_tensor(&a), static_tensor(&z), static_tensor(&b));
        let loss = |z: Var<Vector<C64, 3>>| {
            let r = &Var::constant(a).matmul(&z) - &Var::constant(b);
            &r.norm_sqr().sum() * 0.5
        };
        let g = grad(loss, &z);
        let residual = a.matmul(&z) - b;
        let a_adjoint: Matrix<C64, 3, 2> = a.transpose().conj();
        let expected = a_adjoint.matmul(&residual);
        let scale = a.iter().map(|v| v.norm()).sum::<f64>() * residual.iter().map(|v| v.norm()).sum::<f64>();
        within(g.as_slice(), expected.as_slice(), scale, 1e-14)?;
        let result = check_grad(loss, &z, CheckOptions::f64());
        prop_assert!(result.is_ok(), "{:?}", result);
    }

    /// The pullback is linear: pb(α·u + β·v) = α·pb(u) + β·pb(v), and pb(2w) = 2·pb(w).
    #[test]
    fn pullback_is_linear(
        w in reals(12), x in reals(4), u in reals(3), v in reals(3),
        alpha in -3.0..3.0f64, beta in -3.0..3.0f64,
    ) {
        let (w, x, u, v): (W34, V4, V3, V3) = (static_tensor(&w), static_tensor(&x), static_tensor(&u), static_tensor(&v));
        let (_, mut pullback) = vjp(|(w, x): (Var<W34>, Var<V4>)| w.matmul(&x.sin()).tanh(), &(w, x));
        let (pu_w, pu_x) = pullback.call(&u);
        let (pv_w, pv_x) = pullback.call(&v);
        let (pc_w, pc_x) = pullback.call(&(u.scale(alpha) + v.scale(beta)));
        within(pc_w.as_slice(), (pu_w.scale(alpha) + pv_w.scale(beta)).as_slice(), 10.0, 1e-13)?;
        within(pc_x.as_slice(), (pu_x.scale(alpha) + pv_x.scale(beta)).as_slice(), 10.0, 1e-13)?;
        let (p2_w, p2_x) = pullback.call(&u.scale(2.0));
        within(p2_w.as_slice(), pu_w.scale(2.0).as_slice(), 1.0, 1e-15)?;
        within(p2_x.as_slice(), pu_x.scale(2.0).as_slice(), 1.0, 1e-15)?;
    }

    /// Complex pullbacks are real-linear (not complex-linear): pb(α·u) = α·pb(u) for
    /// real α, and additive.
    #[test]
    fn complex_pullback_is_real_linear(z in complexes(3), u in complexes(3), v in complexes(3), alpha in -3.0..3.0f64) {
        type Z = Vector<C64, 3>;
        let (z, u, v): (Z, Z, Z) = (static_tensor(&z), static_tensor(&u), static_tensor(&v));
        let (_, mut pullback) = vjp(|z: Var<Z>| z.conj().hadamard(&z.sin()), &z);
        let (pu, pv) = (pullback.call(&u), pullback.call(&v));
        let combined = pullback.call(&(u.scale(C64::new(alpha, 0.0)) + v));
        within(combined.as_slice(), (pu.scale(C64::new(alpha, 0.0)) + pv).as_slice(), 10.0, 1e-13)?;
    }
}
