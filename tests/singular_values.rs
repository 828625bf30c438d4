//! Singular values: values against matrices built from known factors, identities
//! (Σσ² = ‖A‖², Πσ = |det A|, σ² the eigenvalues of AᵀA) and nalgebra's SVD; the
//! edge cases (zeros, NaN, no columns, `Dyn` shapes, f32); and derivatives in every
//! mode: the tape's gradients against finite differences and the adjoint identity
//! (`check_grad`), static mode's pullback and tangent against finite differences,
//! the public tangent and cotangent against each other, tangents against forward
//! mode on duals (which runs the rotations on them), and second derivatives against
//! differences of the gradient.

use fluxion::autodiff::check::{CheckOptions, GradientError, check_grad, check_pullback, check_pushforward};
use fluxion::autodiff::{differentiable, jvp};
use fluxion::ops::linalg::{singular_values_pullback, singular_values_push};
use fluxion::prelude::*;
use proptest::prelude::*;

mod common;
use common::{orthonormal_factors, relative_distance};

type Tall = Matrix<f64, 5, 3>;

fn tall_matrices() -> impl Strategy<Value = Tall> {
    prop::array::uniform15(-1.0..1.0f64).prop_map(|e| Matrix::from_fn(|[i, j]| e[i * 3 + j]))
}

/// Singular values kept apart (about 3, 1.5 and 0.5 plus a random part of at most
/// ±0.25 each): well-defined derivatives.
fn separated(entries: [f64; 15]) -> Tall {
    let (u, v) = orthonormal_factors();
    let sigma = Matrix::<f64, 3, 3>::from_fn(|[i, j]| if i == j { [3.0, 1.5, 0.5][i] } else { 0.0 });
    let spread: Tall = Matrix::from_fn(|[i, j]| entries[i * 3 + j] * 0.08);
    u.matmul(&sigma).matmul_transposed(&v) + spread
}

#[test]
fn known_singular_values() {
    let (u, v) = orthonormal_factors();
    for sigma in [[4.0, 2.0, 1.0], [1.0, 1e-3, 1e-9], [2.0, 2.0, 0.5], [3.0, 0.0, 0.0]] {
        let a =
            u.matmul(&Matrix::from_fn(|[i, j]| if i == j { sigma[i] } else { 0.0 })).matmul_transposed(&v);
        let found = a.singular_values();
        for (x, expected) in found.as_slice().iter().zip(sigma) {
            assert!((x - expected).abs() < 1e-14 * 4.0, "{found:?} against {sigma:?}");
        }
    }
    // Descending whatever the order of the columns, and not negative.
    let scaled: Matrix<f64, 3, 3> = Matrix::from_array([[0.0, -2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 5.0]]);
    assert_eq!(scaled.singular_values().to_array(), [5.0, 2.0, 1.0]);
}

#[test]
fn identities_and_nalgebra() {
    let a: Tall = Matrix::from_fn(|[i, j]| ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.45);
    let sigma = a.singular_values();
    let squares: f64 = sigma.as_slice().iter().map(|s| s * s).sum();
    assert!((squares - a.dot(&a)).abs() < 1e-14 * squares);
    // σ² are the eigenvalues of AᵀA (ascending there).
    let eigenvalues = a.transposed_matmul(&a).symmetric_eigenvalues();
    for k in 0..3 {
        assert!((sigma[[k]] * sigma[[k]] - eigenvalues[[2 - k]]).abs() < 1e-14 * squares);
    }
    let theirs = nalgebra::SMatrix::<f64, 5, 3>::from_fn(|i, j| a[[i, j]]).singular_values();
    let mut theirs: Vec<f64> = theirs.iter().copied().collect();
    theirs.sort_by(|x, y| y.total_cmp(x));
    for (x, y) in sigma.as_slice().iter().zip(&theirs) {
        assert!((x - y).abs() < 1e-14, "{x} against {y}");
    }
    // A square matrix: Πσ = |det A|.
    let square: Matrix<f64, 3, 3> = Matrix::from_array([[2.0, -1.0, 0.5], [0.3, 1.5, -0.7], [1.1, 0.2, 2.5]]);
    let product: f64 = square.singular_values().as_slice().iter().product();
    assert!((product - square.determinant().abs()).abs() < 1e-13 * product);
}

