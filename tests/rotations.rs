//! Cross products, the hat map [a]× and rotations e^[θk]× by the matrix exponential:
//! values against identities (anticommutativity, orthogonality, Lagrange's identity,
//! the triple product, Rodrigues' formula) and derivatives in every mode against
//! finite differences, the adjoint identity (`check_grad`, `check_pullback`,
//! `check_pushforward`), forward mode on duals and closed forms.

use fluxion::autodiff::check::{CheckOptions, check_grad, check_pullback, check_pushforward};
use fluxion::autodiff::{differentiable, jvp};
use fluxion::prelude::*;
use proptest::prelude::*;

mod common;
use common::distance;

type V3 = Vector<f64, 3>;
type M33 = Matrix<f64, 3, 3>;

fn vectors() -> impl Strategy<Value = V3> {
    prop::array::uniform3(-2.0..2.0f64).prop_map(Vector::from_array)
}

/// R = I + sin θ·[k]× + (1 − cos θ)·[k]×² for the rotation vector θk (Rodrigues).
fn rodrigues(rotation: &V3) -> M33 {
    let angle = rotation.norm();
    let hat = rotation.scale(1.0 / angle).cross_matrix();
    M33::identity() + hat.scale(angle.sin()) + hat.matmul(&hat).scale(1.0 - angle.cos())
}

#[differentiable]
fn cross(a: &V3, b: &V3) -> V3 {
    a.cross(b)
}

#[differentiable]
fn hat(a: &V3) -> M33 {
    a.cross_matrix()
}

/// |R(ω)·p − q|² for the rotation R(ω) = e^[ω]×, generic for second order.
#[differentiable(wrt(omega))]
fn pointing_error<T: RealScalar>(omega: &Vector<T, 3>, p: &Vector<T, 3>, q: &Vector<T, 3>) -> T {
    let error = omega.cross_matrix().matrix_exp().matmul(p) - *q;
    error.dot(&error)
}

/// The sum of e^[ω]×·p's entries with [ω]× written out entry by entry: a matrix
/// built from differentiated scalars in static mode.
#[differentiable(wrt(omega))]
fn rotated_by_hand(omega: &V3, p: &V3) -> f64 {
    let (x, y, z) = (omega[[0]], omega[[1]], omega[[2]]);
    let hat: M33 = Matrix::from_array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]]);
    hat.matrix_exp().matmul(p).sum()
}

/// The same through `cross_matrix`.
#[differentiable(wrt(omega))]
fn rotated(omega: &V3, p: &V3) -> f64 {
    omega.cross_matrix().matrix_exp().matmul(p).sum()
}

#[test]
fn a_matrix_of_differentiated_scalars_agrees_with_cross_matrix() {
    let (omega, p) = (V3::from_array([0.4, -1.1, 0.7]), V3::from_array([0.5, 2.0, -1.0]));
    let (value, gradient) = rotated_by_hand::value_and_grad(&omega, &p);
    let (expected, expected_gradient) = rotated::value_and_grad(&omega, &p);
    assert_eq!(value, expected);
    assert!(distance(&gradient, &expected_gradient) < 1e-15);
    // On the tape: the entries stacked into a vector, reshaped into the matrix.
    let tape = grad(
        |omega: Var<V3>| {
            let (x, y, z) = (omega.at([0]), omega.at([1]), omega.at([2]));
            let zero = Var::constant(0.0);
            let entries: Var<Vector<f64, 9>> =
                Var::stack([&zero, &-&z, &y, &z, &zero, &-&x, &-&y, &x, &zero]);
            let hat: Var<M33> = entries.reshape();
            hat.matrix_exp().matmul(&Var::constant(p)).sum()
        },
        &omega,
    );
    assert!(distance(&tape, &expected_gradient) < 1e-14);
}

