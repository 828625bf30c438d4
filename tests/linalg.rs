//! Linear solves x = A⁻¹b (`solve`): values against known solutions and the residual
//! A·x − b, the errors for singular matrices and mismatched shapes, and derivatives
//! in every mode against independent references: the tape's gradient against finite
//! differences and the adjoint identity (`check_grad`); static mode against the
//! tape, and its tangent against forward mode on duals, which differentiates the
//! elimination itself (a reference that shares nothing with the rule); second
//! derivatives against the closed form 2·A⁻ᵀA⁻¹ and against finite differences of
//! the gradient.

use fluxion::autodiff::check::{CheckOptions, check_grad, check_pullback, check_pushforward};
use fluxion::autodiff::{differentiable, jvp};
use fluxion::ops::linalg::LinAlgError;
use fluxion::prelude::*;
use proptest::prelude::*;

type M33 = Matrix<f64, 3, 3>;
type M32 = Matrix<f64, 3, 2>;
type V3 = Vector<f64, 3>;

/// A well-conditioned 3×3 matrix: `entries` (in [−1, 1]) plus 4·I, diagonally
/// dominant.
fn well_conditioned(entries: [f64; 9]) -> M33 {
    Matrix::from_fn(|[i, j]| entries[i * 3 + j] + if i == j { 4.0 } else { 0.0 })
}

fn matrices() -> impl Strategy<Value = M33> {
    prop::array::uniform9(-1.0..1.0f64).prop_map(well_conditioned)
}

fn vectors() -> impl Strategy<Value = V3> {
    prop::array::uniform3(-2.0..2.0f64).prop_map(Vector::from_array)
}

fn right_hand_sides() -> impl Strategy<Value = M32> {
    prop::array::uniform6(-2.0..2.0f64).prop_map(|e| Matrix::from_fn(|[i, j]| e[i * 2 + j]))
}

/// The largest |A·x − b| over the elements.
fn residual<B: Shape>(a: &M33, x: &Tensor<f64, B, Inline>, b: &Tensor<f64, B, Inline>) -> f64
where
    Inline: Storage<f64, B>,
{
    let (x, b) = (x.as_slice(), b.as_slice());
    let m = b.len() / 3;
    let mut worst = 0.0f64;
    for i in 0..3 {
        for c in 0..m {
            let row: f64 = (0..3).map(|j| a[[i, j]] * x[j * m + c]).sum();
            worst = worst.max((row - b[i * m + c]).abs());
        }
    }
    worst
}

#[test]
fn solves_small_systems() {
    let a: Matrix<f64, 2, 2> = Matrix::from_array([[2.0, 1.0], [1.0, 3.0]]);
    let x = a.solve(&Vector::from_array([3.0, 5.0])).to_array();
    assert!((x[0] - 0.8).abs() < 1e-15 && (x[1] - 1.4).abs() < 1e-15, "{x:?}");
    // A zero in the first pivot position: only a row swap finds the solution.
    let swap: Matrix<f64, 2, 2> = Matrix::from_array([[0.0, 1.0], [1.0, 0.0]]);
    assert_eq!(swap.solve(&Vector::from_array([2.0, 3.0])).to_array(), [3.0, 2.0]);
    // A permutation that needs a swap in every column.
    let p: Matrix<f64, 3, 3> = Matrix::from_array([[0.0, 0.0, 2.0], [0.0, 4.0, 0.0], [8.0, 0.0, 0.0]]);
    assert_eq!(p.solve(&Vector::from_array([2.0, 4.0, 8.0])).to_array(), [1.0, 1.0, 1.0]);
    // The identity's solve is the right-hand side, columns too.
    let b: M32 = Matrix::from_array([[1.0, -2.0], [0.5, 3.0], [7.0, 0.25]]);
    assert_eq!(M33::identity().solve(&b), b);
}