#[test]
fn edge_cases() {
    // Zeros, NaN, a matrix without columns.
    assert_eq!(Tall::zeros().singular_values().to_array(), [0.0; 3]);
    let mut with_nan = Tall::zeros();
    with_nan[[2, 1]] = f64::NAN;
    assert!(with_nan.singular_values().as_slice().iter().all(|s| s.is_nan()));
    let mut with_infinity = Tall::zeros();
    with_infinity[[0, 0]] = f64::INFINITY;
    assert!(with_infinity.singular_values().as_slice().iter().all(|s| s.is_nan()));
    let empty = Tensor::<f64, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(3), Dyn(0)));
    assert!(empty.singular_values().is_empty());
    // Entries past the range of their squares.
    let huge: Matrix<f64, 2, 2> = Matrix::from_array([[3e200, 0.0], [4e200, 1e200]]);
    let sigma = huge.singular_values();
    assert!((sigma[[0]] / 1e200 * sigma[[1]] / 1e200 - 3.0).abs() < 1e-14);
    let ascending: Matrix<f64, 2, 2> = Matrix::from_array([[1e200, 0.0], [0.0, 3e200]]);
    assert_eq!(ascending.singular_values().to_array(), [3e200, 1e200]);
    // Dyn on the heap, and the wide error.
    let dynamic =
        Tensor::<f64, (Dyn, Dyn), Heap>::from_shape_fn((Dyn(4), Dyn(2)), |[i, j]| (i + 2 * j) as f64);
    let fixed: Matrix<f64, 4, 2> = Matrix::from_fn(|[i, j]| (i + 2 * j) as f64);
    assert_eq!(dynamic.singular_values().as_slice(), fixed.singular_values().as_slice());
    let wide = Tensor::<f64, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(2), Dyn(3)));
    let message = std::panic::catch_unwind(|| wide.singular_values()).unwrap_err();
    assert_eq!(
        message.downcast_ref::<String>().unwrap(),
        "singular_values: a matrix of shape [2, 3] has fewer rows than columns (at least as many rows as columns; factorise the conjugate transpose)"
    );
    // f32.
    let single: Matrix<f32, 3, 2> = Matrix::from_array([[3.0, 0.0], [4.0, 0.0], [0.0, 2.0]]);
    let sigma = single.singular_values();
    assert!((sigma[[0]] - 5.0).abs() < 1e-6 && (sigma[[1]] - 2.0).abs() < 1e-6);
}

#[test]
fn spectral_norm_gradient_is_the_outer_product_of_the_leading_vectors() {
    // A = 3·u₁v₁ᵀ + 1·u₂v₂ᵀ + 0.5·u₃v₃ᵀ: ∂σ₁/∂A = u₁v₁ᵀ.
    let (u, v) = orthonormal_factors();
    let a = u
        .matmul(&Matrix::from_fn(|[i, j]| if i == j { [3.0, 1.0, 0.5][i] } else { 0.0 }))
        .matmul_transposed(&v);
    let gradient = grad(|a: Var<Tall>| a.singular_values().at([0]), &a);
    let expected: Tall = Matrix::from_fn(|[i, j]| u[[i, 0]] * v[[j, 0]]);
    // Up to the sign the rotations pick for (u₁, v₁), which the product does not see.
    assert!(relative_distance(&gradient, &expected) < 1e-14, "{gradient:?}");
    // At a zero matrix the subgradient is 0, not NaN.
    let at_zero = grad(|a: Var<Tall>| a.singular_values().sum(), &Tall::zeros());
    assert_eq!(at_zero, Tall::zeros());
}

#[differentiable]
fn singular_values(a: &Tall) -> Vector<f64, 3> {
    a.singular_values()
}

/// The nuclear norm Σσ, generic for second order.
#[differentiable]
fn nuclear_norm<T: RealScalar>(a: &Matrix<T, 5, 3>) -> T {
    a.singular_values().sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_matrices_against_nalgebra(a in tall_matrices()) {
        let sigma = a.singular_values();
        let mut theirs: Vec<f64> = nalgebra::SMatrix::<f64, 5, 3>::from_fn(|i, j| a[[i, j]]).singular_values().iter().copied().collect();
        theirs.sort_by(|x, y| y.total_cmp(x));
        for (x, y) in sigma.as_slice().iter().zip(&theirs) {
            prop_assert!((x - y).abs() < 1e-14, "{sigma:?} against {theirs:?}");
        }
    }

    #[test]
    fn derivatives(entries in prop::array::uniform15(-1.0..1.0f64), w in prop::array::uniform3(-1.0..1.0f64), direction in tall_matrices()) {
        let a = separated(entries);
        let w = Vector::from_array(w);
        let options = CheckOptions::f64();
        let fail = |e: GradientError| TestCaseError::fail(e.to_string());
        check_grad(|a: Var<Tall>| a.singular_values().dot(&Var::constant(w)), &a, options).map_err(fail)?;
        check_pullback(|a: &Tall| a.singular_values(), singular_values::vjp(&a).1, &a, options).map_err(fail)?;
        check_pushforward(|a: &Tall| a.singular_values(), |a_dot| singular_values::jvp(&a, a_dot).1, &a, options).map_err(fail)?;
        // The adjoint identity, the tangent against duals, static mode against the tape.
        let (tangent, cotangent) = (singular_values_push(&a, &direction), singular_values_pullback(&a, &w));
        let (lhs, rhs) = (tangent.dot(&w), direction.dot(&cotangent));
        prop_assert!((lhs - rhs).abs() <= 1e-13 * lhs.abs().max(1.0), "{lhs} against {rhs}");
        let (_, dual_tangent) = jvp(|a: Matrix<Dual<f64>, 5, 3>| a.singular_values(), &a, &direction);
        prop_assert!(relative_distance(&tangent, &dual_tangent) < 1e-12, "{tangent:?} against {dual_tangent:?}");
        let (_, static_gradient) = nuclear_norm::value_and_grad(&a);
        let tape_gradient = grad(|a: Var<Tall>| a.singular_values().sum(), &a);
        prop_assert!(relative_distance(&static_gradient, &tape_gradient) < 1e-13);
        // The nuclear norm's H·Ȧ against central differences of the gradient.
        let hv: Tall = nuclear_norm::hvp(&a, &direction);
        let step = 1e-5;
        let gradient_at = |t: f64| nuclear_norm::value_and_grad(&(a + direction.scale(t))).1;
        let difference = (gradient_at(step) - gradient_at(-step)).scale(0.5 / step);
        prop_assert!(relative_distance(&hv, &difference) < 1e-6, "{hv:?} against {difference:?}");
    }
}