#[test]
fn cross_products_of_known_vectors() {
    let (x, y, z): (V3, V3, V3) = (
        Vector::from_array([1.0, 0.0, 0.0]),
        Vector::from_array([0.0, 1.0, 0.0]),
        Vector::from_array([0.0, 0.0, 1.0]),
    );
    assert_eq!(x.cross(&y), z);
    assert_eq!(y.cross(&z), x);
    assert_eq!(z.cross(&x), y);
    assert_eq!(y.cross(&x), -z);
    let a = Vector::from_array([1.0, 2.0, 3.0]);
    assert_eq!(a.cross(&a), V3::zeros());
    assert_eq!(a.cross(&Vector::from_array([4.0, 5.0, 6.0])).to_array(), [-3.0, 6.0, -3.0]);
    let expected: M33 = Matrix::from_array([[0.0, -3.0, 2.0], [3.0, 0.0, -1.0], [-2.0, 1.0, 0.0]]);
    assert_eq!(a.cross_matrix(), expected);
    // Complex vectors: no conjugation, (i·a) × b = i·(a × b).
    let i = Complex64::new(0.0, 1.0);
    let complex_a: Vector<Complex64, 3> = Vector::from_fn(|[k]| Complex64::new(a[[k]], 0.0) * i);
    let complex_b: Vector<Complex64, 3> = Vector::from_fn(|[k]| Complex64::new(4.0 + k as f64, 0.0));
    assert_eq!(complex_a.cross(&complex_b).to_array(), [-3.0 * i, 6.0 * i, -3.0 * i]);
    // Their derivative under the complex convention (∂L/∂x + i·∂L/∂y), against finite
    // differences of the real and imaginary parts.
    let complex_b = complex_b + Vector::from_fn(|[k]| Complex64::new(0.0, 0.5 - k as f64));
    check_grad(
        |(a, b): (Var<Vector<Complex64, 3>>, Var<Vector<Complex64, 3>>)| a.cross(&b).norm_sqr().sum(),
        &(complex_a, complex_b),
        CheckOptions::f64(),
    )
    .unwrap();
    check_grad(
        |a: Var<Vector<Complex64, 3>>| {
            let weights: M33 = Matrix::from_fn(|[i, j]| (1 + 3 * i + j) as f64);
            a.cross_matrix().norm_sqr().sum() + a.cross_matrix().re().dot(&Var::constant(weights))
        },
        &complex_b,
        CheckOptions::f64(),
    )
    .unwrap();
    // Heap storage of a static length.
    let heap_a: Tensor<f64, (Const<3>,), Heap> = Tensor::from_flat_fn((Const,), |k| a[[k]]);
    assert_eq!(heap_a.cross(&heap_a.scale(2.0)).as_slice(), [0.0; 3]);
    // A rotation about z by e^[θz]×, and the identity at θ = 0.
    let theta = 0.7f64;
    let rotation = z.scale(theta).cross_matrix().matrix_exp();
    let expected: M33 = Matrix::from_array([
        [theta.cos(), -theta.sin(), 0.0],
        [theta.sin(), theta.cos(), 0.0],
        [0.0, 0.0, 1.0],
    ]);
    assert!(distance(&rotation, &expected) < 1e-15);
    assert_eq!(V3::zeros().cross_matrix().matrix_exp(), M33::identity());
}