#[test]
fn solves_heap_and_f32_systems() {
    let n = 12;
    let a = Tensor::<f64, (Dyn, Dyn), Heap>::from_shape_fn((Dyn(n), Dyn(n)), |[i, j]| {
        ((i * 7 + j * 3) % 11) as f64 / 11.0 - 0.5 + if i == j { 3.0 } else { 0.0 }
    });
    let b = Tensor::<f64, (Dyn,), Heap>::from_shape_fn((Dyn(n),), |[i]| i as f64 - 5.0);
    let x = a.try_solve(&b).unwrap();
    let (a_s, x_s, b_s) = (a.as_slice(), x.as_slice(), b.as_slice());
    for i in 0..n {
        let row: f64 = (0..n).map(|j| a_s[i * n + j] * x_s[j]).sum();
        assert!((row - b_s[i]).abs() < 1e-13, "row {i}: {row} against {}", b_s[i]);
    }
    let a32: Matrix<f32, 2, 2> = Matrix::from_array([[4.0, 1.0], [2.0, 3.0]]);
    let x32 = a32.solve(&Vector::from_array([1.0, 2.0])).to_array();
    assert!((x32[0] - 0.1).abs() < 1e-6 && (x32[1] - 0.6).abs() < 1e-6, "{x32:?}");
}

#[test]
fn singular_matrices_are_errors() {
    let a: Matrix<f64, 2, 2> = Matrix::from_array([[1.0, 2.0], [2.0, 4.0]]);
    let error = a.try_solve(&Vector::from_array([1.0, 1.0])).unwrap_err();
    assert_eq!(error, LinAlgError::Singular { operation: "solve", column: 1 });
    assert_eq!(error.to_string(), "solve: the matrix is singular (no nonzero pivot in column 1)");
    let zero = M33::zeros();
    assert_eq!(
        zero.try_solve(&V3::zeros()).unwrap_err(),
        LinAlgError::Singular { operation: "solve", column: 0 }
    );
    let message = std::panic::catch_unwind(|| a.solve(&Vector::from_array([1.0, 1.0])))
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
    assert_eq!(*message, "solve: the matrix is singular (no nonzero pivot in column 1)");
}

#[test]
fn mismatched_run_time_shapes_are_errors() {
    let wide = Tensor::<f64, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(2), Dyn(3)));
    let b = Tensor::<f64, (Dyn,), Heap>::zeros_shaped((Dyn(2),));
    assert_eq!(
        wide.try_solve(&b).unwrap_err().to_string(),
        "solve: shapes [2, 3] and [2] are incompatible (a square matrix)"
    );
    let square = Tensor::<f64, (Dyn, Dyn), Heap>::identity_sized(Dyn(3));
    let long = Tensor::<f64, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(4), Dyn(2)));
    let error = square.try_solve(&long).unwrap_err();
    assert!(matches!(error, LinAlgError::Shape(_)));
    assert_eq!(
        error.to_string(),
        "solve: shapes [3, 3] and [4, 2] are incompatible (a right-hand side with as many rows as the matrix)"
    );
    // Nothing to solve: the empty system, and no right-hand side (A not looked at).
    let empty = Tensor::<f64, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(0), Dyn(0)));
    let nothing = Tensor::<f64, (Dyn,), Heap>::zeros_shaped((Dyn(0),));
    assert_eq!(empty.solve(&nothing).len(), 0);
    let gradient =
        grad(|b: Var<Tensor<f64, (Dyn,), Heap>>| Var::constant(empty.clone()).solve(&b).sum(), &nothing);
    assert_eq!(gradient.len(), 0);
    let singular = Tensor::<f64, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(2), Dyn(2)));
    let no_columns = Tensor::<f64, (Dyn, Dyn), Heap>::zeros_shaped((Dyn(2), Dyn(0)));
    assert_eq!(singular.try_solve(&no_columns).unwrap().dims().as_slice(), &[2, 0]);
}

#[test]
fn heap_gradients_match_finite_differences() {
    let n = 5;
    let a = Tensor::<f64, (Dyn, Dyn), Heap>::from_shape_fn((Dyn(n), Dyn(n)), |[i, j]| {
        ((i * 5 + j * 2) % 7) as f64 / 7.0 - 0.4 + if i == j { 3.0 } else { 0.0 }
    });
    let b =
        Tensor::<f64, (Dyn, Dyn), Heap>::from_shape_fn((Dyn(n), Dyn(2)), |[i, j]| i as f64 * 0.3 - j as f64);
    type Square = Tensor<f64, (Dyn, Dyn), Heap>;
    check_grad(
        |(a, b): (Var<Square>, Var<Square>)| {
            let x = a.solve(&b);
            x.dot(&x)
        },
        &(a, b),
        CheckOptions::f64(),
    )
    .unwrap();
}