#[test]
fn the_tape_and_static_mode_through_a_rotation() {
    let (omega, p, q) = (
        V3::from_array([0.3, -0.8, 0.5]),
        V3::from_array([1.0, 0.5, -0.25]),
        V3::from_array([0.2, 1.1, 0.4]),
    );
    let (value, gradient) = pointing_error::value_and_grad(&omega, &p, &q);
    let tape = grad(
        |omega: Var<V3>| {
            let error = omega.cross_matrix().matrix_exp().matmul(&Var::constant(p)) - Var::constant(q);
            error.dot(&error)
        },
        &omega,
    );
    let expected = rodrigues(&omega).matmul(&p) - q;
    assert!((value - expected.dot(&expected)).abs() < 1e-14);
    assert!(distance(&gradient, &tape) < 1e-14, "{gradient:?} against {tape:?}");
    check_grad(
        |omega: Var<V3>| {
            let error = omega.cross_matrix().matrix_exp().matmul(&Var::constant(p)) - Var::constant(q);
            error.dot(&error)
        },
        &omega,
        CheckOptions::f64(),
    )
    .unwrap();
    // The Hessian against central differences of the gradient.
    let hessian: M33 = pointing_error::hessian(&omega, &p, &q);
    let step = 1e-5;
    for j in 0..3 {
        let shifted = |h: f64| {
            let mut at = omega;
            at[[j]] += h;
            pointing_error::value_and_grad(&at, &p, &q).1
        };
        let column = (shifted(step) - shifted(-step)).scale(0.5 / step);
        for i in 0..3 {
            assert!((hessian[[i, j]] - column[[i]]).abs() < 1e-7, "{hessian:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn cross_product_identities_and_derivatives(a in vectors(), b in vectors(), c in vectors(), w in vectors()) {
        let product = a.cross(&b);
        // Anticommutative, orthogonal to both, Lagrange's identity, the triple product,
        // and the hat map.
        prop_assert!(distance(&product, &-b.cross(&a)) == 0.0);
        prop_assert!(product.dot(&a).abs() < 1e-14 && product.dot(&b).abs() < 1e-14);
        let lagrange = a.dot(&a) * b.dot(&b) - a.dot(&b).powi(2);
        prop_assert!((product.dot(&product) - lagrange).abs() < 1e-12);
        prop_assert!((product.dot(&c) - a.dot(&b.cross(&c))).abs() < 1e-13);
        prop_assert!(distance(&a.cross_matrix().matmul(&b), &product) < 1e-15);
        prop_assert!(distance(&a.cross_matrix(), &-a.cross_matrix().transpose()) == 0.0);
        // Rotations: e^[ω]× is Rodrigues' matrix, orthogonal with determinant 1.
        let rotation = a.cross_matrix().matrix_exp();
        prop_assert!(distance(&rotation, &rodrigues(&a)) < 1e-14);
        prop_assert!(distance(&rotation.transposed_matmul(&rotation), &M33::identity()) < 1e-14);
        prop_assert!((rotation.determinant() - 1.0).abs() < 1e-14);
        // Derivatives: the tape, static mode's pullbacks and tangents, duals.
        let options = CheckOptions::f64();
        let fail = |e: fluxion::autodiff::check::GradientError| TestCaseError::fail(e.to_string());
        check_grad(|(a, b): (Var<V3>, Var<V3>)| a.cross(&b).dot(&Var::constant(w)), &(a, b), options).map_err(fail)?;
        check_grad(|a: Var<V3>| a.cross_matrix().matmul(&Var::constant(w)).dot(&Var::constant(c)), &a, options)
            .map_err(fail)?;
        check_pullback(|(a, b): &(V3, V3)| a.cross(b), cross::vjp(&a, &b).1, &(a, b), options).map_err(fail)?;
        check_pushforward(|(a, b): &(V3, V3)| a.cross(b), |(a_dot, b_dot)| cross::jvp(&a, &b, a_dot, b_dot).1, &(a, b), options)
            .map_err(fail)?;
        check_pullback(|a: &V3| a.cross_matrix(), hat::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &V3| a.cross_matrix(), |a_dot| hat::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        let (_, tangent) = cross::jvp(&a, &b, &c, &w);
        let (_, dual_tangent) = jvp(|(a, b): (Vector<Dual<f64>, 3>, Vector<Dual<f64>, 3>)| a.cross(&b), &(a, b), &(c, w));
        prop_assert!(distance(&tangent, &dual_tangent) < 1e-14);
        prop_assert!(distance(&tangent, &(c.cross(&b) + a.cross(&w))) < 1e-14);
    }
}