/// ½|A⁻¹b|² in static mode, generic over the scalar for its Hessian.
#[differentiable]
fn energy<T: RealScalar>(a: &Matrix<T, 3, 3>, b: &Vector<T, 3>) -> T {
    let x = a.solve(b);
    x.dot(&x) * T::from_f64(0.5)
}

/// ⟨W, A⁻¹B⟩ for columns solved together.
#[differentiable]
fn weighted(a: &M33, b: &M32, w: &M32) -> f64 {
    a.solve(b).dot(w)
}

/// A⁻¹B, columns together, for its Jacobian-vector products.
#[differentiable]
fn solutions(a: &M33, b: &M32) -> M32 {
    a.solve(b)
}

/// A⁻¹b itself, for its Jacobian-vector products.
#[differentiable]
fn solution(a: &M33, b: &V3) -> V3 {
    a.solve(b)
}

/// ½|A⁻¹b|² with b fixed, for a Hessian in A.
#[differentiable(wrt(a))]
fn energy_in_a<T: RealScalar>(a: &Matrix<T, 3, 3>, b: &Vector<T, 3>) -> T {
    let x = a.solve(b);
    x.dot(&x) * T::from_f64(0.5)
}

/// ½|A⁻¹b|² with A fixed, for a Hessian in b.
#[differentiable(wrt(b))]
fn energy_in_b<T: RealScalar>(a: &Matrix<T, 3, 3>, b: &Vector<T, 3>) -> T {
    let x = a.solve(b);
    x.dot(&x) * T::from_f64(0.5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn residual_is_rounding_and_columns_solve_alone(a in matrices(), b in vectors(), bb in right_hand_sides()) {
        let x = a.solve(&b);
        prop_assert!(residual(&a, &x, &b) < 1e-14, "residual {}", residual(&a, &x, &b));
        let xx = a.solve(&bb);
        prop_assert!(residual(&a, &xx, &bb) < 1e-14);
        for c in 0..2 {
            let column: V3 = Vector::from_fn(|[i]| bb[[i, c]]);
            let alone = a.solve(&column);
            for i in 0..3 {
                prop_assert_eq!(xx[[i, c]], alone[[i]]);
            }
        }
    }

    #[test]
    fn tape_gradient_matches_finite_differences(a in matrices(), b in vectors(), bb in right_hand_sides()) {
        check_grad(|(a, b): (Var<M33>, Var<V3>)| { let x = a.solve(&b); x.dot(&x) }, &(a, b), CheckOptions::f64())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_grad(|(a, b): (Var<M33>, Var<M32>)| { let x = a.solve(&b); x.dot(&x) }, &(a, bb), CheckOptions::f64())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // A constant matrix: only b's cotangent.
        let constant = Var::constant(a);
        check_grad(|b: Var<V3>| { let x = constant.solve(&b); x.dot(&x) }, &b, CheckOptions::f64())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }

    #[test]
    fn static_mode_agrees_with_the_tape_and_forward_mode(
        a in matrices(), b in vectors(), bb in right_hand_sides(), w in right_hand_sides(),
        a_dot in prop::array::uniform9(-1.0..1.0f64), b_dot in vectors(),
    ) {
        let (value, (ga, gb)) = energy::value_and_grad(&a, &b);
        let (tape_value, (ta, tb)) = value_and_grad(
            |(a, b): (Var<M33>, Var<V3>)| { let x = a.solve(&b); x.dot(&x) * 0.5 },
            &(a, b),
        );
        prop_assert!((value - tape_value).abs() <= 1e-14 * value.abs().max(1.0));
        for (s, t) in ga.as_slice().iter().zip(ta.as_slice()).chain(gb.as_slice().iter().zip(tb.as_slice())) {
            prop_assert!((s - t).abs() <= 1e-13 * t.abs().max(1.0), "{s} against {t}");
        }
        // Columns together: W against the tape.
        let (_, (wa, wb, _)) = weighted::value_and_grad(&a, &bb, &w);
        let (_, (ta, tb)) = value_and_grad(|(a, b): (Var<M33>, Var<M32>)| a.solve(&b).dot(&Var::constant(w)), &(a, bb));
        for (s, t) in wa.as_slice().iter().zip(ta.as_slice()).chain(wb.as_slice().iter().zip(tb.as_slice())) {
            prop_assert!((s - t).abs() <= 1e-13 * t.abs().max(1.0), "{s} against {t}");
        }
        // The tangent against forward mode on duals, which runs the elimination on them.
        let a_dot = Matrix::from_fn(|[i, j]| a_dot[i * 3 + j]);
        let (_, tangent) = solution::jvp(&a, &b, &a_dot, &b_dot);
        let (_, dual_tangent) = jvp(|(a, b): (Matrix<Dual<f64>, 3, 3>, Vector<Dual<f64>, 3>)| a.solve(&b), &(a, b), &(a_dot, b_dot));
        for (s, d) in tangent.as_slice().iter().zip(dual_tangent.as_slice()) {
            prop_assert!((s - d).abs() <= 1e-13 * d.abs().max(1.0), "{s} against {d}");
        }
        let bb_dot = Matrix::from_fn(|[i, j]| b_dot[[i]] * (j as f64 + 0.5));
        let (_, tangents) = solutions::jvp(&a, &bb, &a_dot, &bb_dot);
        let (_, dual_tangents) = jvp(|(a, b): (Matrix<Dual<f64>, 3, 3>, Matrix<Dual<f64>, 3, 2>)| a.solve(&b), &(a, bb), &(a_dot, bb_dot));
        for (s, d) in tangents.as_slice().iter().zip(dual_tangents.as_slice()) {
            prop_assert!((s - d).abs() <= 1e-13 * d.abs().max(1.0), "{s} against {d}");
        }
        // The pullback and the tangent against finite differences and each other.
        let (_, pullback) = solution::vjp(&a, &b);
        check_pullback(|(a, b): &(M33, V3)| a.solve(b), &pullback, &(a, b), CheckOptions::f64())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_pushforward(|(a, b): &(M33, V3)| a.solve(b), |(a_dot, b_dot)| solution::jvp(&a, &b, a_dot, b_dot).1, &(a, b), CheckOptions::f64())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }

    #[test]
    fn second_derivatives(a in matrices(), b in vectors(), v in vectors()) {
        // ½|A⁻¹b|² has the Hessian A⁻ᵀA⁻¹ in b.
        let inverse = a.solve(&M33::identity());
        let expected = inverse.transpose().matmul(&inverse);
        let h: M33 = energy_in_b::hessian(&a, &b);
        for (s, e) in h.as_slice().iter().zip(expected.as_slice()) {
            prop_assert!((s - e).abs() <= 1e-13, "{s} against {e}");
        }
        // The tape over duals gives the same.
        let taped: M33 = hessian(
            |b: Var<Vector<Dual<f64>, 3>>| {
                let x = Var::constant(a.map(Dual::constant)).solve(&b);
                x.dot(&x) * Dual::constant(0.5)
            },
            &b,
        );
        for (t, e) in taped.as_slice().iter().zip(expected.as_slice()) {
            prop_assert!((t - e).abs() <= 1e-13, "{t} against {e}");
        }
        // In A: H·V against central differences of the gradient.
        let direction = Matrix::from_fn(|[i, j]| v[[i]] * 0.3 - v[[j]] * 0.2);
        let hv: M33 = energy_in_a::hvp(&a, &b, &direction);
        let step = 1e-5;
        let at = |s: f64| -> M33 { energy_in_a::grad(&Matrix::from_fn(|[i, j]| a[[i, j]] + s * direction[[i, j]]), &b) };
        let (plus, minus) = (at(step), at(-step));
        for (k, h) in hv.as_slice().iter().enumerate() {
            let difference = (plus.as_slice()[k] - minus.as_slice()[k]) / (2.0 * step);
            prop_assert!((h - difference).abs() <= 1e-6 * difference.abs().max(1.0), "{h} against {difference}");
        }
    }
}
